//go:build linux

package sys

import (
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The *at wrappers below take a NUL-terminated path (a [CPath]'s, or a
// name in a getdents buffer) instead of a string: x/sys/unix copies every
// string path into a new byte slice, one allocation per call, which a
// supervisor restarting a crashing service pays at every death. They
// retry EINTR and return the bare [unix.Errno]: nothing is wrapped, so a
// failure allocates nothing either; callers that print it name the file.
// A nil path (a [CPath.Make] part held a NUL) is EINVAL, as x/sys/unix
// makes of such a string.

// CPath builds NUL-terminated paths in a buffer kept across calls. The
// zero value is ready to use; it is not safe for concurrent use.
type CPath struct{ buf []byte }

// Make returns the concatenation of parts as a NUL-terminated path, valid
// until the next Make; nil if a part holds a NUL.
func (c *CPath) Make(parts ...string) *byte {
	b := c.buf[:0]
	for _, p := range parts {
		if strings.IndexByte(p, 0) >= 0 {
			return nil
		}
		b = append(b, p...)
	}
	b = append(b, 0)
	c.buf = b
	return &b[0]
}

func errno(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// Openat wraps openat(2); O_CLOEXEC is always added (STYLE.md rule 8).
func Openat(dirfd int, path *byte, flags int, mode uint32) (int, error) {
	if path == nil {
		return -1, unix.EINVAL
	}
	for {
		fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(path)), uintptr(flags|unix.O_CLOEXEC), uintptr(mode), 0, 0)
		if e != unix.EINTR {
			if e != 0 {
				return -1, e
			}
			return int(fd), nil
		}
	}
}

// Fstatat wraps fstatat(2) (newfstatat, or fstatat64 on 32-bit ports):
// flags unix.AT_SYMLINK_NOFOLLOW makes it lstat(2).
func Fstatat(dirfd int, path *byte, st *unix.Stat_t, flags int) error {
	if path == nil {
		return unix.EINVAL
	}
	for {
		_, _, e := unix.Syscall6(sysFstatat, uintptr(dirfd), uintptr(unsafe.Pointer(path)), uintptr(unsafe.Pointer(st)), uintptr(flags), 0, 0)
		if e != unix.EINTR {
			return errno(e)
		}
	}
}

// Renameat wraps renameat2(2) with no flags, which every port has
// (riscv64 and loong64 lack plain renameat).
func Renameat(olddirfd int, oldpath *byte, newdirfd int, newpath *byte) error {
	if oldpath == nil || newpath == nil {
		return unix.EINVAL
	}
	for {
		_, _, e := unix.Syscall6(unix.SYS_RENAMEAT2, uintptr(olddirfd), uintptr(unsafe.Pointer(oldpath)), uintptr(newdirfd), uintptr(unsafe.Pointer(newpath)), 0, 0)
		if e != unix.EINTR {
			return errno(e)
		}
	}
}

// Unlinkat wraps unlinkat(2).
func Unlinkat(dirfd int, path *byte, flags int) error {
	if path == nil {
		return unix.EINVAL
	}
	for {
		_, _, e := unix.Syscall(unix.SYS_UNLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(path)), uintptr(flags))
		if e != unix.EINTR {
			return errno(e)
		}
	}
}

// WriteOnce wraps one write(2), for writes that must stay one (a FIFO
// notification); unlike [Write], its error is the bare errno.
func WriteOnce(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Write(fd, p)
		if err != unix.EINTR {
			return n, err
		}
	}
}
