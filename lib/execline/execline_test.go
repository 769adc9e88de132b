package execline

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLex(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
		err  error
	}{
		{"empty", "", nil, nil},
		{"comment only", "# hello\n  # again", nil, nil},
		{"words", "a b\tc\nd", []string{"a", "b", "c", "d"}, nil},
		{"control bytes separate", "a\x01b\x7fc", []string{"a", "b\x7fc"}, nil},
		{"block", "if { a b } c", []string{"if", " a", " b", "", "c"}, nil},
		{"nested", "if { if { a } b } c", []string{"if", " if", "  a", " ", " b", "", "c"}, nil},
		{"escapes", `"x\0x41y" "\101" "\0101"`, []string{"xAy", "e", "A"}, nil},
		{"hash in word", "a#b # c", []string{"a#b"}, nil},
		{"nul ends input", "a b\x00c d", []string{"a", "b"}, nil},
		{"line continuation", "a \\\nb", []string{"a", "b"}, nil},
		{"escaped newline in word", "a\\\nb", []string{"a\nb"}, nil},
		{"quoted newline vanishes", "\"a\\\nb\"", []string{"ab"}, nil},
		{"letters", `"\a\b\t\n\v\f\r\q\"\\"`, []string{"\a\b\t\n\v\f\r" + `q"\`}, nil},
		{"hex digits any case", `"\0x4A\0x4"`, []string{"J\x04"}, nil},
		{"hex X", `"\0X41"`, nil, ErrSyntax},
		{"escape at end", `"\101`, []string{"e"}, nil},
		{"quote glued", `a"b c"d`, []string{"ab cd"}, nil},
		{"brace word", "{a }b", []string{"{a", "}b"}, nil},
		{"escaped brace", "\\{ x", []string{"{", "x"}, nil},
		{"brace escape glue", "{\\\na", []string{"{a"}, nil},
		{"brace escape end", "a {\\", []string{"a"}, nil},
		{"zero", `"\00"`, nil, ErrSyntax},
		{"256", `"\256"`, nil, ErrSyntax},
		{"0400", `"\0400"`, nil, ErrSyntax},
		{"bad after 0", `"\09"`, nil, ErrSyntax},
		{"open quote", `"abc`, nil, ErrSyntax},
		{"escape eof in word", `a\`, nil, ErrSyntax},
		{"open brace eof", "{", nil, ErrSyntax},
		{"unmatched open", "a { b", nil, ErrUnmatchedOpen},
		{"unmatched close", "a } b", nil, ErrUnmatchedClose},
		{"close at eof", "{ a }", []string{" a", ""}, nil},
		{"decimal stops at non digit", `"\65x"`, []string{"Ax"}, nil},
		{"decimal three digits", `"\1001"`, []string{"d1"}, nil},
		{"octal too big", `"\0651"`, nil, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Lex([]byte(tt.in))
			if !errors.Is(err, tt.err) || !slices.Equal(got, tt.want) {
				t.Errorf("Lex(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestQuoteRoundTrip(t *testing.T) {
	words := []string{"", " ", "a b", `"\`, "\x01\x7f\xff\n", "{", "}", "#x", "é"}
	got, err := Lex([]byte(Line(words...)))
	if err != nil || !slices.Equal(got, words) {
		t.Fatalf("Lex(Line(%q)) = %q, %v", words, got, err)
	}
}

// FuzzLex checks that Lex never panics, and that whatever it returns
// survives Quote: the live database stores argvs that way.
func FuzzLex(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/seeds/*")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("if { a b } c"))
	f.Fuzz(func(t *testing.T, b []byte) {
		words, err := Lex(b)
		if err != nil {
			return
		}
		for _, w := range words {
			if strings.IndexByte(w, 0) >= 0 {
				t.Fatalf("Lex(%q) returned a word with NUL: %q", b, w)
			}
		}
		back, err := Lex([]byte(Line(words...)))
		if err != nil || !slices.Equal(back, words) {
			t.Fatalf("Lex(Line(%q)) = %q, %v", words, back, err)
		}
	})
}
