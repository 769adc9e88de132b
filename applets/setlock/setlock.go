// Package setlock is the setlock applet: it takes a lock on a file, then
// executes a program that holds it (spec/locks.md, "setlock").
//
// Synopsis
//
//	setlock [ -r | -w ] [ -n | -N ] [ -t ms ] [ -d fd ] lockfile prog...
//
// -w (the default) asks for an exclusive lock, -r for a shared one; -N (the
// default) waits for it, -n fails at once if it is busy and wins over -t;
// -t ms gives up after ms milliseconds (0: never); -d fd puts the fd that
// carries the lock at fd in prog. The last of -r/-w and of -n/-N wins.
//
// Without -t, setlock opens lockfile as s6 does, locks it (fcntl(2)
// F_OFD_SETLKW, or F_OFD_SETLK with -n) and executes prog with the locked
// fd inherited. With -t it tries once; if the lock is busy it runs a
// lockd-helper child, which waits for the lock and can be killed when the
// time is up. prog then inherits a pipe to the helper instead of the
// file: in both cases the lock is held until every copy of the fd is
// closed, and prog must not assume which kind of fd it holds.
//
// Exit codes
//
//	1    the lock is busy (-n), the time ran out (-t), or the helper failed to lock
//	100  usage error
//	111  system failure (the lock file could not be opened, ...)
//	126  prog could not be executed
//	127  prog was not found
//
// # Differences from s6
//
// --help prints help; long options. Locks are OFD locks, which conflict
// with s6's POSIX locks. With -t, s6-setlock (2.12 and later) waits with
// alarm(2); setlock waits through a helper process as s6 2.11 did, which
// becomes a child of prog, and takes a free lock without any helper. The
// helper is this binary, or $GOTOOLS_LOCK_HELPER. -s SOCKET (a lock from
// lockd) is not built yet: it is refused with exit 100.
package setlock

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/proc"
)

// Applet is setlock's registry entry.
var Applet = cli.Applet{
	Name:    "setlock",
	Aliases: []string{"s6-setlock"},
	Summary: "take a lock on a file, then run a program that holds it",
	Usage:   "[ -r | -w ] [ -n | -N ] [ -t ms ] [ -d fd ] lockfile prog...",
	Help: `Locks lockfile (-w exclusive, the default; -r shared), waiting for it (-N,
the default) or not (-n), then executes prog, which holds the lock until
it and everything that inherited the lock fd have closed it. -t MS gives up
after MS milliseconds (0: never; -n wins over -t); -d FD puts the lock on
fd FD in prog. The last of -r/-w and of -n/-N wins.

Exit codes: 1 busy (-n), timed out (-t) or the lock helper failed; 100
usage; 111 system failure; 126 prog not executable; 127 prog not found.

Differences from s6-setlock: long options; OFD locks (they conflict with
s6's POSIX locks); -t waits through a lockd-helper child (this binary, or
$GOTOOLS_LOCK_HELPER), as s6 2.11 did, and that helper becomes a child of
prog; -s SOCKET (ask lockd) is not built yet and exits 100.`,
	New: func() cli.Command { return new(command) },
}

type command struct {
	Shared    bool       `short:"r" name:"shared" help:"Take a shared lock."`
	Exclusive bool       `short:"w" name:"exclusive" help:"Take an exclusive lock (the default)."`
	NoWait    bool       `short:"n" name:"nb" help:"Fail at once if the lock is busy."`
	Wait      bool       `short:"N" name:"block" help:"Wait for the lock (the default)."`
	Timeout   cli.Millis `short:"t" name:"timeout" placeholder:"MS" help:"Give up after MS milliseconds (0: never)."`
	FD        cli.Uint   `short:"d" name:"fd" placeholder:"FD" help:"Put the lock on fd FD in prog."`
	Socket    string     `short:"s" name:"socket" placeholder:"SOCKET" help:"Ask the lockd on SOCKET (not built yet)."`

	Args []string `arg:"" passthrough:"partial" name:"lockfile prog" help:"The lock file, then the program and its arguments."`
}

