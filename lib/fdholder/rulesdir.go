//go:build linux

package fdholder

import (
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
		base := dir + "/" + key
		found, err := readable(base + "/allow")
		if err != nil {
			return Access{}, false, err
		}
		if !found {
			if found, err = readable(base + "/deny"); err != nil || found {
				return Access{}, false, err
			}
			continue
		}
		env, err := readEnvDir(base + "/env")
		if err != nil {
			return Access{}, false, err
		}
		return envAccess(env, base)
	}
	return Access{}, false, nil
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
