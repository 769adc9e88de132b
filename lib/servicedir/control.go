package servicedir

import (
	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/sys"
)

// WriteControl writes cmd to the control FIFO at path (a servicedir's
// supervise/control or a scandir's .s6-svscan/control) as s6's clients
// do: it opens the FIFO write-only and non-blocking, so that a FIFO
// nobody reads fails at once with ENXIO instead of blocking on a dead
// supervisor, then makes the fd blocking, so that a supervisor slow to
// read still gets the whole command, and writes cmd in one write(2),
// which is atomic for up to PIPE_BUF bytes. An empty cmd only opens and
// closes the FIFO: a "listening?" probe.
//
// The error is the errno of the open or the write ([sys.Errno]), for the
// caller to tell ENXIO (not listening) and ENOENT (no FIFO) apart.
func WriteControl(path string, cmd []byte) error {
	fd, err := sys.Open(path, unix.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return sys.Errno(err)
	}
	defer unix.Close(fd)
	if len(cmd) == 0 {
		return nil
	}
	fl, err := sys.Fcntl(fd, unix.F_GETFL, 0)
	if err == nil {
		_, err = sys.Fcntl(fd, unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	if err == nil {
		_, err = sys.Write(fd, cmd)
	}
	return sys.Errno(err)
}
