package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

// Command is an applet's grammar: a kong struct with a Run method.
type Command interface {
	Run(env *Env) error
}

// Applet is one entry of the registry (applets.All).
type Applet struct {
	Name    string         // name of the applet, e.g. "background-watch"
	Aliases []string       // upstream names, e.g. "s6-background-watch"
	Summary string         // one line for "gotools --help"
	Usage   string         // synopsis after the name: "[ -t timeout ] pidfile prog..."
	Help    string         // more for --help: exit codes, differences from s6, limits
	New     func() Command // a fresh grammar struct for each run
	// Raw, when set, replaces the parser: it gets the arguments as given
	// and returns the exit code. Only for an applet whose argv upstream
	// fixes (lockd-helper: "--help" is a lock mode there, not an option).
	Raw func(args []string, env *Env) int
	// NewFor, when set, replaces New in [Run]: the grammar may depend on
	// the arguments. A multi-command applet builds only the command its
	// first argument names: kong's model building, by reflection, is the
	// largest part of a short run after the Go runtime's start.
	NewFor func(args []string) Command
	// Prescan, when set, sees the arguments before kong does and returns
	// those kong is to parse; it may keep some in cmd's unexported fields.
	// For repeated options given thousands of times: kong's scanner copies
	// the remaining arguments for every option, quadratic in their number.
	Prescan func(cmd Command, args []string) []string
	// Fast, when set, sees the arguments first and may run the applet
	// without kong: for the common command lines of short-lived clients
	// (svok DIR, svstat DIR, svc -u DIR), where building kong's model by
	// reflection is a large part of the process's CPU (issue 16 item 3).
	// It returns done false for anything else (options it does not know,
	// --help, a usage error), which kong then parses as usual, so that
	// help and messages are the same either way.
	Fast func(args []string, env *Env) (done bool, err error)
	// Options are extra kong options, e.g. kong.NoDefaultHelp() for an
	// applet whose -h means something else (svc: SIGHUP).
	Options []kong.Option
}

// Env is what an applet sees of its process: the name it was called by and
// the streams messages go to. Tests substitute the writers.
type Env struct {
	Name   string   // the name the applet was invoked as (an alias included)
	Args   []string // the applet's arguments as given, for [Options]
	Stdout io.Writer
	Stderr io.Writer
}

// OneOperand is the operand of a command line that is one operand and
// nothing else ("DIR" or "-- DIR"), for a [Applet.Fast] path; ok is false
// for anything else (an option, an empty word, more words), which is
// kong's to parse.
func OneOperand(args []string) (operand string, ok bool) {
	if len(args) == 2 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		return "", false
	}
	return args[0], true
}

// StdEnv returns an Env on the process's own stdout and stderr.
func StdEnv() *Env { return &Env{Stdout: os.Stdout, Stderr: os.Stderr} }

// Warnf prints "NAME: warning: MESSAGE" on one line.
func (e *Env) Warnf(format string, args ...any) {
	e.line("warning", fmt.Errorf(format, args...))
}

// Warn prints "NAME: warning: ERR", with the errno text capitalised.
func (e *Env) Warn(err error) { e.line("warning", err) }

// Fatal prints "NAME: fatal: ERR", with the errno text capitalised. Applets
// normally return the error instead and let [Run] print it.
func (e *Env) Fatal(err error) { e.line("fatal", err) }

func (e *Env) line(kind string, err error) {
	fmt.Fprintf(e.Stderr, "%s: %s: %s\n", e.Name, kind, Message(err))
}

// Message renders err as s6 would: an errno at the end of the message is
// spelled as strerror(3) spells it, with a capital first letter
// ("No such file or directory"), and the message stays on one line.
func Message(err error) string {
	msg := err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		// The errno's text ends the message, or ends a "REASON" that
		// something such as "(retrying in 60 seconds)" follows.
		if s := errno.Error(); s != "" {
			at := -1
			if strings.HasPrefix(msg, s) {
				at = 0
			}
			if j := strings.LastIndex(msg, ": "+s); j >= 0 {
				at = j + 2
			}
			if at >= 0 {
				msg = msg[:at] + strings.ToUpper(s[:1]) + msg[at+1:]
			}
		}
	}
	return strings.ReplaceAll(msg, "\n", " ")
}

