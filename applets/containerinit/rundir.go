package containerinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/overlay"
	"github.com/gotools-dev/gotools/lib/sys"
)

// checkRun makes sure /run can hold the tree (spec §8): a directory,
// writable, mounted read-write and exec (run files are copied there and
// executed). A missing one is made first, when the root is writable. When
// it is still unusable and init is root, a tmpfs (0755, exec) is mounted
// on it; otherwise init cannot boot: exit 111, with the fix. A /run every
// uid may write to without the sticky bit is a warning: another uid could
// rename init's directories.
func (b *boot) checkRun() error {
	run := overlay.Path(overlay.RunDir)
	problem := runProblem(run)
	if problem == "missing" && os.Mkdir(run, 0o755) == nil {
		problem = runProblem(run)
	}
	if problem != "" {
		if os.Geteuid() != 0 {
			return exitcode.Errorf(exitcode.Sys, "unable to use %s: %s (give the container a /run tmpfs with exec, or an emptyDir)", run, problem)
		}
		if err := unix.Mount("tmpfs", run, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to use %s: %s, and unable to mount a tmpfs on it: %w", run, problem, sys.Errno(err))
		}
		b.o.info("%s was %s: mounted a tmpfs on it", run, problem)
	}
	var st unix.Stat_t
	if err := unix.Stat(run, &st); err == nil && st.Mode&0o002 != 0 && st.Mode&unix.S_ISVTX == 0 {
		b.o.warn("%s is writable by every user and not sticky: another user could rename init's directories", run)
	}
	return nil
}

// runProblem says what makes run unusable, or "".
func runProblem(run string) string {
	var st unix.Stat_t
	switch err := unix.Stat(run, &st); {
	case errors.Is(err, unix.ENOENT):
		return "missing"
	case err != nil:
		return fmt.Sprintf("unable to stat it (%s)", sys.Errno(err))
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return "not a directory"
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(run, &fs); err == nil {
		switch {
		case fs.Flags&unix.ST_RDONLY != 0:
			return "mounted read-only"
		case fs.Flags&unix.ST_NOEXEC != 0:
			return "mounted noexec"
		}
	}
	if err := unix.Faccessat(unix.AT_FDCWD, run, unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
		return "not writable"
	}
	return ""
}

// fixVarRun makes /var/run a symlink to /run when it is missing (and /var
// is there) or an empty directory, with a warning (spec §3); anything
// else is left alone.
func (b *boot) fixVarRun() {
	vr := overlay.Path("/var/run")
	fi, err := os.Lstat(vr)
	switch {
	case err == nil && fi.IsDir():
		if unix.Rmdir(vr) != nil {
			return // not empty, or not ours to remove
		}
	case errors.Is(err, os.ErrNotExist):
		if st, err := os.Stat(filepath.Dir(vr)); err != nil || !st.IsDir() {
			return
		}
	default:
		return // a symlink already, or a file: left alone
	}
	if err := os.Symlink(overlay.Path(overlay.RunDir), vr); err != nil {
		b.o.warn("unable to make %s a symlink to /run: %s", vr, sys.Errno(err))
		return
	}
	b.o.warn("%s is now a symlink to /run", vr)
}
