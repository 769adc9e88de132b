// Package containerinit is the init applet: a container's PID 1
// (spec/init.md). The directory is not called "init" because a Go package
// cannot be named init.
//
// Synopsis
//
//	init [ -s | --no-subreaper ] [ -g | --setsid ] [ -c ] [ -p SIG ] [ -e CODE ]... [ -r SIG:SIG ]...
//	     [ -k MS ] [ --stop-timeout MS ] [ -w ] [ -v ]... [ --simple | --overlay | -P | --pause ]
//	     [ --supervise-processes ] [ --check ] [ -l ] [ -- ] [ CMD [ ARG... ] ]
//
// Simple mode (init -- CMD...) does what tini does: it reaps every zombie,
// forwards the signals it receives to CMD (or CMD's process group with -g),
// and exits with CMD's exit code, or 128+n when signal n killed it. When CMD
// is gone, the processes left get SIGTERM and SIGCONT, then SIGKILL after -k
// milliseconds. Not PID 1, it makes itself a child subreaper.
//
// Overlay mode boots an s6-overlay v3 layout (spec/init.md §3-§6).
//
// Exit codes
//
//	100      usage error; no CMD in simple mode; a runlevel given when not PID 1
//	111      a system call failed
//	126/127  CMD could not be executed / was not found
//	128+n    CMD was killed by signal n
//	n        CMD exited n (0 for the codes given with -e)
//
// # Differences from s6
//
// Usage errors exit 100 (tini, dumb-init: 1). CMD starts with an empty
// signal mask and every disposition at its default (tini restores what it
// inherited). SIGURG, SIGPROF and signals 32-34 are never forwarded: the Go
// runtime owns them. After CMD exits, the processes left get SIGTERM and a
// grace of -k ms before SIGKILL (tini exits at once and the kernel SIGKILLs
// them).
package containerinit

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/sig"
)

// Applet is init's registry entry.
var Applet = cli.Applet{
	Name:    "init",
	Summary: "a container's PID 1: reap, forward signals, run CMD or an s6-overlay layout",
	Usage:   "[ -s | --no-subreaper ] [ -g | --setsid ] [ -c ] [ -p SIG ] [ -e CODE ]... [ -r SIG:SIG ]... [ -k MS ] [ --stop-timeout MS ] [ -w ] [ -v ]... [ --simple | --overlay | -P | --pause ] [ --supervise-processes ] [ --check ] [ -l ] [ -- ] [ CMD [ ARG... ] ]",
	Help: `Simple mode (init -- CMD..., tini's job): reaps every zombie, forwards
every signal it gets to CMD (its process group with -g), and exits with
CMD's exit code, 128+n if signal n killed it. Processes left when CMD
exits get SIGTERM and SIGCONT, then SIGKILL after -k ms. Not PID 1, init
is a child subreaper. Overlay mode (an s6-overlay v3 layout in /etc, or
--overlay) runs cont-init.d, the s6-rc.d user bundles, services.d, the
CMD, and shuts all of it down in order.

Environment read: TINI_SUBREAPER, TINI_KILL_PROCESS_GROUP, TINI_VERBOSITY,
DUMB_INIT_SETSID, DUMB_INIT_DEBUG; overlay mode the S6_* variables. Overlay
mode supervises every service and runs the rc engine inside init itself
(--supervise-processes: one supervise process per service).

Test hooks: GOTOOLS_INIT_ROOT=DIR prefixes every fixed path of the layout.

Exit codes: 100 usage; 111 system failure; 126/127 CMD not runnable/not
found; 128+n CMD killed by signal n; otherwise CMD's code (0 for -e codes).

Differences from tini: usage exits 100; CMD starts with an empty signal
mask and default dispositions; SIGURG and SIGPROF are not forwarded; the
processes left after CMD get SIGTERM and -k ms before SIGKILL.`,
	New:  func() cli.Command { return new(command) },
	Fast: fast,
}

