package logapplet

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func testPipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0], p[1]
}

func testWaiter(t *testing.T, fds ...int) *waiter {
	t.Helper()
	w, err := newWaiter(fds...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.f.Close() })
	if w.rc == nil {
		t.Fatal("the epoll fd is not registered with the netpoller")
	}
	return w
}

func TestWaiterWakesOnData(t *testing.T) {
	r, wr := testPipe(t)
	w := testWaiter(t, r)
	w.want(0, unix.EPOLLIN)
	go func() {
		time.Sleep(20 * time.Millisecond)
		unix.Write(wr, []byte("x"))
	}()
	evs, err := w.wait(time.Time{})
	if err != nil || len(evs) != 1 || evs[0].Fd != int32(r) || evs[0].Events&unix.EPOLLIN == 0 {
		t.Fatalf("wait() = %+v, %v; want EPOLLIN on fd %d", evs, err, r)
	}
}

func TestWaiterDeadline(t *testing.T) {
	r, _ := testPipe(t)
	w := testWaiter(t, r)
	w.want(0, unix.EPOLLIN)
	for _, d := range []time.Duration{50 * time.Millisecond, 20 * time.Millisecond} {
		start := time.Now()
		evs, err := w.wait(start.Add(d))
		if err != nil || len(evs) != 0 {
			t.Fatalf("wait(+%v) = %+v, %v; want no event", d, evs, err)
		}
		if el := time.Since(start); el < d {
			t.Errorf("wait(+%v) returned after %v", d, el)
		}
	}
	// A past deadline does not wait; no deadline clears the old one.
	if evs, err := w.wait(time.Now().Add(-time.Second)); err != nil || len(evs) != 0 {
		t.Fatalf("wait(past) = %+v, %v", evs, err)
	}
	// No deadline clears the old, past one: the wait parks until data.
	r2, wr2 := testPipe(t)
	w2 := testWaiter(t, r2)
	w2.want(0, unix.EPOLLIN)
	w2.wait(time.Now().Add(10 * time.Millisecond))
	go func() {
		time.Sleep(50 * time.Millisecond)
		unix.Write(wr2, []byte("x"))
	}()
	evs, err := w2.wait(time.Time{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("wait() after a deadline = %+v, %v; want the data", evs, err)
	}
}

// A hung-up pipe nobody wants to read is not reported (epoll would report
// EPOLLHUP for a registered fd even with no event asked for).
func TestWaiterUnwantedHangup(t *testing.T) {
	r, wr := testPipe(t)
	sr, _ := testPipe(t)
	w := testWaiter(t, sr, r)
	w.want(0, unix.EPOLLIN)
	w.want(1, unix.EPOLLIN)
	w.want(1, 0)
	unix.Close(wr)
	evs, err := w.wait(time.Now().Add(30 * time.Millisecond))
	if err != nil || len(evs) != 0 {
		t.Fatalf("wait() = %+v, %v; want nothing", evs, err)
	}
	w.want(1, unix.EPOLLIN)
	evs, err = w.wait(time.Time{})
	if err != nil || len(evs) != 1 || evs[0].Fd != int32(r) {
		t.Fatalf("wait() = %+v, %v; want the hang-up of fd %d", evs, err, r)
	}
}

// Fds epoll refuses (a regular file, /dev/null) are always ready, as
// poll(2) reports them.
func TestWaiterRegularFile(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, _ := testPipe(t)
	w := testWaiter(t, r, int(f.Fd()), int(null.Fd()))
	w.want(0, unix.EPOLLIN)
	w.want(1, unix.EPOLLOUT)
	w.want(2, unix.EPOLLIN)
	evs, err := w.wait(time.Time{})
	if err != nil || len(evs) != 2 {
		t.Fatalf("wait() = %+v, %v; want the file and /dev/null", evs, err)
	}
	w.want(1, 0)
	w.want(2, 0)
	evs, err = w.wait(time.Now().Add(20 * time.Millisecond))
	if err != nil || len(evs) != 0 {
		t.Fatalf("wait() = %+v, %v; want nothing once unwanted", evs, err)
	}
}

// A wake-up allocates nothing: the GC is off in log.
func TestWaiterNoAllocation(t *testing.T) {
	r, wr := testPipe(t)
	w := testWaiter(t, r)
	w.want(0, unix.EPOLLIN)
	buf := make([]byte, 8)
	one := []byte("x")
	// The writer runs in this goroutine's place: data is ready before
	// the wait, or (every other round) written while it is parked.
	kick := make(chan struct{}, 1)
	go func() {
		for range kick {
			time.Sleep(time.Millisecond)
			unix.Write(wr, one)
		}
	}()
	defer close(kick)
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		if i%2 == 0 {
			unix.Write(wr, one)
		} else {
			kick <- struct{}{}
		}
		i++
		evs, err := w.wait(time.Time{})
		if err != nil || len(evs) != 1 {
			t.Fatalf("wait() = %+v, %v", evs, err)
		}
		rawRead(r, buf)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per wait; want 0", allocs)
	}
}

// Measuring allocations allocates nothing itself.
func TestAllocatedNoAllocation(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { allocated() }); n != 0 {
		t.Errorf("allocated() makes %v allocations; want 0", n)
	}
}
