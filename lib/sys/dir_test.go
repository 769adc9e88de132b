package sys

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestDirReaderNames(t *testing.T) {
	dir := t.TempDir()
	var want []string
	// More entries than one 8 KiB getdents call returns.
	for i := range 400 {
		name := fmt.Sprintf("entry-with-a-longish-name-%04d", i)
		want = append(want, name)
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var r DirReader
	for round := range 2 { // the second call reuses the buffer and slice
		got, err := r.Names(dir)
		if err != nil {
			t.Fatal(err)
		}
		got = slices.Clone(got)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: Names() = %d names; want %d", round, len(got), len(want))
		}
	}
	if _, err := r.Names(filepath.Join(dir, "none")); err == nil {
		t.Errorf("Names() of a missing directory succeeded")
	}
}
