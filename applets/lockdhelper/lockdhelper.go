// Package lockdhelper is the lockd-helper applet: one small process per
// lock, which takes it, says so, and holds it until told to let go
// (spec/locks.md, "lockd-helper").
//
// Synopsis
//
//	lockd-helper r|w lockfile
//
// A first argument starting with w asks for an exclusive lock, anything
// else for a shared one (upstream's rule); extra operands are ignored and
// nothing is an option. The helper opens lockfile as s6 does, blocks until
// it holds the lock (fcntl(2) F_OFD_SETLKW), writes one byte "!" on fd 1,
// then reads fd 0: any byte or end of file makes it close the lock and
// exit 0. It catches no signal: killed, the kernel releases the lock.
//
// Exit codes
//
//	0    told to let go (a byte or EOF on fd 0)
//	1    the lock could not be taken (busy, with the n mode)
//	100  fewer than two operands
//	111  the lock file could not be opened, or fd 0/1 failed
//
// # Differences from s6
//
// gotools extensions, letters after the first byte of the mode, which
// s6lockd-helper ignores: "n" ("wn", "rn") tries the lock once and exits
// 1 if it is busy; "d" ("wd", "rd") locks the open file on fd 3 (lockd's
// own, so that the lock belongs to lockd) instead of opening lockfile
// (then only named in messages), writes "!" and exits 0 at once.
package lockdhelper

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Applet is lockd-helper's registry entry. Its argv is fixed by s6's
// callers, so it has no parser: "--help" alone (which upstream would
// refuse as too few operands) is the only word it reads besides them.
var Applet = cli.Applet{
	Name:    "lockd-helper",
	Aliases: []string{"s6lockd-helper"},
	Summary: summary,
	Usage:   "r|w lockfile",
	Help:    help,
	Raw:     run,
}

const (
	summary = "take one lock, say \"!\", hold it until fd 0 has a byte or ends"
	help    = `A first argument starting with w asks for an exclusive lock, anything
else for a shared one; extra operands are ignored and nothing else is an
option. Opens lockfile as s6 does, waits until it holds the lock (an OFD
fcntl lock), writes "!" on fd 1, then reads fd 0: any byte or end of file
makes it release the lock and exit 0. It catches no signal: killed, the
kernel releases the lock. This is lockd's and setlock -t's helper, and
s6lockd-helper's replacement.

gotools extensions, letters after the first byte of the mode: n (wn, rn)
tries once and exits 1 if busy; d (wd, rd, lockd's) locks the open file
on fd 3 instead of opening lockfile, writes "!" and exits 0.

Exit codes: 0 told to let go; 1 the lock could not be taken (busy with
n); 100 fewer than two operands; 111 lockfile could not be opened, or fd
0/1 failed.`
)

func run(args []string, env *cli.Env) int {
	if len(args) == 1 && args[0] == "--help" {
		fmt.Fprintf(env.Stdout, "Usage: %s r|w lockfile\n\n%s\n\n%s\n", env.Name, summary, help)
		return exitcode.OK
	}
	if len(args) < 2 {
		fmt.Fprintf(env.Stderr, "%s: usage: %s r|w lockfile\n", env.Name, env.Name)
		return exitcode.Usage
	}
	mode, path := args[0], args[1]
	kind := lock.Shared
	if strings.HasPrefix(mode, "w") {
		kind = lock.Exclusive
	}
	try := len(mode) > 1 && strings.Contains(mode[1:], "n")
	given := len(mode) > 1 && strings.Contains(mode[1:], "d")

	var f *os.File
	var err error
	switch {
	case given:
		// lockd's open file on fd 3: the lock will belong to it.
		var st unix.Stat_t
		if err := unix.Fstat(3, &st); err != nil {
			env.Fatal(fmt.Errorf("unable to lock %s: fd 3: %w", path, err))
			return exitcode.Sys
		}
		f = os.NewFile(3, path)
	case kind == lock.Exclusive:
		f, err = lock.OpenExclusive(path)
	default:
		f, err = lock.OpenShared(path)
	}
	if err != nil {
		env.Fatal(err)
		return exitcode.Sys
	}
	if try {
		err = lock.TryLock(f, kind)
	} else {
		err = lock.Lock(f, kind)
	}
	if err != nil {
		env.Fatal(fmt.Errorf("unable to lock %s: %w", path, err))
		return exitcode.Refused
	}
	if _, err := sys.Write(1, []byte{'!'}); err != nil {
		env.Fatal(fmt.Errorf("unable to write to stdout: %w", sys.Errno(err)))
		return exitcode.Sys
	}
	if given {
		return exitcode.OK // the lock is lockd's: nothing to hold
	}
	if err := waitByte(0); err != nil {
		env.Fatal(fmt.Errorf("unable to read from stdin: %w", err))
		return exitcode.Sys
	}
	f.Close()
	return exitcode.OK
}

// waitByte blocks until fd has a byte or reaches end of file. An fd left
// non-blocking by the parent (a socket, say) is waited for with poll(2).
func waitByte(fd int) error {
	var b [1]byte
	for {
		_, err := sys.Read(fd, b[:])
		if !errors.Is(err, unix.EAGAIN) {
			return sys.Errno(err)
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := sys.Poll(pfd, -1); err != nil {
			return sys.Errno(err)
		}
	}
}
