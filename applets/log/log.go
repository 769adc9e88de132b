// Package logapplet is the log applet (s6-log): a reliable logger with
// automatic rotation. It reads stdin line by line and runs a logging
// script on every line (lib/logscript), sending the selected lines to
// logdirs, a status file, stdout or stderr (spec/log.md).
//
// One event loop waiting on the signal pipe, stdin and stdout (an epoll
// set parked in the Go netpoller: wait.go), timed out only by the nearest
// deadline: an idle logger does not wake up.
package logapplet

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/decimal"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/logscript"
	"github.com/gotools-dev/gotools/lib/tai"
)

const usage = "[ -d notif ] [ -q | -v ] [ -b ] [ -p ] [ -l linelimit ] [ -t lastlinetimeout ] [ -- ] logging_script"

// Applet is log, alias s6-log.
var Applet = cli.Applet{
	Name:    "log",
	Aliases: []string{"s6-log"},
	Summary: summary,
	Usage:   usage,
	Help:    help,
	Raw:     run,
}

const summary = "read lines on stdin and send them to logdirs (rotated), a status file, stdout or alerts"

const help = `Options (as s6-log):
  -d notif   write a newline to fd notif once every logdir is ready
  -q, -v     fewer / more warnings
  -b         blocking: read a line only once the previous one is written
  -p         protect: SIGTERM does nothing (HUP and INT still end it)
  -l N       longest line in bytes (default 8192; 0: no limit)
  -t MS      after a termination signal, wait at most MS ms for the end of
             a partial line (default 2000; 0: forever)

The script: +re -re f (selection, POSIX ERE), nN sN SN lN rN RN EN ^N pX
!X ?X t T (control), 1 2 =FILE DIR (actions).

Exit codes: 0 after EOF or a termination signal, everything written;
100 usage or script error; 111 a logdir could not be set up.

Differences from s6-log: a partial last line at EOF is written; rotation
happens at the first line end past the threshold; pending bytes are capped
at 1 MiB (then back-pressure); ?X and !X stay sticky together; the same
logdir twice, !X without execlineb, backreferences, counts above 1000 and
\< \> away from a literal word byte exit 100; INT finalizes as HUP; other
signals are ignored once ready; O_NONBLOCK is set on stdout only with a 1
action.

Test hooks:
  GOTOOLS_FAKE_CLOCK=@<24 hex>  every wall-clock reading returns that stamp`

// opts are log's command-line options.
type opts struct {
	notif     int // -1: none
	verbosity int
	blocking  bool
	protect   bool
	lineMax   int
	lastLine  uint32 // ms
}

var errUsage = errors.New("usage")

// parseOpts walks the options as skalibs' getopt does and returns the
// script.
func parseOpts(args []string) (opts, []string, error) {
	o := opts{notif: -1, verbosity: 1, lineMax: 8192, lastLine: 2000}
	i := 0
	num := func(v string) (uint32, error) {
		n, ok := decimal.Parse(v, 0, math.MaxUint32)
		if !ok {
			return 0, errUsage
		}
		return uint32(n), nil
	}
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if a == "-" || !strings.HasPrefix(a, "-") {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch c {
			case 'q':
				o.verbosity = max(o.verbosity-1, 0)
				continue
			case 'v':
				o.verbosity++
				continue
			case 'b':
				o.blocking = true
				continue
			case 'p':
				o.protect = true
				continue
			case 'd', 'l', 't':
			default:
				return o, nil, errUsage
			}
			v := a[j+1:]
			if v == "" {
				i++
				if i >= len(args) {
					return o, nil, errUsage
				}
				v = args[i]
			}
			n, err := num(v)
			if err != nil {
				return o, nil, err
			}
			switch c {
			case 'd':
				o.notif = int(n)
			case 'l':
				o.lineMax = int(n)
				if o.lineMax > 0 && o.lineMax < 48 {
					o.lineMax = 48
				}
			case 't':
				o.lastLine = n
			}
			break
		}
	}
	if i >= len(args) {
		return o, nil, errUsage
	}
	return o, args[i:], nil
}

func run(args []string, env *cli.Env) int {
	if len(args) > 0 && args[0] == "--help" {
		fmt.Fprintf(env.Stdout, "Usage: %s %s\n\n%s\n\n%s\n", env.Name, usage, summary, help)
		return exitcode.OK
	}
	o, script, err := parseOpts(args)
	if err != nil {
		// As s6-log, upstream's line byte for byte (Debian's 2.11 has no
		// -t); as log, ours. (Applet itself would be an init cycle.)
		fmt.Fprintln(env.Stderr, cli.UsageLine(env.Name, cli.Applet{Usage: usage}))
		return exitcode.Usage
	}
	if o.notif >= 0 {
		if o.notif < 3 {
			env.Fatal(errors.New("notification fd must be 3 or more"))
			return exitcode.Usage
		}
		if _, err := unix.FcntlInt(uintptr(o.notif), unix.F_GETFD, 0); err != nil {
			env.Fatal(fmt.Errorf("invalid notification fd: %w", unix.EBADF))
			return exitcode.Usage
		}
	}
	sc, err := logscript.Parse(script, func() bool {
		_, err := exec.LookPath("execlineb")
		return err == nil
	})
	if err != nil {
		env.Fatal(err)
		return exitcode.Usage
	}
	if sc.Extraneous && o.verbosity >= 1 {
		env.Warnf("ignoring extraneous non-action directives")
	}
	fake, ok := tai.FakeClock()
	if !ok {
		env.Fatal(fmt.Errorf("invalid GOTOOLS_FAKE_CLOCK: %s", os.Getenv("GOTOOLS_FAKE_CLOCK")))
		return exitcode.Usage
	}
	// No time-forced GC while idle: the loop collects itself once dropped
	// buffers add up (lines allocate nothing). A memory limit would cost
	// about 1 MB of RssAnon at rest.
	debug.SetGCPercent(-1)
	l := newLogger(env, o, sc, fake)
	return exitcode.Of(l.run())
}
