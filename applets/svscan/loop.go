package svscan

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/supervisor"
	"github.com/gotools-dev/gotools/lib/sys"
)

// scanner is one svscan: its settings and the tree it runs
// ([supervisor.Tree]: the scan, the supervisors, the control FIFO).
type scanner struct {
	env   *cli.Env
	dir   string
	notif int    // -d's fd until notified, else -1
	prog  string // --supervisor
	conf  supervisor.TreeConfig
	loop  *supervisor.Loop
	tree  *supervisor.Tree
}

func (s *scanner) run() error {
	// An idle svscan must not wake up: no time-forced GC (the runtime
	// forces one every 2 minutes otherwise); a soft limit bounds the heap
	// instead, as in supervise (spec/supervise.md §11).
	supervisor.QuietRuntime(16 << 20)
	if err := s.setup(); err != nil {
		return err
	}
	s.loop.OnSignal = s.signal
	if err := s.runLoop(); err != nil {
		s.env.Warn(err)
		return s.crash()
	}
	return s.finish()
}

// runLoop runs the tree until it ends. A panic in it is an unrecoverable
// failure: svscan then executes into .s6-svscan/crash rather than die,
// since it may be PID 1.
func (s *scanner) runLoop() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unable to run the main loop: panic: %v", r)
		}
	}()
	if err := s.loop.Run(); err != nil {
		return err
	}
	return s.tree.Err()
}

// handledSignals are the signals that run .s6-svscan/SIGNAME when it is
// executable (§8), with the control byte each stands for otherwise (0:
// nothing).
var handledSignals = map[unix.Signal]byte{
	unix.SIGHUP: 'h', unix.SIGINT: 't', unix.SIGTERM: 't', unix.SIGQUIT: 'q',
	unix.SIGUSR1: 0, unix.SIGUSR2: 0, unix.SIGPWR: 0, unix.SIGWINCH: 0,
}

// signal acts on one signal other than SIGCHLD, which the loop reaps on
// (§8).
func (s *scanner) signal(sg unix.Signal) {
	var c byte
	switch sg {
	case unix.SIGALRM:
		c = 'a'
	case unix.SIGABRT:
		c = 'b'
	default:
		letter, ok := handledSignals[sg]
		if !ok || s.runHandler(sig.Name(sg)) {
			return
		}
		c = letter
	}
	if c != 0 {
		s.tree.Command(c)
	}
}

// runHandler spawns .s6-svscan/SIGNAME, with no arguments, if it exists
// and is executable, and reports whether it did. It is reaped like any
// child.
func (s *scanner) runHandler(name string) bool {
	p := ctlDir + "/" + name
	_, err := proc.Spawn([]string{p}, proc.Attr{Path: p})
	switch errno := sys.Errno(err); {
	case err == nil:
		return true
	case errors.Is(errno, unix.ENOENT), errors.Is(errno, unix.EACCES):
	default:
		s.env.Warnf("unable to spawn %s: %w", p, errno)
	}
	return false
}
