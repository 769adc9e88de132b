package supervisor

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/decimal"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/servicedir"
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

// Service is the supervision of one service directory: the state machine
// of s6-supervise (spec/supervise.md §3), driven by a [Loop]. It owns the
// directory's supervise/lock, control FIFO, status, event fifodir, death
// tally and fd store, exactly as a supervise process would.
type Service struct {
	env    *cli.Env
	dir    string // DIR as given: ./run's argument, messages
	at     string // the prefix of DIR's files: "" after a chdir, else "DIR/"
	applet string // the name supervise was run as: s6-supervise says so
	// stdio is run's and finish's stdin, stdout and stderr, nil for the
	// process's own (a supervise process); devNull replaces the first two
	// once the supervisor is on its way out (x, SIGHUP).
	stdio   []*os.File
	devNull *os.File

	lock       *os.File
	ctlR, ctlW int
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
	ended       bool          // the supervision is over: x, a signal, an error
	opening     bool          // Open's start: s not emitted yet
	id          uint64        // the loop's key for it (epoll data)
	touched     bool          // to be synced at the end of the turn
	watched     []int         // the fds registered in the loop's epoll set
	err         error         // why it ended, if that was a failure

	store  fdStore // the fd store and its notify socket (§3.11, fdstore.go)
	loop   *Loop
	own    *scratch                    // scratch buffers when there is no loop
	event  string                      // the path of event/, for emit
	polled struct{ notif, daemon int } // the fds pollFDs added, or -1
}

// Config is what [Open] needs besides the directory.
type Config struct {
	Env    *cli.Env // messages; Env.Name is their prefix ("supervise DIR")
	Dir    string   // the service directory
	Applet string   // "supervise" or "s6-supervise", for the lock refusal
	// InDir: the process's working directory is Dir already (a supervise
	// process chdirs there); otherwise paths are Dir + "/" + name.
	InDir bool
	// Stdio is the service's stdin, stdout and stderr; nil: the process's.
	Stdio []*os.File
}

// Open takes over the service directory (§2.1, §3.1 steps 4 and 5): it
// takes supervise/lock, makes event/ and the control FIFO, truncates the
// death tally, writes the never-started status, emits s, and adds the
// service to loop, which starts it at once unless down exists. A conflict
// (another supervisor, a file of the wrong type) is an exitcode error of
// code 100, a failed system call one of 111; then nothing is held.
func Open(loop *Loop, c Config) (*Service, error) {
	s := &Service{env: c.Env, dir: c.Dir, applet: c.Applet, stdio: c.Stdio, notif: -1, ctlR: -1, ctlW: -1, loop: loop}
	if !c.InDir {
		s.at = c.Dir + "/"
	}
	s.store.sock = -1
	s.event = s.p("event")
	s.throttle = throttleHook()
	if err := s.setupDirs(); err != nil {
		s.release()
		return nil, err
	}
	if err := ftrig.Clean(s.p("event")); err != nil {
		s.env.Warnf("unable to clean event: %w", sys.Errno(err))
	}
	if err := s.truncateTally(); err != nil {
		s.release()
		return nil, exitcode.Errorf(exitcode.Sys, "unable to truncate supervise/death_tally: %w", sys.Errno(err))
	}
	wantUp := true
	if _, err := os.Lstat(s.p("down")); err == nil {
		wantUp = false
	} else if !errors.Is(err, os.ErrNotExist) {
		s.release()
		return nil, exitcode.Errorf(exitcode.Sys, "unable to stat down: %w", sys.Errno(err))
	}
	// Never started: pid 0, ready, wantup from down, not paused: the
	// bytes s6-supervise 2.11 writes (flags 0x08, 0x0c without down), so
	// real s6-svstat does not print "paused true" (issue 14 item 5).
	now := tai.Now()
	s.status = servicedir.Status{Stamp: now, ReadyStamp: now, Flags: servicedir.FlagReady}
	s.setFlag(servicedir.FlagWantUp, wantUp)
	loop.add(s)
	if wantUp {
		// One status write for s and u when run starts at once: the
		// never-started status would be replaced at once, and each
		// replaced inode slows every later file creation on ext4 (500
		// services: quadratic). start emits s before u.
		s.opening = true
		s.start()
		if !s.opening {
			return s, nil
		}
		s.opening = false
	}
	s.writeStatus()
	s.emit("s")
	return s, nil
}

