// Package supervise is the supervise applet: it keeps the daemon of one s6
// service directory running, with s6-supervise's files, status, control
// fifo and events, so real s6 tools can drive it (spec/supervise.md).
//
// Synopsis
//
//	supervise DIR
//
// Exit codes
//
//	0    supervise was told to exit (svc -x, SIGTERM...), or the service
//	     went down after that
//	100  usage; supervise/, event/ or control of the wrong type; another
//	     supervisor holds DIR/supervise/lock
//	101  internal error
//	111  a system call failed
//
// # Differences from s6
//
// --help prints help. Q creates down and clears wantup (s6-supervise 2.15
// ignores it). An invalid notification-fd starts the service without a
// notification pipe. run and finish always start with default signal
// dispositions.
//
// The servicedir pidfile file (§3.10, a gotools extension) runs ./run as
// a launcher and adopts the daemon it forks, as background-watch does.
//
// lock-fd N makes run hold an exclusive lock on supervise/service-lock on
// fd N: run is started through gotools' own setlock (s6-supervise uses
// s6-setlock), so a new run waits until every process of the previous
// one has let go of the lock. notification-fd equal to lock-fd refuses the
// start and retries every 60 s (s6-supervise waits for a command).
//
// Not implemented yet (spec/supervise.md): the fd store (§3.11).
package supervise

import (
	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
)

// Applet is supervise's registry entry.
var Applet = cli.Applet{
	Name:    "supervise",
	Aliases: []string{"s6-supervise"},
	Summary: "keep the daemon of one s6 service directory running",
	Usage:   "DIR",
	Help: `Runs DIR/run, restarts it when it dies (at most once a second), runs
DIR/finish after each death, and obeys svc commands through
DIR/supervise/control. State is in DIR/supervise/status (s6's 35-byte
format); events go to the DIR/event fifodir.

Exit codes: 0 told to exit; 100 usage, a file of the wrong type, or another
supervisor already running; 111 system failure.

A pidfile file (gotools extension) makes ./run a launcher whose forked
daemon, named in the pid file, is adopted and supervised.

lock-fd N: run holds an exclusive lock on supervise/service-lock on fd N,
taken through gotools' setlock (s6-supervise uses s6-setlock), so a new
run waits until every process of the old one has released it.
notification-fd equal to lock-fd: warning, retried every 60 s
(s6-supervise waits for a command).

Not implemented yet: the fd store.

Test hooks: GOTOOLS_SUPERVISE_THROTTLE_MS=N replaces the 1 s restart
throttle with N ms (the test suite's soak test uses it).`,
	New: func() cli.Command { return new(command) },
}

type command struct {
	Dir []string `arg:"" optional:"" name:"dir" help:"The service directory."`
}

func (c *command) Run(env *cli.Env) error {
	if len(c.Dir) != 1 || c.Dir[0] == "" {
		return exitcode.ErrUsage
	}
	name := env.Name
	env.Name = name + " " + c.Dir[0] // messages say "supervise DIR: ..."
	s := &service{env: env, dir: c.Dir[0]}
	return s.run()
}