// fast parses the command lines a container's entrypoint uses (init --
// CMD..., init -g -- CMD..., tini -s -- CMD..., /init with or without a
// CMD) without kong, whose model building by reflection costs more than the rest of simple mode before
// the CMD's exec (spec §12: boot to CMD). It takes only lone flags without
// a value, then an optional "--" and the operands, and keeps the "--" in
// Args as kong does; anything else (a flag with a value, grouped letters,
// --help) goes to kong.
func fast(args []string, env *cli.Env) (bool, error) {
	c, ok := fastParse(args)
	if !ok {
		return false, nil
	}
	return true, c.Run(env)
}

// fastParse is [fast]'s parser: the command kong would build from args,
// or false when args are not of the few forms it takes.
func fastParse(args []string) (*command, bool) {
	c := new(command)
	for i, a := range args {
		if a == "--" || a == "" || a[0] != '-' {
			c.Args = args[i:]
			return c, true
		}
		switch a {
		case "-s":
			c.Subreaper = true
		case "-g":
			c.Group = true
		case "-c":
			c.Single = true
		case "-w":
			c.Warn = true
		case "-v":
			c.Verbose++
		case "--overlay":
			c.Overlay = true
		case "--simple":
			c.Simple = true
		default:
			return nil, false
		}
	}
	return c, true // no CMD: overlay mode's ENTRYPOINT ["/init"]
}

type command struct {
	Subreaper          bool        `short:"s" help:"Accepted (tini): init is a subreaper whenever it is not PID 1."`
	NoSubreaper        bool        `name:"no-subreaper" help:"Do not become a child subreaper when not PID 1."`
	Group              bool        `short:"g" help:"Forward signals to CMD's process group."`
	Setsid             bool        `name:"setsid" help:"CMD gets its own session; signals go to its group (dumb-init)."`
	Single             bool        `short:"c" help:"Accepted (dumb-init): signals go to CMD alone unless -g."`
	Pdeath             string      `short:"p" placeholder:"SIG" help:"Parent-death signal of init."`
	Remap              []string    `short:"e" sep:"none" placeholder:"CODE" help:"CMD exit code CODE becomes 0 (repeatable)."`
	Rewrite            []string    `short:"r" sep:"none" placeholder:"S:R" help:"Forward signal S as R; R 0 drops S (repeatable)."`
	Kill               *cli.Millis `short:"k" placeholder:"MS" help:"Grace between SIGTERM and SIGKILL for the processes left (default 3000)."`
	StopTimeout        cli.Millis  `name:"stop-timeout" placeholder:"MS" help:"Overlay: total shutdown budget; 0 is none."`
	Warn               bool        `short:"w" help:"Warn for each reaped orphan."`
	Verbose            int         `short:"v" type:"counter" help:"More messages (repeatable)."`
	Simple             bool        `name:"simple" help:"Force simple mode."`
	Overlay            bool        `name:"overlay" help:"Force overlay mode."`
	Pause              bool        `short:"P" name:"pause" help:"No CMD: reap, and exit 0 on SIGTERM or SIGINT."`
	SuperviseProcesses bool        `name:"supervise-processes" help:"Overlay: one supervise process per service."`
	Check              bool        `name:"check" help:"Overlay: check the layout and exit."`
	License            bool        `short:"l" help:"Print the license."`
	Version            bool        `name:"version" help:"Print the version."`
	Stage              string      `name:"stage" hidden:""`
	Args               []string    `arg:"" optional:"" passthrough:"partial" name:"cmd" help:"The command and its arguments."`
}

// runlevels are what a host's init takes as its only operand (telinit).
const runlevels = "0123456SsQqUu"

func (c *command) Run(env *cli.Env) error {
	if c.License {
		fmt.Fprint(env.Stdout, license)
		return nil
	}
	if c.Version {
		fmt.Fprintf(env.Stdout, "init (gotools) %s\n", cli.Version)
		return nil
	}
	args := cli.Operands(c.Args)
	if len(args) > 0 {
		if name, ok := controlName(args[0]); ok {
			return runControl(name, args[1:])
		}
		if isCatchallRun(args[0]) {
			return runCatchall()
		}
	}
	o, err := c.options(env)
	if err != nil {
		return err
	}
	if c.Stage != "" {
		return runStage(o, c.Stage)
	}
	if c.Check {
		return runCheck(o)
	}
	if len(args) == 1 && len(args[0]) == 1 && strings.Contains(runlevels, args[0]) && os.Getpid() != 1 {
		return exitcode.Errorf(exitcode.Usage, "this is a container init, not the host's")
	}
	if c.Pause {
		if len(args) != 0 {
			return exitcode.ErrUsage
		}
		return runPause(o)
	}
	if c.Overlay || (!c.Simple && hasLayout()) {
		return runOverlay(o, args, c.Verbose > 0)
	}
	if len(args) == 0 {
		return exitcode.ErrUsage
	}
	o.cmd = args
	return runSimple(o)
}