// p is the path of a file of the service directory.
func (s *Service) p(name string) string { return s.at + name }

// chdir is the directory run and finish start in: "" (the process's)
// for a supervise process, which is in DIR already.
func (s *Service) chdir() string {
	if s.at == "" {
		return ""
	}
	return s.dir
}

// files is run's and finish's fds 0, 1, 2, in the scratch buffer: the
// caller may append to it, and clears it after the spawn.
func (s *Service) files() []*os.File {
	sc := s.scratch()
	if s.stdio != nil {
		sc.files = append(sc.files[:0], s.stdio...)
	} else {
		sc.files = append(sc.files[:0], os.Stdin, os.Stdout, os.Stderr)
	}
	return sc.files
}

// Dir returns the service directory as given to [Open].
func (s *Service) Dir() string { return s.dir }

// Ended reports whether the supervision is over (x, a signal, an error);
// the directory is then no longer supervised: its lock is released.
func (s *Service) Ended() bool { return s.ended }

// Err is why the supervision ended, if that was a failure.
func (s *Service) Err() error { return s.err }

// PID returns the pid of run (or finish, or the adopted daemon), 0 if none.
func (s *Service) PID() int { return s.pid }

// release closes everything the service holds, the lock last.
func (s *Service) release() {
	for _, fd := range []*int{&s.ctlR, &s.ctlW} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	s.closeNotif()
	s.closeNotify()
	for _, f := range s.store.fds {
		unix.Close(f.fd)
	}
	s.store.fds = nil
	if s.daemon != nil {
		s.daemon.Close()
		s.daemon = nil
	}
	if s.devNull != nil {
		s.devNull.Close()
		s.devNull = nil
	}
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

// end ends the supervision: final status and x (unless it failed before
// that), then everything is released.
func (s *Service) end(err error) {
	if s.ended {
		return
	}
	s.touch()
	s.ended, s.err = true, err
	s.release()
	if s.loop != nil {
		s.loop.ended(s)
	}
}

// pollFDs adds the service's fds to poll's set, and records their layout
// for handle: a signal handled in between (a launcher's death adopting a
// daemon) may change what the service holds.
func (s *Service) pollFDs(fds []unix.PollFd) []unix.PollFd {
	fds = append(fds, unix.PollFd{Fd: int32(s.ctlR), Events: unix.POLLIN})
	s.polled.notif, s.polled.daemon = -1, -1
	if s.notif >= 0 {
		s.polled.notif = s.notif
		fds = append(fds, unix.PollFd{Fd: int32(s.notif), Events: unix.POLLIN})
	}
	if s.daemon != nil {
		s.polled.daemon = s.daemon.Fd()
		fds = append(fds, unix.PollFd{Fd: int32(s.daemon.Fd()), Events: unix.POLLIN})
	}
	return s.store.pollFDs(fds)
}

// drainNotify reads the notify socket before any reaping: a message sent
// just before run died still comes from a known session (§3.11).
func (s *Service) drainNotify() {
	if s.store.sock >= 0 {
		s.readNotify()
	}
}

// handle acts on what poll reported for the service's part of the set, as
// pollFDs built it; an fd closed or replaced since is left alone.
func (s *Service) handle(fds []unix.PollFd, buf []byte) {
	ctl := fds[0]
	fds = fds[1:]
	notif, daemon := false, false
	if s.polled.notif >= 0 {
		notif = fds[0].Revents != 0 && s.notif == s.polled.notif
		fds = fds[1:]
	}
	if s.polled.daemon >= 0 {
		daemon = fds[0].Revents != 0 && s.daemon != nil && s.daemon.Fd() == s.polled.daemon
		fds = fds[1:]
	}
	s.fdstoreEvents(fds, false)
	if ctl.Revents != 0 {
		if done, err := s.readControl(buf); done || err != nil {
			s.end(err)
			return
		}
	}
	if notif && s.notif >= 0 {
		s.readNotification(buf)
	}
	if daemon && s.daemon != nil {
		s.daemonGone()
	}
}

// Signal applies a signal sent to the supervisor (§3.7): SIGTERM, SIGHUP,
// SIGQUIT and SIGINT; others are ignored.
func (s *Service) Signal(sg unix.Signal) {
	if s.ended {
		return
	}
	s.touch()
	switch sg {
	case unix.SIGTERM:
		if s.onTerm() {
			s.end(nil)
		}
	case unix.SIGHUP:
		if s.onHup() {
			s.end(nil)
		}
	case unix.SIGQUIT:
		s.exit()
		s.end(nil)
	case unix.SIGINT:
		if s.st != stDown && s.pgid > 0 {
			_ = unix.Kill(-s.pgid, unix.SIGINT)
		}
		s.exit()
		s.end(nil)
	}
}

// Control applies control bytes as if written to supervise/control.
func (s *Service) Control(b []byte) {
	s.touch()
	for _, c := range b {
		if s.ended {
			return
		}
		if s.command(c) {
			s.end(nil)
		}
	}
}

// reaped is run's, finish's or the daemon's death: it reports whether pid
// was the service's.
func (s *Service) reaped(pid int, ws unix.WaitStatus) bool {
	if s.ended || pid != s.pid || s.st == stDown {
		return false
	}
	s.touch()
	switch {
	case (s.st == stUp || s.st == stLastUp) && s.launching:
		s.launcherDied(ws)
	case s.st == stUp || s.st == stLastUp:
		s.runDied(ws)
	case s.st == stFinish || s.st == stLastFinish:
		s.finishDied(ws)
	}
	if s.quit {
		s.end(nil)
	}
	return true
}

// next is the nearest pending deadline, zero if none.
func (s *Service) next() time.Time {
	var next time.Time
	for _, t := range []time.Time{s.nextStart, s.killAt, s.finishAt} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// deadlines acts on every deadline that has passed.
func (s *Service) deadlines() bool {
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

func (s *Service) wantUp() bool { return s.status.Flags&servicedir.FlagWantUp != 0 }

func (s *Service) setFlag(f byte, on bool) {
	if on {
		s.status.Flags |= f
	} else {
		s.status.Flags &^= f
	}
}

// writeStatus writes supervise/status atomically (§2.6): status.new, then
// rename. A failure warns and keeps the in-memory state.
func (s *Service) writeStatus() {
	sc := s.scratch()
	sc.out = s.status.Append(sc.out[:0])
	if err := s.writeFile("supervise/status", sc.out); err != nil {
		s.env.Warnf("unable to write supervise/status: %w", sys.Errno(err))
	}
}

// truncateTally empties the death tally in place, as s6-supervise does at
// start: no temporary file, so no inode is created and none deleted (on
// ext4, each recently deleted inode slows every later creation).
func (s *Service) truncateTally() error {
	fd, err := sys.Open(s.p("supervise/death_tally"), unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NONBLOCK, 0o666)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// writeTally writes the last max records of the death tally.
func (s *Service) writeTally(max int) error {
	sc := s.scratch()
	sc.out = servicedir.AppendDeathTally(sc.out[:0], s.tally, max)
	return s.writeFile("supervise/death_tally", sc.out)
}

// emit announces events to the event fifodir's listeners, after the status
// that they describe was written.
func (s *Service) emit(ev string) {
	event := s.event
	if event == "" {
		event = s.p("event") // a test's bare Service
	}
	if _, err := s.scratch().notifier.Notify(event, []byte(ev)); err != nil {
		s.env.Warnf("unable to notify event: %w", sys.Errno(err))
	}
	if s.loop != nil && s.loop.Events != nil {
		s.loop.Events(s, ev)
	}
}

// exit writes the final status and emits x, supervise's last act.
func (s *Service) exit() {
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
