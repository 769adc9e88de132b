package svscanctl

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Control sends cmd to the svscan of scandir as s6-svscanctl 2.11 does: it
// opens scandir/.s6-svscan/control write-only and non-blocking (ENXIO:
// nobody reads it, so a dead svscan never blocks us), makes the fd
// blocking, and writes cmd in one write(2), atomic for up to PIPE_BUF
// bytes. An empty cmd only opens and closes the FIFO: a "listening?"
// probe. When the FIFO cannot be opened for lack of a file, it tells
// apart, as skalibs' s6_svc_writectl does, a missing scandir (111), a
// scandir without .s6-svscan (nothing listens: 100) and a broken
// .s6-svscan (100).
func Control(scandir string, cmd []byte) error {
	err := servicedir.WriteControl(scandir+"/.s6-svscan/control", cmd)
	switch {
	case errors.Is(err, unix.ENXIO):
		return notListening(scandir)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return whyNoFIFO(scandir, err)
	case err != nil:
		return exitcode.Errorf(exitcode.Sys, "unable to control %s: %w", scandir, err)
	}
	return nil
}

// whyNoFIFO tells the cases of a missing control FIFO apart; orig is the
// error of its open.
func whyNoFIFO(scandir string, orig error) error {
	dfd, err := sys.Open(scandir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to control %s: %w", scandir, sys.Errno(err))
	}
	unix.Close(dfd)
	sfd, err := sys.Open(scandir+"/.s6-svscan", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return notListening(scandir) // svscan never ran there
	case err != nil:
		orig = sys.Errno(err)
	default:
		unix.Close(sfd)
	}
	return exitcode.New(exitcode.Usage, fmt.Errorf("something is wrong with the %s/.s6-svscan directory. errno reported: %w", scandir, orig))
}

func notListening(scandir string) error {
	return exitcode.Errorf(exitcode.Usage, "unable to control %s: supervisor not listening", scandir)
}
