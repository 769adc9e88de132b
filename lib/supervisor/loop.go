package supervisor

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Loop is one process's event loop for any number of [Service]s: one
// poll(2) over every service's control FIFO, notification pipe, notify
// socket and adopted daemon, plus the owner's own fds; one reaper for
// every child; timers only while a deadline is pending, so an idle loop
// never wakes up. It is not safe for concurrent use: everything happens
// in [Loop.Run]'s goroutine, hooks included.
type Loop struct {
	// Env receives the loop's own warnings.
	Env *cli.Env
	// Signals is the read end of a signal self-pipe ([sig.SelfPipe]);
	// each byte read is a signal number, handed to OnSignal after SIGCHLD
	// has reaped.
	Signals int
	// OnSignal acts on a signal other than SIGCHLD.
	OnSignal func(sig unix.Signal)
	// Reaped is told of every child reaped that no service owned (a
	// supervisor of another kind, an orphan adopted as PID 1).
	Reaped func(pid int, ws unix.WaitStatus)
	// Ended is told when a service's supervision ends.
	Ended func(s *Service)
	// Events is told of every event a service emits (after its event/
	// listeners).
	Events func(s *Service, ev string)
	// Poll, if set, adds the owner's fds to the set; Handle then gets
	// them back with their revents.
	Poll   func(fds []unix.PollFd) []unix.PollFd
	Handle func(fds []unix.PollFd)
	// Deadline, if set, is the owner's nearest deadline (zero: none);
	// Tick runs at every turn of the loop, after the services' deadlines.
	Deadline func() time.Time
	Tick     func()
	// Done, checked at every turn, ends Run with a nil error.
	Done func() bool

	services   []*Service
	tree       *Tree // the scan of a scan directory, if any ([OpenTree])
	subreapers int
	gc         gcDebt
	buf        []byte
	fds        []unix.PollFd
}

// Services returns the services being supervised, in the order they were
// opened. The slice is the loop's: do not keep it across a turn.
func (l *Loop) Services() []*Service { return l.services }

func (l *Loop) add(s *Service) { l.services = append(l.services, s) }

// ended drops a service whose supervision is over.
func (l *Loop) ended(s *Service) {
	for i, x := range l.services {
		if x == s {
			l.services = append(l.services[:i], l.services[i+1:]...)
			break
		}
	}
	if s.subreaper {
		s.subreaper = false
		l.subreaper(false)
	}
	if l.tree != nil && l.tree.serviceEnded(s) {
		return
	}
	if l.Ended != nil {
		l.Ended(s)
	}
}

// subreaper counts the services that need the process to be a child
// subreaper (a pidfile service's launch, §3.10): it is one while any does.
func (l *Loop) subreaper(on bool) {
	if on {
		l.subreapers++
		if l.subreapers > 1 {
			return
		}
	} else {
		if l.subreapers--; l.subreapers > 0 {
			return
		}
	}
	if err := proc.SetSubreaper(on); err != nil && l.Env != nil {
		l.Env.Warnf("unable to set the child subreaper flag: %w", sys.Errno(err))
	}
}

// reap waits for every dead child and hands each status to its service,
// else to Reaped.
func (l *Loop) reap() {
	err := proc.Reap(func(pid int, ws unix.WaitStatus) {
		for _, s := range l.services {
			if s.reaped(pid, ws) {
				return
			}
		}
		if l.tree != nil && l.tree.reaped(pid) {
			return
		}
		if l.Reaped != nil {
			l.Reaped(pid, ws)
		}
	})
	if err != nil && l.Env != nil {
		l.Env.Warnf("unable to wait: %w", sys.Errno(err))
	}
}

// Run runs the loop until Done reports true, or the tree ends
// ([Tree.Done]), or, when neither Done nor a tree is set, until no service
// is left. A tree is scanned at Run's first turn. Run returns an error
// only if poll(2) fails.
func (l *Loop) Run() error {
	if l.buf == nil {
		l.buf = make([]byte, 256)
	}
	if t := l.tree; t != nil && !t.started {
		t.scan()
	}
	for {
		if l.finished() {
			return nil
		}
		fds := append(l.fds[:0], unix.PollFd{Fd: int32(l.Signals), Events: unix.POLLIN})
		if l.Poll != nil {
			fds = l.Poll(fds)
		}
		own := len(fds)
		tree := l.tree
		if tree != nil {
			fds = append(fds, unix.PollFd{Fd: int32(tree.ctlR), Events: unix.POLLIN})
		}
		treeAt := own
		// The services of this turn: one ending in a hook must not shift
		// the indexes.
		svcs := append([]*Service(nil), l.services...)
		starts := make([]int, len(svcs)+1)
		for i, s := range svcs {
			starts[i] = len(fds)
			fds = s.pollFDs(fds)
		}
		starts[len(svcs)] = len(fds)
		l.fds = fds
		timeout := l.timeout()
		if timeout < 0 {
			l.gc.idle()
		}
		if _, err := sys.Poll(fds, timeout); err != nil {
			return fmt.Errorf("unable to poll: %w", sys.Errno(err))
		}
		if fds[0].Revents != 0 {
			// Notify sockets first, then the reaping.
			for _, s := range svcs {
				if !s.ended {
					s.drainNotify()
				}
			}
			l.readSignals()
		}
		if l.Handle != nil && own > 1 {
			l.Handle(fds[1:own])
		}
		if tree != nil && tree == l.tree && fds[treeAt].Revents != 0 {
			tree.readControl(l.buf)
		}
		for i, s := range svcs {
			if !s.ended {
				s.handle(fds[starts[i]:starts[i+1]], l.buf)
			}
		}
		for _, s := range append([]*Service(nil), l.services...) {
			if !s.ended {
				s.deadlines()
			}
			if s.quit && !s.ended {
				s.end(nil)
			}
		}
		if l.tree != nil {
			l.tree.deadlines()
		}
		if l.Tick != nil {
			l.Tick()
		}
	}
}

// finished reports whether Run must return.
func (l *Loop) finished() bool {
	switch {
	case l.Done != nil && l.Done():
		return true
	case l.tree != nil:
		return l.tree.done
	}
	return l.Done == nil && len(l.services) == 0
}

// readSignals reads the signal pipe: SIGCHLD reaps, others go to OnSignal.
func (l *Loop) readSignals() {
	for {
		n, err := unix.Read(l.Signals, l.buf)
		if n <= 0 || err != nil {
			return
		}
		sigs := append([]byte(nil), l.buf[:n]...)
		for _, b := range sigs {
			if unix.Signal(b) == unix.SIGCHLD {
				l.reap()
			} else if l.OnSignal != nil {
				l.OnSignal(unix.Signal(b))
			}
		}
	}
}

// timeout is poll's timeout in ms: until the nearest deadline, or -1.
func (l *Loop) timeout() int {
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, s := range l.services {
		earlier(s.next())
	}
	if l.tree != nil {
		earlier(l.tree.deadline())
	}
	if l.Deadline != nil {
		earlier(l.Deadline())
	}
	if next.IsZero() {
		return -1
	}
	d := time.Until(next)
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}
