// Package svc is the svc applet: it sends commands to the supervise (or
// s6-supervise) processes of service directories, through their control
// FIFOs (spec/supervise.md §2.5, §4).
//
// Synopsis
//
//	svc [ -wu | -wU | -wd | -wD | -wr | -wR ] [ -T ms ] [ -s sig | -abqhkti12pcyrlPCK ] [ -oduDUxOQ ] DIR...
//
// The command letters are sent in command-line order (-du sends "du", -ud
// sends "ud"), at most 62 of them, in one write to each DIR's
// supervise/control. -s SIG adds the letter of SIG, one of ALRM ABRT QUIT
// HUP KILL TERM INT USR1 USR2 STOP CONT WINCH. With no letter, svc only
// checks that each supervisor listens.
//
// Exit codes
//
//	0    every DIR was controlled (with -w: and reached the state)
//	1    the last failing DIR has a broken supervise/ (no usable FIFO)
//	1-98 with -w: that many services failed permanently (capped at 98)
//	99   with -w: -T expired ("timed out")
//	100  usage error, invalid or unlisted signal, too many commands,
//	     empty DIR
//	102  the last failing DIR has no supervisor listening; with -w, a
//	     supervisor died ("some supervisors died")
//	111  the last failing DIR is missing, or a system call failed
//	128+n with -w: signal n (SIGINT, SIGTERM, SIGHUP) ended the wait
//
// With -wSTATE (u U d D r R) svc first subscribes to every DIR's event/
// (made 03730 if missing) and reads its status, then sends the letters
// (a failure exits at once with its code, without waiting), then waits
// until every DIR reaches STATE as "svwait -STATE -t T DIR..." does, -T
// 0 (the default) meaning forever. With -wU or -wR, a DIR with neither
// notification-fd nor notify-socket cannot report readiness: svc warns
// and waits for up (u, r) for that DIR.
//
// # Differences from s6
//
// --help prints help (-h is SIGHUP); long options --wait, --timeout,
// --signal and one per letter. Several DIRs are accepted and each is
// tried, the exit code being the last failure's. "Not listening" is 102
// and a broken supervise/ is 1 (s6-svc 2.11 exits 100 for both). -w runs
// in-process (s6-svc execs s6-svlisten1 or s6-svwait); its readiness
// fallback is per DIR (s6-svc checks the first DIR only); a -T timeout is
// 99 (s6-svc's code; its docs say 1); the FIFOs are unlinked on SIGINT,
// SIGTERM and SIGHUP, and the exit code is then 128+n.
package svc

import (
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/servicedir"
)

// Applet is svc's registry entry.
var Applet = cli.Applet{
	Name:    "svc",
	Aliases: []string{"s6-svc"},
	Summary: "send commands to the supervisors of service directories",
	Usage:   "[ -wu | -wU | -wd | -wD | -wr | -wR ] [ -T ms ] [ -s sig | -abqhkti12pcyrlPCK ] [ -oduDUxOQ ] DIR...",
	Help: `Writes the command letters, in command-line order (-du sends "du", -ud
sends "ud"; at most 62), in one write to DIR/supervise/control, for each
DIR in turn. Without letters svc only checks that the supervisor listens.
-s SIG sends the letter of SIG: ALRM ABRT QUIT HUP KILL TERM INT USR1 USR2
STOP CONT WINCH (a b q h k t i 1 2 p c y). -T without -w is ignored.

-wSTATE (u U d D r R) subscribes to each DIR/event and reads its status,
sends the letters (a send error exits at once), then waits until every DIR
is up, up and ready, down, down and ready, down then up, or down then up
and ready, as "svwait -STATE -t T DIR..." (-T 0, the default: forever).
With -wU/-wR, a DIR with neither notification-fd nor notify-socket gets a
warning and is waited for up only.

Exit codes: 0 every DIR controlled; otherwise the code of the last failing
DIR: 102 supervisor not listening (or no supervise/), 1 something is wrong
with DIR/supervise (no usable control FIFO), 111 DIR missing or a system
call failed. 100 usage: no DIR, empty DIR, invalid signal, signal not in
the list, too many commands. With -w, once the letters are sent: 0 state
reached, n (1-98) services failed permanently, 99 timed out, 102 some
supervisors died, 111 system failure, 128+n ended by signal n.

Differences from s6-svc: --help (-h is SIGHUP) and long options; several
DIRs; exits 102, not 100, when not listening and 1, not 100, for a broken
supervise/; -w runs in-process, its readiness fallback is per DIR, and
SIGINT, SIGTERM, SIGHUP unlink its FIFOs (exit 128+n).`,
	New:     func() cli.Command { return new(command) },
	Fast:    fast,
	Options: []kong.Option{kong.NoDefaultHelp()},
}

// fast runs the common command lines, command letters in bundles and
// DIRs ("svc -u DIR", "svc -dx A B"), without kong; anything else (-w,
// -T, -s, long options, --help, errors) is kong's to parse.
func fast(args []string, env *cli.Env) (bool, error) {
	i := 0
	for ; i < len(args) && len(args[i]) > 1 && args[i][0] == '-'; i++ {
		for j := 1; j < len(args[i]); j++ {
			c := args[i][j]
			if c == 'w' || c == 'T' || c == 's' || c == '-' {
				return false, nil
			}
			if _, ok := letterOf(string(c)); !ok {
				return false, nil
			}
		}
	}
	dirs := args[i:]
	if len(dirs) == 0 {
		return false, nil
	}
	for _, d := range dirs {
		if d == "" || d[0] == '-' {
			return false, nil
		}
	}
	return true, (&command{Dirs: dirs}).Run(env)
}

