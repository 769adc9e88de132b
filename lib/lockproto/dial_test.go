package lockproto

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listen binds a unix stream listener at name with the given backlog.
func listen(t *testing.T, name string, backlog int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	return fd
}

func TestDialUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	abstract := fmt.Sprintf("@gotools-lockproto-dial-%d", os.Getpid())
	for _, name := range []string{path, abstract} {
		lfd := listen(t, name, 4)
		f, err := DialUnix(name, time.Second)
		if err != nil {
			t.Fatalf("DialUnix(%q) = %v; want a connection", name, err)
		}
		nfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(nfd, []byte("x")); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		// The file is non-blocking and pollable: a deadline works.
		if err := f.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Errorf("SetReadDeadline on DialUnix(%q) = %v; want a pollable file", name, err)
		}
		if n, err := f.Read(b); n != 1 || err != nil || b[0] != 'x' {
			t.Errorf("Read from DialUnix(%q) = %d %v %q; want 1 nil \"x\"", name, n, err, b)
		}
		f.Close()
		unix.Close(nfd)
	}
	if _, err := DialUnix(filepath.Join(t.TempDir(), "none"), time.Second); !errors.Is(err, unix.ENOENT) {
		t.Errorf("DialUnix(missing) = %v; want ENOENT", err)
	}
}

// TestDialUnixFullBacklog checks that a listener that never accepts makes
// DialUnix give up with ETIMEDOUT after its timeout, not hang.
func TestDialUnixFullBacklog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	listen(t, path, 0)
	var held []*os.File
	defer func() {
		for _, f := range held {
			f.Close()
		}
	}()
	start := time.Now()
	for i := 0; i < 64; i++ {
		f, err := DialUnix(path, 100*time.Millisecond)
		if err == nil {
			held = append(held, f)
			continue
		}
		if !errors.Is(err, unix.ETIMEDOUT) {
			t.Fatalf("DialUnix to a full backlog = %v; want ETIMEDOUT", err)
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("DialUnix gave up after %v; want at least its 100 ms timeout", d)
		}
		return
	}
	t.Fatalf("64 connections to a listener with backlog 0 that never accepts all succeeded")
}
