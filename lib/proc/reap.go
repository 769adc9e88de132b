//go:build linux

package proc

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/sys"
)

// SetSubreaper makes the calling process a child subreaper
// (prctl(2) PR_SET_CHILD_SUBREAPER), or stops it being one: orphaned
// descendants are then re-parented to it instead of to init, so it can wait
// for a daemon that its launcher left behind.
func SetSubreaper(on bool) error {
	var v uintptr
	if on {
		v = 1
	}
	return sys.Prctl(unix.PR_SET_CHILD_SUBREAPER, v)
}

// Reap waits for every child that has died, without blocking, and calls
// dead for each. It loops until wait4(2) reports no more dead children (0)
// or no children at all (ECHILD), since one SIGCHLD may stand for several
// deaths.
func Reap(dead func(pid int, ws unix.WaitStatus)) error {
	for {
		var ws unix.WaitStatus
		pid, err := sys.Wait4(-1, &ws, unix.WNOHANG)
		switch {
		case errors.Is(err, unix.ECHILD):
			return nil
		case err != nil:
			return err
		case pid <= 0:
			return nil
		}
		dead(pid, ws)
	}
}
