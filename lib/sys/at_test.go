//go:build linux

package sys

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cstring reads the NUL-terminated path p back as a Go string.
func cstring(p *byte) string {
	var b []byte
	for q := p; *q != 0; q = (*byte)(unsafe.Add(unsafe.Pointer(q), 1)) {
		b = append(b, *q)
	}
	return string(b)
}

func TestCPathMake(t *testing.T) {
	var c CPath
	for _, tt := range []struct {
		name  string
		parts []string
		want  string
		isNil bool
	}{
		{name: "concatenated", parts: []string{"dir/", "supervise/status", ".new"}, want: "dir/supervise/status.new"},
		{name: "empty prefix", parts: []string{"", "down"}, want: "down"},
		{name: "longer than before", parts: []string{"", "a/very/long/path/that/grows/the/buffer/past/its/first/size"}, want: "a/very/long/path/that/grows/the/buffer/past/its/first/size"},
		{name: "NUL in a part", parts: []string{"dir/", "x\x00y"}, isNil: true},
	} {
		p := c.Make(tt.parts...)
		if tt.isNil {
			if p != nil {
				t.Errorf("%s: Make(%q) = %q; want nil", tt.name, tt.parts, cstring(p))
			}
			continue
		}
		if p == nil || cstring(p) != tt.want {
			t.Errorf("%s: Make(%q) = %v; want %q", tt.name, tt.parts, p, tt.want)
		}
	}
	if n := testing.AllocsPerRun(10, func() { c.Make("dir/", "supervise/death_tally") }); n != 0 {
		t.Errorf("Make into a large enough buffer: %v allocations; want 0", n)
	}
}

