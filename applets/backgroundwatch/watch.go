package backgroundwatch

import (
	"errors"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/pidfile"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Exit codes of their own (spec/background-watch.md "Exit status").
const (
	codeBadPidfile  = 104
	codeUnsupported = 112
	codeTimeout     = 128 + int(unix.SIGKILL)
)

type watch struct {
	env     *cli.Env
	pidfile string
	prog    []string
	timeout cli.Millis
	notif   int // -1: no -d

	sigs chan os.Signal
	// dead keeps the statuses of children reaped before the daemon's pid
	// is known: the daemon may die before its launcher exits.
	dead map[int]unix.WaitStatus
}

func (w *watch) run() error {
	if w.notif >= 0 {
		// The launcher and the daemon must not inherit the fd, or
		// s6-supervise would never see it closed.
		if err := fd.SetCloexec(w.notif); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to use notification fd %d: %w", w.notif, sys.Errno(err))
		}
	}
	if err := proc.SetSubreaper(true); err != nil {
		return exitcode.Errorf(codeUnsupported, "system does not meet the requirements: unable to become a subreaper: %w", sys.Errno(err))
	}
	// Catch everything before the spawn: a signal sent between the spawn
	// and the first wait must be forwarded, not lost or fatal to us.
	w.sigs = make(chan os.Signal, 64)
	sig.NotifyAll(w.sigs)

	launcher, err := proc.Spawn(w.prog, proc.Attr{})
	if err != nil {
		return exitcode.New(proc.SpawnCode(err), err)
	}
	ws, err := w.launchPhase(launcher)
	if err != nil {
		return err
	}
	return w.watchPhase(ws)
}

// launchPhase forwards signals to the launcher until it dies, and returns
// its wait status once it has exited 0. Any other end of the launcher ends
// background-watch with the error this returns.
func (w *watch) launchPhase(launcher int) (unix.WaitStatus, error) {
	w.dead = make(map[int]unix.WaitStatus)
	var expired <-chan time.Time
	if w.timeout > 0 {
		t := time.NewTimer(time.Duration(w.timeout) * time.Millisecond)
		defer t.Stop()
		expired = t.C
	}
	killed := false
	for {
		select {
		case <-expired:
			// s6-background-watch re-sends SIGKILL in a busy loop and
			// warns each time; one kill is enough, then we sleep until
			// the SIGCHLD.
			expired = nil
			killed = true
			w.env.Warnf("%s (parent) did not exit within %d ms: killing it", w.prog[0], w.timeout)
			if err := sys.Kill(launcher, unix.SIGKILL); err != nil {
				return 0, exitcode.Errorf(exitcode.Sys, "unable to kill %s (parent): %w", w.prog[0], sys.Errno(err))
			}
		case s := <-w.sigs:
			if s != unix.SIGCHLD {
				// The launcher is our unreaped child, so its pid
				// cannot have been reused.
				_ = sys.Kill(launcher, s.(unix.Signal))
				continue
			}
			var ws unix.WaitStatus
			found := false
			err := proc.Reap(func(pid int, s unix.WaitStatus) {
				if pid == launcher {
					ws, found = s, true
				} else {
					w.dead[pid] = s
				}
			})
			if err != nil {
				return 0, exitcode.Errorf(exitcode.Sys, "unable to wait for children: %w", sys.Errno(err))
			}
			if !found {
				continue
			}
			switch {
			case killed:
				_ = pidfile.Remove(w.pidfile)
				return 0, exitcode.Exit(codeTimeout)
			case ws.Exited() && ws.ExitStatus() == 0:
				return ws, nil
			case ws.Exited():
				_ = pidfile.Remove(w.pidfile)
				w.env.Warnf("%s (parent) exited %d", w.prog[0], ws.ExitStatus())
			default:
				_ = pidfile.Remove(w.pidfile)
				w.env.Warnf("%s (parent) crashed with signal %s", w.prog[0], sig.Name(ws.Signal()))
			}
			return 0, exitcode.Exit(exitcode.Approx(ws))
		}
	}
}

// watchPhase reads the daemon's pid, checks it, notifies readiness and
// stands in for the daemon until it dies.
func (w *watch) watchPhase(unix.WaitStatus) error {
	pid, err := pidfile.Read(w.pidfile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return exitcode.Errorf(codeBadPidfile, "unable to read pidfile %s: %w", w.pidfile, sys.Errno(err))
	case errors.Is(err, pidfile.ErrInvalid):
		return exitcode.Errorf(codeBadPidfile, "pidfile %s does not contain a valid pid", w.pidfile)
	case err != nil:
		return exitcode.Errorf(exitcode.Sys, "unable to read pidfile %s: %w", w.pidfile, sys.Errno(err))
	}
	if ws, ok := w.dead[pid]; ok {
		// The daemon died, and we reaped it, before its launcher exited.
		return exitcode.Exit(exitcode.Approx(ws))
	}
	w.dead = nil

	daemon, err := w.adopt(pid)
	if err != nil {
		return err
	}
	defer daemon.Close()

	if w.notif >= 0 {
		if err := fd.Notify(w.notif); err != nil {
			return exitcode.New(exitcode.Sys, err)
		}
	}

	died := make(chan struct{})
	go func() {
		_ = daemon.Wait()
		close(died)
	}()
	for {
		select {
		case s := <-w.sigs:
			if s != unix.SIGCHLD {
				// Through the pidfd: a recycled pid is never signalled.
				_ = daemon.Signal(s.(unix.Signal))
				continue
			}
		case <-died:
			died = nil
		}
		// A SIGCHLD, or the pidfd saying the daemon is gone: reap
		// everything (other orphans are reaped and forgotten).
		ws, found, err := reapFor(pid)
		if err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to wait for children: %w", sys.Errno(err))
		}
		if found {
			return exitcode.Exit(exitcode.Approx(ws))
		}
		if died == nil {
			// The daemon is dead and was not our child to reap: a
			// process between it and us took its status.
			if _, err := sys.Wait4(pid, new(unix.WaitStatus), unix.WNOHANG); errors.Is(err, unix.ECHILD) {
				w.env.Warnf("exit status of daemon %d unknown", pid)
				return exitcode.Exit(exitcode.Sys)
			}
		}
	}
}

// adopt takes hold of the daemon pid (proc.Adopt). A daemon that died
// since its launcher exited is still our child: its status is the answer.
func (w *watch) adopt(pid int) (*proc.Pidfd, error) {
	p, err := proc.Adopt(pid)
	switch {
	case errors.Is(err, proc.ErrExited):
		if ws, found, rerr := reapFor(pid); rerr == nil && found {
			return nil, exitcode.Exit(exitcode.Approx(ws))
		}
		return nil, exitcode.Errorf(exitcode.Sys, "pid %d read from %s is not a live descendant", pid, w.pidfile)
	case err != nil:
		var errno unix.Errno
		if errors.As(err, &errno) {
			return nil, exitcode.Errorf(exitcode.Sys, "pid %d read from %s is not a live descendant: %w", pid, w.pidfile, errno)
		}
		return nil, exitcode.Errorf(exitcode.Sys, "pid %d read from %s is not a live descendant", pid, w.pidfile)
	}
	return p, nil
}

// reapFor reaps every dead child and reports the status of pid if it was
// one of them.
func reapFor(pid int) (ws unix.WaitStatus, found bool, err error) {
	err = proc.Reap(func(p int, s unix.WaitStatus) {
		if p == pid {
			ws, found = s, true
		}
	})
	return ws, found, err
}