// command is svc's grammar. kong checks the command line and gives help;
// the order of the letters, which kong's fields cannot keep, is read from
// the same arguments by [scan].
type command struct {
	Help    cli.HelpFlag `name:"help" help:"Show this help and exit."`
	Wait    string       `short:"w" name:"wait" placeholder:"STATE" help:"Wait for STATE (u U d D r R) after sending."`
	Timeout cli.Millis   `short:"T" name:"timeout" placeholder:"MS" help:"Give up waiting after MS milliseconds (only with -w)."`
	Signal  string       `short:"s" name:"signal" placeholder:"SIG" help:"Send SIG: ALRM ABRT QUIT HUP KILL TERM INT USR1 USR2 STOP CONT WINCH."`

	Alrm   bool `short:"a" name:"alrm" help:"Send SIGALRM."`
	Abrt   bool `short:"b" name:"abrt" help:"Send SIGABRT."`
	Quit   bool `short:"q" name:"quit" help:"Send SIGQUIT."`
	Hup    bool `short:"h" name:"hup" help:"Send SIGHUP."`
	Kill   bool `short:"k" name:"kill" help:"Send SIGKILL."`
	Term   bool `short:"t" name:"term" help:"Send SIGTERM."`
	Int    bool `short:"i" name:"int" help:"Send SIGINT."`
	Usr1   bool `short:"1" name:"usr1" help:"Send SIGUSR1."`
	Usr2   bool `short:"2" name:"usr2" help:"Send SIGUSR2."`
	Stop   bool `short:"p" name:"stop" help:"Send SIGSTOP (pause)."`
	Cont   bool `short:"c" name:"cont" help:"Send SIGCONT (continue)."`
	Winch  bool `short:"y" name:"winch" help:"Send SIGWINCH."`
	Restar bool `short:"r" name:"restart" help:"Send the down-signal (restart if wanted up)."`
	Reload bool `short:"l" name:"reload" help:"Send the reload-signal."`
	PgStop bool `short:"P" name:"pgstop" help:"Send SIGSTOP to the process group."`
	PgCont bool `short:"C" name:"pgcont" help:"Send SIGCONT to the process group."`
	PgKill bool `short:"K" name:"pgkill" help:"Send SIGKILL to the process group."`
	Once   bool `short:"o" name:"once" help:"Run once: start if down, do not restart."`
	Down   bool `short:"d" name:"down" help:"Bring down (down-signal, then SIGCONT)."`
	Up     bool `short:"u" name:"up" help:"Bring up and keep up."`
	DownD  bool `short:"D" name:"down-file" help:"Create DIR/down, then as -d."`
	UpU    bool `short:"U" name:"up-file" help:"Remove DIR/down, then as -u."`
	Exit   bool `short:"x" name:"exit" help:"Make the supervisor exit once the service is down."`
	OnceO  bool `short:"O" name:"once-at-most" help:"Do not restart after the next death."`
	QuitQ  bool `short:"Q" name:"down-quiet" help:"Create DIR/down and do not restart, killing nothing."`

	Dirs []string `arg:"" passthrough:"partial" name:"dir" help:"Service directories."`
}

// Validate rejects a -w without a known state.
func (c *command) Validate() error {
	if c.Wait != "" && (len(c.Wait) != 1 || !strings.Contains("uUdDrR", c.Wait)) {
		return &cli.BadValue{Opt: "-w", Word: c.Wait, Why: "is not one of u U d D r R"}
	}
	return nil
}

func (c *command) Run(env *cli.Env) error {
	letters, err := scan(env.Args)
	if err != nil {
		return err
	}
	dirs := cli.Operands(c.Dirs)
	if len(dirs) == 0 {
		return exitcode.ErrUsage
	}
	for _, d := range dirs {
		if d == "" {
			return exitcode.Errorf(exitcode.Usage, "invalid service path")
		}
	}
	if c.Wait != "" {
		return c.wait(env, dirs, letters)
	}
	if len(dirs) == 1 {
		// One DIR, as s6-svc takes: its failure is fatal.
		return Control(dirs[0], letters)
	}
	code := exitcode.OK
	for _, d := range dirs {
		if err := Control(d, letters); err != nil {
			env.Warn(err)
			code = exitcode.Of(err)
		}
	}
	if code != exitcode.OK {
		return exitcode.Exit(code)
	}
	return nil
}

// wait is svc -wSTATE, in-process (spec/supervise.md §4): subscribe to
// every DIR's events and read its status, send the letters, then wait as
// svwait -STATE -t T DIR... does. Subscribing first is what makes it
// race-free: the change the letters cause cannot happen unseen.
func (c *command) wait(env *cli.Env, dirs []string, letters []byte) error {
	goal, _ := servicedir.ParseGoal(c.Wait[0])
	ctx, cancel := servicedir.WaitContext(time.Duration(c.Timeout) * time.Millisecond)
	defer cancel()
	w, err := servicedir.Watch(dirs)
	if err != nil {
		return err
	}
	defer w.Close()
	if goal.Ready && goal.Up {
		for i, d := range dirs {
			if !servicedir.HasReadiness(d) {
				env.Warnf("%s/notification-fd not present - ignoring request for readiness notification", d)
				w.AnyReady(i)
			}
		}
	}
	if len(letters) > 0 {
		for _, d := range dirs {
			if err := Control(d, letters); err != nil {
				return err
			}
		}
	}
	return env.Reword(w.Wait(ctx, goal, false), failedOrDied, s6WaitFailure)
}

// s6WaitFailure is s6-svwait's one message for permanent failures and dead
// supervisors, which svwait tells apart (n, 102) under its own name.
const s6WaitFailure = "some services reported permanent failure or their supervisor died"

func failedOrDied(code int) bool {
	return code >= 1 && code <= 98 || code == servicedir.CodeDied
}
