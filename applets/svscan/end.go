package svscan

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/proc"
)

// finish executes .s6-svscan/finish (argv [.s6-svscan/finish]), whose exit
// code becomes svscan's, the container's; without one svscan exits 0
// (spec/supervise.md §8 "End"). The exec keeps svscan's pid (PID 1 stays
// PID 1); it is one of the few places that end the applet without
// returning to lib/cli (STYLE.md rule 2).
func (s *scanner) finish() error {
	err := proc.Exec([]string{finishPath})
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return exitcode.New(exitcode.Sys, errors.Unwrap(err))
}

// crash executes .s6-svscan/crash after an unrecoverable failure; if that
// fails too, svscan exits 111, as s6-svscan's documentation says.
func (s *scanner) crash() error {
	s.env.Warnf("executing into %s", crashPath)
	return exitcode.New(exitcode.Sys, errors.Unwrap(proc.Exec([]string{crashPath})))
}
