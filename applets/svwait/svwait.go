// Package svwait is the svwait applet: it waits until supervised services
// are up, ready, down or restarted (spec/supervise.md §7).
//
// Synopsis
//
//	svwait [ -U | -u | -D | -d | -r | -R ] [ -a | -o ] [ -t ms ] DIR...
//
// For each DIR, svwait subscribes to DIR/event (making it, mode 03730, if
// it is missing) before it reads DIR/supervise/status, so that no change is
// missed; then it reads the supervisor's events until every DIR (-a, the
// default) or one DIR (-o) is in the wanted state: -u up (the default), -U
// up and ready, -d down, -D down and ready, -r down then up, -R down then
// up and ready. When several state or -a/-o options are given, the last
// one wins, as with getopt in s6-svwait. An O event (permanent failure)
// while up is wanted settles its DIR as a failure; an x event (the
// supervisor exits) settles its DIR, as a death unless the DIR was in the
// wanted state. svwait unlinks its FIFOs on every exit, SIGINT, SIGTERM and
// SIGHUP included.
//
// Exit codes
//
//	0      the wanted state was reached
//	1-98   that many services failed permanently (capped at 98)
//	99     -t expired ("timed out"; -t 0, the default, waits forever)
//	100    usage error (no DIR included)
//	102    some supervisors died
//	111    a system call failed (DIR missing, malformed status, ...)
//	128+n  signal n (SIGINT, SIGTERM or SIGHUP) ended the wait, silently
//
// # Differences from s6
//
// --help prints help; long options --timeout, --or, --and and one per
// state (--up, --up-ready, --down, --down-ready, --restart,
// --restart-ready). A missing supervise/status counts as down and not
// ready (s6-svwait exits 111), so svwait may start before the supervisor.
// A supervisor that dies is exit 102 (s6-svwait's code counts it among
// the failures). s6-svwait dies by SIGINT, SIGTERM or SIGHUP and leaves
// its FIFO behind; svwait unlinks it and exits 128+n. No DIR is a usage
// error (exit 100), as with s6-svwait 2.11.
package svwait

import (
	"time"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/servicedir"
)

// Applet is svwait's registry entry.
var Applet = cli.Applet{
	Name:    "svwait",
	Aliases: []string{"s6-svwait"},
	Summary: "wait until supervised services are up, ready or down",
	Usage:   "[ -U | -u | -D | -d | -r | -R ] [ -a | -o ] [ -t ms ] DIR...",
	Help: `Waits until every DIR (-a, the default) or one DIR (-o) is up (-u, the
default), up and ready (-U), down (-d), down and ready (-D), down then up
(-r) or down then up and ready (-R). The last state option wins. DIR/event
is made if missing; a missing DIR/supervise/status counts as down. -t MS
gives up after MS milliseconds (0, the default: never).

Exit codes: 0 reached; n (1-98) services failed permanently; 99 timed out;
100 usage; 102 some supervisors died; 111 system failure; 128+n ended by
signal n (SIGINT, SIGTERM, SIGHUP), after unlinking its FIFOs.

Differences from s6-svwait: long options; a missing status file counts as
down (s6-svwait exits 111); a dead supervisor is exit 102; on SIGINT,
SIGTERM and SIGHUP the FIFOs are unlinked and the exit code is 128+n.`,
	New: func() cli.Command { return new(command) },
}

// command is svwait's grammar. kong checks it; which of several state
// (or -a/-o) options came last, which kong does not keep, is read from
// the same arguments by [scan].
type command struct {
	Up           bool       `short:"u" name:"up" help:"Wait until up (the default)."`
	UpReady      bool       `short:"U" name:"up-ready" help:"Wait until up and ready."`
	Down         bool       `short:"d" name:"down" help:"Wait until down."`
	DownReady    bool       `short:"D" name:"down-ready" help:"Wait until down and ready (finish done)."`
	Restart      bool       `short:"r" name:"restart" help:"Wait until down, then up."`
	RestartReady bool       `short:"R" name:"restart-ready" help:"Wait until down, then up and ready."`
	And          bool       `short:"a" name:"and" help:"Wait for every DIR (the default)."`
	Or           bool       `short:"o" name:"or" help:"Wait for one DIR."`
	Timeout      cli.Millis `short:"t" name:"timeout" placeholder:"MS" help:"Give up after MS milliseconds (0: never)."`

	Dirs []string `arg:"" passthrough:"partial" name:"dir" help:"Service directories."`
}

func (c *command) Run(env *cli.Env) error {
	state, any := scan(env.Args)
	goal, _ := servicedir.ParseGoal(state)
	dirs := cli.Operands(c.Dirs)
	if len(dirs) == 0 {
		return exitcode.ErrUsage
	}
	ctx, cancel := servicedir.WaitContext(time.Duration(c.Timeout) * time.Millisecond)
	defer cancel()
	w, err := servicedir.Watch(dirs)
	if err != nil {
		return err
	}
	defer w.Close()
	return env.Reword(w.Wait(ctx, goal, any), failedOrDied, s6WaitFailure)
}

// scan returns the last state letter (u by default) and whether the last
// of -a and -o was -o, reading args as getopt would: up to "--", "-" or
// the first operand. kong has checked the syntax already.
func scan(args []string) (state byte, any bool) {
	state = 'u'
	long := map[string]byte{
		"up": 'u', "up-ready": 'U', "down": 'd', "down-ready": 'D',
		"restart": 'r', "restart-ready": 'R', "and": 'a', "or": 'o',
	}
	set := func(c byte) {
		switch c {
		case 'a', 'o':
			any = c == 'o'
		default:
			state = c
		}
	}
	valued := func(name string) bool { return name == "t" || name == "timeout" }
	_ = cli.Options(args, valued, func(name, _ string) error {
		switch {
		case valued(name):
		case len(name) == 1:
			set(name[0])
		default:
			if c, ok := long[name]; ok {
				set(c)
			}
		}
		return nil
	})
	return state, any
}

// s6WaitFailure is s6-svwait's one message for permanent failures and dead
// supervisors, which svwait tells apart (n, 102) under its own name.
const s6WaitFailure = "some services reported permanent failure or their supervisor died"

func failedOrDied(code int) bool {
	return code >= 1 && code <= 98 || code == servicedir.CodeDied
}
