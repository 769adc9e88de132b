//go:build linux

package shm

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func needBusPatch(t *testing.T) {
	t.Helper()
	if !busPatch {
		t.Skip("no SIGBUS handler on this architecture (amd64 only): a truncated segment still faults the fast paths")
	}
}

// TestTruncatedUnderHolder (issue 20 item 6): the segment file is truncated
// while this process holds a lock taken on the fast path; Unlock, the fast
// paths and every other method give EBADF instead of a fatal SIGBUS, and
// Close succeeds. Without the handler the first Unlock kills the test
// binary.
func TestTruncatedUnderHolder(t *testing.T) {
	needBusPatch(t)
	for _, size := range []int64{4096, 0} {
		s, _ := newSegment(t, 256)
		if _, err := s.Allocate(); err != nil {
			t.Fatal(err)
		}
		// the second Lock of 100 is a fast one: its node is linked
		for range 2 {
			if err := s.Lock(100); err != nil {
				t.Fatal(err)
			}
			if err := s.Unlock(100); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Lock(100); err != nil {
			t.Fatal(err)
		}
		if s.m.faulted() {
			t.Fatal("negative control: faulted before the truncation")
		}
		if err := os.Truncate(s.m.path, size); err != nil {
			t.Fatal(err)
		}
		wantErrno(t, "Unlock(100) of a truncated segment", s.Unlock(100), unix.EBADF)
		wantErrno(t, "Lock(100) of a truncated segment", s.Lock(100), unix.EBADF)
		_, err := s.TryLock(7)
		wantErrno(t, "TryLock(7) of a truncated segment", err, unix.EBADF)
		wantErrno(t, "ForceUnlock(100) of a truncated segment", s.ForceUnlock(100), unix.EBADF)
		_, err = s.Allocate()
		wantErrno(t, "Allocate() of a truncated segment", err, unix.EBADF)
		wantErrno(t, "Deallocate(0) of a truncated segment", s.Deallocate(0), unix.EBADF)
		_, err = s.FreeLocks()
		wantErrno(t, "FreeLocks() of a truncated segment", err, unix.EBADF)
		_, err = s.TakenLocks()
		wantErrno(t, "TakenLocks() of a truncated segment", err, unix.EBADF)
		_, err = s.Status()
		wantErrno(t, "Status() of a truncated segment", err, unix.EBADF)
		if err := s.Close(); err != nil {
			t.Errorf("truncated to %d: Close() = %v", size, err)
		}
	}
}

// TestTruncatedUnderWaiter: a waiter asleep in LockTimeout when the file is
// truncated wakes at its deadline to EBADF, not a crash.
func TestTruncatedUnderWaiter(t *testing.T) {
	needBusPatch(t)
	s, _ := newSegment(t, 64)
	if err := s.Lock(5); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- s.LockTimeout(5, 300*time.Millisecond) }()
	waitUntil(t, "a waiter on lock 5", func() bool {
		st, err := s.Owner(5)
		return err == nil && st.Waiters > 0
	})
	if err := os.Truncate(s.m.path, 4096); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "LockTimeout(5) when truncated while waiting", <-got, unix.EBADF)
	wantErrno(t, "Unlock(5) of a truncated segment", s.Unlock(5), unix.EBADF)
}
