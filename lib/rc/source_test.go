package rc

import (
	"slices"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	r := &Reader{}
	got := r.parseList([]byte("a\n  b\n\t# comment\n\n#x\nc\r\na\nlast"), "f")
	want := []string{"a", "b", "c\r", "last"}
	if !slices.Equal(got, want) {
		t.Errorf("parseList = %q; want %q", got, want)
	}
}

// FuzzParseList checks the list-file rules on any input: no empty name,
// none starting with a blank or #, none holding a newline, no duplicate.
func FuzzParseList(f *testing.F) {
	f.Add([]byte("a\n  b\n# c\n\nd\r\n"))
	f.Add([]byte("x\nx\n\t#y"))
	f.Fuzz(func(t *testing.T, b []byte) {
		names := (&Reader{}).parseList(b, "f")
		seen := map[string]bool{}
		for _, n := range names {
			if n == "" || n[0] == ' ' || n[0] == '\t' || n[0] == '#' || strings.Contains(n, "\n") || seen[n] {
				t.Fatalf("parseList(%q) gave %q", b, names)
			}
			seen[n] = true
		}
	})
}
