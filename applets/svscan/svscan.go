// Package svscan is the svscan applet: it runs one supervisor per service
// directory of a scan directory, pipes each service's output to its
// log/ service, reaps every child, and can be a container's PID 1
// (spec/supervise.md §8).
//
// Synopsis
//
//	svscan [ -C max ] [ -L namemax ] [ -t ms ] [ -d fd ] [ --supervisor=PROG ] SCANDIR
//
// --one-process supervises every service in svscan's own process
// (lib/supervisor), keeping each service directory exactly as supervise
// keeps it; the supervisor of DIR is then the holder of DIR/supervise/lock.
//
// -C (or -c, s6 2.11's name) is the most service directories (loggers included) it supervises
// (default 1000, clamped to 4..160000); -L the longest name it considers
// (default 251, clamped to 11..1019); -t the rescan period in ms (0, the
// default: never, so an idle svscan has no timer); -d an open fd of at
// least 3 that gets "\n" once signals and the control FIFO are set up,
// and is then closed. The supervisor of each service is this gotools
// binary run as "supervise NAME" (through /proc/self/exe, else the path
// resolved at start, else "gotools supervise NAME" from PATH), or "PROG
// NAME" with --supervisor=PROG (looked up in PATH).
//
// Control bytes on SCANDIR/.s6-svscan/control (svscanctl writes them):
// z reap, a scan, b exec the finish program at once, h scan then stop the
// supervisors of vanished services, n/N stop them (loggers get SIGHUP /
// SIGTERM), t and i stop everything and exec the finish program once
// every supervisor is gone, q as t with SIGTERM for the loggers too.
// Signals: CHLD reaps, ALRM scans, ABRT is b; HUP INT TERM QUIT USR1 USR2
// PWR WINCH run SCANDIR/.s6-svscan/SIGNAME if it is executable, else HUP
// is h, INT and TERM are t, QUIT is q; every other catchable signal is
// ignored.
//
// Exit codes
//
//	0    told to end, and there is no .s6-svscan/finish (with one, svscan
//	     execs it, and its exit code is svscan's)
//	100  usage; -X; .s6-svscan or .s6-svscan/control of the wrong type;
//	     another svscan holds .s6-svscan/lock
//	101  internal error
//	111  SCANDIR cannot be entered, a system call failed at start, the
//	     finish program cannot be run, or .s6-svscan/crash cannot be run
//	     after an unrecoverable failure
//
// # Differences from s6
//
// --help prints help; long options; --supervisor (s6-svscan runs the
// s6-supervise its build names). A failure to exec .s6-svscan/crash exits
// 111, as s6-svscan's documentation says (its code exits 126 or 127).
//
// Not implemented yet: -X consoleholder (exit 100, "-X is not supported
// yet") and the s6-svscan-log logger; s6-linux-init's stages.
package svscan

import (
	"errors"
	"time"

	"github.com/alecthomas/kong"
	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/supervisor"
)

// Applet is svscan's registry entry.
var Applet = cli.Applet{
	Name:    "svscan",
	Aliases: []string{"s6-svscan"},
	Summary: "supervise every service directory of a scan directory",
	Usage:   "[ -C max ] [ -L namemax ] [ -t ms ] [ -d fd ] [ --supervisor=PROG ] [ SCANDIR ]",
	Help: `Runs "supervise NAME" for each subdirectory NAME of SCANDIR (dot entries
and files are ignored; symlinks to directories count) and restarts a dead
supervisor at most once a second. If NAME/log is a directory, NAME's
output goes through a pipe that svscan keeps open to the supervisor of
NAME/log. svscan reaps every child, reparented orphans included, so it
can be a container's PID 1.

Control bytes on SCANDIR/.s6-svscan/control (svscanctl sends them): z
reap, a scan, b exec the finish program now, h scan and stop vanished
services, n/N stop vanished services (loggers get SIGHUP/SIGTERM), t/i
stop everything and exec .s6-svscan/finish, q as t with SIGTERM for the
loggers. Signals: ALRM scans; ABRT is b; HUP INT TERM QUIT USR1 USR2 PWR
WINCH run .s6-svscan/SIGNAME if executable, else HUP is h, INT and TERM
are t, QUIT is q. Other signals are ignored.

Exit codes: the finish program's; 0 without one; 100 usage, -X, a file of
the wrong type, or another svscan on SCANDIR; 111 system failure.

--one-process supervises every service inside svscan's own process: each
service directory is kept exactly as supervise keeps it, and svc, svstat,
svok, svwait and s6's tools see no difference, but there is no supervise
process: the supervisor of DIR is the process holding DIR/supervise/lock
open (fuser DIR/supervise/lock), svscan itself.

Differences from s6-svscan: --help, long options, --supervisor=PROG (run
"PROG NAME" from PATH instead of gotools supervise), --one-process; -c MAX
is -C MAX (s6 2.11's name); no SCANDIR scans the working directory. Not supported yet:
-X and the s6-svscan-log logger.`,
	New:  func() cli.Command { return new(command) },
	Fast: fast,
}

