// Package backgroundwatch is the background-watch applet: it supervises a
// daemon that forks itself into the background, through its pid file.
//
// Synopsis
//
//	background-watch [ -t timeout ] [ -d notif ] pidfile prog...
//
// It spawns prog... (the launcher), waits for it to exit 0, reads the daemon's
// pid from pidfile, then forwards every signal it receives to the daemon and
// exits when the daemon does, with an approximation of its exit status
// (spec/background-watch.md).
//
// Exit codes
//
//	100      usage error
//	104      the launcher exited 0 but pidfile is missing or holds no valid pid
//	111      a system call failed, the pid is not a live descendant, or the
//	         daemon's status is unknown
//	112      the system cannot watch backgrounded daemons (no subreaper)
//	126/127  prog could not be executed / was not found
//	137      -t expired and the launcher was killed
//	128+n    the launcher, or later the daemon, was killed by signal n
//	n        the launcher exited n != 0, or the daemon exited n (approximated)
//
// # Differences from s6
//
// --help prints help. -t warns once and sleeps until the launcher dies
// (s6-background-watch re-sends SIGKILL in a busy loop). Exit 104 is
// documented. Signals reach the daemon through a pidfd, and the pid read from
// pidfile must name a live descendant. SIGURG is never forwarded: the Go
// runtime uses it for preemption, so a sent one cannot be told apart.
package backgroundwatch

import (
	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
)

// Applet is background-watch's registry entry.
var Applet = cli.Applet{
	Name:    "background-watch",
	Aliases: []string{"s6-background-watch"},
	Summary: "supervise a self-backgrounding daemon through its pid file",
	Usage:   "[ -t timeout ] [ -d notif ] pidfile prog...",
	Help: `Spawns prog (the launcher), waits for it to exit 0, reads the daemon's pid
from pidfile, forwards every signal it gets to the daemon, and exits with
the daemon's exit code (128+n if signal n killed it; 128 for codes >= 128).

Exit codes: 100 usage; 104 launcher exited 0 but pidfile holds no valid pid;
111 system failure, pid not a live descendant, or daemon status unknown;
112 no subreaper support; 126/127 prog not runnable/not found; 137 -t
expired; otherwise the launcher's or the daemon's code, approximated.

Differences from s6-background-watch: -t warns once and waits for the
killed launcher instead of looping; exit 104 is documented; signals go
through a pidfd and the pid must name a live descendant.

Limits: SIGKILL to background-watch orphans the daemon. SIGURG and SIGPROF
are never forwarded (the Go runtime owns them); neither are signals
32-34, and 32 or 34 (SIGRTMIN on glibc) kills background-watch.`,
	New: func() cli.Command { return new(command) },
}

type command struct {
	Timeout        cli.Millis `short:"t" name:"timeout-ready" placeholder:"MS" help:"Kill the launcher (SIGKILL) and exit 137 if it has not exited after MS milliseconds; 0 waits forever."`
	NotificationFD *cli.Uint  `short:"d" name:"notification-fd" placeholder:"FD" help:"Write a newline to FD (>= 3) once the launcher exited 0 and the pid file was read."`
	Args           []string   `arg:"" passthrough:"partial" name:"pidfile prog" help:"The pid file the launcher writes, then the launcher and its arguments (passed untouched)."`
}

func (c *command) Run(env *cli.Env) error {
	w, err := c.watch(env)
	if err != nil {
		return err
	}
	return w.run()
}

// watch checks the parsed command line and turns it into a watch.
func (c *command) watch(env *cli.Env) (*watch, error) {
	args := cli.Operands(c.Args)
	if len(args) < 2 {
		return nil, exitcode.ErrUsage
	}
	notif := -1
	if c.NotificationFD != nil {
		if *c.NotificationFD < 3 {
			return nil, exitcode.ErrUsage
		}
		notif = int(*c.NotificationFD)
	}
	return &watch{env: env, pidfile: args[0], prog: args[1:], timeout: c.Timeout, notif: notif}, nil
}