func (c *command) Run(env *cli.Env) error {
	start := time.Now()
	kind, wait, moved := scan(env.Args)
	args := cli.Operands(c.Args)
	if len(args) < 2 {
		return exitcode.ErrUsage
	}
	if c.Socket != "" {
		return exitcode.New(exitcode.Usage, errors.New("-s is not supported yet: lockd is not built"))
	}
	path, prog := args[0], args[1:]
	var deadline time.Time
	if wait && c.Timeout > 0 {
		deadline = start.Add(time.Duration(c.Timeout) * time.Millisecond)
	}
	lfd, err := take(path, kind, wait, deadline)
	if err != nil {
		return err
	}
	if moved {
		if err := moveTo(lfd, int(c.FD)); err != nil {
			unix.Close(lfd)
			return exitcode.New(exitcode.Sys, err)
		}
	} else if err := fd.ClearCloexec(lfd); err != nil {
		unix.Close(lfd)
		return exitcode.New(exitcode.Sys, err)
	}
	return proc.Exec(prog)
}

// take returns an fd that carries the lock: the locked file itself, or
// the pipe to a helper that holds it (-t on a busy lock).
func take(path string, kind lock.Kind, wait bool, deadline time.Time) (int, error) {
	open := lock.OpenShared
	if kind == lock.Exclusive {
		open = lock.OpenExclusive
	}
	f, err := open(path)
	if err != nil {
		return -1, exitcode.New(exitcode.Sys, err)
	}
	switch {
	case !wait:
		err = lock.TryLock(f, kind)
	case deadline.IsZero():
		err = lock.Lock(f, kind)
	default:
		err = lock.TryLock(f, kind)
		if errors.Is(err, lock.ErrBusy) {
			f.Close()
			return viaHelper(path, kind, deadline)
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, lock.ErrBusy) || !wait {
			return -1, exitcode.New(exitcode.Refused, fmt.Errorf("unable to lock %s: %w", path, err))
		}
		return -1, exitcode.New(exitcode.Sys, fmt.Errorf("unable to lock %s: %w", path, err))
	}
	return detach(f)
}

func viaHelper(path string, kind lock.Kind, deadline time.Time) (int, error) {
	f, err := lock.ViaHelper(path, kind, deadline)
	var he *lock.HelperExit
	switch {
	case err == nil:
		return detach(f)
	case errors.Is(err, lock.ErrTimeout):
		return -1, exitcode.New(exitcode.Refused, fmt.Errorf("lock %s: timed out", path))
	case errors.As(err, &he) && he.Status.Exited() && he.Status.ExitStatus() == 1:
		return -1, exitcode.Exit(exitcode.Refused) // the helper said why
	default:
		return -1, exitcode.New(exitcode.Sys, fmt.Errorf("unable to lock %s: %w", path, err))
	}
}

// detach takes the fd out of f without closing it; it stays blocking and
// close-on-exec.
func detach(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return -1, exitcode.New(exitcode.Sys, err)
	}
	nfd := -1
	cerr := rc.Control(func(u uintptr) {
		nfd, err = unix.FcntlInt(u, unix.F_DUPFD_CLOEXEC, 0)
	})
	f.Close() // the lock is on the open file, which nfd still holds
	if cerr != nil {
		err = cerr
	}
	if err != nil {
		return -1, exitcode.New(exitcode.Sys, fmt.Errorf("unable to duplicate the lock fd: %w", err))
	}
	return nfd, nil
}

// moveTo makes the lock fd be fd to, inheritable, and closes lfd.
func moveTo(lfd, to int) error {
	if lfd == to {
		return fd.ClearCloexec(lfd)
	}
	if err := unix.Dup3(lfd, to, 0); err != nil {
		return fmt.Errorf("unable to move the lock to fd %d: %w", to, err)
	}
	unix.Close(lfd)
	return nil
}

// scan returns the last of -r/-w, whether the last of -n/-N was -N and
// whether -d was given, reading the arguments as getopt would. kong has
// checked the syntax.
func scan(args []string) (kind lock.Kind, wait, moved bool) {
	kind, wait = lock.Exclusive, true
	valued := func(name string) bool {
		switch name {
		case "t", "timeout", "d", "fd", "s", "socket":
			return true
		}
		return false
	}
	_ = cli.Options(args, valued, func(name, _ string) error {
		switch name {
		case "r", "shared":
			kind = lock.Shared
		case "w", "exclusive":
			kind = lock.Exclusive
		case "n", "nb":
			wait = false
		case "N", "block":
			wait = true
		case "d", "fd":
			moved = true
		}
		return nil
	})
	return kind, wait, moved
}
