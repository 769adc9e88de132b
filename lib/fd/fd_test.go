//go:build linux

package fd

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSetCloexec(t *testing.T) {
	// An fd without FD_CLOEXEC, as a parent would pass one down.
	fds := make([]int, 2)
	if err := unix.Pipe2(fds, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if err := SetCloexec(fds[1]); err != nil {
		t.Fatalf("SetCloexec(%d) = %v", fds[1], err)
	}
	fl, err := unix.FcntlInt(uintptr(fds[1]), unix.F_GETFD, 0)
	if err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("F_GETFD after SetCloexec = %#x, %v; want FD_CLOEXEC", fl, err)
	}
	if fl, _ := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC != 0 {
		t.Errorf("SetCloexec touched another fd")
	}
}

func TestSetCloexecClosedFD(t *testing.T) {
	if err := SetCloexec(1000); !errors.Is(err, unix.EBADF) {
		t.Errorf("SetCloexec(1000) = %v; want EBADF", err)
	}
}

func TestNotifyWritesOneNewlineAndCloses(t *testing.T) {
	fds := make([]int, 2)
	if err := unix.Pipe2(fds, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r := os.NewFile(uintptr(fds[0]), "r")
	defer r.Close()
	if err := Notify(fds[1]); err != nil {
		t.Fatalf("Notify(%d) = %v", fds[1], err)
	}
	buf := make([]byte, 16)
	n, _ := r.Read(buf)
	if string(buf[:n]) != "\n" {
		t.Errorf("read %q; want %q", buf[:n], "\n")
	}
	// The write end is closed: the reader sees EOF.
	if n, err := r.Read(buf); n != 0 || err == nil {
		t.Errorf("second read = %d, %v; want EOF", n, err)
	}
}

func TestNotifyClosedFD(t *testing.T) {
	err := Notify(1001)
	if !errors.Is(err, unix.EBADF) {
		t.Fatalf("Notify(1001) = %v; want EBADF", err)
	}
	if strings.Contains(err.Error(), "write:") {
		t.Errorf("Notify error %q repeats the syscall name", err)
	}
}
