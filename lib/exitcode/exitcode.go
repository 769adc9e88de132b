// Package exitcode holds gotools' exit codes, the error type that carries one
// from an applet to lib/cli, and the execline exit-code approximation.
//
// It deliberately does not print anything: lib/cli turns an [Error] into a
// stderr line and a code in one place.
package exitcode

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// s6's exit codes (common.md "Messages and exit codes").
const (
	OK       = 0
	Refused  = 1   // the operation was refused or timed out
	Usage    = 100 // bad command line
	Internal = 101 // a bug in gotools
	Sys      = 111 // a system call failed
	NoExec   = 126 // exec failed
	NotFound = 127 // exec target not found
)

// Error is an error that ends an applet with Code. An Error whose Err is nil
// exits silently: the code alone is the message (background-watch relaying
// its daemon's status, for instance).
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an [Error] with code and err; err may be nil.
func New(code int, err error) error { return &Error{Code: code, Err: err} }

// Errorf returns an [Error] with code and a message formatted like
// [fmt.Errorf], so %w keeps the cause reachable through [errors.Is].
func Errorf(code int, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Exit returns a silent [Error]: the applet ends with code and prints nothing.
func Exit(code int) error { return &Error{Code: code} }

// ErrUsage makes lib/cli print the applet's one-line usage and exit 100.
var ErrUsage = errors.New("usage")

// Of maps an error returned by an applet to its exit code: nil is 0, an
// [Error] its Code, [ErrUsage] 100, anything else a system failure (111).
func Of(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, ErrUsage) {
		return Usage
	}
	return Sys
}

// Approx turns a wait status into the exit code that reports it, as skalibs'
// wait_estatus does (execline exitcodes.html): killed by signal n gives
// 128+n; an exit code of 128 or more gives 128, so that 129..255 always mean
// "a signal killed my child"; a smaller exit code is itself. There is no 255
// cap and no core-dump distinction.
func Approx(ws unix.WaitStatus) int {
	switch {
	case ws.Signaled():
		return 128 + int(ws.Signal())
	case ws.Exited():
		if c := ws.ExitStatus(); c < 128 {
			return c
		}
		return 128
	}
	// Stopped or continued: not a death; report it as a system failure
	// rather than invent a code.
	return Sys
}
