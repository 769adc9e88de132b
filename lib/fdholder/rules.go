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
		x, err := CompileERE(re)
		if err != nil {
			return Rule{}, fmt.Errorf("%w %q: %v", ErrRule, s, err)
		}
		r.Regex = x
	}
	return r, nil
}

// IDs says which ids an operation may name: every id with All, else
// those in which one of Regexes finds a match (an unanchored search, as
// s6's regexec).
type IDs struct {
	All     bool
	Regexes []*regexp.Regexp
}

func (m IDs) match(id string) bool {
	if m.All {
		return true
	}
	for _, re := range m.Regexes {
		if re.MatchString(id) {
			return true
		}
	}
	return false
}

func (m *IDs) add(re *regexp.Regexp) {
	if re == nil {
		m.All = true
	} else {
		m.Regexes = append(m.Regexes, re)
	}
}

// Access is what one connection may do: the operations, and the ids that
// store (and delete) and retrieve may name, as s6's separate
// S6_FDHOLDER_STORE_REGEX and S6_FDHOLDER_RETRIEVE_REGEX.
type Access struct {
	Rights          Rights
	Store, Retrieve IDs
}

// grant adds rule r to the access: its rights, and its regex (none: every
// id) to the ids of store and retrieve when it gives them.
func (a *Access) grant(r Rule) {
	a.Rights |= r.Rights
	if r.Rights&RightStore != 0 {
		a.Store.add(r.Regex)
	}
	if r.Rights&RightRetrieve != 0 {
		a.Retrieve.add(r.Regex)
	}
}

// may reports whether the access allows op r on id ("" for list and the
// dumps).
func (a Access) may(r Rights, id string) bool {
	if a.Rights&r != r {
		return false
	}
	switch {
	case r&RightStore != 0 && !a.Store.match(id):
		return false
	case r&RightRetrieve != 0 && !a.Retrieve.match(id):
		return false
	}
	return true
}

// Decide returns the access of a peer with uid and gid (SO_PEERCRED) to a
// daemon running as euid: every rule for the uid, combined; else every
// rule for the gid; else everything when uid is euid or 0; else every "*"
// rule. Several rules for one peer add up, so that a store regex and a
// retrieve regex can differ. ok == false: no rule matched, the connection
// is closed at once.
func Decide(rules []Rule, uid, gid uint32, euid int) (a Access, ok bool) {
	for _, who := range []Who{WhoUID, WhoGID} {
		for _, r := range rules {
			if r.Who == who && ((who == WhoUID && r.ID == uid) || (who == WhoGID && r.ID == gid)) {
				a.grant(r)
				ok = true
			}
		}
		if ok {
			return a, true
		}
	}
	if uid == 0 || (euid >= 0 && uint64(uid) == uint64(euid)) {
		return Access{Rights: RightAll, Store: IDs{All: true}, Retrieve: IDs{All: true}}, true
	}
	for _, r := range rules {
		if r.Who == WhoAny {
			a.grant(r)
			ok = true
		}
	}
	return a, ok
}

// CompileERE compiles a POSIX extended regular expression as s6 uses them
// (regcomp with REG_EXTENDED; an empty one matches everything). Go's
// regexp matches the same ids for what POSIX defines; the constructs
// whose meaning differs between glibc's regcomp and Go are refused: a
// backslash before a letter or digit (\d, \w, \b... are Go classes or GNU
// extensions), a backslash inside brackets (literal in POSIX), "(?" (Go
// flags), "{," (GNU's {0,n}), [[:word:]], [. .] and [= =].
func CompileERE(s string) (*regexp.Regexp, error) {
	bad := func(what string) (*regexp.Regexp, error) {
		return nil, fmt.Errorf("%s is not matched the same way by POSIX regcomp and Go", what)
	}
	alnum := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	for i := 0; i < len(s); i++ {
		next := byte(0)
		if i+1 < len(s) {
			next = s[i+1]
		}
		switch s[i] {
		case '\\':
			if alnum(next) {
				return bad(`"\\` + string(next) + `"`)
			}
			i++
		case '(':
			if next == '?' {
				return bad(`"(?"`)
			}
		case '{':
			if next == ',' {
				return bad(`"{,"`)
			}
		case '[':
			// A bracket expression: a leading ^ and a leading ] are
			// part of it; it ends at the next ] outside [:class:].
			j := i + 1
			if j < len(s) && s[j] == '^' {
				j++
			}
			if j < len(s) && s[j] == ']' {
				j++
			}
			for ; j < len(s) && s[j] != ']'; j++ {
				switch {
				case s[j] == '\\':
					return bad("a backslash in a bracket expression")
				case s[j] == '[' && j+1 < len(s) && (s[j+1] == '.' || s[j+1] == '='):
					return bad(`"[` + string(s[j+1]) + `"`)
				case s[j] == '[' && j+1 < len(s) && s[j+1] == ':':
					end := strings.Index(s[j+2:], ":]")
					if end < 0 {
						return bad("an unterminated [: class")
					}
					if s[j+2:j+2+end] == "word" {
						return bad("[[:word:]]")
					}
					j += end + 3
				}
			}
			i = j
		}
	}
	return regexp.CompilePOSIX(s)
}
