//go:build linux

package shm

import (
	"context"
	"errors"
	"strconv"

	"golang.org/x/sys/unix"
)

// Error is the error every function of this package returns. It prints as
// "OP /NAME[INDEX]: REASON", e.g. "lock /name[5]: operation not permitted",
// and unwraps to the underlying [syscall.Errno].
type Error struct {
	Op    string // the operation: "create", "open", "lock", "unlock", ...
	Name  string // the segment's name in podman's form, "/name"
	Index int    // the lock index, or -1 when the error concerns no index
	Err   error  // a syscall.Errno
	// ForeignUID is the owner of a segment refused with EPERM because it
	// belongs to neither the caller nor root (see [WithAnyOwner]); else 0.
	ForeignUID int
	hint       string // an explanation appended to the message, if any
}

func (e *Error) Error() string {
	s := e.Op + " " + e.Name
	if e.Index >= 0 {
		s += "[" + strconv.Itoa(e.Index) + "]"
	}
	s += ": " + e.Err.Error()
	if e.hint != "" {
		s += " (" + e.hint + ")"
	}
	return s
}

// Unwrap returns the underlying errno.
func (e *Error) Unwrap() error { return e.Err }

// Is makes ETIMEDOUT match [context.DeadlineExceeded] and ECANCELED match
// [context.Canceled], so errors.Is(err, ctx.Err()) holds for LockContext.
func (e *Error) Is(target error) bool {
	switch target {
	case context.DeadlineExceeded:
		return errors.Is(e.Err, unix.ETIMEDOUT)
	case context.Canceled:
		return errors.Is(e.Err, unix.ECANCELED)
	}
	return false
}

func newErr(op, name string, index int, err error) *Error {
	return &Error{Op: op, Name: name, Index: index, Err: err}
}

// errno extracts a syscall error from err (an *os.PathError, an Errno, ...)
// or EIO if there is none, so every *Error unwraps to an Errno.
func errno(err error) error {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}
