//go:build linux

package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FixAttr is one line of a fix-attrs.d file (s6-overlay v2's format, still
// read by v3): GLOB RECURSE ACCOUNT FMODE DMODE.
type FixAttr struct {
	Line    int    // 1-based, for messages
	Glob    string // a filepath.Glob pattern
	Recurse bool
	Account Account
	FMode   uint32 // for files (permission bits and setuid, setgid, sticky)
	DMode   uint32 // for directories
}

// Account is ACCOUNT: user[:group][,uid:gid]. The names are looked up in
// /etc/passwd and /etc/group; the numeric fallback serves when they are
// not there.
type Account struct {
	User, Group string // Group "": the user's primary group
	Fallback    bool   // a ,uid:gid part was given
	UID, GID    int    // the fallback's
}

// ErrFixAttrs is wrapped by every [ParseFixAttrs] error.
var ErrFixAttrs = errors.New("malformed fix-attrs line")

// ParseFixAttrs reads a fix-attrs.d file. Blank lines and lines whose
// first word starts with '#' are skipped (s6-overlay's loop skips only a
// lone '#'; spec/init.md §10). Every other line must have exactly five
// words: GLOB, RECURSE (true or false), ACCOUNT, FMODE and DMODE (octal,
// at most 07777).
func ParseFixAttrs(data []byte) ([]FixAttr, error) {
	var l []FixAttr
	for i, line := range bytes.Split(data, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		bad := func(why string) error { return fmt.Errorf("%w %d: %s", ErrFixAttrs, i+1, why) }
		if len(f) != 5 {
			return nil, bad(fmt.Sprintf("%d words, want GLOB RECURSE ACCOUNT FMODE DMODE", len(f)))
		}
		a := FixAttr{Line: i + 1, Glob: f[0]}
		switch f[1] {
		case "true":
			a.Recurse = true
		case "false":
		default:
			return nil, bad(fmt.Sprintf("RECURSE %q is not true or false", f[1]))
		}
		acct, err := parseAccount(f[2])
		if err != nil {
			return nil, bad(err.Error())
		}
		a.Account = acct
		for _, m := range []struct {
			s  string
			to *uint32
		}{{f[3], &a.FMode}, {f[4], &a.DMode}} {
			n, err := strconv.ParseUint(m.s, 8, 32)
			if err != nil || n > 0o7777 {
				return nil, bad(fmt.Sprintf("mode %q is not octal 0-7777", m.s))
			}
			*m.to = uint32(n)
		}
		l = append(l, a)
	}
	return l, nil
}

// parseAccount reads user[:group][,uid:gid].
func parseAccount(s string) (Account, error) {
	var a Account
	names, fallback, hasFallback := strings.Cut(s, ",")
	a.User, a.Group, _ = strings.Cut(names, ":")
	if a.User == "" {
		return a, fmt.Errorf("ACCOUNT %q has no user", s)
	}
	if hasFallback {
		u, g, ok := strings.Cut(fallback, ":")
		uid, err1 := strconv.ParseUint(u, 10, 31)
		gid, err2 := strconv.ParseUint(g, 10, 31)
		if !ok || err1 != nil || err2 != nil {
			return a, fmt.Errorf("ACCOUNT %q: fallback %q is not uid:gid", s, fallback)
		}
		a.Fallback, a.UID, a.GID = true, int(uid), int(gid)
	}
	return a, nil
}

// LookupID finds name in the content of /etc/passwd or /etc/group and
// returns its id (the third field) and, for /etc/passwd, the primary group
// (the fourth; -1 for /etc/group). A name made of digits is taken as the
// id itself when no entry has that name.
func LookupID(file []byte, name string) (id, group int, ok bool) {
	for _, line := range bytes.Split(file, []byte("\n")) {
		f := strings.Split(string(line), ":")
		if len(f) < 3 || f[0] != name {
			continue
		}
		n, err := strconv.ParseUint(f[2], 10, 31)
		if err != nil {
			continue
		}
		group = -1
		if len(f) >= 4 {
			if g, err := strconv.ParseUint(f[3], 10, 31); err == nil {
				group = int(g)
			}
		}
		return int(n), group, true
	}
	if n, err := strconv.ParseUint(name, 10, 31); err == nil {
		return int(n), -1, true
	}
	return 0, -1, false
}

// Resolve returns the uid and gid of a, from the content of /etc/passwd
// and /etc/group; a name not found takes the fallback, or is an error.
// Without a group, the gid is the user's primary group.
func (a Account) Resolve(passwd, group []byte) (uid, gid int, err error) {
	uid, gid, ok := LookupID(passwd, a.User)
	if !ok {
		if !a.Fallback {
			return 0, 0, fmt.Errorf("unknown user %s", a.User)
		}
		return a.UID, a.GID, nil
	}
	if a.Group != "" {
		g, _, ok := LookupID(group, a.Group)
		switch {
		case ok:
			gid = g
		case a.Fallback:
			gid = a.GID
		default:
			return 0, 0, fmt.Errorf("unknown group %s", a.Group)
		}
	}
	if gid < 0 {
		if !a.Fallback {
			return 0, 0, fmt.Errorf("user %s has no primary group", a.User)
		}
		gid = a.GID
	}
	return uid, gid, nil
}
