package supervise

import (
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/decimal"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/sys"
	"github.com/gotools-dev/gotools/lib/tai"
)

// state is where the service is in spec/supervise.md §3.5's machine.
type state int

const (
	stDown state = iota
	stUp
	stFinish
	stLastUp     // exit once down and ready
	stLastFinish // exit once down and ready
)

// Timings of §3.5.
const (
	defaultThrottle = time.Second
	retryDelay      = 60 * time.Second
	spawnRetry      = 10 * time.Second // run could not be spawned, as s6
	killRepeat      = 5 * time.Second
	defaultFinish   = 5000 * time.Millisecond
)

type service struct {
	env    *cli.Env
	dir    string
	applet string // the name supervise was run as: s6-supervise says so

	lock       *os.File
	ctlR, ctlW int
	sigR       int // read end of the signal self-pipe
	notif      int // read end of the notification pipe, or -1

	st       state
	throttle time.Duration // the restart throttle: 1 s but for a test hook
	status   servicedir.Status
	pid      int // run's or finish's (the daemon's, once adopted)
	pgid     int // the process group pg commands go to
	// pidfile mode (§3.10)
	launching   bool        // the launcher is running
	pidfilePath string      // where the launcher writes the daemon's pid
	daemon      *proc.Pidfd // the adopted daemon
	subreaper   bool
	dying       bool // a d was sent while up
	tally       []servicedir.Death

	// Deadlines on the monotonic clock; zero = none.
	nextStart   time.Time
	killAt      time.Time     // timeout-kill, while dying
	finishAt    time.Time     // timeout-finish
	finishLimit time.Duration // the armed timeout-finish, for its warning
	readyAt     time.Time     // this cycle's readiness, zero if none
	quit        bool          // the service is down in a LAST state: exit

	store fdStore // the fd store and its notify socket (§3.11, fdstore.go)
	gc    gcDebt  // garbage returned before idle sleeps (memory.go)
}

func (s *service) run() error {
	// An idle supervise must not wake up: no time-forced GC (the runtime
	// forces one every 2 minutes otherwise), and a soft limit instead of
	// a percentage to bound the heap (§3.9).
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(8 << 20)
	// No heap profile: its sampled call stacks are kept for life, off
	// the heap, and a restart storm keeps adding to them.
	runtime.MemProfileRate = 0
	s.throttle = throttleHook()
	if err := fd.EnsureStdio(); err != nil {
		return err
	}
	if err := unix.Chdir(s.dir); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to chdir to %s: %w", s.dir, err)
	}
	s.notif = -1
	s.store.sock = -1 // fd store: no notify socket yet
	if err := s.setupDirs(); err != nil {
		return err
	}
	// Every signal is caught into a self-pipe that poll watches (§3.1
	// step 3): SIGCHLD, TERM, HUP, QUIT, INT and PIPE are acted on, the
	// others discarded, so none kills supervise and none is left ignored
	// for run to inherit.
	var err error
	if s.sigR, err = sig.SelfPipe(); err != nil {
		return err
	}
	if err := ftrig.Clean("event"); err != nil {
		s.env.Warnf("unable to clean event: %w", sys.Errno(err))
	}
	if err := s.writeTally(0); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to truncate supervise/death_tally: %w", sys.Errno(err))
	}
	wantUp := true
	if _, err := os.Lstat("down"); err == nil {
		wantUp = false
	} else if !errors.Is(err, os.ErrNotExist) {
		return exitcode.Errorf(exitcode.Sys, "unable to stat down: %w", sys.Errno(err))
	}

	// Never started: pid 0, ready, wantup from down, not paused: the
	// bytes s6-supervise 2.11 writes (flags 0x08, 0x0c without down), so
	// real s6-svstat does not print "paused true" (issue 14 item 5).
	now := tai.Now()
	s.status = servicedir.Status{Stamp: now, ReadyStamp: now, Flags: servicedir.FlagReady}
	s.setFlag(servicedir.FlagWantUp, wantUp)
	s.writeStatus()
	s.emit("s")
	if wantUp {
		s.start()
	}
	return s.loop()
}

// loop is supervise's one event loop: it sleeps in poll(2) on the control
// fifo, the signal pipe and the notification pipe, with a timeout only
// while a deadline is pending (§3.5: no wake-ups while idle).
func (s *service) loop() error {
	buf := make([]byte, 64)
	for {
		fds := []unix.PollFd{{Fd: int32(s.sigR), Events: unix.POLLIN}, {Fd: int32(s.ctlR), Events: unix.POLLIN}}
		if s.notif >= 0 {
			fds = append(fds, unix.PollFd{Fd: int32(s.notif), Events: unix.POLLIN})
		}
		daemonAt := -1
		if s.daemon != nil {
			daemonAt = len(fds)
			fds = append(fds, unix.PollFd{Fd: int32(s.daemon.Fd()), Events: unix.POLLIN})
		}
		storeAt := len(fds) // fd store: notify socket and watched fds last
		fds = s.store.pollFDs(fds)
		timeout := s.timeout()
		if timeout < 0 {
			s.gc.idle()
		}
		if _, err := sys.Poll(fds, timeout); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to poll: %w", sys.Errno(err))
		}
		// fd store first, and drained before any reaping: a message sent
		// just before run died still comes from a known session (§3.11).
		s.fdstoreEvents(fds[storeAt:], fds[0].Revents != 0)
		if fds[0].Revents != 0 {
			if done, err := s.readSignals(buf); done || err != nil {
				return err
			}
		}
		if fds[1].Revents != 0 {
			if done, err := s.readControl(buf); done || err != nil {
				return err
			}
		}
		if s.notif >= 0 && len(fds) > 2 && fds[2].Fd == int32(s.notif) && fds[2].Revents != 0 {
			s.readNotification(buf)
		}
		if daemonAt >= 0 && fds[daemonAt].Revents != 0 && s.daemon != nil {
			s.daemonGone()
		}
		if done := s.deadlines(); done {
			return nil
		}
		if s.quit {
			return nil
		}
	}
}

