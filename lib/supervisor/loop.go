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
	byID       map[uint64]*Service // by epoll data
	lastID     uint64
	ep         int                   // the epoll fd, -1 until Run
	events     []unix.EpollEvent     // epoll_wait's buffer
	touched    []*Service            // services whose fds or timers may have changed this turn
	timed      map[*Service]struct{} // services with a pending deadline
	stores     map[*Service]struct{} // services with watched stored fds
	notifiers  map[*Service]struct{} // services with a notify socket
	storeList  []*Service
	starts     []int
	epOpen     bool
	ready      []*Service
	sfds       []unix.PollFd
	want       []int
	tree       *Tree // the scan of a scan directory, if any ([OpenTree])
	subreapers int
	gc         gcDebt
	buf        []byte
	sigs       []byte  // readSignals' copy of buf
	scratch    scratch // the services' buffers (scratch.go)
	fds        []unix.PollFd
}

// Services returns the services being supervised, in the order they were
// opened. The slice is the loop's: do not keep it across a turn.
func (l *Loop) Services() []*Service { return l.services }

func (l *Loop) add(s *Service) {
	if l.byID == nil {
		l.initMaps()
	}
	l.lastID++
	s.id = l.lastID
	l.byID[s.id] = s
	l.services = append(l.services, s)
	s.touch()
}

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
// only if poll(2) or epoll fails.
//
// A turn costs O(what is ready), not O(services): every service's fds sit
// in one epoll set, registered when a service's fds change (sync), and
// only the services epoll reports are polled and handled; only services
// with a pending deadline are looked at for timers. poll(2) waits on the
// signal pipe, the owner's fds, the tree's control FIFO, the epoll fd and
// the fd store's watched fds (rare; their files are shared with run, so
// they stay out of the epoll set, where a closed fd's registration would
// outlive it).
func (l *Loop) Run() error {
	if l.buf == nil {
		l.buf = make([]byte, 256)
	}
	if err := l.epollInit(); err != nil {
		return err
	}
	if t := l.tree; t != nil && !t.started {
		t.scan()
	}
	for {
		l.syncTouched()
		if l.finished() {
			l.epollClose()
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
		epAt := len(fds)
		fds = append(fds, unix.PollFd{Fd: int32(l.ep), Events: unix.POLLIN})
		// Services with watched stored fds: any revents there is handled
		// by polling the service.
		stores := l.storeList[:0]
		for s := range l.stores {
			stores = append(stores, s)
		}
		l.storeList = stores
		starts := l.starts[:0]
		for _, s := range stores {
			starts = append(starts, len(fds))
			fds = s.store.pollFDs(fds)
		}
		l.starts = append(starts, len(fds))
		l.fds = fds
		timeout := l.timeout()
		if timeout < 0 {
			l.gc.idle()
		}
		if _, err := sys.Poll(fds, timeout); err != nil {
			l.epollClose()
			return fmt.Errorf("unable to poll: %w", sys.Errno(err))
		}
		if fds[0].Revents != 0 {
			// Notify sockets first, then the reaping.
			for s := range l.notifiers {
				if !s.ended {
					s.touch()
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
		ready := l.ready[:0]
		if fds[epAt].Revents != 0 {
			n, err := unix.EpollWait(l.ep, l.events, 0)
			if err != nil && err != unix.EINTR {
				l.epollClose()
				return fmt.Errorf("unable to epoll_wait: %w", sys.Errno(err))
			}
			for _, ev := range l.events[:max(n, 0)] {
				if s := l.byID[uint64(uint32(ev.Fd))|uint64(uint32(ev.Pad))<<32]; s != nil {
					ready = append(ready, s)
				}
			}
		}
		for i, s := range stores {
			for _, p := range fds[l.starts[i]:l.starts[i+1]] {
				if p.Revents != 0 {
					ready = append(ready, s)
					break
				}
			}
		}
		l.ready = ready
		for _, s := range ready {
			l.handleService(s)
		}
		l.syncTouched()
		now := time.Now()
		for s := range l.timed {
			if t := s.next(); !s.ended && !t.IsZero() && !now.Before(t) {
				s.touch()
				s.deadlines()
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

// handleService polls the fds of a service that epoll (or the fd store's
// watch) reported ready, and handles what is ready: a service appears
// once per epoll event, so a second appearance finds nothing left.
func (l *Loop) handleService(s *Service) {
	if s.ended {
		return
	}
	s.touch()
	fds := s.pollFDs(l.sfds[:0])
	l.sfds = fds
	if _, err := sys.Poll(fds, 0); err != nil {
		return
	}
	for _, p := range fds {
		if p.Revents != 0 {
			s.handle(fds, l.buf)
			return
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
		// A copy: reaping and OnSignal may read into buf.
		l.sigs = append(l.sigs[:0], l.buf[:n]...)
		for _, b := range l.sigs {
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
	for s := range l.timed {
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
