package svscan

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/supervisor"
	"github.com/gotools-dev/gotools/lib/sys"
)

// scanner is one svscan: its settings, its descriptors and its services.
type scanner struct {
	env     *cli.Env
	dir     string
	max     int
	nameMax int
	rescan  time.Duration // -t; 0: no periodic scan
	notif   int           // -d's fd until notified, else -1
	prog    string        // --supervisor
	path    string        // the supervisor binary; "" looks argv[0] up in PATH
	argv    []string      // the supervisor's argv before NAME

	lock       *os.File
	ctlR, ctlW int
	sigR       int

	tree *supervisor.Loop // --one-process: the in-process supervisors' loop

	services []*service // in discovery order
	byKey    map[key]*service
	nextScan time.Time // zero: none pending
	quitting bool      // t, i or q: waiting for the supervisors to exit
}

// ending is how the main loop ends: the finish program must be executed
// now (b, or the last supervisor gone after t), or crash after a failure.
type ending struct {
	crash bool
	verb  string // for a crash: "unable to VERB: REASON"
	err   error
}

func (s *scanner) run() error {
	// An idle svscan must not wake up: no time-forced GC (the runtime
	// forces one every 2 minutes otherwise); a soft limit bounds the heap
	// instead, as in supervise (spec/supervise.md §11).
	supervisor.QuietRuntime(16 << 20)
	if err := s.setup(); err != nil {
		return err
	}
	var end ending
	if s.tree != nil {
		end = s.treeLoop()
	} else {
		end = s.loop()
	}
	if end.crash {
		s.env.Warnf("unable to %s: %w", end.verb, end.err)
		return s.crash()
	}
	return s.finish()
}

// loop is svscan's event loop: poll(2) on the signal pipe and the control
// FIFO, with a timeout only while a restart or a scan is pending, so an
// idle svscan without -t never wakes up. A panic in it is an
// unrecoverable failure: svscan then executes into .s6-svscan/crash
// rather than die, since it may be PID 1.
func (s *scanner) loop() (end ending) {
	defer func() {
		if r := recover(); r != nil {
			end = ending{crash: true, verb: "run the main loop", err: fmt.Errorf("panic: %v", r)}
		}
	}()
	s.scan()
	buf := make([]byte, 256)
	for {
		if s.quitting && s.supervisors() == 0 {
			return ending{}
		}
		fds := []unix.PollFd{{Fd: int32(s.sigR), Events: unix.POLLIN}, {Fd: int32(s.ctlR), Events: unix.POLLIN}}
		if _, err := sys.Poll(fds, s.timeout()); err != nil {
			return ending{crash: true, verb: "poll", err: sys.Errno(err)}
		}
		if fds[0].Revents != 0 {
			if e, done := s.readSignals(buf); done {
				return e
			}
		}
		if fds[1].Revents != 0 {
			if e, done := s.readControl(buf); done {
				return e
			}
		}
		s.deadlines()
	}
}

// supervisors counts the supervisors still running.
func (s *scanner) supervisors() int {
	n := 0
	for _, sv := range s.services {
		n += boolInt(sv.main.alive()) + boolInt(sv.log.alive())
	}
	return n
}

