//go:build linux

package shm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestOpenChecks(t *testing.T) { // 14
	_, err := Open(testName(), 64)
	wantErrno(t, "Open(missing)", err, unix.ENOENT)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v; want fs.ErrNotExist", err)
	}
	s, name := newSegment(t, 100)
	o, err := Open(name, 100)
	if err != nil {
		t.Fatalf("Open(%q, 100) = %v", name, err)
	}
	defer o.Close()
	if s.MaxLocks() != 128 || o.MaxLocks() != 128 {
		t.Errorf("MaxLocks() = %d (creator), %d (opener); want 128", s.MaxLocks(), o.MaxLocks())
	}
	_, err = Open(name, 129)
	wantErrno(t, "Open(129)", err, unix.ERANGE)
	_, err = Open(name, 0)
	wantErrno(t, "Open(0)", err, unix.EINVAL)
	if err := o.AllocateGiven(7); err != nil {
		t.Fatalf("AllocateGiven(7) = %v", err)
	}
	wantErrno(t, "AllocateGiven(7) again", s.AllocateGiven(7), unix.EEXIST)
	for _, f := range []struct {
		name string
		err  error
	}{
		{"AllocateGiven", o.AllocateGiven(256)},
		{"Deallocate", o.Deallocate(256)},
		{"Lock", o.Lock(256)},
		{"Unlock", o.Unlock(256)},
		{"ForceUnlock", o.ForceUnlock(256)},
	} {
		wantErrno(t, f.name+"(256)", f.err, unix.EINVAL)
	}
	for _, bad := range []string{"", "/", "a/b", "/a/b", ".", "..", string(make([]byte, 256))} {
		_, err := Create(bad, 64)
		wantErrno(t, "Create("+bad+")", err, unix.EINVAL)
	}
	var e *Error
	if errors.As(o.Unlock(3), &e); e == nil || e.Error() != "unlock "+name+"[3]: operation not permitted" {
		t.Errorf("Unlock(3) error = %v", e)
	}
}

