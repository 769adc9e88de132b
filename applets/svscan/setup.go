package svscan

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Paths inside SCANDIR, svscan's working directory.
const (
	ctlDir     = ".s6-svscan"
	lockPath   = ctlDir + "/lock"
	ctlPath    = ctlDir + "/control"
	finishPath = ctlDir + "/finish"
	crashPath  = ctlDir + "/crash"
)

// setup is svscan's startup, in spec/supervise.md §8's order: fds 0-2,
// chdir, .s6-svscan/, its lock (before anything else is touched, so a
// second instance changes nothing), the control FIFO, the signals.
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
	if err := unix.Mkdir(ctlDir, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", ctlDir, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(ctlDir, &st); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to stat %s: %w", ctlDir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return exitcode.Errorf(exitcode.Usage, "%s exists and is not a directory", ctlDir)
	}
	fd, err := sys.Open(lockPath, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CREAT, 0o600)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to open %s: %w", lockPath, sys.Errno(err))
	}
	s.lock = os.NewFile(uintptr(fd), lockPath)
	if err := lock.TryLock(s.lock, lock.Exclusive); errors.Is(err, lock.ErrBusy) {
		return exitcode.Errorf(exitcode.Usage, "another instance of svscan is already running on the same directory")
	} else if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to lock %s: %w", lockPath, sys.Errno(err))
	}
	if err := unix.Mkfifo(ctlPath, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return exitcode.Errorf(exitcode.Sys, "unable to mkfifo %s: %w", ctlPath, err)
	}
	if err := unix.Stat(ctlPath, &st); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to stat %s: %w", ctlPath, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return exitcode.Errorf(exitcode.Usage, "%s exists and is not a FIFO", ctlPath)
	}
	if s.ctlR, err = sys.Open(ctlPath, unix.O_RDONLY|unix.O_NONBLOCK, 0); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to open %s for reading: %w", ctlPath, sys.Errno(err))
	}
	// A kept write end: the FIFO never reads EOF when a writer leaves.
	if s.ctlW, err = sys.Open(ctlPath, unix.O_WRONLY|unix.O_NONBLOCK, 0); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to open %s for writing: %w", ctlPath, sys.Errno(err))
	}
	// Every catchable signal goes into a self-pipe that poll watches:
	// none is left to Go's default handling, which would kill PID 1 on
	// SIGTERM (a namespace's init has no default action for it: the
	// kernel drops it, pid_namespaces(7)), and none is left ignored for
	// the supervisors to inherit.
	if s.sigR, err = sig.SelfPipe(); err != nil {
		return err
	}
	s.removeDangling()
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
		s.argv = []string{s.prog}
		return
	}
	// Run as s6-svscan, the children are s6-supervise NAME in ps, as
	// monitoring written for s6 expects (issue 14 item 4).
	s.argv = []string{"supervise"}
	if s.env.Name == "s6-svscan" {
		s.argv[0] = "s6-supervise"
	}
	s.path = proc.Self()
}

// removeDangling unlinks the symlinks among non-dot entries that point
// nowhere (§8), left over from services removed while svscan was down.
func (s *scanner) removeDangling() {
	ents, err := os.ReadDir(".")
	if err != nil {
		s.env.Warnf("unable to read %s: %w", s.dir, sys.Errno(err))
		return
	}
	for _, e := range ents {
		if e.Name()[0] == '.' || e.Type()&os.ModeSymlink == 0 {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(e.Name(), &st); !errors.Is(err, unix.ENOENT) {
			continue
		}
		if err := unix.Unlink(e.Name()); err != nil && !errors.Is(err, unix.ENOENT) {
			s.env.Warnf("unable to remove the dangling symlink %s: %w", e.Name(), err)
		}
	}
}
