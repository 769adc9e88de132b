package logapplet

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// readNames lists every entry but "." and "..", also past one getdents
// buffer, and again after a change (its slice and buffer are reused).
func TestReadNames(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 300 { // 300 entries of ~56 bytes: two 8 KiB getdents
		n := fmt.Sprintf("@4000000069c2a8a3%08x.s", i)
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, n)
	}
	d := &logdir{dir: dir}
	for round := range 2 {
		got, err := d.readNames()
		if err != nil {
			t.Fatal(err)
		}
		got = slices.Clone(got)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: readNames() = %d names %q...; want %d", round, len(got), got[:min(3, len(got))], len(want))
		}
		os.Remove(filepath.Join(dir, want[0]))
		want = want[1:]
	}
	if _, err := (&logdir{dir: filepath.Join(dir, "none")}).readNames(); err == nil {
		t.Errorf("readNames() of a missing directory succeeded")
	}
}
