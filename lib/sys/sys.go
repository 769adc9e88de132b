//go:build linux

// Package sys holds gotools' EINTR-safe system call wrappers (the runc
// internal/linux pattern): each retries a call the kernel interrupted and
// returns a plain [syscall.Errno] wrapped in an [*os.SyscallError], so
// callers compare with errors.Is and never loop on EINTR themselves. The
// *at wrappers ([Openat], [Fstatat], [Renameat], [Unlinkat]) and
// [WriteOnce] return the bare errno instead, and take NUL-terminated paths
// ([CPath]): they serve paths that must allocate nothing, such as a
// supervisor's at every death of its service.
//
// It deliberately wraps only the calls gotools makes outside the os
// package, one line each; it adds no policy.
package sys

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

func retry(f func() error) error {
	for {
		err := f()
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return os.NewSyscallError(name, err)
}

// Wait4 wraps wait4(2).
func Wait4(pid int, ws *unix.WaitStatus, options int) (wpid int, err error) {
	err = retry(func() (e error) { wpid, e = unix.Wait4(pid, ws, options, nil); return })
	if errors.Is(err, unix.ECHILD) {
		return wpid, errECHILD
	}
	return wpid, wrap("wait4", err)
}

// errECHILD is wait4's ECHILD, the normal end of every reaping loop: one
// shared value (laid out by the linker, no init work), so that a
// supervisor reaping its service's death allocates nothing for it.
var errECHILD error = &os.SyscallError{Syscall: "wait4", Err: unix.ECHILD}

// Read wraps read(2).
func Read(fd int, p []byte) (n int, err error) {
	err = retry(func() (e error) { n, e = unix.Read(fd, p); return })
	return n, wrap("read", err)
}

// Write wraps write(2), and writes all of p unless an error occurs.
func Write(fd int, p []byte) (n int, err error) {
	for n < len(p) {
		var m int
		err = retry(func() (e error) { m, e = unix.Write(fd, p[n:]); return })
		if err != nil {
			return n, wrap("write", err)
		}
		n += m
	}
	return n, nil
}

// Open wraps open(2); O_CLOEXEC is always added (STYLE.md rule 8).
func Open(path string, flags int, mode uint32) (fd int, err error) {
	err = retry(func() (e error) { fd, e = unix.Open(path, flags|unix.O_CLOEXEC, mode); return })
	return fd, wrap("open", err)
}

// Poll wraps poll(2). A poll that the kernel interrupted is restarted with
// the whole timeout; callers with a deadline recompute it themselves.
func Poll(fds []unix.PollFd, timeout int) (n int, err error) {
	err = retry(func() (e error) { n, e = unix.Poll(fds, timeout); return })
	return n, wrap("poll", err)
}

// PidfdOpen wraps pidfd_open(2) (Linux >= 5.3); the fd is close-on-exec,
// as every pidfd is.
func PidfdOpen(pid int) (fd int, err error) {
	err = retry(func() (e error) { fd, e = unix.PidfdOpen(pid, 0); return })
	return fd, wrap("pidfd_open", err)
}

// PidfdSendSignal wraps pidfd_send_signal(2).
func PidfdSendSignal(pidfd int, s unix.Signal) error {
	return wrap("pidfd_send_signal", retry(func() error { return unix.PidfdSendSignal(pidfd, s, nil, 0) }))
}

// Kill wraps kill(2).
func Kill(pid int, s unix.Signal) error {
	return wrap("kill", retry(func() error { return unix.Kill(pid, s) }))
}

// Prctl wraps prctl(2) for the integer options.
func Prctl(option int, arg2 uintptr) error {
	return wrap("prctl", retry(func() error { return unix.Prctl(option, arg2, 0, 0, 0) }))
}

// Fcntl wraps fcntl(2) with an integer argument.
func Fcntl(fd int, cmd int, arg int) (v int, err error) {
	err = retry(func() (e error) { v, e = unix.FcntlInt(uintptr(fd), cmd, arg); return })
	return v, wrap("fcntl", err)
}

// Errno returns the bare errno in err's chain (under an *os.SyscallError
// or *os.PathError), or err itself when there is none. Messages are built
// as "unable to VERB OBJECT: %w" around it, so they name the object once and
// end in strerror's text, as s6's do.
func Errno(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}
