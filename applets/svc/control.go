package svc

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Exit codes of svc's own (spec/supervise.md §4).
const (
	codeBroken       = 1   // supervise/ exists, its control FIFO is unusable
	codeNotListening = 102 // no supervisor reads the control FIFO
)

// Control sends cmd to the supervisor of the service directory dir, as
// spec/supervise.md §2.5 says: it opens dir/supervise/control write-only
// and non-blocking (ENXIO: nobody reads it, so it never blocks on a dead
// supervisor), makes the fd blocking, and writes cmd in one write(2), which
// is atomic for at most PIPE_BUF bytes. An empty cmd only opens and closes
// the FIFO: a "listening?" probe. The error is an [exitcode.Error]: 102
// "supervisor not listening" (ENXIO, or no supervise/), 1 "something is
// wrong with DIR/supervise" (no FIFO in supervise/, or not a FIFO), 111
// otherwise (dir missing included).
func Control(dir string, cmd []byte) error {
	supervise := dir + "/supervise"
	path := supervise + "/control"
	fd, err := sys.Open(path, unix.O_WRONLY|unix.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, unix.ENXIO):
		return notListening(dir)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return whyNoFIFO(dir)
	case err != nil:
		return exitcode.Errorf(exitcode.Sys, "unable to control %s: %w", dir, sys.Errno(err))
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return broken(dir)
	}
	if len(cmd) == 0 {
		return nil
	}
	// Blocking from here: a supervisor that is slow to read its FIFO
	// still gets the whole command, as with s6-svc.
	fl, err := sys.Fcntl(fd, unix.F_GETFL, 0)
	if err == nil {
		_, err = sys.Fcntl(fd, unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to control %s: %w", dir, sys.Errno(err))
	}
	if _, err := sys.Write(fd, cmd); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to control %s: %w", dir, sys.Errno(err))
	}
	return nil
}

// whyNoFIFO tells the cases of a missing dir/supervise/control apart.
func whyNoFIFO(dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to control %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return exitcode.Errorf(exitcode.Sys, "unable to control %s: %w", dir, unix.ENOTDIR)
	}
	switch err := unix.Lstat(dir+"/supervise", &st); {
	case errors.Is(err, unix.ENOENT):
		// Never supervised: nothing listens.
		return notListening(dir)
	case err != nil:
		return exitcode.Errorf(exitcode.Sys, "unable to control %s: %w", dir, err)
	}
	return broken(dir)
}

func notListening(dir string) error {
	return exitcode.Errorf(codeNotListening, "unable to control %s: supervisor not listening", dir)
}

func broken(dir string) error {
	return exitcode.New(codeBroken, fmt.Errorf("something is wrong with the %s/supervise directory", dir))
}