// timeout is poll's timeout in ms: until the nearest pending restart or
// scan, or -1 (none).
func (s *scanner) timeout() int {
	next := s.nextScan
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, sv := range s.services {
		earlier(sv.main.next)
		earlier(sv.log.next)
	}
	if next.IsZero() || s.quitting {
		return -1
	}
	d := time.Until(next)
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// deadlines acts on the restarts and the scan that are due.
func (s *scanner) deadlines() {
	if s.quitting {
		return
	}
	now := time.Now()
	for _, sv := range s.services {
		if !sv.log.next.IsZero() && !now.Before(sv.log.next) {
			sv.log.next = time.Time{}
			if sv.active && sv.logActive && sv.hasLog && !sv.log.alive() {
				s.spawn(sv, true)
			}
		}
		if !sv.main.next.IsZero() && !now.Before(sv.main.next) {
			sv.main.next = time.Time{}
			if sv.active && !sv.main.alive() {
				s.spawn(sv, false)
			}
		}
	}
	if !s.nextScan.IsZero() && !now.Before(s.nextScan) {
		s.scan()
	}
}

// reap waits for every dead child, supervisors and adopted orphans alike
// (the PID 1 duty).
func (s *scanner) reap() error {
	return proc.Reap(func(pid int, _ unix.WaitStatus) { s.reaped(pid) })
}

// handledSignals are the signals that run .s6-svscan/SIGNAME when it is
// executable (§8), with the control byte each stands for otherwise (0:
// nothing).
var handledSignals = map[unix.Signal]byte{
	unix.SIGHUP: 'h', unix.SIGINT: 't', unix.SIGTERM: 't', unix.SIGQUIT: 'q',
	unix.SIGUSR1: 0, unix.SIGUSR2: 0, unix.SIGPWR: 0, unix.SIGWINCH: 0,
}

// readSignals acts on the signals the pipe holds. It reports whether the
// loop must end, and how.
func (s *scanner) readSignals(buf []byte) (ending, bool) {
	for {
		n, err := sys.Read(s.sigR, buf)
		if errors.Is(err, unix.EAGAIN) {
			return ending{}, false
		}
		if err != nil || n == 0 {
			if err == nil {
				err = unix.EPIPE // the writer never closes
			}
			return ending{crash: true, verb: "read the signal pipe", err: sys.Errno(err)}, true
		}
		for _, b := range buf[:n] {
			if e, done := s.signal(unix.Signal(b)); done {
				return e, true
			}
		}
	}
}

// signal acts on one signal (§8). It reports whether the loop must end,
// and how.
func (s *scanner) signal(sg unix.Signal) (ending, bool) {
	var c byte
	switch sg {
	case unix.SIGCHLD:
		c = 'z'
	case unix.SIGALRM:
		c = 'a'
	case unix.SIGABRT:
		c = 'b'
	default:
		letter, ok := handledSignals[sg]
		if !ok || s.runHandler(sig.Name(sg)) {
			return ending{}, false
		}
		c = letter
	}
	if c == 0 {
		return ending{}, false
	}
	return s.command(c)
}

// runHandler spawns .s6-svscan/SIGNAME, with no arguments, if it exists
// and is executable, and reports whether it did. It is reaped like any
// child.
func (s *scanner) runHandler(name string) bool {
	p := ctlDir + "/" + name
	_, err := proc.Spawn([]string{p}, proc.Attr{Path: p})
	switch errno := unwrapSpawn(err); {
	case err == nil:
		return true
	case errors.Is(errno, unix.ENOENT), errors.Is(errno, unix.EACCES):
	default:
		s.env.Warnf("unable to spawn %s: %w", p, errno)
	}
	return false
}

// readControl reads and applies control bytes until the FIFO is empty,
// in order. It reports whether the loop must end, and how.
func (s *scanner) readControl(buf []byte) (ending, bool) {
	for {
		n, err := sys.Read(s.ctlR, buf)
		if errors.Is(err, unix.EAGAIN) {
			return ending{}, false
		}
		if err != nil || n == 0 {
			if err == nil {
				err = unix.EPIPE // svscan keeps a write end: no EOF
			}
			return ending{crash: true, verb: "read " + ctlPath, err: sys.Errno(err)}, true
		}
		for _, c := range buf[:n] {
			if e, done := s.command(c); done {
				return e, true
			}
		}
	}
}

// command applies one control byte (§8). It reports whether the loop must
// end, and how.
func (s *scanner) command(c byte) (ending, bool) {
	switch c {
	case 'z':
		if err := s.reap(); err != nil {
			return ending{crash: true, verb: "wait", err: sys.Errno(err)}, true
		}
	case 'a':
		if !s.quitting {
			s.scan()
		}
	case 'b':
		return ending{}, true
	case 'h':
		if !s.quitting {
			s.scan()
		}
		s.stopInactive(unix.SIGHUP)
	case 'n':
		s.stopInactive(unix.SIGHUP)
	case 'N':
		s.stopInactive(unix.SIGTERM)
	case 't', 'i':
		s.stopAll(unix.SIGHUP)
	case 'q':
		s.stopAll(unix.SIGTERM)
	default:
		s.env.Warnf("unknown control command: %s", printable(c))
	}
	return ending{}, false
}

// stopAll begins the end (t, i, q): SIGTERM to every service's
// supervisor, logSig to every logger's (SIGHUP lets the logger drain the
// pipe to EOF first, so no line is lost), and svscan's pipe ends closed.
// The loop then waits for every supervisor before executing finish.
func (s *scanner) stopAll(logSig unix.Signal) {
	s.quitting = true
	// A copy: an in-process supervisor may end at once and be forgotten.
	for _, sv := range append([]*service(nil), s.services...) {
		sv.main.next, sv.log.next = time.Time{}, time.Time{}
		sv.main.signal(unix.SIGTERM)
		sv.log.signal(logSig)
		sv.closePipe()
	}
}

// printable renders a control byte for a warning: itself if printable
// ASCII, else \xNN.
func printable(c byte) string {
	if c > ' ' && c < 0x7f {
		return string(rune(c))
	}
	return fmt.Sprintf("\\x%02x", c)
}
