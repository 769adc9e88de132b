// Package execline splits text into words as execline's execlineb does
// (el_parse, execline 2.9), without running anything: rc reads oneshot up
// and down files with it (spec/rc.md §2), and its live database and
// conversion files are lines of such words.
//
// Block syntax is encoded as execlineb encodes it: a word inside k nested
// blocks is prefixed with k spaces, and a block ends with a word of k-1
// spaces (the terminator). Nothing is substituted: $VAR stays as written.
//
// It deliberately does not implement execline's commands (if, foreground,
// importas...): a lexed argv is executed as is.
package execline

import "errors"

// Errors of [Lex]; like execlineb, they carry no offset.
var (
	ErrSyntax         = errors.New("syntax error")
	ErrUnmatchedOpen  = errors.New("unmatched {")
	ErrUnmatchedClose = errors.New("unmatched }")
)

// lexer states (spec/rc.md §2).
const (
	stStart = iota
	stComment
	stOpen
	stClose
	stWord
	stEsc0
	stEsc1
	stQuote
	stEsc2
	stNum
)

// Lex splits b into words. Input ends at the end of b or at its first NUL
// byte. Every control byte but '\n' separates words; '#' starts a comment
// only where a word could start; '\' escapes; double quotes quote, with
// C-like escapes inside (\a..\r, decimal \DDD, octal \0OOO, hex \0xHH).
func Lex(b []byte) ([]string, error) {
	var (
		words []string
		cur   []byte
		depth int
		state = stStart
		// numeric escape: base, digits left, value so far
		base, left, val int
	)
	begin := func() {
		for range depth {
			cur = append(cur, ' ')
		}
	}
	end := func() {
		words = append(words, string(cur))
		cur = cur[:0]
	}
	i := 0
	for {
		c, eof := byte(0), true
		if i < len(b) && b[i] != 0 {
			c, eof = b[i], false
		}
		ws := !eof && c != '\n' && c <= ' '
		lf := !eof && c == '\n'
		switch state {
		case stStart:
			switch {
			case eof:
				return finish(words, depth)
			case ws, lf:
			case c == '#':
				state = stComment
			case c == '"':
				begin()
				state = stQuote
			case c == '\\':
				state = stEsc0
			case c == '{':
				begin()
				cur = append(cur, c)
				state = stOpen
			case c == '}':
				begin()
				cur = append(cur, c)
				state = stClose
			default:
				begin()
				cur = append(cur, c)
				state = stWord
			}
		case stComment:
			switch {
			case eof:
				return finish(words, depth)
			case lf:
				state = stStart
			}
		case stOpen:
			switch {
			case ws, lf:
				cur = cur[:0]
				depth++
				state = stStart
			case eof:
				return nil, ErrSyntax
			default:
				state = braceWord(c, &cur)
			}
		case stClose:
			switch {
			case ws, lf, eof:
				if depth == 0 {
					return nil, ErrUnmatchedClose
				}
				depth--
				cur = cur[:0]
				begin()
				end()
				if eof {
					return finish(words, depth)
				}
				state = stStart
			default:
				state = braceWord(c, &cur)
			}
		case stWord:
			switch {
			case ws, lf:
				end()
				state = stStart
			case eof:
				end()
				return finish(words, depth)
			case c == '"':
				state = stQuote
			case c == '\\':
				state = stEsc1
			default:
				cur = append(cur, c)
			}
		case stEsc0:
			switch {
			case lf:
				state = stStart
			case eof:
				return finish(words, depth)
			default:
				begin()
				cur = append(cur, c)
				state = stWord
			}
		case stEsc1:
			if eof {
				return nil, ErrSyntax
			}
			cur = append(cur, c)
			state = stWord
		case stQuote:
			switch {
			case eof:
				return nil, ErrSyntax
			case c == '"':
				state = stWord
			case c == '\\':
				state = stEsc2
			default:
				cur = append(cur, c)
			}
		case stEsc2:
			if eof {
				return nil, ErrSyntax
			}
			state = stQuote
			switch c {
			case '\n':
			case 'a', 'b', 't', 'n', 'v', 'f', 'r':
				cur = append(cur, "\a\b\t\n\v\f\r"[indexByte("abtnvfr", c)])
			case '1', '2', '3', '4', '5', '6', '7', '8', '9':
				base, left, val = 10, 2, int(c-'0')
				state = stNum
			case '0':
				i++
				if i >= len(b) || b[i] == 0 {
					return nil, ErrSyntax
				}
				switch b[i] {
				case '0', '1', '2', '3', '4', '5', '6', '7':
					base, left, val = 8, 2, int(b[i]-'0')
				case 'x':
					base, left, val = 16, 2, 0
				default:
					return nil, ErrSyntax
				}
				state = stNum
			default:
				cur = append(cur, c)
			}
		case stNum:
			if d, ok := digit(c, base); !eof && left > 0 && ok {
				val = val*base + d
				left--
				break
			}
			if val < 1 || val > 255 {
				return nil, ErrSyntax
			}
			cur = append(cur, byte(val))
			if eof {
				end()
				return finish(words, depth)
			}
			state = stQuote
			continue // the byte that ended the escape is read in QUOTE
		}
		if eof {
			return nil, ErrSyntax // not reached: every state handles eof
		}
		i++
	}
}

// braceWord is what follows a word-initial brace that is not a block
// delimiter: an ordinary word goes on ("{a"), a quote or a backslash as in
// START (the backslash re-adds the depth's spaces: execlineb's quirk).
func braceWord(c byte, cur *[]byte) int {
	switch c {
	case '"':
		return stQuote
	case '\\':
		return stEsc0
	}
	*cur = append(*cur, c)
	return stWord
}

// finish is the end of input outside a word.
func finish(words []string, depth int) ([]string, error) {
	if depth != 0 {
		return nil, ErrUnmatchedOpen
	}
	return words, nil
}

func indexByte(s string, c byte) int {
	for i := range len(s) {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// digit returns the value of c as a digit of base (8, 10 or 16).
func digit(c byte, base int) (int, bool) {
	var d int
	switch {
	case c >= '0' && c <= '9':
		d = int(c - '0')
	case c >= 'a' && c <= 'f':
		d = int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		d = int(c-'A') + 10
	default:
		return 0, false
	}
	return d, d < base
}

// Quote returns w as one double-quoted execline word that [Lex] reads back
// as w: '\' and '"' are escaped, and bytes outside 0x20-0x7E are written
// \0xHH. w must not hold a NUL byte (nothing can quote it).
func Quote(w string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(w)+2)
	b = append(b, '"')
	for i := range len(w) {
		c := w[i]
		switch {
		case c == '\\' || c == '"':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '\\', '0', 'x', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return string(append(b, '"'))
}

// Line returns words as one line of quoted words, without the newline.
func Line(words ...string) string {
	n := 0
	for _, w := range words {
		n += len(w) + 3
	}
	b := make([]byte, 0, n)
	for i, w := range words {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, Quote(w)...)
	}
	return string(b)
}