func TestOpenMissingDirHint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	_, err := Create("x", 64, WithDir(dir))
	wantErrno(t, "Create in a missing dir", err, unix.ENOENT)
	if want := "directory " + dir; !contains(err.Error(), want) {
		t.Errorf("Create in a missing dir = %q; want a hint naming %s", err, dir)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

func TestCloseRules(t *testing.T) { // 15
	s, name := newSegment(t, 64)
	if err := s.Lock(1); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "Close() while holding", s.Close(), unix.EBUSY)
	if err := s.Unlock(1); err != nil {
		t.Fatalf("Unlock(1) after a refused Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	wantErrno(t, "second Close()", s.Close(), unix.EINVAL)
	_, err := s.Allocate()
	wantErrno(t, "Allocate() after Close", err, unix.EINVAL)
	wantErrno(t, "Lock(0) after Close", s.Lock(0), unix.EINVAL)
	_, err = s.TryLock(0)
	wantErrno(t, "TryLock(0) after Close", err, unix.EINVAL)
	_, err = s.Status()
	wantErrno(t, "Status() after Close", err, unix.EINVAL)
	wantErrno(t, "Grow after Close", s.Grow(128), unix.EINVAL)
	if s.MaxLocks() != 0 {
		t.Errorf("MaxLocks() after Close = %d; want 0", s.MaxLocks())
	}
	if err := Unlink(name); err != nil {
		t.Fatalf("Unlink(%q) = %v", name, err)
	}
	wantErrno(t, "Unlink(missing)", Unlink(name), unix.ENOENT)

	// A shared mapping: the first Close of two handles succeeds even while
	// holding; the last refuses.
	a, name2 := newSegment(t, 64)
	b, err := Open(name2, 64)
	if err != nil {
		t.Fatal(err)
	}
	if a.m != b.m {
		t.Errorf("two handles on one file have two mappings")
	}
	if err := b.Lock(2); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close() of one of two handles while holding = %v", err)
	}
	wantErrno(t, "last Close() while holding", a.Close(), unix.EBUSY)
	if err := a.Unlock(2); err != nil {
		t.Fatalf("Unlock(2) = %v", err)
	}
}

// fileBytes returns the whole segment file.
func fileBytes(t *testing.T, s *Segment) []byte {
	t.Helper()
	b, err := os.ReadFile(s.m.path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestModel(t *testing.T) { // 16
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	s, _ := newSegment(t, 64, WithMaxLocks(1024))
	count := uint32(64)
	alloc := map[uint32]bool{}
	locked := map[uint32]bool{}
	defer func() {
		for i := range locked {
			s.Unlock(i)
		}
	}()
	for step := 0; step < 1000; step++ {
		i := r.Uint32N(count + 8)
		var what string
		var err error
		var wantErr unix.Errno
		switch op := r.IntN(20); {
		case op < 6:
			what = "Allocate()"
			var got uint32
			got, err = s.Allocate()
			want := uint32(0)
			for alloc[want] {
				want++
			}
			if want >= count {
				wantErr = unix.ENOSPC
			} else if err == nil && got != want {
				t.Fatalf("step %d: Allocate() = %d; want %d", step, got, want)
			} else {
				alloc[want] = true
			}
		case op < 10:
			what = "Deallocate"
			err = s.Deallocate(i)
			switch {
			case i >= count:
				wantErr = unix.EINVAL
			case !alloc[i]:
				wantErr = unix.ENOENT
			}
			delete(alloc, i)
		case op < 14:
			what = "TryLock"
			var ok bool
			ok, err = s.TryLock(i)
			if i >= count {
				wantErr = unix.EINVAL
			} else if ok == locked[i] {
				t.Fatalf("step %d: TryLock(%d) = %v with locked %v", step, i, ok, locked[i])
			} else {
				locked[i] = true
			}
		case op < 19:
			what = "Unlock"
			err = s.Unlock(i)
			switch {
			case i >= count:
				wantErr = unix.EINVAL
			case !locked[i]:
				wantErr = unix.EPERM
			}
			delete(locked, i)
		default:
			n := count + uint32(r.IntN(3))*32
			what = "Grow"
			err = s.Grow(n)
			if n > 1024 {
				wantErr = unix.EFBIG
			} else {
				count = uint32(roundup(uint64(n), 64))
			}
		}
		if (wantErr == 0) != (err == nil) || (wantErr != 0 && !errors.Is(err, wantErr)) {
			t.Fatalf("step %d: %s(%d) = %v; want %v", step, what, i, err, wantErr)
		}
		before := fileBytes(t, s)
		free, err := s.FreeLocks()
		if err != nil || free != count-uint32(len(alloc)) {
			t.Fatalf("step %d: FreeLocks() = %d, %v; want %d", step, free, err, count-uint32(len(alloc)))
		}
		taken, err := s.TakenLocks()
		want := slices.Sorted(func(yield func(uint32) bool) {
			for i := range locked {
				if !yield(i) {
					return
				}
			}
		})
		if err != nil || !slices.Equal(taken, want) {
			t.Fatalf("step %d: TakenLocks() = %v, %v; want %v", step, taken, err, want)
		}
		st, err := s.Status()
		if err != nil || len(st) != len(want) {
			t.Fatalf("step %d: Status() = %v, %v; want %d entries", step, st, err, len(want))
		}
		for k, e := range st {
			if e.Index != want[k] || !e.Locked || e.PID != os.Getpid() || e.Allocated != alloc[e.Index] || e.Owner != Alive {
				t.Fatalf("step %d: Status()[%d] = %+v", step, k, e)
			}
		}
		if !slices.Equal(before, fileBytes(t, s)) {
			t.Fatalf("step %d: TakenLocks or Status changed the file", step)
		}
		if s.MaxLocks() != count {
			t.Fatalf("step %d: MaxLocks() = %d; want %d", step, s.MaxLocks(), count)
		}
	}
}

func TestTryLockTimeoutContext(t *testing.T) { // 17
	s, _ := newSegment(t, 64)
	held := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		if err := s.Lock(4); err != nil {
			done <- err
			return
		}
		close(held)
		<-release
		done <- s.Unlock(4)
	}()
	select {
	case <-held:
	case err := <-done:
		t.Fatalf("Lock(4) = %v", err)
	}
	if ok, err := s.TryLock(4); ok || err != nil {
		t.Fatalf("TryLock(4) of a held lock = %v, %v; want false, nil", ok, err)
	}
	// a patient waiter, unaffected by the others giving up
	patient := make(chan error, 1)
	go func() {
		err := s.LockTimeout(4, time.Minute)
		if err == nil {
			err = s.Unlock(4)
		}
		patient <- err
	}()
	start := time.Now()
	err := s.LockTimeout(4, 200*time.Millisecond)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("LockTimeout(200ms) gave up after %v", d)
	}
	wantErrno(t, "LockTimeout(4, 200ms)", err, unix.ETIMEDOUT)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LockTimeout error %v does not match context.DeadlineExceeded", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cerr := make(chan error, 1)
	go func() { cerr <- s.LockContext(ctx, 4) }()
	// let it block: a bounded wait for the waiter count to show it
	waitUntil(t, "a second waiter", func() bool {
		st, _ := s.Owner(4)
		return st.Waiters >= 2
	})
	cancel()
	err = <-cerr
	wantErrno(t, "LockContext after cancel", err, unix.ECANCELED)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("LockContext error %v does not match context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = s.LockContext(ctx, 4)
	if !errors.Is(err, ctx.Err()) || !errors.Is(err, unix.ETIMEDOUT) {
		t.Errorf("LockContext past its deadline = %v; want ETIMEDOUT and %v", err, ctx.Err())
	}
	select {
	case err := <-patient:
		t.Fatalf("patient waiter returned %v while the lock is held", err)
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Unlock(4) = %v", err)
	}
	if err := <-patient; err != nil {
		t.Fatalf("patient waiter = %v; want the lock", err)
	}
}

// waitUntil polls cond every 5 ms until it holds or 10 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGC(t *testing.T) { // 19
	s, _ := newSegment(t, 64)
	for tag := uint64(1); tag <= 10; tag++ {
		if i, err := s.AllocateTagged(tag); err != nil || i != uint32(tag-1) {
			t.Fatalf("AllocateTagged(%d) = %d, %v", tag, i, err)
		}
	}
	for _, i := range []uint32{20, 21} { // untagged
		if err := s.AllocateGiven(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AllocateGivenTagged(30, 99); err != nil { // rewritten while isLive runs
		t.Fatal(err)
	}
	// tags 3 and 7 are locked (indexes 2 and 6)
	for _, i := range []uint32{2, 6} {
		if err := s.Lock(i); err != nil {
			t.Fatal(err)
		}
		defer s.Unlock(i)
	}
	var mu sync.Mutex
	asked := map[uint64]bool{}
	freed, err := s.GC(func(tag uint64) bool {
		mu.Lock()
		asked[tag] = true
		mu.Unlock()
		if tag == 99 {
			// another process reuses index 30 meanwhile
			if err := s.Deallocate(30); err != nil {
				t.Error(err)
			}
			if err := s.AllocateGivenTagged(30, 100); err != nil {
				t.Error(err)
			}
			return false
		}
		return tag == 2 || tag == 4
	})
	if err != nil {
		t.Fatalf("GC = %v", err)
	}
	if want := []uint32{0, 4, 5, 7, 8, 9}; !slices.Equal(freed, want) {
		t.Errorf("GC freed %v; want %v", freed, want)
	}
	if asked[3] || asked[7] || asked[0] {
		t.Errorf("GC asked about held or untagged indexes: %v", asked)
	}
	for _, i := range []uint32{1, 2, 3, 6, 20, 21, 30} {
		if st, _ := s.Owner(i); !st.Allocated {
			t.Errorf("index %d freed by GC", i)
		}
	}
	if st, _ := s.Owner(30); st.Tag != 100 {
		t.Errorf("index 30 tag = %d; want 100", st.Tag)
	}
	if free, _ := s.FreeLocks(); free != 64-7 {
		t.Errorf("FreeLocks() after GC = %d; want %d", free, 64-7)
	}
}

func TestInfo(t *testing.T) {
	s, _ := newSegment(t, 2048)
	in := s.Info()
	if in.NumLocks != 2048 || in.MaxLocks != defaultMax || in.Size != 167936 || in.Version != 1 ||
		in.CreatorPID != os.Getpid() || in.Free != 2048 || in.SlotsOff != 36864 {
		t.Errorf("Info() = %+v", in)
	}
	var st unix.Stat_t
	if err := unix.Stat(in.Path, &st); err != nil || st.Size != 167936 || st.Mode&0o777 != 0o600 {
		t.Errorf("stat(%s) = size %d mode %o, %v", in.Path, st.Size, st.Mode&0o777, err)
	}
}

// TestTimeoutsDoNotStrandWaiters: a waiter that gives up after an Unlock
// woke it must not leave another sleeper without a wake-up.
func TestTimeoutsDoNotStrandWaiters(t *testing.T) {
	s, _ := newSegment(t, 64)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for k := 0; k < 4; k++ {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if s.LockTimeout(1, time.Duration(50+k*20)*time.Microsecond) == nil {
					time.Sleep(20 * time.Microsecond)
					s.Unlock(1)
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for k := 0; k < 300; k++ {
		done := make(chan error, 1)
		go func() {
			err := s.Lock(1)
			if err == nil {
				err = s.Unlock(1)
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: a Lock never returned while others timed out", k)
		}
	}
}

func TestStatusOfTruncatedSegment(t *testing.T) {
	s, _ := newSegment(t, 128)
	if err := s.Lock(100); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(100); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Status(); err != nil {
		t.Fatalf("negative control: Status() = %v", err)
	}
	if err := os.Truncate(s.m.path, 4096); err != nil {
		t.Fatal(err)
	}
	_, err := s.Status()
	wantErrno(t, "Status() of a truncated segment", err, unix.EBADF)
	_, err = s.Owner(100)
	wantErrno(t, "Owner(100) of a truncated segment", err, unix.EBADF)
	if err := s.Close(); err != nil {
		t.Errorf("Close() of a truncated segment = %v", err)
	}
}

func TestSlotStatusJSON(t *testing.T) {
	s, _ := newSegment(t, 64)
	if err := s.AllocateGivenTagged(3, 0x42); err != nil {
		t.Fatal(err)
	}
	if err := s.Lock(3); err != nil {
		t.Fatal(err)
	}
	defer s.Unlock(3)
	st, err := s.Owner(3)
	if err != nil {
		t.Fatal(err)
	}
	if st.State() != "held" || st.Tag != 0x42 || !st.Allocated || st.PID != os.Getpid() || st.KernelCovered != registered {
		t.Errorf("Owner(3) = %+v", st)
	}
	b, err := json.Marshal(st)
	if err != nil || !bytes.Contains(b, []byte(`"Owner":"alive"`)) {
		t.Errorf("json.Marshal(Owner(3)) = %s, %v", b, err)
	}
	if st, _ := s.Owner(4); st.State() != "free" || st.Locked || st.Owner != Unknown {
		t.Errorf("Owner(4) = %+v", st)
	}
}
