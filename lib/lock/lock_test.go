//go:build linux

package lock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestExclusiveConflicts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	a, err := OpenExclusive(p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenExclusive(p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if held, err := Held(p); held || err != nil {
		t.Fatalf("Held(%s) before locking = %v, %v; want false, nil", p, held, err)
	}
	if err := TryLock(a, Exclusive); err != nil {
		t.Fatalf("TryLock(a) = %v", err)
	}
	// Two OFDs of one process conflict: the lock is the open file's.
	if err := TryLock(b, Exclusive); !errors.Is(err, unix.EBUSY) {
		t.Errorf("TryLock(b) while a holds it = %v; want EBUSY", err)
	}
	if held, err := Held(p); !held || err != nil {
		t.Errorf("Held(%s) = %v, %v; want true, nil", p, held, err)
	}
	got := make(chan error, 1)
	go func() { got <- Lock(b, Exclusive) }()
	select {
	case err := <-got:
		t.Fatalf("Lock(b) returned %v while a holds the lock", err)
	case <-time.After(50 * time.Millisecond): // a lower bound: it did wait
	}
	a.Close() // closing the fd releases the lock
	if err := <-got; err != nil {
		t.Errorf("Lock(b) after a closed = %v", err)
	}
}

func TestSharedLocks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "lock")
	if _, err := OpenShared(p); err == nil {
		t.Fatalf("OpenShared in a missing directory succeeded")
	}
	p = filepath.Join(t.TempDir(), "lock")
	a, err := OpenShared(p) // creates it
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := OpenShared(p)
	defer b.Close()
	if err := TryLock(a, Shared); err != nil {
		t.Fatal(err)
	}
	if err := TryLock(b, Shared); err != nil {
		t.Errorf("second shared lock = %v; want nil", err)
	}
	w, _ := OpenExclusive(p)
	defer w.Close()
	if err := TryLock(w, Exclusive); !errors.Is(err, ErrBusy) {
		t.Errorf("exclusive over shared = %v; want EBUSY", err)
	}
	Unlock(a)
	Unlock(b)
	if err := TryLock(w, Exclusive); err != nil {
		t.Errorf("exclusive after unlocks = %v", err)
	}
}

func TestHeldMissingFile(t *testing.T) {
	if held, err := Held(filepath.Join(t.TempDir(), "nosuch")); held || err != nil {
		t.Errorf("Held(missing) = %v, %v; want false, nil", held, err)
	}
	if _, err := Held(filepath.Join(t.TempDir(), "f", "x")); err != nil {
		t.Errorf("Held(missing dir) error = %v; want nil", err)
	}
}

// TestConflictsWithPOSIXLocks shows that an OFD lock and a POSIX fcntl
// lock taken by another process (as s6-setlock and s6-supervise take them)
// see each other.
func TestConflictsWithPOSIXLocks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	f, err := OpenExclusive(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := TryLock(f, Exclusive); err != nil {
		t.Fatal(err)
	}
	// A POSIX lock attempt from a child process must fail.
	if os.Getenv("GOTOOLS_LOCK_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPOSIXChild$")
		cmd.Env = append(os.Environ(), "GOTOOLS_LOCK_CHILD="+p)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("child: %v\n%s", err, out)
		}
	}
}

// TestPOSIXChild runs in a child process of TestConflictsWithPOSIXLocks.
func TestPOSIXChild(t *testing.T) {
	p := os.Getenv("GOTOOLS_LOCK_CHILD")
	if p == "" {
		t.Skip("helper for TestConflictsWithPOSIXLocks")
	}
	fd, err := unix.Open(p, unix.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	lk := &unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_SETLK, lk); err == nil {
		t.Fatalf("POSIX F_SETLK succeeded over an OFD lock held by the parent")
	}
	lk = &unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_GETLK, lk); err != nil || lk.Type == unix.F_UNLCK {
		t.Fatalf("POSIX F_GETLK = %v, type %d; want the parent's lock", err, lk.Type)
	}
}

// TestTryLockFD: on raw fds, a second open file is refused with ErrBusy
// while the first holds the lock; the holder locking again succeeds (how
// lockd checks that a helper locked its file); a shared lock is shared.
func TestTryLockFD(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	open := func() int {
		fd, err := unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	a, b := open(), open()
	if err := TryLockFD(a, Exclusive); err != nil {
		t.Fatalf("TryLockFD(a) = %v", err)
	}
	if err := TryLockFD(b, Shared); !errors.Is(err, ErrBusy) {
		t.Errorf("TryLockFD(b) while a holds = %v; want ErrBusy", err)
	}
	if err := TryLockFD(a, Exclusive); err != nil {
		t.Errorf("TryLockFD(a) again by the holder = %v; want nil", err)
	}
	if err := TryLockFD(a, Shared); err != nil {
		t.Fatalf("TryLockFD(a, Shared) = %v", err)
	}
	if err := TryLockFD(b, Shared); err != nil {
		t.Errorf("TryLockFD(b, Shared) along a shared holder = %v; want nil", err)
	}
	if err := TryLockFD(-1, Shared); !errors.Is(err, unix.EBADF) {
		t.Errorf("TryLockFD(-1) = %v; want EBADF", err)
	}
}
