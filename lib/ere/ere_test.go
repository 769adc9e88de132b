package ere

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// corpus reads testdata: the patterns, the lines, and what real s6-log
// (glibc regcomp/regexec, C locale) answered for each pattern: "reject", or
// one 0/1 per line.
func corpus(t testing.TB) (pats, lines, want [][]byte) {
	t.Helper()
	read := func(name string) [][]byte {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	}
	pats, lines, want = read("patterns"), read("lines"), read("expected")
	if len(pats) != len(want) {
		t.Fatalf("%d patterns, %d expectations", len(pats), len(want))
	}
	return pats, lines, want
}

// TestCorpusAgainstGlibc checks every recorded answer of real s6-log: a
// pattern glibc rejects is a SyntaxError; one it accepts either matches the
// same lines or is refused as unsupported (never matched differently).
func TestCorpusAgainstGlibc(t *testing.T) {
	pats, lines, want := corpus(t)
	unsupported := 0
	for i, p := range pats {
		re, err := Compile(string(p))
		if string(want[i]) == "reject" {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("Compile(%q) = %v; want a SyntaxError (glibc rejects it)", p, err)
			}
			continue
		}
		if err != nil {
			var ue *UnsupportedError
			if !errors.As(err, &ue) {
				t.Errorf("Compile(%q) = %v; glibc accepts it", p, err)
			}
			unsupported++
			continue
		}
		for j, l := range lines {
			got := re.Match(l)
			if got != (want[i][j] == '1') {
				g, _ := Translate(string(p))
				t.Errorf("Compile(%q) (Go %q).Match(%q) = %v; glibc says %c", p, g, l, got, want[i][j])
			}
		}
	}
	if unsupported > 12 {
		t.Errorf("%d patterns refused as unsupported; the corpus expects about 9", unsupported)
	}
}

func TestUnsupported(t *testing.T) {
	for _, p := range []string{`(a)\1`, `a{1001}`, `a{2,1001}`, `\<[a-z]`, `\<a*`, `\>`, `a*\>`, `(a)\>`} {
		var ue *UnsupportedError
		if _, err := Compile(p); !errors.As(err, &ue) {
			t.Errorf("Compile(%q) = %v; want UnsupportedError", p, err)
		}
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under -race")
	}
	re, err := Compile(`^[a-z]+ is`)
	if err != nil {
		t.Fatal(err)
	}
	ascii, latin := []byte("disk is full"), []byte("caf\xe9 is open")
	re.Match(latin)
	if n := testing.AllocsPerRun(100, func() { re.Match(ascii); re.Match(latin) }); n != 0 {
		t.Errorf("Match allocates %v times per run; want 0", n)
	}
}

func FuzzTranslate(f *testing.F) {
	pats, _, _ := corpus(f)
	for _, p := range pats {
		f.Add(string(p))
	}
	f.Fuzz(func(t *testing.T, p string) {
		re, err := Compile(p)
		if err != nil {
			var se *SyntaxError
			var ue *UnsupportedError
			if !errors.As(err, &se) && !errors.As(err, &ue) {
				t.Fatalf("Compile(%q) = %T %v", p, err, err)
			}
			return
		}
		re.Match([]byte(p))
		re.Match([]byte("caf\xe9 x"))
	})
}