// options are what both modes take from the command line and the
// environment.
type options struct {
	env       *cli.Env
	cmd       []string
	group     bool
	setsid    bool
	noSubreap bool
	pdeath    unix.Signal
	remap     map[int]bool
	rewrite   map[unix.Signal]unix.Signal
	grace     int // ms
	stopTime  int // ms, overlay: --stop-timeout; 0 is none
	warnOrph  bool
	verbosity int
	// superviseProcs: overlay mode runs one supervise process per service.
	superviseProcs bool
}

func (c *command) options(env *cli.Env) (*options, error) {
	o := &options{env: env, group: c.Group, setsid: c.Setsid, noSubreap: c.NoSubreaper,
		warnOrph: c.Warn, grace: 3000, stopTime: int(c.StopTimeout), verbosity: 1 + c.Verbose,
		superviseProcs: c.SuperviseProcesses}
	if c.Kill != nil {
		o.grace = int(*c.Kill)
	}
	if _, ok := os.LookupEnv("TINI_KILL_PROCESS_GROUP"); ok {
		o.group = true
	}
	if os.Getenv("DUMB_INIT_SETSID") == "1" {
		o.setsid = true
	}
	if os.Getenv("DUMB_INIT_DEBUG") == "1" {
		o.verbosity++
	}
	if v, ok := os.LookupEnv("TINI_VERBOSITY"); ok && c.Verbose == 0 {
		if n, err := cli.ParseDecimal(v); err == nil {
			o.verbosity = int(n)
		}
	}
	if c.Pdeath != "" {
		s, err := sig.Parse(c.Pdeath)
		if err != nil {
			return nil, exitcode.Errorf(exitcode.Usage, "-p: %q is not a signal", c.Pdeath)
		}
		o.pdeath = s
	}
	o.remap = map[int]bool{}
	for _, e := range c.Remap {
		n, err := cli.ParseDecimal(e)
		if err != nil || n > 255 {
			return nil, exitcode.Errorf(exitcode.Usage, "-e: %q is not an exit code (0-255)", e)
		}
		o.remap[int(n)] = true
	}
	o.rewrite = map[unix.Signal]unix.Signal{}
	for _, r := range c.Rewrite {
		from, to, ok := strings.Cut(r, ":")
		s, err1 := sig.Parse(from)
		d, err2 := sig.Parse(to)
		if to == "0" {
			d, err2 = 0, nil
		}
		if !ok || err1 != nil || err2 != nil {
			return nil, exitcode.Errorf(exitcode.Usage, "-r: %q is not SIG:SIG", r)
		}
		o.rewrite[s] = d
	}
	return o, nil
}

// code applies -e to an exit code.
func (o *options) code(n int) int {
	if o.remap[n] {
		return 0
	}
	return n
}

// info prints "init: info: ..." at verbosity 2 and more.
func (o *options) info(format string, args ...any) {
	if o.verbosity >= 2 {
		fmt.Fprintf(o.env.Stderr, "%s: info: %s\n", o.env.Name, fmt.Sprintf(format, args...))
	}
}

// warn prints "init: warning: ..." at verbosity 1 and more.
func (o *options) warn(format string, args ...any) {
	if o.verbosity >= 1 {
		o.env.Warnf(format, args...)
	}
}

// statusCode is the exit code that reports a wait status: the exit code, or
// 128+n for a death by signal n (tini's rule; no clamping to 128).
func statusCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

const license = `ISC License

Copyright (c) 2026 The gotools authors

Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
`
