// Package ere reads POSIX extended regular expressions as glibc's
// regcomp(REG_EXTENDED|REG_NOSUB|REG_NEWLINE) does in the C locale (the
// dialect of s6-log's selection directives) and runs them with Go's regexp
// package, for a yes/no answer only.
//
// The pattern is translated into an equivalent Go pattern: bytes, not
// characters (a line byte >= 0x80 is matched as the rune U+0080-U+00FF), GNU
// escapes (\w \s \b \` \' ...), stacked repetitions, intervals. What glibc
// rejects is a [SyntaxError]; what glibc accepts but Go's regexp/syntax
// cannot run (backreferences, counts above 1000, \< and \> away from a
// literal word byte, patterns past Go's size limits) is an
// [UnsupportedError]: it is refused, never matched differently.
//
// It deliberately does not report submatches: where leftmost-first and
// leftmost-longest disagree only the positions differ, never the answer.
package ere

import (
	"regexp"
	"strconv"
	"strings"
)

// A SyntaxError is a pattern that glibc's regcomp rejects.
type SyntaxError struct{ Reason string }

func (e *SyntaxError) Error() string { return "invalid regular expression: " + e.Reason }

// An UnsupportedError is a pattern glibc accepts that Go cannot run.
type UnsupportedError struct{ Reason string }

func (e *UnsupportedError) Error() string { return e.Reason }

// Regexp is a compiled pattern. Its Match is not safe for concurrent use
// (it reuses one scratch buffer).
type Regexp struct {
	re  *regexp.Regexp
	buf []byte
}

// maxCount is the largest interval count glibc accepts (RE_DUP_MAX);
// goMaxCount is Go's.
const (
	maxCount   = 32767
	goMaxCount = 1000
)

// Compile translates pattern and compiles it.
func Compile(pattern string) (*Regexp, error) {
	g, err := Translate(pattern)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(g)
	if err != nil {
		return nil, &UnsupportedError{Reason: strings.TrimPrefix(err.Error(), "error parsing regexp: ")}
	}
	return &Regexp{re: re}, nil
}

// Match reports whether line (which holds no newline) matches.
func (r *Regexp) Match(line []byte) bool {
	high := false
	for _, c := range line {
		if c >= 0x80 {
			high = true
			break
		}
	}
	if !high {
		return r.re.Match(line)
	}
	b := r.buf[:0]
	for _, c := range line {
		if c < 0x80 {
			b = append(b, c)
		} else {
			b = append(b, 0xc0|c>>6, 0x80|c&0x3f)
		}
	}
	r.buf = b
	m := r.re.Match(b)
	if cap(b) > 64<<10 {
		r.buf = nil
	}
	return m
}

// piece kinds, for the quantifier rules.
const (
	kNone   = iota // nothing yet: start of a branch
	kAtom          // can take a quantifier
	kRep           // an atom already quantified: wrapped before the next one
	kAnchor        // ^ $ \b \B \< \> \` \': glibc refuses a quantifier here
)

type translator struct {
	p      string
	i      int
	out    strings.Builder
	groups []bool // closed flag of each group, in opening order
	depth  int
}

// Translate returns the Go pattern equivalent to the ERE pattern.
func Translate(pattern string) (string, error) {
	t := &translator{p: pattern}
	if err := t.alt(); err != nil {
		return "", err
	}
	return t.out.String(), nil
}

func syntaxErr(r string) error { return &SyntaxError{Reason: r} }

// alt translates branches up to the end, or up to the ')' closing the
// current group (left unread).
func (t *translator) alt() error {
	for {
		if err := t.branch(); err != nil {
			return err
		}
		if t.i < len(t.p) && t.p[t.i] == '|' {
			t.i++
			t.out.WriteByte('|')
			continue
		}
		return nil
	}
}

