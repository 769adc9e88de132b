//go:build linux

// Package fd handles raw file descriptors that gotools did not open itself:
// checking that an fd named on the command line is open, marking it
// close-on-exec so children do not inherit it, and the readiness
// notification write of s6's notification-fd protocol.
//
// It deliberately never closes an fd it was not told about: the Go runtime
// owns fds of its own (its poller, its pipes).
package fd

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/sys"
)

// SetCloexec marks fd close-on-exec (fcntl(2) F_SETFD FD_CLOEXEC). It fails
// with EBADF when fd is not open, which is how callers check an fd given on
// the command line.
func SetCloexec(fd int) error {
	flags, err := sys.Fcntl(fd, unix.F_GETFD, 0)
	if err != nil {
		return err
	}
	_, err = sys.Fcntl(fd, unix.F_SETFD, flags|unix.FD_CLOEXEC)
	return err
}

// EnsureStdio makes sure fds 0, 1 and 2 are open, on /dev/null if not, so
// that no fd opened later lands there and is handed to a child as its
// stdio (a supervisor started with a closed stdin, say).
func EnsureStdio() error {
	for fd := 0; fd < 3; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			continue
		}
		nfd, err := unix.Open("/dev/null", unix.O_RDWR, 0) // lowest free fd: this one
		if err != nil {
			return fmt.Errorf("unable to open /dev/null: %w", err)
		}
		if nfd != fd {
			unix.Close(nfd)
		}
	}
	return nil
}

// ClearCloexec makes fd inheritable across exec (clears FD_CLOEXEC).
func ClearCloexec(fd int) error {
	flags, err := sys.Fcntl(fd, unix.F_GETFD, 0)
	if err != nil {
		return err
	}
	_, err = sys.Fcntl(fd, unix.F_SETFD, flags&^unix.FD_CLOEXEC)
	return err
}

// Notify writes s6's readiness notification, one newline, to fd and closes
// it (s6 notifywhenup.html: "write a line ... then close the descriptor").
func Notify(fd int) error {
	_, werr := sys.Write(fd, []byte{'\n'})
	cerr := unix.Close(fd)
	if werr != nil {
		return fmt.Errorf("unable to write to notification fd %d: %w", fd, sys.Errno(werr))
	}
	if cerr != nil {
		return fmt.Errorf("unable to close notification fd %d: %w", fd, cerr)
	}
	return nil
}

// CloseAll closes every fd of fds, ignoring errors: the cleanup of fds
// received or created in a batch that is being abandoned.
func CloseAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}