// HelpFlag is a --help flag for a grammar built with kong.NoDefaultHelp,
// because its -h means something else (svc: SIGHUP; svscanctl: the h
// command). It prints the help as kong's own help flag does, and exits 0.
type HelpFlag bool

// BeforeReset implements kong's hook: it runs before any validation.
func (HelpFlag) BeforeReset(ctx *kong.Context) error {
	if err := ctx.PrintUsage(false); err != nil {
		return err
	}
	ctx.Kong.Exit(0)
	return nil
}

// exitRequest is what kong's Exit hook panics with; [Run] recovers it, so
// that kong's exit never returns into the parser (STYLE.md gotcha 2).
type exitRequest int

// Run parses args with a's grammar and runs it. It returns the exit code and
// prints at most one line on env.Stderr for a failure.
func Run(a Applet, args []string, env *Env) (code int) {
	if env.Name == "" {
		env.Name = a.Name
	}
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(exitRequest)
			if !ok {
				panic(r)
			}
			code = int(c)
		}
	}()
	env.Args = args
	if a.Raw != nil {
		return a.Raw(args, env)
	}
	if a.Fast != nil {
		if done, err := a.Fast(args, env); done {
			return env.report(a, err)
		}
	}
	var cmd Command
	if a.NewFor != nil {
		cmd = a.NewFor(args)
	} else {
		cmd = a.New()
	}
	k, err := NewParser(a, env, cmd)
	if err != nil {
		env.Fatal(fmt.Errorf("internal error: bad grammar: %w", err))
		return exitcode.Internal
	}
	if a.Prescan != nil {
		args = a.Prescan(cmd, args)
	}
	kctx, err := k.Parse(args)
	if err != nil {
		return env.parseFailed(a, err, args)
	}
	return env.report(a, kctx.Run(env))
}

// NewParser builds the kong parser of a for cmd, as [Run] does; tests use it
// to check that every grammar builds.
func NewParser(a Applet, env *Env, cmd Command) (*kong.Kong, error) {
	opts := append([]kong.Option{
		kong.Name(env.Name),
		kong.Description(strings.TrimSpace(a.Summary + "\n\n" + a.Help)),
		kong.Writers(env.Stdout, env.Stderr),
		kong.Exit(func(c int) { panic(exitRequest(c)) }),
		kong.Bind(env),
		kong.KindMapper(reflect.String, kong.MapperFunc(decodeBytes)),
	}, a.Options...)
	return kong.New(cmd, opts...)
}

// decodeBytes stores an argument in a string field (or an element of a
// []string) as the bytes it was given. kong's own string mapper goes through
// a JSON round trip (Scanner.PopValueInto), which turns every byte that is
// not UTF-8 into U+FFFD: a path or a program argument would come out
// changed ("\xff" as "\xef\xbf\xbd"). Paths and argv are bytes in s6; so
// they are here (issue 20).
func decodeBytes(ctx *kong.DecodeContext, target reflect.Value) error {
	t, err := ctx.Scan.PopValue("string")
	if err != nil {
		return err
	}
	s, ok := t.Value.(string)
	if !ok {
		ctx.Scan.PushToken(t)
		return ctx.Scan.PopValueInto("string", target.Addr().Interface())
	}
	target.SetString(s)
	return nil
}

func (e *Env) usage(a Applet) int {
	fmt.Fprintln(e.Stderr, UsageLine(e.Name, a))
	return exitcode.Usage
}

func (e *Env) report(a Applet, err error) int {
	code := exitcode.Of(err)
	switch {
	case err == nil:
	case code == exitcode.Usage && errors.Is(err, exitcode.ErrUsage):
		e.usage(a)
		var ud *usageDetail
		if errors.As(err, &ud) {
			e.Fatal(ud)
		}
	default:
		var xe *exitcode.Error
		if errors.As(err, &xe) && xe.Err == nil {
			break // a silent exit
		}
		e.Fatal(err)
	}
	return code
}