// branch translates pieces until '|', a closing ')' or the end.
func (t *translator) branch() error {
	kind := kNone
	var last string // the previous piece's text, for wrapping and \>
	lastWord := false
	pieces := []string{}
	emit := func(s string, k int, word bool) {
		pieces = append(pieces, s)
		last, kind, lastWord = s, k, word
	}
	for t.i < len(t.p) {
		c := t.p[t.i]
		switch c {
		case '|':
			goto done
		case ')':
			if t.depth > 0 {
				goto done
			}
			t.i++
			emit(lit(')'), kAtom, false)
			continue
		case '*', '+', '?', '{':
			if kind == kNone || kind == kAnchor {
				return syntaxErr("repetition without an operand")
			}
			q, err := t.quant()
			if err != nil {
				return err
			}
			s := last
			if kind == kRep {
				s = "(?:" + s + ")"
			}
			pieces[len(pieces)-1] = s + q
			last, kind, lastWord = s+q, kRep, false
			continue
		}
		t.i++
		switch c {
		case '^':
			emit(`^`, kAnchor, false)
		case '$':
			emit(`$`, kAnchor, false)
		case '.':
			emit(`(?s:.)`, kAtom, false)
		case '(':
			t.groups = append(t.groups, false)
			n := len(t.groups) - 1
			sub := &translator{p: t.p, i: t.i, groups: t.groups, depth: t.depth + 1}
			if err := sub.alt(); err != nil {
				return err
			}
			if sub.i >= len(t.p) {
				return syntaxErr("unmatched (")
			}
			t.i = sub.i + 1
			t.groups = sub.groups
			t.groups[n] = true
			emit("(?:"+sub.out.String()+")", kAtom, false)
		case '[':
			s, err := t.bracket()
			if err != nil {
				return err
			}
			emit(s, kAtom, false)
		case '\\':
			if t.i >= len(t.p) {
				return syntaxErr("trailing backslash")
			}
			e := t.p[t.i]
			t.i++
			switch e {
			case 'w':
				emit(`[0-9A-Za-z_]`, kAtom, false)
			case 'W':
				emit(`[^0-9A-Za-z_]`, kAtom, false)
			case 's':
				emit(`[\t\n\v\f\r ]`, kAtom, false)
			case 'S':
				emit(`[^\t\n\v\f\r ]`, kAtom, false)
			case 'b':
				emit(`\b`, kAnchor, false)
			case 'B':
				emit(`\B`, kAnchor, false)
			case '`':
				emit(`\A`, kAnchor, false)
			case '\'':
				emit(`\z`, kAnchor, false)
			case '<':
				if t.i < len(t.p) && strings.IndexByte("*+?{", t.p[t.i]) >= 0 {
					return syntaxErr("repetition without an operand")
				}
				if t.i >= len(t.p) || !wordByte(t.p[t.i]) || (t.i+1 < len(t.p) && strings.IndexByte("*?{", t.p[t.i+1]) >= 0) {
					return &UnsupportedError{Reason: `\< not before a literal word character`}
				}
				emit(`\b`, kAnchor, false)
			case '>':
				if t.i < len(t.p) && strings.IndexByte("*+?{", t.p[t.i]) >= 0 {
					return syntaxErr("repetition without an operand")
				}
				if !lastWord {
					return &UnsupportedError{Reason: `\> not after a literal word character`}
				}
				emit(`\b`, kAnchor, false)
			case '1', '2', '3', '4', '5', '6', '7', '8', '9':
				n := int(e - '0')
				if n > len(t.groups) || !t.groups[n-1] {
					return syntaxErr("invalid back reference")
				}
				return &UnsupportedError{Reason: "backreferences are not supported"}
			default:
				emit(lit(e), kAtom, wordByte(e))
			}
		default:
			emit(lit(c), kAtom, wordByte(c))
		}
	}
done:
	for _, s := range pieces {
		t.out.WriteString(s)
	}
	return nil
}

// quant reads one repetition operator at t.i and returns its Go form.
func (t *translator) quant() (string, error) {
	c := t.p[t.i]
	t.i++
	if c != '{' {
		return string(c), nil
	}
	num := func() (int, bool, error) {
		j := t.i
		for t.i < len(t.p) && t.p[t.i] >= '0' && t.p[t.i] <= '9' {
			t.i++
		}
		if t.i == j {
			return 0, false, nil
		}
		s := t.p[j:t.i]
		s = strings.TrimLeft(s, "0")
		if len(s) > 5 {
			return 0, true, syntaxErr("invalid interval count")
		}
		n, _ := strconv.Atoi("0" + s)
		if n > maxCount {
			return 0, true, syntaxErr("invalid interval count")
		}
		return n, true, nil
	}
	m, hasM, err := num()
	if err != nil {
		return "", err
	}
	n, hasN, comma := m, hasM, false
	if t.i < len(t.p) && t.p[t.i] == ',' {
		comma = true
		t.i++
		if n, hasN, err = num(); err != nil {
			return "", err
		}
	}
	if t.i >= len(t.p) || t.p[t.i] != '}' || (!hasM && !comma) {
		return "", syntaxErr("invalid interval")
	}
	t.i++
	switch {
	case !comma:
		n = m
	case !hasN:
		n = -1
	}
	if n >= 0 && m > n {
		return "", syntaxErr("invalid interval: min above max")
	}
	if m > goMaxCount || n > goMaxCount {
		return "", &UnsupportedError{Reason: "repetition count above " + strconv.Itoa(goMaxCount)}
	}
	switch {
	case !comma:
		return "{" + strconv.Itoa(m) + "}", nil
	case n < 0:
		return "{" + strconv.Itoa(m) + ",}", nil
	}
	return "{" + strconv.Itoa(m) + "," + strconv.Itoa(n) + "}", nil
}

