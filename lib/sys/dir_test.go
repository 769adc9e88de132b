package sys

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
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

// dirent builds one struct linux_dirent64 record for name, padded to 8.
func dirent(name string) []byte {
	reclen := (direntName + len(name) + 1 + 7) &^ 7
	b := make([]byte, reclen)
	binary.NativeEndian.PutUint64(b, 1)
	binary.NativeEndian.PutUint16(b[16:], uint16(reclen))
	b[18] = unix.DT_FIFO
	copy(b[direntName:], name)
	return b
}

// FuzzEachDirent: whatever getdents' buffer holds, eachDirent hands out
// only names inside it, each followed by a NUL (the C string the *at
// calls get), never "." or "..", and a well-formed buffer's names all.
func FuzzEachDirent(f *testing.F) {
	var good []byte
	for _, n := range []string{".", "..", "a", "ftrig1:@400000006000000000000000:ABCdef"} {
		good = append(good, dirent(n)...)
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(dirent("x")[:24], 0xff))
	f.Fuzz(func(t *testing.T, b []byte) {
		var names []string
		eachDirent(b, func(name []byte) {
			if name[:len(name)+1][len(name)] != 0 || bytes.IndexByte(name, 0) >= 0 {
				t.Fatalf("name %q is not a C string in the buffer", name)
			}
			if s := string(name); s == "." || s == ".." {
				t.Fatalf("eachDirent handed out %q", s)
			}
			names = append(names, string(name))
		})
		// Each record takes more than direntName bytes.
		if len(names) > len(b)/(direntName+1) {
			t.Fatalf("eachDirent found %d names in %d bytes", len(names), len(b))
		}
	})
}

func TestEachDirentWellFormed(t *testing.T) {
	var b []byte
	for _, n := range []string{".", "..", "a", "bb", "ftrig1:@400000006000000000000000:ABCdef"} {
		b = append(b, dirent(n)...)
	}
	var got []string
	eachDirent(b, func(name []byte) { got = append(got, string(name)) })
	_, _, want := unix.ParseDirent(b, -1, nil)
	if !slices.Equal(got, want) {
		t.Errorf("eachDirent = %q; want %q (unix.ParseDirent)", got, want)
	}
}
