//go:build linux

package envdir

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestValue(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		o    Options
		want string
	}{
		{"first line", "a b \t\r\nsecond\n", Options{}, "a b"},
		{"-n keeps blanks", "a b \t\r\nsecond\n", Options{NoChomp: true}, "a b \t\r"},
		{"-f one newline", "l1\nl2\n\n", Options{Verbatim: true}, "l1\nl2\n"},
		{"-fn", "l1\n", Options{Verbatim: true, NoChomp: true}, "l1\n"},
		{"no newline", "abc", Options{}, "abc"},
		{"NUL", "a\x00b", Options{}, "a\nb"},
		{"-c", "a\x00b", Options{NullIs: 'X'}, "aXb"},
		{"blank line", "\nx", Options{}, ""},
	} {
		if got := string(Value([]byte(tt.in), tt.o)); got != tt.want {
			t.Errorf("%s: Value(%q, %+v) = %q; want %q", tt.name, tt.in, tt.o, got, tt.want)
		}
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]string{"A": "1\n", "EMPTY": "", ".dot": "x", "X=Y": "x", "BIG": strings.Repeat("z", 5000)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mods, err := Read(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Modif{}
	for _, m := range mods {
		got[m.Name] = m
	}
	if len(got) != 3 || got["A"].Value != "1" || !got["EMPTY"].Unset || len(got["BIG"].Value) != maxClamped {
		t.Errorf("Read = %+v; want A=1, EMPTY unset, BIG clamped to %d bytes", mods, maxClamped)
	}
	mods, _ = Read(dir, Options{NoClamp: true})
	for _, m := range mods {
		if m.Name == "BIG" && len(m.Value) != 5000 {
			t.Errorf("Read -L: BIG has %d bytes; want 5000", len(m.Value))
		}
	}
	if _, err := Read(filepath.Join(dir, "missing"), Options{}); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Read(missing) = %v; want ENOENT", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "SUB"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir, Options{}); !errors.Is(err, unix.EISDIR) {
		t.Errorf("Read(dir with a subdirectory) = %v; want EISDIR", err)
	}
}

// TestMerge checks skalibs' order: removal by moving the last entry into
// the hole, then appending (checked against s6-envdir 2.11 by hand and by
// tests/envdir_test.go).
func TestMerge(t *testing.T) {
	env := []string{"A=1", "B=2", "C=3", "D=4", "E=5"}
	got := Merge(env, []Modif{{Name: "B", Unset: true}, {Name: "Y", Value: "y"}, {Name: "X", Value: "x"}})
	if want := []string{"A=1", "E=5", "C=3", "D=4", "Y=y", "X=x"}; !slices.Equal(got, want) {
		t.Errorf("Merge = %q; want %q", got, want)
	}
	got = Merge(env, []Modif{{Name: "Y", Value: "y"}, {Name: "X", Unset: true}, {Name: "C", Value: "new"}})
	if want := []string{"A=1", "B=2", "Y=y", "D=4", "E=5", "C=new"}; !slices.Equal(got, want) {
		t.Errorf("Merge = %q; want %q", got, want)
	}
	if env[1] != "B=2" {
		t.Errorf("Merge changed its input: %q", env)
	}
}

func FuzzValue(f *testing.F) {
	f.Add([]byte("a b \t\r\nsecond\n"), byte(0), false, false)
	f.Add([]byte("\x00\n"), byte('X'), true, true)
	f.Fuzz(func(t *testing.T, b []byte, null byte, verbatim, nochomp bool) {
		if len(b) == 0 {
			return
		}
		v := Value(b, Options{Verbatim: verbatim, NoChomp: nochomp, NullIs: null})
		if len(v) > len(b) {
			t.Fatalf("Value(%q) = %q: longer than the file", b, v)
		}
		if !verbatim && slices.Contains(b, '\n') && null != '\n' && null != 0 && slices.Contains(v, '\n') {
			t.Fatalf("Value(%q) = %q: a newline past the first line", b, v)
		}
		if slices.Contains(v, 0) {
			t.Fatalf("Value(%q) = %q: a NUL left", b, v)
		}
	})
}
