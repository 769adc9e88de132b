//go:build linux

package fdholder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The variables of an s6 access rule's env/ directory that s6-fdholderd
// reads (s6-fdholderd.html).
const (
	envStoreRegex    = "S6_FDHOLDER_STORE_REGEX"
	envRetrieveRegex = "S6_FDHOLDER_RETRIEVE_REGEX"
	envList          = "S6_FDHOLDER_LIST"
	envGetDump       = "S6_FDHOLDER_GETDUMP"
	envSetDump       = "S6_FDHOLDER_SETDUMP"
)

// maxEnvVar is what s6's envdir reads of one variable's file.
const maxEnvVar = 4095

// DirAccess decides a peer's access from an s6 access rules directory
// (s6-accessrules-fs-from-cdb's layout, read by s6-fdholderd -i at every
// connection): the first of uid/self (when uid is the daemon's euid),
// uid/UID, gid/self (when gid is its egid), gid/GID and uid/default that
// holds a readable allow or deny file decides. deny, or no such key at
// all (root included): ok is false and the connection is closed. allow:
// the key's env/ directory gives the rights: S6_FDHOLDER_STORE_REGEX and
// S6_FDHOLDER_RETRIEVE_REGEX (POSIX EREs; store also covers delete),
// S6_FDHOLDER_LIST, S6_FDHOLDER_GETDUMP and S6_FDHOLDER_SETDUMP (set, even
// empty). An error reading the rules or an invalid regex is returned with
// ok false.
func DirAccess(dir string, uid, gid uint32, euid, egid int) (Access, bool, error) {
	return decideKeys(uid, gid, euid, egid, func(key string) (rule, map[string]string, error) {
		base := dir + "/" + key
		found, err := readable(base + "/allow")
		if err != nil {
			return ruleError, nil, err
		}
		if !found {
			if found, err = readable(base + "/deny"); err != nil {
				return ruleError, nil, err
			}
			if found {
				return ruleDeny, nil, nil
			}
			return ruleNone, nil, nil
		}
		env, err := readEnvDir(base + "/env")
		if err != nil {
			return ruleError, nil, err
		}
		return ruleAllow, env, nil
	})
}

// rule is what one key of an access rules database says.
type rule int

const (
	ruleNone rule = iota
	ruleAllow
	ruleDeny
	ruleError
)

// decideKeys asks lookup about the keys of a peer in s6's order
// (s6_accessrules_keycheck_uidgid): uid/self (uid is the daemon's euid),
// uid/UID, gid/self (gid is its egid), gid/GID, uid/default; the first key
// that allows or denies decides.
func decideKeys(uid, gid uint32, euid, egid int, lookup func(key string) (rule, map[string]string, error)) (Access, bool, error) {
	var keys []string
	if euid >= 0 && uint64(uid) == uint64(euid) {
		keys = append(keys, "uid/self")
	}
	keys = append(keys, "uid/"+strconv.FormatUint(uint64(uid), 10))
	if egid >= 0 && uint64(gid) == uint64(egid) {
		keys = append(keys, "gid/self")
	}
	keys = append(keys, "gid/"+strconv.FormatUint(uint64(gid), 10), "uid/default")
	for _, key := range keys {
		r, env, err := lookup(key)
		switch r {
		case ruleNone:
			continue
		case ruleAllow:
			return envAccess(env, key)
		}
		return Access{}, false, err
	}
	return Access{}, false, nil
}

// CDBAccess is [DirAccess] for s6's rules in a cdb file
// (s6-accessrules-cdb-from-fs), read at each connection. A key's data is
// 'D' (deny) or 'A', a 2-byte big-endian length and the env/ variables
// ("NAME=value" or "NAME" for unset, each NUL-terminated), a 2-byte length
// and the exec string, which the holder does not use.
func CDBAccess(file string, uid, gid uint32, euid, egid int) (Access, bool, error) {
	db, err := os.ReadFile(file)
	if err != nil {
		return Access{}, false, fmt.Errorf("unable to read %s: %w", file, err)
	}
	return decideKeys(uid, gid, euid, egid, func(key string) (rule, map[string]string, error) {
		data, found, err := cdbFind(db, key)
		switch {
		case err != nil:
			return ruleError, nil, fmt.Errorf("%s: %w", file, err)
		case !found:
			return ruleNone, nil, nil
		case len(data) == 0 || len(data) > 8197:
			return ruleError, nil, fmt.Errorf("%s: bad data for %s", file, key)
		case data[0] == 'D':
			return ruleDeny, nil, nil
		case data[0] != 'A':
			return ruleNone, nil, nil
		case len(data) < 5:
			return ruleError, nil, fmt.Errorf("%s: bad data for %s", file, key)
		}
		envLen := int(binary.BigEndian.Uint16(data[1:]))
		if envLen > 4096 || len(data)-5 < envLen {
			return ruleError, nil, fmt.Errorf("%s: bad env for %s", file, key)
		}
		execLen := int(binary.BigEndian.Uint16(data[3+envLen:]))
		if execLen > 4096 || 5+envLen+execLen != len(data) {
			return ruleError, nil, fmt.Errorf("%s: bad exec for %s", file, key)
		}
		env := map[string]string{}
		for kv := range strings.SplitSeq(string(data[3:3+envLen]), "\x00") {
			if name, value, ok := strings.Cut(kv, "="); ok {
				env[name] = value
			}
		}
		return ruleAllow, env, nil
	})
}

