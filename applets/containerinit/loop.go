package containerinit

import (
	"errors"
	"math"
	"os"
	"os/signal"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/pidfile"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/sys"
)

// loop is who init is, and simple mode's event state: the signal channel
// every event comes through and the owners of the children's statuses
// (overlay mode gets its events from a [host] instead). There is no
// goroutine per child and no timer unless a deadline is pending, so an
// idle init sleeps in the kernel.
type loop struct {
	o    *options
	sigs chan os.Signal
	pid1 bool
	cwd  string // the image's WORKDIR, where the CMD starts
	// owners maps the pids whose status someone waits for to a callback;
	// any other reaped pid is an orphan.
	owners map[int]func(unix.WaitStatus)
	// ctty: with --setsid, init gave up its controlling terminal, for the
	// CMD to take ([loop.releaseTerminal]); dropHUP and dropCONT count the
	// signals that giving it up sent to init's own group, not to forward.
	ctty              bool
	dropHUP, dropCONT int
}

// begin does spec §2.1 but the catching of signals, which each mode does
// its own way (both reset inherited ignores of 32 and 34, which os/signal
// cannot catch): fds 0-2, the cwd recorded then left, subreaper when not
// PID 1, the parent-death signal.
func begin(o *options) (*loop, error) {
	if err := fd.EnsureStdio(); err != nil {
		return nil, exitcode.New(exitcode.Sys, err)
	}
	// Fds above 2 that init inherited must not reach the CMD (§11 test
	// 5: its fds are 0-2); init opens none of its own without O_CLOEXEC.
	_ = unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	l := &loop{o: o, pid1: os.Getpid() == 1, owners: map[int]func(unix.WaitStatus){}}
	l.cwd, _ = os.Getwd()
	// So that init pins no directory (an unmount must not fail on it).
	_ = os.Chdir("/")
	if !l.pid1 {
		if o.noSubreap {
			o.warn("not PID 1 and not a subreaper: zombie reaping will not work")
		} else if err := proc.SetSubreaper(true); err != nil {
			return nil, exitcode.Errorf(exitcode.Sys, "unable to become a subreaper: %w", sys.Errno(err))
		}
	}
	if o.pdeath != 0 {
		if err := sys.Prctl(unix.PR_SET_PDEATHSIG, uintptr(o.pdeath)); err != nil {
			return nil, exitcode.Errorf(exitcode.Sys, "unable to set the parent-death signal: %w", sys.Errno(err))
		}
	}
	return l, nil
}

// catch catches every signal into the loop's channel before any spawn,
// so that none sent after it is lost or acted on by the Go runtime's
// default: [sig.RawPipe]'s handlers (one rt_sigaction(2) each; os/signal
// costs a round trip to its signal thread per signal, 0.8 ms of the boot
// for all of them), relayed by a goroutine ([ignoreFaults] for the rest).
func (l *loop) catch() error {
	l.sigs = make(chan os.Signal, 64)
	ignoreFaults()
	fd, err := sig.RawPipe()
	if err != nil {
		return exitcode.New(exitcode.Sys, err)
	}
	f := os.NewFile(uintptr(fd), "signals")
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			for _, b := range buf[:n] {
				l.sigs <- unix.Signal(b)
			}
		}
	}()
	return nil
}

// ignoreFaults has the Go runtime ignore SIGILL, SIGTRAP, SIGBUS, SIGFPE
// and SIGSEGV sent by kill(2) (tini's list; spec §2.3, §5.2), which
// [sig.RawPipe] leaves to it: without this, one sent to init would end it,
// and the container. The runtime's own faults still crash as they should
// (signal.Ignore affects only signals another process sends: these have
// no _SigNotify in runtime/sigtab_linux_generic.go, so their handler stays
// the runtime's).
func ignoreFaults() {
	signal.Ignore(unix.SIGILL, unix.SIGTRAP, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV)
}

// reap collects every dead child: an owned pid's status goes to its owner,
// any other is an orphan (-w warns). It reports whether children remain.
func (l *loop) reap() (left bool, err error) {
	for {
		var ws unix.WaitStatus
		pid, err := sys.Wait4(-1, &ws, unix.WNOHANG)
		switch {
		case errors.Is(err, unix.ECHILD):
			return false, nil
		case err != nil:
			return true, exitcode.Errorf(exitcode.Sys, "unable to wait for children: %w", sys.Errno(err))
		case pid <= 0:
			return true, nil
		}
		if f, ok := l.owners[pid]; ok {
			delete(l.owners, pid)
			f(ws)
		} else if l.o.warnOrph {
			l.o.warn("reaped orphan %d (exit %d)", pid, statusCode(ws))
		}
	}
}

// signalRest sends s to every process left: as a namespace's PID 1 that is
// everyone but init (kill(2) with pid -1); otherwise every descendant,
// found through the parent links of /proc/PID/stat.
func (l *loop) signalRest(s unix.Signal) int {
	if l.pid1 {
		_ = unix.Kill(-1, s)
		return -1
	}
	n := 0
	for _, pid := range descendants() {
		if unix.Kill(pid, s) == nil {
			n++
		}
	}
	return n
}

// descendants lists the live descendants of init.
func descendants() []int {
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	var l []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if ok, _ := pidfile.IsDescendant(pid, self); ok {
			l = append(l, pid)
		}
	}
	return l
}

// terminate ends every process left (spec §2.4): SIGTERM and SIGCONT, a
// wait until none is left or grace has passed (a second SIGTERM or SIGINT
// cuts it short), then SIGKILL until none is left. Signals other than
// those are dropped: there is nobody left to forward them to.
func (l *loop) terminate(grace time.Duration) error {
	left, err := l.reap()
	if err != nil || !left {
		return err
	}
	if grace > 0 {
		l.signalRest(unix.SIGTERM)
		l.signalRest(unix.SIGCONT)
		t := time.NewTimer(grace)
		defer t.Stop()
	wait:
		for left {
			select {
			case s := <-l.sigs:
				switch s {
				case unix.SIGCHLD:
					if left, err = l.reap(); err != nil {
						return err
					}
				case unix.SIGTERM, unix.SIGINT:
					break wait
				}
			case <-t.C:
				l.o.warn("processes left after %d ms, sending SIGKILL", grace.Milliseconds())
				break wait
			}
		}
	}
	return l.killAll(left)
}

// killAll sends SIGKILL until no child is left, reaping each as it dies. A
// process killed here cannot fork again, but one may have forked between
// the listing and the kill, so every death is followed by another round.
func (l *loop) killAll(left bool) error {
	for left {
		l.signalRest(unix.SIGKILL)
		var ws unix.WaitStatus
		pid, err := sys.Wait4(-1, &ws, 0)
		switch {
		case errors.Is(err, unix.ECHILD):
			left = false
		case err != nil:
			return exitcode.Errorf(exitcode.Sys, "unable to wait for children: %w", sys.Errno(err))
		default:
			if f, ok := l.owners[pid]; ok {
				delete(l.owners, pid)
				f(ws)
			}
		}
	}
	return nil
}
