//go:build linux

// Package lock takes, waits for and queries whole-file open-file-description
// locks (fcntl(2) F_OFD_SETLK, F_OFD_SETLKW, F_OFD_GETLK): exclusive
// (F_WRLCK) or shared (F_RDLCK). OFD locks share one lock table with s6's
// POSIX fcntl locks, so gotools and s6 programs exclude each other on the
// same file; unlike POSIX locks they belong to the open file, not to the
// process, and the kernel drops them when the last fd on it is closed.
//
// It deliberately never uses flock(2), which does not see fcntl locks, and
// never deletes a lock file (spec/locks.md). Waiting with a timeout is the
// caller's business (a helper process, or closing the fd).
package lock

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/sys"
)

// ErrBusy is returned by [TryLock] when another holder has a conflicting
// lock. It is EBUSY, so messages end in "Device or resource busy", as s6's
// do.
var ErrBusy = unix.EBUSY

// Kind is the kind of a lock: [Exclusive] or [Shared].
type Kind int16

// The kinds, as fcntl(2) spells them.
const (
	Exclusive Kind = unix.F_WRLCK
	Shared    Kind = unix.F_RDLCK
)

func whole(k Kind) *unix.Flock_t {
	return &unix.Flock_t{Type: int16(k), Whence: 0, Start: 0, Len: 0}
}

// OpenExclusive opens path for an exclusive lock as s6 does:
// O_WRONLY|O_CREAT|O_NONBLOCK|O_CLOEXEC, mode 0666 minus the umask.
func OpenExclusive(path string) (*os.File, error) {
	fd, err := sys.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_NONBLOCK, 0o666)
	if err != nil {
		return nil, fmt.Errorf("unable to open %s for writing: %w", path, sys.Errno(err))
	}
	return newFile(fd, path), nil
}

// OpenShared opens path read-only for a shared lock, creating it first if
// it does not exist, as s6 does.
func OpenShared(path string) (*os.File, error) {
	fd, err := sys.Open(path, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENOENT) {
		var cfd int
		cfd, err = sys.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_NONBLOCK, 0o666)
		if err != nil {
			return nil, fmt.Errorf("unable to create %s: %w", path, sys.Errno(err))
		}
		unix.Close(cfd)
		fd, err = sys.Open(path, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("unable to open %s for reading: %w", path, sys.Errno(err))
	}
	return newFile(fd, path), nil
}

// newFile wraps the lock fd, blocking again: O_NONBLOCK only kept open(2)
// from blocking on a FIFO or device. A non-blocking fd would make os.NewFile
// start the runtime's poller (an epoll fd and an eventfd), which a
// lockd-helper, one per held lock, has no use for.
func newFile(fd int, path string) *os.File {
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	return os.NewFile(uintptr(fd), path)
}

func fcntlLock(f *os.File, cmd int, lk *unix.Flock_t) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	cerr := rc.Control(func(fd uintptr) {
		for {
			lerr = unix.FcntlFlock(fd, cmd, lk)
			if !errors.Is(lerr, unix.EINTR) {
				return
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return lerr
}

// TryLock takes a lock of kind k on all of f without waiting
// (F_OFD_SETLK). A conflicting holder gives [ErrBusy].
func TryLock(f *os.File, k Kind) error {
	err := fcntlLock(f, unix.F_OFD_SETLK, whole(k))
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return ErrBusy
	}
	return err
}

// Lock waits until it holds a lock of kind k on all of f
// (F_OFD_SETLKW). The wait blocks a thread; callers that need a timeout
// run it in a helper process.
func Lock(f *os.File, k Kind) error {
	return fcntlLock(f, unix.F_OFD_SETLKW, whole(k))
}

// TryLockFD is [TryLock] on a raw fd: lockd holds its locks on fds of its
// own, with no *os.File around them.
func TryLockFD(fd int, k Kind) error {
	var err error
	for {
		err = unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, whole(k))
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return ErrBusy
	}
	return err
}

// Unlock releases the lock f holds (closing f does too).
func Unlock(f *os.File) error {
	return fcntlLock(f, unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_UNLCK})
}

// Held reports whether some other open file holds a lock on path that
// conflicts with an exclusive one, that is any lock at all (F_OFD_GETLK).
// A missing file is not held. This is how s6-svok and s6-svstat tell that a
// supervisor is running. The file is opened read-only and not created.
func Held(path string) (bool, error) {
	fd, err := sys.Open(path, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, sys.Errno(err)
	}
	defer unix.Close(fd)
	return HeldFD(fd)
}

// HeldFD is [Held] for a file the caller has open already, on any fd.
func HeldFD(fd int) (bool, error) {
	lk := whole(Exclusive)
	var err error
	for {
		err = unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, lk)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return false, err
	}
	return lk.Type != unix.F_UNLCK, nil
}
