package logapplet

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// waiter waits for the loop's fds on an epoll instance of its own, parked
// in the Go runtime's netpoller rather than in a blocking system call.
//
// Why: a goroutine blocked in poll(2) keeps its P in the syscall state, so
// the runtime's sysmon thread stays awake to watch it (a nanosleep every
// 20 µs to 10 ms) and every return from the call wakes sysmon again with
// a futex. At 10,000 lines/s arriving in small reads that doubled log's CPU
// time next to s6-log's (spec/log.md §12 test 17). An epoll fd is itself
// pollable, so registering it with the netpoller lets the runtime block in
// its own epoll_pwait with every P idle: sysmon sleeps, and a wake-up costs
// that epoll_pwait plus one zero-timeout epoll_wait here, on one thread.
//
// Fds that epoll refuses (EPERM: regular files, /dev/null) are always
// ready, as poll(2) reports them.
//
// The table is fixed: the signal pipe, stdin and stdout.
type waiter struct {
	ep       int
	f        *os.File        // ep, registered with the netpoller
	rc       syscall.RawConn // nil: not pollable, block in epoll_wait
	deadline time.Time       // the read deadline set on f
	watch    [3]watched
	evs      [4]unix.EpollEvent

	// ready is the callback of rc.Read, made once (a closure per wait
	// would allocate, and the GC is off); it polls into evs after the
	// first readyFrom entries and leaves its result in readyN, readyErr.
	ready     func(uintptr) bool
	readyFrom int
	readyN    int
	readyErr  error
}

type watched struct {
	fd     int
	events uint32 // registered (or wanted, when always ready)
	always bool   // epoll refused the fd: always ready
}

// newWaiter makes a waiter for fds, each with no event wanted yet.
func newWaiter(fds ...int) (*waiter, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("unable to create an epoll fd: %w", err)
	}
	w := &waiter{ep: ep}
	for i, fd := range fds {
		w.watch[i].fd = fd
	}
	// O_NONBLOCK makes os.NewFile register the fd with the netpoller.
	if err := setNonblock(ep); err == nil {
		w.f = os.NewFile(uintptr(ep), "epoll")
		if rc, err := w.f.SyscallConn(); err == nil {
			w.rc = rc
			w.ready = w.onReady
		}
	}
	return w, nil
}

// want sets the events wanted for the i-th fd of newWaiter (0: none), with
// no system call when they are unchanged.
func (w *waiter) want(i int, events uint32) {
	s := &w.watch[i]
	if s.events == events {
		return
	}
	if s.always {
		s.events = events
		s.always = events != 0
		return
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(s.fd)}
	var err error
	switch {
	case events == 0:
		// Removed rather than left with no events: epoll reports
		// EPOLLHUP and EPOLLERR regardless, which would spin the loop.
		err = unix.EpollCtl(w.ep, unix.EPOLL_CTL_DEL, s.fd, nil)
	case s.events == 0:
		err = unix.EpollCtl(w.ep, unix.EPOLL_CTL_ADD, s.fd, &ev)
	default:
		err = unix.EpollCtl(w.ep, unix.EPOLL_CTL_MOD, s.fd, &ev)
	}
	if err != nil && events != 0 {
		// EPERM: a regular file or /dev/null. Like poll(2), which
		// reports such fds (and bad ones) ready, let the read or write
		// tell.
		s.always = true
	}
	s.events = events
}

// wait returns the ready fds' events, waiting until one is ready or until
// deadline (zero: none) passes; then it returns none.
func (w *waiter) wait(deadline time.Time) ([]unix.EpollEvent, error) {
	evs := w.evs[:0]
	for _, s := range w.watch {
		if s.always && s.events != 0 {
			evs = append(evs, unix.EpollEvent{Events: s.events, Fd: int32(s.fd)})
		}
	}
	timeout := -1
	if !deadline.IsZero() {
		timeout = 0
		if d := time.Until(deadline); d > 0 {
			timeout = int((d + time.Millisecond - 1) / time.Millisecond)
		}
	}
	if len(evs) > 0 || timeout == 0 {
		n, err := w.poll(evs, 0)
		return w.evs[:len(evs)+n], err
	}
	if w.rc != nil && !deadline.Equal(w.deadline) {
		if w.f.SetReadDeadline(deadline) == nil {
			w.deadline = deadline
		} else {
			w.rc = nil
		}
	}
	if w.rc == nil {
		n, err := w.poll(evs, timeout)
		return w.evs[:n], err
	}
	// The callback runs at once, then each time the netpoller reports
	// the epoll fd readable; false parks the goroutine until then.
	w.readyFrom = len(evs)
	rerr := w.rc.Read(w.ready)
	n, err := w.readyN, w.readyErr
	switch {
	case errors.Is(rerr, os.ErrDeadlineExceeded):
		return nil, nil
	case rerr != nil:
		w.rc = nil
		n, err = w.poll(evs, timeout)
	}
	return w.evs[:n], err
}

func (w *waiter) onReady(uintptr) bool {
	w.readyN, w.readyErr = w.poll(w.evs[:w.readyFrom], 0)
	return w.readyN > 0 || w.readyErr != nil
}

// poll is epoll_wait(2) into the free part of w.evs after evs; EINTR is
// no event (the loop goes round again).
func (w *waiter) poll(evs []unix.EpollEvent, timeout int) (int, error) {
	var n int
	var err error
	if timeout == 0 {
		n, err = rawEpollNow(w.ep, w.evs[len(evs):])
	} else {
		n, err = unix.EpollWait(w.ep, w.evs[len(evs):], timeout)
	}
	if errors.Is(err, unix.EINTR) {
		return 0, nil
	}
	if err != nil {
		return 0, os.NewSyscallError("epoll_wait", err)
	}
	return n, nil
}

// The calls below never block for long: they go straight to the kernel,
// without telling the Go scheduler (RawSyscall). A plain call would wake
// the runtime's sysmon thread from its deep sleep every time (entersyscall
// does), which at a few lines per wake-up costs more than the call itself.
// Only calls that return at once qualify: reads of the non-blocking stdin,
// epoll_wait with a zero timeout, and writes to a logdir's regular file.

// rawRead is read(2) without the scheduler.
func rawRead(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// rawWrite is write(2) without the scheduler.
func rawWrite(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// rawEpollNow is epoll_wait(2) with a zero timeout, without the scheduler.
func rawEpollNow(ep int, evs []unix.EpollEvent) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
