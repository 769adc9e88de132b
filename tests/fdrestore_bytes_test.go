package tests

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Issue 20, item 1: prog's argv and the paths of sources are bytes.
// fdrestore restore hands the program its arguments byte for byte (0xff
// stays 0xff, not ef bf bd) and opens the path it was given, both in
// place and through the re-exec path (a non-blocking stdin), whose stage
// request crosses a JSON encoding. The in-place half needs lib/cli to
// pass arguments to kong grammars as bytes.
func TestFdrestoreArgvBytes(t *testing.T) {
	t.Parallel()
	const arg = "a\xffb\xfe\x80"
	nb, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	nonblocking := os.NewFile(uintptr(nb), "/dev/null")
	defer nonblocking.Close()
	for _, tc := range []struct {
		name  string
		stdin *os.File
		path  string
	}{
		{"in place", nil, "in place"},
		{"re-exec", nonblocking, "re-exec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "argv")
			file := filepath.Join(dir, "f"+arg)
			if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			r := runIn(t, Opts{StdinFile: tc.stdin}, "fdrestore", "restore", "-v", "-f", "3=file:"+file, "-f", "4=memfd:m", "--",
				"sh", "-c", `printf '%s' "$1" > "$2"; readlink /proc/self/fd/3 >> "$2"`, "sh", arg, out)
			if r.Code != 0 || !strings.Contains(r.Stderr, "placement path: "+tc.path) {
				t.Fatalf("restore = %s, stderr %q; want exit 0, the %s path", r.Status(), r.Stderr, tc.path)
			}
			got, err := os.ReadFile(out)
			want := []byte(arg + file + "\n")
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("the program got argument and fd 3 %q (%v); want %q byte for byte", got, err, want)
			}
		})
	}
}