// cdbFind looks key up in a cdb (D. J. Bernstein's constant database, as
// skalibs writes it): 256 (position, slots) pairs, then records, then hash
// tables of (hash, position) slots; all numbers little-endian uint32.
func cdbFind(db []byte, key string) ([]byte, bool, error) {
	u32 := func(off uint32) (uint32, error) {
		if uint64(off)+4 > uint64(len(db)) {
			return 0, errors.New("truncated cdb")
		}
		return binary.LittleEndian.Uint32(db[off:]), nil
	}
	h := uint32(5381)
	for i := 0; i < len(key); i++ {
		h = (h<<5 + h) ^ uint32(key[i])
	}
	pos, err := u32((h & 255) * 8)
	if err != nil {
		return nil, false, err
	}
	slots, err := u32((h&255)*8 + 4)
	if err != nil || slots == 0 {
		return nil, false, err
	}
	start := (h >> 8) % slots
	for i := uint32(0); i < slots; i++ {
		slot := pos + 8*((start+i)%slots)
		sh, err := u32(slot)
		if err != nil {
			return nil, false, err
		}
		rec, err := u32(slot + 4)
		if err != nil {
			return nil, false, err
		}
		if rec == 0 {
			return nil, false, nil
		}
		if sh != h {
			continue
		}
		klen, err := u32(rec)
		if err != nil {
			return nil, false, err
		}
		dlen, err := u32(rec + 4)
		if err != nil {
			return nil, false, err
		}
		kstart := uint64(rec) + 8
		end := kstart + uint64(klen) + uint64(dlen)
		if end > uint64(len(db)) {
			return nil, false, errors.New("truncated cdb")
		}
		if string(db[kstart:kstart+uint64(klen)]) == key {
			return db[kstart+uint64(klen) : end], true, nil
		}
	}
	return nil, false, nil
}

// readable reports whether path can be read (access(2) R_OK): false for
// ENOENT and EACCES, as s6 reads a missing file.
func readable(path string) (bool, error) {
	err := unix.Access(path, unix.R_OK)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EACCES), errors.Is(err, unix.ENOTDIR):
		return false, nil
	}
	return false, fmt.Errorf("unable to check %s: %w", path, err)
}

// readEnvDir reads an envdir as skalibs does: one variable per file not
// starting with '.' and without '='; its value is the first line with
// trailing spaces, tabs and CRs removed, NULs turned into newlines; an
// empty file unsets the variable (left out of the map). A missing
// directory is no variable.
func readEnvDir(path string) (map[string]string, error) {
	ents, err := os.ReadDir(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("unable to read %s: %w", path, err)
	}
	env := map[string]string{}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.Contains(name, "=") {
			continue
		}
		v, err := os.ReadFile(path + "/" + name)
		if err != nil {
			return nil, fmt.Errorf("unable to read %s/%s: %w", path, name, err)
		}
		n := min(len(v), maxEnvVar)
		v = v[:n]
		if n == 0 {
			continue
		}
		if i := strings.IndexByte(string(v), '\n'); i >= 0 {
			v = v[:i]
		}
		v = []byte(strings.TrimRight(string(v), " \t\r"))
		env[name] = strings.ReplaceAll(string(v), "\x00", "\n")
	}
	return env, nil
}

// envAccess turns a rule's variables into an Access (s6-fdholderd.c
// parse_env): without a regex variable, store or retrieve matches no id.
func envAccess(env map[string]string, where string) (Access, bool, error) {
	var a Access
	for _, v := range []struct {
		name  string
		right Rights
		ids   *IDs
	}{{envStoreRegex, RightStore, &a.Store}, {envRetrieveRegex, RightRetrieve, &a.Retrieve}} {
		s, ok := env[v.name]
		if !ok {
			continue
		}
		re, err := CompileERE(s)
		if err != nil {
			return Access{}, false, fmt.Errorf("invalid %s value in %s: %q: %v", v.name, where, s, err)
		}
		a.Rights |= v.right
		v.ids.add(re)
	}
	for name, r := range map[string]Rights{envList: RightList, envGetDump: RightGetDump, envSetDump: RightSetDump} {
		if _, ok := env[name]; ok {
			a.Rights |= r
		}
	}
	return a, true, nil
}
