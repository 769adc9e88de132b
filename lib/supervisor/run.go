package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/sys"
	"github.com/gotools-dev/gotools/lib/tai"
)

// start spawns ./run DIR (§3.2). A failure warns and retries in 60 s;
// nothing is written or emitted.
func (s *Service) start() {
	s.nextStart = time.Time{}
	pf, ok := s.pidfileConf()
	if !ok {
		return
	}
	newns := s.present("flag-newpidns")
	if newns && pf != "" {
		// The launcher would be the namespace's init: its exit would
		// kill the daemon it forked.
		s.retry("pidfile and flag-newpidns cannot be used together (retrying in 60 seconds)")
		return
	}
	sc := s.scratch()
	sc.argv = append(sc.argv[:0], "./run", s.dir)
	argv, path := sc.argv, ""
	lockFD := s.fdNumber("lock-fd")
	notifFD := -1
	if pf == "" {
		notifFD = s.fdNumber("notification-fd")
	}
	if lockFD >= 0 && lockFD == notifFD {
		s.retry("notification-fd and lock-fd are the same (retrying in 60 seconds)")
		return
	}
	if lockFD >= 0 {
		if err := s.serviceLock(); err != nil {
			s.retry("%w (retrying in 60 seconds)", err)
			return
		}
		// setlock blocks until it holds the lock, then becomes ./run with
		// the lock on lockFD; its pid is run's.
		sc.argv = append(sc.argv[:0], "setlock", "-d", strconv.Itoa(lockFD), "--", serviceLockFile, "./run", s.dir) // run in DIR
		argv = sc.argv
		path = proc.Self()
	}
	// fd store: bind the notify socket if notify-socket asks for one.
	if !s.notifyOn() {
		return
	}
	files := s.files()
	notifW := -1 // the pipe's write end, run's notification-fd
	if n := notifFD; n >= 0 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			s.retry("unable to create the notification pipe: %w (retrying in 60 seconds)", err)
			return
		}
		for len(files) <= n {
			files = append(files, nil)
		}
		sc.files = files // keep the room for the next start
		notifW = p[1]
		s.notif = p[0]
	}
	// fd store: NOTIFY_SOCKET, and stored fds through fdrestore (§3.11).
	argv, path, env, files, dups, ok := s.fdstoreSpawn(argv, path, files, notifFD, lockFD)
	if !ok {
		if notifW >= 0 {
			unix.Close(notifW)
		}
		s.closeNotif()
		return
	}
	// The fd table as raw fds: the pipe needs no *os.File.
	sc.fds = sc.fds[:0]
	for i, f := range files {
		fd := -1
		switch {
		case i == notifFD:
			fd = notifW
		case f != nil:
			fd = int(f.Fd())
		}
		sc.fds = append(sc.fds, fd)
	}
	// The launcher's daemon must come back to us when the launcher exits.
	s.setSubreaper(pf != "")
	if path == "" {
		// ./run, relative to DIR, the child's working directory: not
		// looked up from ours.
		path = argv[0]
	}
	pid, err := sc.spawner.Spawn(argv, proc.Attr{FDs: sc.fds, Env: env, Setsid: true, NewPIDNS: newns, Path: path, Dir: s.chdir()})
	runtime.KeepAlive(files) // their fds were in the table
	clear(files)             // scratch: keep no file alive
	if notifW >= 0 {
		unix.Close(notifW)
	}
	for _, f := range dups {
		f.Close()
	}
	if err != nil {
		s.closeNotif()
		// s6-supervise waits 10 seconds after a failed spawn of run.
		s.env.Warnf("unable to spawn ./run: %w (retrying in 10 seconds)", sys.Errno(err))
		s.nextStart = time.Now().Add(spawnRetry)
		return
	}
	s.pid = pid
	s.pgid = pid
	s.store.runSID = pid // fd store: run leads its session
	s.st = stUp
	s.launching = pf != ""
	s.pidfilePath = pf
	s.dying = false
	s.readyAt = time.Time{}
	s.status.PID = uint64(pid)
	s.status.Stamp = tai.Now()
	s.setFlag(servicedir.FlagReady, false)
	s.setFlag(servicedir.FlagPaused, false)
	s.setFlag(servicedir.FlagFinishing, false)
	s.writeStatus()
	if s.opening {
		s.opening = false
		s.emit("s")
	}
	s.emit("u")
}

// serviceLockFile is the lock that lock-fd makes run hold (§3.2).
const serviceLockFile = "supervise/service-lock"

