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

// Issue 14, item 9: a bad -f says what is wrong: the usage line, then one
// line naming the bad word and why, exit 100. A flag word typed after a
// path is not silently made part of the path.
func TestFdrestoreBadFlagSaysWhy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	usage := "fdrestore: usage: fdrestore restore [OPTIONS] -f [N=]SOURCE... -- PROG... | restore [OPTIONS] IMAGE [-- PROG...]\n"
	for _, tc := range []struct {
		flag, why string
	}{
		{"3=file:" + dir + "/x:w", `fdrestore: fatal: invalid source for fd 3: file:` + dir + `/x:w: unknown file flag "w" (flags: rdonly wronly rdwr path append nonblock creat excl trunc directory nofollow noatime sync dsync direct mode=OCTAL; end the path with ':' if ":w" is part of it)` + "\n"},
		{"abc=null", `fdrestore: fatal: -f abc=null: "abc" is not an fd number: N=SOURCE needs a decimal N` + "\n"},
	} {
		r := run(t, "fdrestore", "restore", "-f", tc.flag, "--", "true")
		if r.Code != 100 || r.Stderr != usage+tc.why {
			t.Errorf("restore -f %s = %s, stderr %q; want exit 100, %q", tc.flag, r.Status(), r.Stderr, usage+tc.why)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "x:w")); err == nil {
		t.Errorf("restore -f 3=file:%s/x:w created %s/x:w", dir, dir)
	}
}