// fast runs "svscan [--one-process] SCANDIR" without kong: a long-lived
// svscan keeps whatever its start-up allocated (the collector is off), and
// kong's parser and help interpolation are most of that. Anything else is
// kong's to parse.
func fast(args []string, env *cli.Env) (bool, error) {
	c := &command{NameMax: defaultNameMax}
	if len(args) == 2 && args[0] == "--one-process" {
		c.OneProcess, args = true, args[1:]
	}
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		return false, nil
	}
	c.Args = args
	return true, c.Run(env)
}

// Limits of -C and -L, as spec/supervise.md §8 gives them.
const (
	minServices, maxServices = 4, 160000
	defaultServices          = 1000
	minNameMax, maxNameMax   = 11, 1019
	defaultNameMax           = 251 // as -L's default tag says
)

type command struct {
	Max        maxFlag    `short:"C" name:"services-max" placeholder:"MAX" help:"Supervise at most MAX service directories, loggers included (4..160000; default 1000)."`
	MaxOld     maxFlag    `short:"c" name:"c-services-max" hidden:"" placeholder:"MAX" help:"s6 2.11's spelling of -C."`
	NameMax    cli.Uint   `short:"L" name:"name-max" default:"251" placeholder:"NAMEMAX" help:"Ignore entries with names longer than NAMEMAX (11..1019)."`
	Timeout    cli.Millis `short:"t" name:"timeout" placeholder:"MS" help:"Rescan every MS milliseconds (0: never)."`
	Notif      fdFlag     `short:"d" name:"notification-fd" placeholder:"FD" help:"Write a newline to FD (at least 3) once ready, then close it."`
	Supervisor string     `name:"supervisor" placeholder:"PROG" help:"Run \"PROG NAME\" (from PATH) as each service's supervisor."`
	Console    string     `short:"X" name:"console-holder" hidden:"" help:"Not supported yet."`
	OneProcess bool       `name:"one-process" help:"Supervise every service inside svscan's own process: no supervise process per service."`

	Args []string `arg:"" optional:"" passthrough:"partial" name:"scandir" help:"The scan directory (default: the working directory)."`
}

// maxFlag is the value of -C or -c (s6-svscan 2.11's name for -C, which
// later versions still accept), and whether it was given; -C wins over -c.
type maxFlag struct {
	n   int
	set bool
}

// Decode implements kong.MapperValue.
func (f *maxFlag) Decode(ctx *kong.DecodeContext) error {
	var u cli.Uint
	if err := u.Decode(ctx); err != nil {
		return err
	}
	f.n, f.set = int(u), true
	return nil
}

// fdFlag is -d's value: a decimal fd, and whether -d was given at all.
type fdFlag struct {
	fd  int
	set bool
}

// Decode implements kong.MapperValue.
func (f *fdFlag) Decode(ctx *kong.DecodeContext) error {
	var u cli.Uint
	if err := u.Decode(ctx); err != nil {
		return err
	}
	f.fd, f.set = int(u), true
	return nil
}

// Validate rejects a -d fd that is below 3 or not open: the newline would
// go to stdio, or nowhere.
func (c *command) Validate() error {
	if !c.Notif.set {
		return nil
	}
	if c.Notif.fd < 3 {
		return errors.New("-d takes an fd of at least 3")
	}
	if _, err := unix.FcntlInt(uintptr(c.Notif.fd), unix.F_GETFD, 0); err != nil {
		return errors.New("-d takes an open fd")
	}
	return nil
}

func (c *command) Run(env *cli.Env) error {
	if c.Console != "" {
		return exitcode.Errorf(exitcode.Usage, "-X is not supported yet")
	}
	args := cli.Operands(c.Args)
	if len(args) == 0 {
		args = []string{"."} // as s6-svscan: `cd /service && exec s6-svscan`
	}
	if len(args) != 1 || args[0] == "" {
		return exitcode.ErrUsage
	}
	max := defaultServices
	if c.Max.set {
		max = c.Max.n
	} else if c.MaxOld.set {
		max = c.MaxOld.n
	}
	s := &scanner{
		env:   env,
		dir:   args[0],
		notif: -1,
		prog:  c.Supervisor,
		conf: supervisor.TreeConfig{
			Max:     clamp(max, minServices, maxServices),
			NameMax: clamp(int(c.NameMax), minNameMax, maxNameMax),
			Rescan:  time.Duration(c.Timeout) * time.Millisecond,
			Spawn:   !c.OneProcess,
		},
	}
	if c.Notif.set {
		s.notif = c.Notif.fd
	}
	if c.OneProcess && c.Supervisor != "" {
		return exitcode.Errorf(exitcode.Usage, "--one-process and --supervisor cannot be used together")
	}
	return s.run()
}

func clamp(v, lo, hi int) int {
	return min(max(v, lo), hi)
}
