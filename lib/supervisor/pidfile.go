package supervisor

import (
	"bytes"
	"errors"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/pidfile"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/sys"
	"github.com/gotools-dev/gotools/lib/tai"
)

// The pidfile extension (spec/supervise.md §3.10): ./run is a launcher that
// forks the daemon, writes its pid to a pid file and exits 0; supervise,
// a subreaper while such a service runs, adopts the daemon through the
// same code as background-watch (lib/pidfile, proc.Adopt).

// pidfileConf reads DIR/pidfile: the pid file's path, absolute or relative
// to DIR, then "\n"; 1-511 bytes, no NUL. It returns "" with ok for no
// pidfile file, and ok = false for an invalid one (already warned).
func (s *Service) pidfileConf() (path string, ok bool) {
	b, err := s.readConf("pidfile")
	if errors.Is(err, unix.ENOENT) {
		return "", true
	}
	if err != nil {
		// Unreadable is as bad as invalid: a plain start would relaunch
		// a forking daemon in a loop (issue 20 item 12).
		s.retry("unable to read pidfile: %w (retrying in 60 seconds)", err)
		return "", false
	}
	line := bytes.TrimSuffix(b, []byte{'\n'})
	if len(b) == 0 || len(b) > 511 || len(line) == 0 || bytes.IndexByte(line, 0) >= 0 || bytes.IndexByte(line, '\n') >= 0 {
		s.retry("invalid pidfile: %s (retrying in 60 seconds)", servicedir.Quote(b))
		return "", false
	}
	path = filepath.Clean(string(line))
	if !filepath.IsAbs(path) {
		path = s.p(path) // relative to DIR
	}
	return path, true
}

// setSubreaper is on only while a pidfile service is launched, so ordinary
// services keep the process tree s6 users expect.
func (s *Service) setSubreaper(on bool) {
	if s.subreaper == on {
		return
	}
	s.subreaper = on
	s.loop.subreaper(on)
}

func exited(code int) unix.WaitStatus { return unix.WaitStatus(code << 8) }

// launcherDied handles the end of a pidfile service's launcher.
func (s *Service) launcherDied(ws unix.WaitStatus) {
	s.launching = false
	if !ws.Exited() || ws.ExitStatus() != 0 {
		if ws.Exited() {
			s.env.Warnf("./run (launcher) exited %d", ws.ExitStatus())
		} else {
			s.env.Warnf("./run (launcher) crashed with signal %s", sig.Name(ws.Signal()))
		}
		_ = pidfile.Remove(s.pidfilePath)
		s.runDied(ws)
		return
	}
	pid, err := pidfile.Read(s.pidfilePath)
	if err != nil {
		s.env.Warnf("pidfile %s does not contain a valid pid", s.pidfilePath)
		s.runDied(exited(104))
		return
	}
	p, err := proc.Adopt(pid)
	if errors.Is(err, proc.ErrExited) {
		// Dead already, and our child: its status is the answer.
		var dws unix.WaitStatus
		if wpid, werr := sys.Wait4(pid, &dws, unix.WNOHANG); werr == nil && wpid == pid {
			s.pgid = pid
			s.runDied(dws)
			return
		}
	}
	if err != nil {
		s.env.Warnf("pid %d read from %s is not a live descendant", pid, s.pidfilePath)
		s.runDied(exited(111))
		return
	}
	s.daemon = p
	s.pid = pid
	s.pgid = pid
	if g, err := unix.Getpgid(pid); err == nil {
		s.pgid = g
	}
	s.status.PID = uint64(pid)
	s.writeStatus()
	if s.present("notification-fd") {
		s.readyAt = timeNow()
		s.status.ReadyStamp = tai.Now()
		s.setFlag(servicedir.FlagReady, true)
		s.writeStatus()
		s.emit("U")
	}
	if s.dying {
		s.down() // a d during the launch applies to the daemon too
	}
}

// daemonGone is called when the daemon's pidfd polls readable: if the
// SIGCHLD reaping did not see it, another descendant took its status.
func (s *Service) daemonGone() {
	if s.loop.reap(); s.daemon == nil {
		return
	}
	if _, err := sys.Wait4(s.pid, new(unix.WaitStatus), unix.WNOHANG); errors.Is(err, unix.ECHILD) {
		s.env.Warnf("exit status of daemon %d unknown", s.pid)
		s.runDied(exited(111))
	}
}
