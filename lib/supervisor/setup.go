package supervisor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/sys"
)

// mkdirOwn creates a supervise-owned directory as spec/supervise.md §2.1
// says: mkdir; a dangling symlink gets its target created (one level); a
// non-directory is a conflict (exit 100). It reports whether it created
// the directory.
func mkdirOwn(name string, mode os.FileMode) (bool, error) {
	err := unix.Mkdir(name, uint32(mode))
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return false, exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", name, err)
	}
	st, serr := os.Stat(name)
	if serr == nil {
		if st.IsDir() {
			return false, nil
		}
		return false, exitcode.Errorf(exitcode.Usage, "%s exists and is not a directory", name)
	}
	if !errors.Is(serr, fs.ErrNotExist) {
		return false, exitcode.Errorf(exitcode.Sys, "unable to stat %s: %w", name, sys.Errno(serr))
	}
	// A dangling symlink: create its target.
	target, lerr := os.Readlink(name)
	if lerr != nil {
		return false, exitcode.Errorf(exitcode.Usage, "%s exists and is not a directory", name)
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(name), target)
	}
	if err := unix.Mkdir(target, uint32(mode)); err != nil {
		return false, exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", target, err)
	}
	return true, nil
}

// setupDirs creates supervise/, takes supervise/lock, creates event/ and
// the control fifo, in that order: the lock comes before anything else is
// touched, so a second instance changes nothing (§2.1).
func (s *Service) setupDirs() error {
	old := unix.Umask(0)
	defer unix.Umask(old)
	if _, err := mkdirOwn(s.p("supervise"), 0o700); err != nil {
		return err
	}
	fd, err := sys.Open(s.p("supervise/lock"), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CREAT, 0o644)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to open supervise/lock: %w", sys.Errno(err))
	}
	s.lock = os.NewFile(uintptr(fd), "supervise/lock")
	if err := lock.TryLock(s.lock, lock.Exclusive); errors.Is(err, lock.ErrBusy) {
		return exitcode.Errorf(exitcode.Usage, "another instance of %s is already running", s.applet)
	} else if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to lock supervise/lock: %w", sys.Errno(err))
	}
	if _, err := ftrig.MkFifodir(s.p("event")); err != nil {
		if errors.Is(err, unix.ENOTDIR) {
			return exitcode.Errorf(exitcode.Usage, "event exists and is not a directory")
		}
		return exitcode.Errorf(exitcode.Sys, "unable to create event: %w", sys.Errno(err))
	}
	if err := unix.Mkfifo(s.p("supervise/control"), 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return exitcode.Errorf(exitcode.Sys, "unable to mkfifo supervise/control: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(s.p("supervise/control"), &st); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to stat supervise/control: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return exitcode.Errorf(exitcode.Usage, "supervise/control exists and is not a FIFO")
	}
	if s.ctlR, err = sys.Open(s.p("supervise/control"), unix.O_RDONLY|unix.O_NONBLOCK, 0); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to open supervise/control for reading: %w", sys.Errno(err))
	}
	// A kept write end: the fifo never reads EOF when a writer leaves.
	if s.ctlW, err = sys.Open(s.p("supervise/control"), unix.O_WRONLY|unix.O_NONBLOCK, 0); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to open supervise/control for writing: %w", sys.Errno(err))
	}
	return nil
}
