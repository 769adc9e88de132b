//go:build linux

package proc

import (
	"errors"
	"fmt"
	"os"

	"github.com/gotools-dev/gotools/lib/pidfile"
	"github.com/gotools-dev/gotools/lib/sys"
)

// ErrNotDescendant is returned by [Adopt] for a pid that does not name a
// live descendant of the caller.
var ErrNotDescendant = errors.New("not a live descendant")

// ErrExited is returned by [Adopt] when the process is a descendant that
// has already exited: the caller, its subreaper, may still reap it for its
// status.
var ErrExited = errors.New("already exited")

// Adopt takes hold of pid, a daemon that a launcher wrote to a pid file,
// and closes the pid-reuse race as far as it can be closed
// (spec/background-watch.md step 5, spec/supervise.md §3.10): the pidfd is
// opened first, the /proc parent chain checked next, and the pidfd polled
// last; not readable then means the check saw the very process the pidfd
// names, which from then on cannot be confused with a reused pid.
func Adopt(pid int) (*Pidfd, error) {
	p, err := OpenPidfd(pid)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotDescendant, sys.Errno(err))
	}
	ok, err := pidfile.IsDescendant(pid, os.Getpid())
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("%w: %w", ErrNotDescendant, sys.Errno(err))
	}
	if !ok {
		p.Close()
		return nil, ErrNotDescendant
	}
	exited, err := p.Exited()
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("%w: %w", ErrNotDescendant, sys.Errno(err))
	}
	if exited {
		p.Close()
		return nil, ErrExited
	}
	return p, nil
}
