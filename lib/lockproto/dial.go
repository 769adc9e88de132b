package lockproto

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// DialUnix connects a stream socket to socket (a path, or "@name" for an
// abstract socket) and returns it as a non-blocking *os.File, so that
// reads and writes sleep in the runtime poller and honour deadlines. It
// waits at most timeout (0: no limit) for a listener whose backlog is full:
// unix_stream_connect sleeps on SO_SNDTIMEO (socket(7)). The error is the
// bare errno, for "unable to connect to SOCKET: REASON" lines. Raw
// syscalls instead of the net package keep net and its resolver (about
// 300 kB) out of the binary.
func DialUnix(socket string, timeout time.Duration) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if timeout > 0 {
		tv := unix.NsecToTimeval(timeout.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: socket})
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.EAGAIN || err == unix.EINPROGRESS {
		err = unix.ETIMEDOUT // SO_SNDTIMEO ran out with the backlog still full
	}
	if err == nil && timeout > 0 {
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{})
	}
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), socket), nil
}

// dialContext is [DialUnix] bounded by ctx's deadline.
func dialContext(ctx context.Context, socket string) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var timeout time.Duration
	if d, ok := ctx.Deadline(); ok {
		if timeout = time.Until(d); timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	f, err := DialUnix(socket, timeout)
	if err != nil {
		return nil, fmt.Errorf("unable to connect to %s: %w", socket, err)
	}
	return f, nil
}