// bracket reads a bracket expression after its '[' and returns a Go class
// over bytes.
func (t *translator) bracket() (string, error) {
	var set [256]bool
	neg := false
	if t.i < len(t.p) && t.p[t.i] == '^' {
		neg = true
		t.i++
	}
	first := true
	for {
		if t.i >= len(t.p) {
			return "", syntaxErr("unmatched [")
		}
		c := t.p[t.i]
		if c == ']' && !first {
			t.i++
			break
		}
		first = false
		lo, kind, err := t.bracketItem(&set)
		if err != nil {
			return "", err
		}
		if t.i+1 < len(t.p) && t.p[t.i] == '-' && t.p[t.i+1] != ']' {
			if kind != itemByte {
				return "", syntaxErr("invalid range start")
			}
			t.i++
			hi, kind2, err := t.bracketItem(nil)
			if err != nil {
				return "", err
			}
			if kind2 != itemByte {
				return "", syntaxErr("invalid range end")
			}
			if hi < lo {
				return "", syntaxErr("invalid range end")
			}
			for b := int(lo); b <= int(hi); b++ {
				set[b] = true
			}
			if t.i+1 < len(t.p) && t.p[t.i] == '-' && t.p[t.i+1] != ']' {
				return "", syntaxErr("invalid range end")
			}
			continue
		}
		if kind == itemByte {
			set[lo] = true
		}
	}
	if neg {
		for i := range set {
			set[i] = !set[i]
		}
	}
	return class(&set), nil
}

const (
	itemByte = iota
	itemClass
	itemEquiv
)

// bracketItem reads one item of a bracket expression: a byte, [.c.], [=c=]
// or [:name:]. With set nil (a range end) classes are not added.
func (t *translator) bracketItem(set *[256]bool) (byte, int, error) {
	c := t.p[t.i]
	if c == '[' && t.i+1 < len(t.p) && strings.IndexByte(":=.", t.p[t.i+1]) >= 0 {
		d := t.p[t.i+1]
		rest := t.p[t.i+2:]
		end := strings.Index(rest, string(d)+"]")
		if end < 0 {
			return 0, 0, syntaxErr("unmatched [" + string(d))
		}
		name := rest[:end]
		t.i += 2 + end + 2
		switch d {
		case ':':
			cl, ok := classSet(name)
			if !ok {
				return 0, 0, syntaxErr("invalid character class")
			}
			if set != nil {
				for i := range cl {
					if cl[i] {
						set[i] = true
					}
				}
			}
			return 0, itemClass, nil
		case '=':
			if len(name) != 1 {
				return 0, 0, syntaxErr("invalid equivalence class")
			}
			if set != nil {
				set[name[0]] = true
			}
			return name[0], itemEquiv, nil
		default:
			if len(name) != 1 {
				return 0, 0, syntaxErr("invalid collating element")
			}
			return name[0], itemByte, nil
		}
	}
	t.i++
	return c, itemByte, nil
}

// classSet returns the C locale's set for a POSIX class name.
func classSet(name string) (*[256]bool, bool) {
	var s [256]bool
	in := func(lo, hi byte) {
		for b := int(lo); b <= int(hi); b++ {
			s[b] = true
		}
	}
	switch name {
	case "alpha":
		in('a', 'z')
		in('A', 'Z')
	case "upper":
		in('A', 'Z')
	case "lower":
		in('a', 'z')
	case "digit":
		in('0', '9')
	case "xdigit":
		in('0', '9')
		in('a', 'f')
		in('A', 'F')
	case "alnum":
		in('0', '9')
		in('a', 'z')
		in('A', 'Z')
	case "space":
		in('\t', '\r')
		in(' ', ' ')
	case "blank":
		in('\t', '\t')
		in(' ', ' ')
	case "punct":
		in('!', '/')
		in(':', '@')
		in('[', '`')
		in('{', '~')
	case "print":
		in(' ', '~')
	case "graph":
		in('!', '~')
	case "cntrl":
		in(0, 0x1f)
		in(0x7f, 0x7f)
	default:
		return nil, false
	}
	return &s, true
}

// class writes set as a Go character class of runes U+0000-U+00FF.
func class(set *[256]bool) string {
	var b strings.Builder
	b.WriteByte('[')
	empty := true
	for i := 0; i < 256; {
		if !set[i] {
			i++
			continue
		}
		j := i
		for j+1 < 256 && set[j+1] {
			j++
		}
		b.WriteString(hexRune(byte(i)))
		if j > i {
			b.WriteByte('-')
			b.WriteString(hexRune(byte(j)))
		}
		empty = false
		i = j + 1
	}
	if empty {
		return `[^\x00-\x{10FFFF}]`
	}
	b.WriteByte(']')
	return b.String()
}

func hexRune(c byte) string {
	const h = "0123456789abcdef"
	return `\x{` + string([]byte{h[c>>4], h[c&15]}) + `}`
}

// lit is the Go pattern of the literal byte c.
func lit(c byte) string {
	if wordByte(c) {
		return string(c)
	}
	return hexRune(c)
}

func wordByte(c byte) bool {
	return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
