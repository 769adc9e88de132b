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
// The fd store (§3.11, a gotools extension, systemd-compatible): with a
// notify-socket file, run gets NOTIFY_SOCKET, a datagram socket at
// DIR/notify, mode 0666 so that a run that drops privileges reaches it
// (an abstract @gotools-supervise/RANDOM address when the path is too
// long or cannot be bound; a failure never stops the start). Messages from run's session are read as
// sd_notify(3)'s: READY=1 is readiness, as a notification-fd newline;
// FDSTORE=1 (FDNAME=, default "stored"; FDPOLL=0) with SCM_RIGHTS keeps up
// to fdstore-max fds (default 0: every fd refused, at most 4096), an open
// file stored already being ignored (kcmp KCMP_FILE) and an fd that hangs
// up being dropped unless FDPOLL=0; FDSTOREREMOVE=1 with FDNAME= drops
// that name's fds. Each start of run then places the fds at 3, 4, ... with
// LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID through `fdrestore restore
// --listen-fds` (one more exec, same pid); a notification-fd or lock-fd
// among those numbers refuses the start (retried every 60 s). The store
// survives crashes and r; d, D, x and SIGTERM empty it unless
// flag-fdstore-preserve exists; it dies with supervise. Unlike systemd,
// an invalid FDNAME= refuses the fds instead of storing them as "stored".
// supervise/fdstore lists the store, one "NAME LINK" line per fd.
package supervise

import (
	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/supervisor"
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

fd store (gotools extension, systemd's FileDescriptorStoreMax=): a
notify-socket file gives run NOTIFY_SOCKET (DIR/notify); READY=1
is readiness; FDSTORE=1 [FDNAME=name] [FDPOLL=0] with SCM_RIGHTS keeps up
to fdstore-max fds (default 0), which every later start of run finds at
3, 4, ... with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (placed by
fdrestore restore --listen-fds); FDSTOREREMOVE=1 FDNAME=name drops them.
The store survives crashes and restarts; d, D, x and SIGTERM empty it
unless flag-fdstore-preserve exists. supervise/fdstore lists it, one
"NAME LINK" line per fd (e.g. "web socket:[1234]").

Test hooks: GOTOOLS_SUPERVISE_THROTTLE_MS=N replaces the 1 s restart
throttle with N ms (the test suite's soak test uses it).`,
	New:  func() cli.Command { return new(command) },
	Fast: fast,
}

// fast runs "supervise DIR" (or "supervise -- DIR") without kong: a
// long-lived supervise keeps whatever its start-up allocated (the
// collector is off), and kong's parser and help interpolation are most of
// that. Anything else is kong's to parse.
func fast(args []string, env *cli.Env) (bool, error) {
	dir, ok := cli.OneOperand(args)
	if !ok {
		return false, nil
	}
	return true, (&command{Dir: []string{dir}}).Run(env)
}

type command struct {
	Dir []string `arg:"" optional:"" name:"dir" help:"The service directory."`
}

func (c *command) Run(env *cli.Env) error {
	if len(c.Dir) != 1 || c.Dir[0] == "" {
		return exitcode.ErrUsage
	}
	dir, applet := c.Dir[0], env.Name
	env.Name = applet + " " + dir // messages say "supervise DIR: ..."
	supervisor.QuietRuntime(8 << 20)
	if err := fd.EnsureStdio(); err != nil {
		return err
	}
	if err := unix.Chdir(dir); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to chdir to %s: %w", dir, err)
	}
	// Every signal is caught into a self-pipe that the loop watches (§3.1
	// step 3): SIGCHLD, TERM, HUP, QUIT, INT are acted on, the others
	// discarded, so none kills supervise and none is left ignored for run
	// to inherit.
	sigR, err := sig.RawPipe()
	if err != nil {
		return err
	}
	loop := &supervisor.Loop{Env: env, Signals: sigR}
	s, err := supervisor.Open(loop, supervisor.Config{Env: env, Dir: dir, Applet: applet, InDir: true})
	if err != nil {
		return err
	}
	loop.OnSignal = s.Signal
	if err := loop.Run(); err != nil {
		return exitcode.New(exitcode.Sys, err)
	}
	return s.Err()
}
