//go:build linux

package fdholder

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/gotools-dev/gotools/lib/decimal"
)

// Rights is a set of operations a client may do.
type Rights uint8

// The rights of a rule. RightStore also covers delete, and a retrieve
// that deletes needs RightStore too (s6-fdholderd.c do_retrieve).
const (
	RightStore Rights = 1 << iota
	RightRetrieve
	RightList
	RightGetDump
	RightSetDump
	RightAll = RightStore | RightRetrieve | RightList | RightGetDump | RightSetDump
)

var rightNames = []struct {
	name string
	r    Rights
}{
	{"store", RightStore}, {"retrieve", RightRetrieve}, {"list", RightList},
	{"getdump", RightGetDump}, {"setdump", RightSetDump}, {"all", RightAll},
}

// Who says which peers a rule is for.
type Who uint8

// The kinds of rule.
const (
	WhoUID Who = iota // a uid
	WhoGID            // "@GID": a primary gid (SO_PEERCRED's gid, as s6)
	WhoAny            // "*"
)

// ErrRule is wrapped by every [ParseRule] error; the applet exits 100.
var ErrRule = errors.New("invalid rule")

// Rule is one -a rule: who it is for, what they may do, and which ids
// store, delete and retrieve may name.
type Rule struct {
	Who    Who
	ID     uint32 // uid or gid
	Rights Rights
	Regex  *regexp.Regexp // nil: every id
	Text   string         // as given
}

// ParseRule reads WHO[,RIGHT...][:REGEX]: WHO is a decimal uid, @GID or
// *; RIGHTs are store, retrieve, list, getdump, setdump and all (the
// default); REGEX is a POSIX ERE searched anywhere in the id
// (regexp.CompilePOSIX, unanchored like s6's regexec).
func ParseRule(s string) (Rule, error) {
	r := Rule{Text: s}
	head, re, hasRE := strings.Cut(s, ":")
	parts := strings.Split(head, ",")
	who := parts[0]
	switch {
	case who == "*":
		r.Who = WhoAny
	case strings.HasPrefix(who, "@"):
		n, ok := decimal.Parse(who[1:], 10, 1<<32-1)
		if !ok {
			return Rule{}, fmt.Errorf("%w %q: bad gid %q", ErrRule, s, who[1:])
		}
		r.Who, r.ID = WhoGID, uint32(n)
	default:
		n, ok := decimal.Parse(who, 10, 1<<32-1)
		if !ok {
			return Rule{}, fmt.Errorf("%w %q: bad uid %q (want a uid, @gid or *)", ErrRule, s, who)
		}
		r.Who, r.ID = WhoUID, uint32(n)
	}
	for _, name := range parts[1:] {
		found := false
		for _, rn := range rightNames {
			if rn.name == name {
				r.Rights |= rn.r
				found = true
			}
		}
		if !found {
			return Rule{}, fmt.Errorf("%w %q: unknown right %q", ErrRule, s, name)
		}
	}
	if len(parts) == 1 {
		r.Rights = RightAll
	}
	if hasRE {
		x, err := regexp.CompilePOSIX(re)
		if err != nil {
			return Rule{}, fmt.Errorf("%w %q: %v", ErrRule, s, err)
		}
		r.Regex = x
	}
	return r, nil
}

// Access is what one connection may do.
type Access struct {
	Rights Rights
	Regex  *regexp.Regexp // nil: every id
}

// may reports whether the access allows op r on id ("" for list and the
// dumps).
func (a Access) may(r Rights, id string) bool {
	if a.Rights&r != r {
		return false
	}
	if id == "" || a.Regex == nil || r&(RightStore|RightRetrieve) == 0 {
		return true
	}
	return a.Regex.MatchString(id)
}

// Decide returns the access of a peer with uid and gid (SO_PEERCRED) to a
// daemon running as euid: the first rule for the uid, else the first for
// the gid, else everything when uid is euid or 0, else the first "*"
// rule. ok == false: no rule matched, the connection is closed at once.
func Decide(rules []Rule, uid, gid uint32, euid int) (a Access, ok bool) {
	for _, who := range []Who{WhoUID, WhoGID} {
		for _, r := range rules {
			if r.Who == who && ((who == WhoUID && r.ID == uid) || (who == WhoGID && r.ID == gid)) {
				return Access{Rights: r.Rights, Regex: r.Regex}, true
			}
		}
	}
	if uid == 0 || (euid >= 0 && uint64(uid) == uint64(euid)) {
		return Access{Rights: RightAll}, true
	}
	for _, r := range rules {
		if r.Who == WhoAny {
			return Access{Rights: r.Rights, Regex: r.Regex}, true
		}
	}
	return Access{}, false
}