// TestAtWrappers drives each *at wrapper on real files, relative to the
// working directory and to a directory fd, and checks that errors are
// bare errnos and that a nil path is EINVAL.
func TestAtWrappers(t *testing.T) {
	dir := t.TempDir()
	var c, c2 CPath
	file := filepath.Join(dir, "file")
	fd, err := Openat(unix.AT_FDCWD, c.Make(file), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		t.Fatalf("Openat(%s, O_CREAT) = %v", file, err)
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("Openat fd flags = %#x, %v; want FD_CLOEXEC", flags, err)
	}
	if _, err := WriteOnce(fd, []byte("abc")); err != nil {
		t.Errorf("WriteOnce = %v", err)
	}
	unix.Close(fd)
	if err := os.Symlink("file", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	dfd, err := Openat(unix.AT_FDCWD, c.Make(dir), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := Fstatat(dfd, c.Make("link"), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("Fstatat(link, NOFOLLOW) = %#o, %v; want a symbolic link", st.Mode, err)
	}
	if err := Fstatat(dfd, c.Make("link"), &st, 0); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != 3 {
		t.Errorf("Fstatat(link) = %#o size %d, %v; want the 3-byte regular file", st.Mode, st.Size, err)
	}
	err = Fstatat(unix.AT_FDCWD, c.Make(filepath.Join(dir, "none")), &st, 0)
	if e, ok := err.(unix.Errno); !ok || e != unix.ENOENT {
		t.Errorf("Fstatat(none) = %#v; want the bare errno ENOENT", err)
	}
	if err := Renameat(dfd, c.Make("file"), unix.AT_FDCWD, c2.Make(filepath.Join(dir, "moved"))); err != nil {
		t.Errorf("Renameat(file, moved) = %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "moved")); err != nil {
		t.Errorf("after Renameat: %v", err)
	}
	if err := Unlinkat(dfd, c.Make("moved"), 0); err != nil {
		t.Errorf("Unlinkat(moved) = %v", err)
	}
	if err := Unlinkat(dfd, c.Make("moved"), 0); !errors.Is(err, unix.ENOENT) {
		t.Errorf("second Unlinkat(moved) = %v; want ENOENT", err)
	}
	if _, err := Openat(dfd, c.Make("moved"), unix.O_RDONLY, 0); err != unix.ENOENT {
		t.Errorf("Openat(moved) = %#v; want the bare errno ENOENT", err)
	}

	nul := c.Make("x\x00")
	if _, err := Openat(dfd, nul, unix.O_RDONLY, 0); err != unix.EINVAL {
		t.Errorf("Openat(nil) = %v; want EINVAL", err)
	}
	if err := Fstatat(dfd, nul, &st, 0); err != unix.EINVAL {
		t.Errorf("Fstatat(nil) = %v; want EINVAL", err)
	}
	if err := Renameat(dfd, nul, dfd, c2.Make("y")); err != unix.EINVAL {
		t.Errorf("Renameat(nil, y) = %v; want EINVAL", err)
	}
	if err := Unlinkat(dfd, nul, 0); err != unix.EINVAL {
		t.Errorf("Unlinkat(nil) = %v; want EINVAL", err)
	}

	// A missing file costs no allocation: no path copy, no wrapped error.
	missing := filepath.Join(dir, "none")
	if n := testing.AllocsPerRun(10, func() {
		_ = Fstatat(unix.AT_FDCWD, c.Make(missing), &st, unix.AT_SYMLINK_NOFOLLOW)
		_, _ = Openat(unix.AT_FDCWD, c.Make(missing), unix.O_RDONLY, 0)
	}); n != 0 {
		t.Errorf("Fstatat and Openat of a missing file: %v allocations; want 0", n)
	}
}

func TestWriteOnceClosedPipe(t *testing.T) {
	r, w := pipe(t)
	unix.Close(r)
	if _, err := WriteOnce(w, []byte("x")); err != unix.EPIPE {
		t.Errorf("WriteOnce to a pipe without reader = %#v; want the bare errno EPIPE", err)
	}
}

// TestDirReaderEach lists the same directory as Names, checks that every
// name is NUL-terminated in place (a path for Openat relative to the
// directory), and that a listing allocates nothing once the buffer exists.
func TestDirReaderEach(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a", "bb", ".hidden", "a-much-longer-name-than-the-others"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var r DirReader
	want, err := r.Names(dir)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.Clone(want)
	slices.Sort(want)
	var c CPath
	dfd, err := Openat(unix.AT_FDCWD, c.Make(dir), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	var got []string
	err = r.Each(dfd, func(name []byte) {
		got = append(got, string(name))
		if name[:len(name)+1][len(name)] != 0 {
			t.Errorf("Each: %q is not followed by a NUL", name)
		}
		var st unix.Stat_t
		if err := Fstatat(dfd, &name[0], &st, 0); err != nil || st.Size != int64(len(name)) {
			t.Errorf("Fstatat(dirfd, %q) = size %d, %v; want %d", name, st.Size, err, len(name))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Each() = %q; want %q", got, want)
	}
	count := 0
	if n := testing.AllocsPerRun(10, func() {
		if _, err := unix.Seek(dfd, 0, 0); err != nil {
			t.Fatal(err)
		}
		count = 0
		_ = r.Each(dfd, func([]byte) { count++ })
	}); n != 0 || count != len(want) {
		t.Errorf("a second listing: %d names, %v allocations; want %d, 0", count, n, len(want))
	}
	// A small buffer: many getdents calls, names cut nowhere.
	for i := range 40 {
		name := filepath.Join(dir, fmt.Sprintf("%0200d", i))
		if err := os.WriteFile(name, make([]byte, 200), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	small := DirReader{Size: 300}
	if _, err := unix.Seek(dfd, 0, 0); err != nil {
		t.Fatal(err)
	}
	count = 0
	err = small.Each(dfd, func(name []byte) {
		if len(name) == 200 {
			count++
		}
	})
	if err != nil || count != 40 || len(small.buf) != 300 {
		t.Errorf("Each with a 300-byte buffer: %d names of 200 bytes, buffer %d, %v; want 40, 300, nil", count, len(small.buf), err)
	}
	if err := r.Each(-1, func([]byte) {}); !errors.Is(err, unix.EBADF) {
		t.Errorf("Each(-1) = %v; want EBADF", err)
	}
}