// timeout is poll's timeout in ms: until the nearest deadline, or -1.
func (s *service) timeout() int {
	var next time.Time
	for _, t := range []time.Time{s.nextStart, s.killAt, s.finishAt} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
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

// deadlines acts on every deadline that has passed.
func (s *service) deadlines() bool {
	now := time.Now()
	if !s.nextStart.IsZero() && !now.Before(s.nextStart) {
		s.nextStart = time.Time{}
		if s.st == stDown && s.wantUp() {
			s.start()
		}
	}
	if !s.killAt.IsZero() && !now.Before(s.killAt) {
		s.killAt = time.Time{}
		if s.st == stUp || s.st == stLastUp {
			s.killGroupOrPid(unix.SIGKILL)
			s.killGroupOrPid(unix.SIGCONT)
			s.killAt = now.Add(killRepeat)
		}
	}
	if !s.finishAt.IsZero() && !now.Before(s.finishAt) {
		s.finishAt = time.Time{}
		if s.st == stFinish || s.st == stLastFinish {
			s.env.Warnf("./finish ran longer than timeout-finish (%d ms); killing it", s.finishLimit.Milliseconds())
			_ = sys.Kill(s.pid, unix.SIGCONT)
			_ = sys.Kill(s.pid, unix.SIGKILL)
			s.finishAt = now.Add(killRepeat)
		}
	}
	return false
}

func (s *service) wantUp() bool { return s.status.Flags&servicedir.FlagWantUp != 0 }

func (s *service) setFlag(f byte, on bool) {
	if on {
		s.status.Flags |= f
	} else {
		s.status.Flags &^= f
	}
}

// writeStatus writes supervise/status atomically (§2.6): status.new, then
// rename. A failure warns and keeps the in-memory state.
func (s *service) writeStatus() {
	if err := writeAtomic("supervise/status", s.status.Marshal()); err != nil {
		s.env.Warnf("unable to write supervise/status: %w", sys.Errno(err))
	}
}

// writeTally writes the last max records of the death tally.
func (s *service) writeTally(max int) error {
	return writeAtomic("supervise/death_tally", servicedir.MarshalDeathTally(s.tally, max))
}

// writeAtomic writes NAME.new and renames it over NAME; NAME.new is removed
// on failure. No fsync: the state is rebuilt at every start (§2.6).
func writeAtomic(name string, b []byte) error {
	tmp := name + ".new"
	fd, err := sys.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o666)
	if err != nil {
		return err
	}
	_, werr := sys.Write(fd, b)
	cerr := unix.Close(fd)
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = unix.Rename(tmp, name)
	}
	if werr != nil {
		unix.Unlink(tmp)
	}
	return werr
}

// emit announces events to the event fifodir's listeners, after the status
// that they describe was written.
func (s *service) emit(ev string) {
	if _, err := ftrig.Notify("event", []byte(ev)); err != nil {
		s.env.Warnf("unable to notify event: %w", sys.Errno(err))
	}
}

// readSignals acts on the signals the pipe holds (§3.7). It reports
// whether supervise must exit now.
func (s *service) readSignals(buf []byte) (bool, error) {
	for {
		n, err := unix.Read(s.sigR, buf)
		if n <= 0 || err != nil {
			return false, nil
		}
		for _, b := range buf[:n] {
			switch unix.Signal(b) {
			case unix.SIGCHLD:
				if err := s.reap(); err != nil {
					return true, err
				}
				if s.quit {
					return true, nil
				}
			case unix.SIGTERM:
				if s.onTerm() {
					return true, nil
				}
			case unix.SIGHUP:
				if s.onHup() {
					return true, nil
				}
			case unix.SIGQUIT:
				s.exit()
				return true, nil
			case unix.SIGINT:
				if s.st != stDown && s.pgid > 0 {
					_ = unix.Kill(-s.pgid, unix.SIGINT)
				}
				s.exit()
				return true, nil
			}
		}
	}
}

// exit writes the final status and emits x, supervise's last act.
func (s *service) exit() {
	s.writeStatus()
	s.emit("x")
}

func errorf(format string, args ...any) error {
	return exitcode.Errorf(exitcode.Sys, format, args...)
}

// timeNow is the monotonic clock's now, for deadlines.
func timeNow() time.Time { return time.Now() }

// throttleHook is the restart throttle: 1 s, or the milliseconds in
// $GOTOOLS_SUPERVISE_THROTTLE_MS, a test hook (named in --help and the
// README) that lets the soak test restart a crashing service 1000 times.
func throttleHook() time.Duration {
	if v, ok := os.LookupEnv("GOTOOLS_SUPERVISE_THROTTLE_MS"); ok {
		if ms, ok := decimal.Parse(v, 9, 1<<30); ok {
			return time.Duration(ms) * time.Millisecond
		}
	}
	return defaultThrottle
}
