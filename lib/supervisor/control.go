package supervisor

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/sys"
)

// letterSignals are the "sig" commands of §3.6: a signal to run's pid, 0
// for other bytes. An array, which the linker lays out as data, not a map,
// which every process would build at start (issue 16 item 3).
var letterSignals = [256]unix.Signal{
	'a': unix.SIGALRM, 'b': unix.SIGABRT, 'q': unix.SIGQUIT, 'h': unix.SIGHUP,
	'k': unix.SIGKILL, 't': unix.SIGTERM, 'i': unix.SIGINT, '1': unix.SIGUSR1,
	'2': unix.SIGUSR2, 'y': unix.SIGWINCH,
}

// readControl reads and applies control bytes until the fifo is empty
// (§2.5: applied in order; unknown bytes ignored). It reports whether
// supervise must exit now.
func (s *Service) readControl(buf []byte) (bool, error) {
	for {
		n, err := unix.Read(s.ctlR, buf)
		if errors.Is(err, unix.EAGAIN) || n == 0 {
			return false, nil
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return true, errorf("unable to read supervise/control: %w", err)
		}
		for _, c := range buf[:n] {
			if s.command(c) {
				return true, nil
			}
		}
	}
}

// up reports whether run is the current process (UP or LASTUP).
func (s *Service) up() bool { return s.st == stUp || s.st == stLastUp }

// command applies one control byte (§3.6); true means exit now.
func (s *Service) command(c byte) bool {
	if sg := letterSignals[c]; sg != 0 {
		if s.up() {
			s.sig(sg)
		}
		return false
	}
	switch c {
	case 'p', 'c':
		if s.up() {
			sg := unix.SIGSTOP
			if c == 'c' {
				sg = unix.SIGCONT
			}
			s.sig(sg)
			s.setFlag(servicedir.FlagPaused, c == 'p')
			s.writeStatus()
		}
	case 'P', 'C', 'K':
		if s.up() {
			sg := map[byte]unix.Signal{'P': unix.SIGSTOP, 'C': unix.SIGCONT, 'K': unix.SIGKILL}[c]
			_ = unix.Kill(-s.pgid, sg)
			if c != 'K' {
				s.setFlag(servicedir.FlagPaused, c == 'P')
				s.writeStatus()
			}
		}
	case 'r':
		if s.up() {
			s.sig(s.signal("down-signal", unix.SIGTERM))
		}
	case 'l':
		if s.up() {
			s.sig(s.signal("reload-signal", unix.SIGHUP))
		}
	case 'o':
		s.setWantUp(false)
		if s.st == stDown {
			s.start()
		}
	case 'u':
		s.setWantUp(true)
		if s.st == stDown {
			s.start()
		}
	case 'd':
		s.fdstoreStop() // fd store: d, D, x and SIGTERM empty it (§3.11)
		s.setWantUp(false)
		s.down()
	case 'D':
		s.fdstoreStop()
		s.touchDown(true)
		s.setWantUp(false)
		s.down()
	case 'U':
		s.touchDown(false)
		s.setWantUp(true)
		if s.st == stDown {
			s.start()
		}
	case 'O':
		s.setWantUp(false)
	case 'Q':
		// s6-supervise 2.15 ignores Q (an off-by-one in its letter
		// lookup); gotools does what 2.11 did and the docs say.
		s.touchDown(true)
		s.setWantUp(false)
	case 'x':
		s.fdstoreStop()
		return s.lastOrExit()
	}
	return false
}

func (s *Service) setWantUp(on bool) {
	if (s.status.Flags&servicedir.FlagWantUp != 0) != on {
		s.setFlag(servicedir.FlagWantUp, on)
		s.writeStatus()
	}
	if !on {
		s.nextStart = time.Time{}
	}
}

// down sends run its down-signal then SIGCONT, and arms timeout-kill.
func (s *Service) down() {
	if !s.up() {
		return
	}
	s.dying = true
	s.sig(s.signal("down-signal", unix.SIGTERM))
	s.sig(unix.SIGCONT)
	if t := s.killTimeout(); t > 0 {
		s.killAt = time.Now().Add(t)
	}
}

// killGroupOrPid sends sg to run, or to its process group with
// flag-timeout-killpg.
func (s *Service) killGroupOrPid(sg unix.Signal) {
	if s.present("flag-timeout-killpg") {
		_ = unix.Kill(-s.pgid, sg)
		return
	}
	s.sig(sg)
}

// sig sends sg to run, or through its pidfd to an adopted daemon, so that
// a recycled pid is never signalled (§3.10).
func (s *Service) sig(sg unix.Signal) {
	if s.daemon != nil {
		_ = s.daemon.Signal(sg)
		return
	}
	_ = sys.Kill(s.pid, sg)
}

// touchDown creates or removes the down file; a failure warns and the
// command goes on (§3.6).
func (s *Service) touchDown(create bool) {
	var err error
	if create {
		var f *os.File
		if f, err = os.OpenFile(s.p("down"), os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
			f.Close()
		}
	} else if err = os.Remove(s.p("down")); errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if err != nil {
		s.env.Warnf("unable to %s down: %w", map[bool]string{true: "create", false: "unlink"}[create], sys.Errno(err))
	}
}

// lastOrExit is x: exit now when down, else once down and ready, with
// stdin and stdout moved to /dev/null (§3.6).
func (s *Service) lastOrExit() bool {
	switch s.st {
	case stDown:
		s.exit()
		return true
	case stUp:
		s.st = stLastUp
	case stFinish:
		s.st = stLastFinish
	}
	s.nullStdio()
	return false
}

// onTerm: down and exit (§3.7).
func (s *Service) onTerm() bool {
	s.fdstoreStop()
	switch s.st {
	case stDown:
		s.exit()
		return true
	case stUp, stLastUp:
		s.st = stLastUp
		s.setWantUp(false)
		s.down()
	case stFinish:
		s.st = stLastFinish
		s.nullStdio()
	}
	return false
}

// onHup: exit once down, leaving the service alone (§3.7): the same as x.
func (s *Service) onHup() bool { return s.lastOrExit() }

// nullStdio points stdin and stdout at /dev/null, so that a supervise on
// its way out does not keep a logger's pipe open. In a tree (one process
// for every service), only the service's own stdin and stdout change.
func (s *Service) nullStdio() {
	if s.stdio != nil {
		if s.devNull == nil {
			f, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
			if err != nil {
				return
			}
			s.devNull = f
		}
		s.stdio[0], s.stdio[1] = s.devNull, s.devNull
		return
	}
	fd, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	_ = unix.Dup3(fd, 0, 0)
	_ = unix.Dup3(fd, 1, 0)
	unix.Close(fd)
}
