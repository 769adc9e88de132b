//go:build linux

package shm

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The port of podman's libpod/lock/shm/shm_lock_test.go (spec/shmlock.md
// "Acceptance tests" 1-13), on the segment TestMain creates.

func TestCreateNewSegmentRoundsUp(t *testing.T) { // 1
	s, _ := newSegment(t, 7)
	if got := s.MaxLocks(); got != 64 {
		t.Errorf("MaxLocks() = %d; want 64", got)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
}

func TestCreateZeroLocks(t *testing.T) { // 2
	_, err := Create(testName(), 0)
	wantErrno(t, "Create(0)", err, unix.EINVAL)
}

func TestDeallocateUnallocated(t *testing.T) { // 3
	s := openShared(t)
	wantErrno(t, "Deallocate(0)", s.Deallocate(0), unix.ENOENT)
}

func TestUnlockNeverLocked(t *testing.T) { // 4
	s := openShared(t)
	wantErrno(t, "Unlock(0)", s.Unlock(0), unix.EPERM)
}

func TestLockUnlockTwice(t *testing.T) { // 5
	s := openShared(t)
	if err := s.Lock(0); err != nil {
		t.Fatalf("Lock(0) = %v", err)
	}
	if err := s.Unlock(0); err != nil {
		t.Fatalf("Unlock(0) = %v", err)
	}
	wantErrno(t, "second Unlock(0)", s.Unlock(0), unix.EPERM)
}

func TestAllocateLockUnlockDeallocate(t *testing.T) { // 6
	s := openShared(t)
	i, err := s.Allocate()
	if err != nil {
		t.Fatalf("Allocate() = %v", err)
	}
	if err := s.Lock(i); err != nil {
		t.Fatalf("Lock(%d) = %v", i, err)
	}
	if err := s.Unlock(i); err != nil {
		t.Fatalf("Unlock(%d) = %v", i, err)
	}
	if err := s.Deallocate(i); err != nil {
		t.Fatalf("Deallocate(%d) = %v", i, err)
	}
}

func TestAllocateTwoDiffer(t *testing.T) { // 7
	s := openShared(t)
	a, err1 := s.Allocate()
	b, err2 := s.Allocate()
	if err1 != nil || err2 != nil || a == b {
		t.Fatalf("Allocate() twice = %d, %v; %d, %v; want two distinct", a, err1, b, err2)
	}
}

func fill(t *testing.T, s *Segment) {
	t.Helper()
	seen := map[uint32]bool{}
	for j := 0; j < numLocks; j++ {
		i, err := s.Allocate()
		if err != nil {
			t.Fatalf("Allocate() #%d = %v", j, err)
		}
		if seen[i] {
			t.Fatalf("Allocate() #%d = %d again", j, i)
		}
		seen[i] = true
	}
}

func TestAllocateAllDistinct(t *testing.T) { // 8
	fill(t, openShared(t))
}

func TestAllocateFull(t *testing.T) { // 9
	s := openShared(t)
	fill(t, s)
	_, err := s.Allocate()
	wantErrno(t, "Allocate() when full", err, unix.ENOSPC)
}

func TestAllocateReusesFreed(t *testing.T) { // 10
	s := openShared(t)
	fill(t, s)
	for j := uint32(0); j < numLocks; j++ {
		if err := s.Deallocate(j); err != nil {
			t.Fatalf("Deallocate(%d) = %v", j, err)
		}
		if i, err := s.Allocate(); err != nil || i != j {
			t.Fatalf("Allocate() after Deallocate(%d) = %d, %v; want %d", j, i, err, j)
		}
	}
}

func TestDeallocateAllReuses(t *testing.T) { // 11
	s := openShared(t)
	a, err := s.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeallocateAll(); err != nil {
		t.Fatalf("DeallocateAll() = %v", err)
	}
	b, err := s.Allocate()
	if err != nil || a != 0 || b != 0 {
		t.Fatalf("Allocate, DeallocateAll, Allocate = %d, %d, %v; want 0, 0", a, b, err)
	}
}

func TestLockExcludesGoroutines(t *testing.T) { // 12
	s := openShared(t)
	locked := make(chan time.Time)
	done := make(chan error, 1)
	go func() {
		if err := s.Lock(0); err != nil {
			done <- err
			close(locked)
			return
		}
		at := time.Now()
		locked <- at
		time.Sleep(time.Second) // the hold being measured, not synchronisation
		done <- s.Unlock(0)
	}()
	at, ok := <-locked
	if !ok {
		t.Fatalf("goroutine Lock(0) = %v", <-done)
	}
	if err := s.Lock(0); err != nil {
		t.Fatalf("Lock(0) = %v", err)
	}
	if d := time.Since(at); d < time.Second {
		t.Errorf("Lock(0) got the lock %v after the goroutine took it; want >= 1s", d)
	}
	if err := s.Unlock(0); err != nil {
		t.Errorf("Unlock(0) = %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("goroutine Unlock(0) = %v", err)
	}
}

func TestLockNestedUnlockOrder(t *testing.T) { // 13
	s := openShared(t)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s = %v", what, err)
		}
	}
	must("Lock(5)", s.Lock(5))
	must("Lock(6)", s.Lock(6))
	must("Unlock(6)", s.Unlock(6))
	runtime.Gosched()
	must("Unlock(5)", s.Unlock(5))

	must("Lock(5)", s.Lock(5))
	must("Lock(6)", s.Lock(6))
	must("Unlock(6)", s.Unlock(6))
	var wg sync.WaitGroup
	var err error
	wg.Go(func() { err = s.Unlock(5) })
	wg.Wait()
	must("Unlock(5) from another goroutine", err)
}