// serviceLock prepares supervise/service-lock for a start with lock-fd:
// it creates the file, empties it if a previous instance wrote to it, and
// warns when another instance still holds it (the new run will wait).
func (s *Service) serviceLock() error {
	fd, err := sys.Openat(unix.AT_FDCWD, s.cpath(serviceLockFile), unix.O_WRONLY|unix.O_CREAT|unix.O_NONBLOCK, 0o644)
	if err != nil {
		return fmt.Errorf("unable to open %s: %w", serviceLockFile, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("unable to stat %s: %w", serviceLockFile, err)
	}
	if st.Size > 0 {
		s.env.Warnf("a previous instance of the service wrote to the lock file")
		if err := unix.Ftruncate(fd, 0); err != nil {
			return fmt.Errorf("unable to truncate %s: %w", serviceLockFile, err)
		}
	}
	held, err := lock.HeldFD(fd)
	if err != nil {
		return fmt.Errorf("unable to check the lock on %s: %w", serviceLockFile, err)
	}
	if held {
		s.env.Warnf("another instance of the service is still running; the new one will wait for its lock")
	}
	return nil
}

// retry warns and schedules the next start attempt in 60 s (§3.5).
func (s *Service) retry(format string, args ...any) {
	s.env.Warnf(format, args...)
	s.nextStart = time.Now().Add(retryDelay)
}

func (s *Service) closeNotif() {
	if s.notif >= 0 {
		unix.Close(s.notif)
	}
	s.notif = -1
}

// readNotification reads the notification pipe (§3.3): the first chunk
// holding a newline makes the service ready; EOF or an error closes the
// pipe silently.
func (s *Service) readNotification(buf []byte) {
	n, err := sys.Read(s.notif, buf)
	if n <= 0 || err != nil {
		s.closeNotif()
		return
	}
	if bytes.IndexByte(buf[:n], '\n') < 0 {
		return
	}
	s.closeNotif()
	s.markReady()
}

// markReady is readiness (§3.3), from the notification pipe or from
// READY=1 on the notify socket (§3.11).
func (s *Service) markReady() {
	s.readyAt = time.Now()
	s.status.ReadyStamp = tai.Now()
	s.setFlag(servicedir.FlagReady, true)
	s.writeStatus()
	s.emit("U")
}

func (s *Service) ready() bool { return s.status.Flags&servicedir.FlagReady != 0 }

// runDied records run's death, then spawns ./finish (§3.4).
func (s *Service) runDied(ws unix.WaitStatus) {
	pgid := s.pgid
	s.launching = false
	if s.daemon != nil {
		s.daemon.Close()
		s.daemon = nil
	}
	s.killAt = time.Time{}
	s.closeNotif()
	now := tai.Now()
	s.status.WStat = uint16(ws)
	s.status.Stamp = now
	s.setFlag(servicedir.FlagPaused, false)
	s.setFlag(servicedir.FlagReady, false)
	if max := s.maxDeathTally(); max > 0 {
		s.tally = append(s.tally, servicedir.DeathOf(now, ws))
		if len(s.tally) > max {
			// Shifted in place: reslicing forward would shrink the
			// capacity and reallocate every few deaths.
			s.tally = s.tally[:copy(s.tally, s.tally[len(s.tally)-max:])]
		}
		if err := s.writeTally(max); err != nil {
			s.env.Warnf("unable to write supervise/death_tally: %w", sys.Errno(err))
		}
	}
	// No finish (the common case): down at once. The spawn would fail
	// with ENOENT, silently, after a fork (a finish appearing after this
	// stat is seen at the next death, as one appearing after a failed
	// spawn would be).
	var st unix.Stat_t
	if err := sys.Fstatat(unix.AT_FDCWD, s.cpath("finish"), &st, 0); errors.Is(err, unix.ENOENT) {
		s.downAndReady("dD")
		return
	}
	code, signo := ws.ExitStatus(), 0
	if ws.Signaled() {
		code, signo = 256, int(ws.Signal())
	}
	args := []string{"finish", strconv.Itoa(code), strconv.Itoa(signo), s.dir, strconv.Itoa(pgid)}
	files := s.files()
	pid, err := s.scratch().spawner.Spawn(args, proc.Attr{Path: "./finish", Setsid: true, Dir: s.chdir(), Files: files})
	clear(files)
	if err != nil {
		if !isNotExist(err) {
			s.env.Warnf("unable to spawn ./finish: %w", sys.Errno(err))
		}
		s.downAndReady("dD")
		return
	}
	s.pid = pid
	s.pgid = pid
	if s.st == stLastUp {
		s.st = stLastFinish
	} else {
		s.st = stFinish
	}
	s.status.PID = uint64(pid)
	s.setFlag(servicedir.FlagFinishing, true)
	if t := s.finishTimeout(); t > 0 {
		s.finishLimit = t // the warning names it: the file is read once
		s.finishAt = time.Now().Add(t)
	}
	s.writeStatus()
	s.emit("d")
}

// finishDied ends a cycle: finish exiting 125 is a permanent failure.
func (s *Service) finishDied(ws unix.WaitStatus) {
	s.finishAt = time.Time{}
	if ws.Exited() && ws.ExitStatus() == 125 {
		s.setFlag(servicedir.FlagWantUp, false)
		s.downAndReady("OD")
		return
	}
	s.downAndReady("D")
}

// downAndReady makes the service down and ready, announces it with ev,
// then exits (a LAST state) or schedules the next start (§3.4, §3.5).
func (s *Service) downAndReady(ev string) {
	last := s.st == stLastUp || s.st == stLastFinish
	s.pid = 0
	s.st = stDown
	s.status.PID = 0
	s.setFlag(servicedir.FlagFinishing, false)
	s.setFlag(servicedir.FlagReady, true)
	s.status.ReadyStamp = tai.Now()
	s.writeStatus()
	s.emit(ev)
	s.fdstoreDown() // fd store: emptied now if d, D, x or SIGTERM asked
	if last {
		s.exit()
		s.quit = true
		return
	}
	if s.wantUp() {
		// A service ready for at least a second restarts at once;
		// otherwise it waits a second (§3.5 throttle).
		next := time.Now().Add(s.throttle)
		if !s.readyAt.IsZero() {
			if t := s.readyAt.Add(s.throttle); t.Before(next) {
				next = t
			}
		}
		s.nextStart = next
	}
}

func isNotExist(err error) bool { return errors.Is(err, unix.ENOENT) }
