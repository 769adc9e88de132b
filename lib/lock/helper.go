//go:build linux

package lock

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/sys"
)

// HelperEnv names the environment variable that overrides the lock helper
// program (for example s6's s6lockd-helper, in interop tests).
const HelperEnv = "GOTOOLS_LOCK_HELPER"

// ErrTimeout is returned by [ViaHelper] when the deadline passed before
// the helper held the lock.
var ErrTimeout = errors.New("timed out")

// HelperExit is returned by [ViaHelper] when the helper ended before it
// held the lock. The helper has said why on its stderr.
type HelperExit struct {
	Status unix.WaitStatus
}

func (e *HelperExit) Error() string {
	if e.Status.Signaled() {
		return "lock helper crashed with signal " + sig.Name(e.Status.Signal())
	}
	return fmt.Sprintf("lock helper exited %d", e.Status.ExitStatus())
}

// ErrGarbage is returned by [ViaHelper] when the helper wrote something
// other than "!".
var ErrGarbage = errors.New("helper sent garbage")

// HelperPath is the lock helper program: $GOTOOLS_LOCK_HELPER if set,
// else this very binary ([proc.Self]), run as "lockd-helper".
func HelperPath() string {
	if p := os.Getenv(HelperEnv); p != "" {
		return p
	}
	return proc.Self()
}

// ViaHelper takes a lock of kind k on path through a lock helper (the
// lockd-helper protocol: "r" or "w" and the path as arguments; "!" on
// its stdout once it holds the lock; any byte or EOF on its stdin makes
// it let go), waiting no later than deadline (the zero time: forever).
//
// On success it returns the write end of the helper's stdin, blocking and
// close-on-exec: the lock is held until every copy of it is closed. The
// helper is not waited for then; whoever inherits it reaps it. On failure
// nothing is left behind: the helper is killed if need be and reaped, and
// every pipe is closed. The error is [ErrTimeout], a *[HelperExit],
// [ErrGarbage] or a system error.
func ViaHelper(path string, k Kind, deadline time.Time) (*os.File, error) {
	var in, out [2]int
	if err := unix.Pipe2(in[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("unable to create a pipe: %w", err)
	}
	if err := unix.Pipe2(out[:], unix.O_CLOEXEC); err != nil {
		unix.Close(in[0])
		unix.Close(in[1])
		return nil, fmt.Errorf("unable to create a pipe: %w", err)
	}
	stdin := os.NewFile(uintptr(in[0]), "helper stdin")
	stdout := os.NewFile(uintptr(out[1]), "helper stdout")
	mode := "w"
	if k == Shared {
		mode = "r"
	}
	pid, err := proc.Spawn([]string{"lockd-helper", mode, path}, proc.Attr{
		Files: []*os.File{stdin, stdout, os.Stderr},
		Env:   []string{},
		Path:  HelperPath(),
	})
	stdin.Close()
	stdout.Close()
	if err != nil {
		unix.Close(in[1])
		unix.Close(out[0])
		return nil, err
	}
	b, err := readByte(out[0], deadline)
	unix.Close(out[0])
	if err == nil && b == '!' {
		return os.NewFile(uintptr(in[1]), path), nil
	}
	unix.Close(in[1])
	if errors.Is(err, errEOF) {
		return nil, &HelperExit{Status: reap(pid)}
	}
	unix.Kill(pid, unix.SIGKILL)
	reap(pid)
	if err == nil {
		return nil, ErrGarbage
	}
	return nil, err
}

var errEOF = errors.New("end of file")

// readByte reads one byte from the blocking fd, giving up at deadline.
func readByte(fd int, deadline time.Time) (byte, error) {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		ms := -1
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return 0, ErrTimeout
			}
			ms = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		n, err := unix.Poll(pfd, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("unable to poll: %w", err)
		}
		if n == 0 {
			continue // the deadline is checked above, on the clock
		}
		var b [1]byte
		n, err = sys.Read(fd, b[:])
		switch {
		case err != nil:
			return 0, fmt.Errorf("unable to read from the lock helper: %w", sys.Errno(err))
		case n == 0:
			return 0, errEOF
		}
		return b[0], nil
	}
}

func reap(pid int) unix.WaitStatus {
	var ws unix.WaitStatus
	_, _ = sys.Wait4(pid, &ws, 0)
	return ws
}
