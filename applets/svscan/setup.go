package svscan

import (
	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/supervisor"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Paths inside SCANDIR, svscan's working directory.
const (
	ctlDir     = supervisor.TreeCtlDir
	finishPath = ctlDir + "/finish"
	crashPath  = ctlDir + "/crash"
)

// setup is svscan's startup, in spec/supervise.md §8's order: fds 0-2,
// chdir, the tree (.s6-svscan/, its lock before anything else is touched,
// so a second instance changes nothing, the control FIFO), the signals.
func (s *scanner) setup() error {
	if err := fd.EnsureStdio(); err != nil {
		return err
	}
	if s.notif >= 0 {
		// Not for the supervisors: it is closed before the first scan,
		// but a crash exec could come first.
		if _, err := sys.Fcntl(s.notif, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to set close-on-exec on fd %d: %w", s.notif, sys.Errno(err))
		}
	}
	s.resolveSupervisor() // before chdir: argv[0] may be relative
	if err := unix.Chdir(s.dir); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to chdir to %s: %w", s.dir, err)
	}
	s.loop = &supervisor.Loop{Env: s.env}
	s.conf.Env, s.conf.Dir, s.conf.Name = s.env, ".", s.dir
	t, err := supervisor.OpenTree(s.loop, s.conf)
	if err != nil {
		return err
	}
	s.tree = t
	// Every catchable signal goes into a self-pipe that poll watches:
	// none is left to Go's default handling, which would kill PID 1 on
	// SIGTERM (a namespace's init has no default action for it: the
	// kernel drops it, pid_namespaces(7)), and none is left ignored for
	// the supervisors to inherit.
	if s.loop.Signals, err = sig.RawPipe(); err != nil {
		return err
	}
	if s.notif >= 0 {
		// s6-svscan ignores a failed notification write too: the reader
		// may be gone, and svscan must run on.
		_, _ = sys.Write(s.notif, []byte{'\n'})
		unix.Close(s.notif)
		s.notif = -1
	}
	return nil
}

// resolveSupervisor fixes what runs as each supervisor (§8): PROG NAME
// from PATH with --supervisor, else this binary ([proc.Self]) as
// "supervise NAME". Without a way to run it, spawns fail with a warning
// and are retried.
func (s *scanner) resolveSupervisor() {
	if s.prog != "" {
		s.conf.Supervisor = []string{s.prog}
		return
	}
	// Run as s6-svscan, the children are s6-supervise NAME in ps, as
	// monitoring written for s6 expects (issue 14 item 4).
	s.conf.Supervisor = []string{"supervise"}
	if s.env.Name == "s6-svscan" {
		s.conf.Supervisor[0] = "s6-supervise"
	}
	s.conf.SupervisorPath = proc.Self()
}
