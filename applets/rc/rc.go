// Package rc is the rc applet (alias s6-rc): a service manager that reads
// s6-rc source directories (spec/rc.md). It is a command line around
// lib/rc, which holds the engine.
//
// Synopsis:
//
//	rc [ -l live ] [ -b ] [ -v n ] [ -a ] [ -u | -d | -D ] [ -p ] [ -e | -E ] [ -t ms ] [ -n ms ] COMMAND [ NAME... ]
//	rc check [ -v n ] [ --dump ] SOURCE...
//	rc init [ -l live ] [ -p prefix ] [ -t ms ] [ -b ] [ -v n ] SCANDIR SOURCE...
//	rc update [ -l live ] [ -n ] [ -t ms ] [ -b ] [ -v n ] [ -f convfile ] [ --restart-changed ] SOURCE...
//
// Exit codes: 0 success; 1 source error (check, init), some transitions
// failed (change, reload, update after switching), mismatch (diff); 2
// timed out; 3 unknown name; 4 invalid live directory, db or new sources;
// 5, 6 update: the conversion file names a bundle or a service twice; 9,
// 10 update: stop phase failed or timed out; 100 usage; 111 system error.
package rc

import (
	"fmt"
	"os"
	"strings"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/rc"
)

// Applet is rc, alias s6-rc.
var Applet = cli.Applet{
	Name:    "rc",
	Aliases: []string{"s6-rc"},
	Summary: summary,
	Usage:   synopsis,
	Help:    help,
	Raw:     run,
}

const synopsis = "[ -l live ] [ -b ] [ -v n ] [ -a ] [ -u | -d | -D ] [ -p ] [ -e | -E ] [ -t ms ] [ -n ms ] change|start|stop|list|listall|diff|reload|help [ name... ] | check [ -v n ] [ --dump ] source... | init [ -l live ] [ -p prefix ] [ -t ms ] [ -b ] [ -v n ] scandir source... | update [ -l live ] [ -n ] [ -t ms ] [ -b ] [ -v n ] [ -f convfile ] [ --restart-changed ] source..."

const summary = "bring s6-rc services up and down in dependency order"

const help = `Commands:
  change   bring the named services (and their closure) up (-u) or down (-d, -D)
  start    same as -u change; stop: same as -d change
  list     the selection; listall: its closure; diff: live state vs supervise
  reload   send the reload command to longruns, run oneshots' reload
  check    validate source directories (--dump prints the resolved db)
  init     create the live directory over svscan's SCANDIR
  update   switch a live directory to new sources

Differences from s6-rc: no compiled database (sources are read by check,
init and update); oneshots are spawned directly with the context recorded
by init (cwd /, fds 0-2, RC_NAME set), no s6rc-oneshot-runner; a killed rc
leaves transient markers the next rc finishes; start-attempts is a gotools
extension; diff prints ?NAME for uncertain services.

Test hooks: GOTOOLS_RC_KILL_AFTER_WRITE=N makes rc SIGKILL itself after its
N-th state write.`

// run is the applet's entry point: the grammar depends on the first word.
func run(args []string, env *cli.Env) int {
	usage := func() int {
		fmt.Fprintf(env.Stderr, "%s: usage: %s %s\n", env.Name, env.Name, synopsis)
		return exitcode.Usage
	}
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			break
		}
		if a == "--help" || a == "-h" {
			fmt.Fprintf(env.Stdout, "Usage: %s %s\n\n%s\n\n%s\n", env.Name, synopsis, summary, help)
			return 0
		}
	}
	if len(args) == 0 {
		return usage()
	}
	if strings.Contains(args[0], "/") {
		return report(env, rc.Script(args[0], args[1:], env.Stderr))
	}
	var (
		o      rc.Options
		cmd    string
		err    error
		dump   bool
		rest   []string
		dryRun bool
	)
	o.Live = "/run/s6-rc"
	o.Verbose = 1
	o.Warn = func(msg string) { fmt.Fprintf(env.Stderr, "%s: warning: %s\n", env.Name, msg) }
	o.Info = func(msg string) { fmt.Fprintf(env.Stderr, "%s: info: %s\n", env.Name, msg) }
	o.Stdout = env.Stdout
	number := func(v string) (uint32, error) {
		n, err := cli.ParseDecimal(v)
		if err != nil {
			return 0, exitcode.ErrUsage
		}
		return n, nil
	}
	mainValued := func(name string) bool { return len(name) == 1 && strings.Contains("lvtn", name) }
	// "rc -l LIVE init ..." is "rc init -l LIVE ...": options before a
	// subcommand are its own.
	if rest := skipOptions(args, mainValued); len(rest) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] != "--" {
		switch rest[0] {
		case "check", "init", "update":
			lead := args[:len(args)-len(rest)]
			args = append(append([]string{rest[0]}, lead...), rest[1:]...)
		}
	}
	sub := args[0]
	switch sub {
	case "check", "init", "update":
		args = args[1:]
		valued := map[string]bool{"v": true, "l": true, "t": true, "p": sub == "init", "f": sub == "update"}
		n := 0
		err = cli.Options(args, func(name string) bool { return valued[name] }, func(name, v string) error {
			n++
			if name != "v" && name != "dump" && name != "help" && sub == "check" {
				return exitcode.ErrUsage
			}
			switch name {
			case "v":
				x, err := number(v)
				o.Verbose = int(x)
				return err
			case "dump":
				dump = true
			case "l":
				o.Live = v
			case "t":
				x, err := number(v)
				o.Timeout = x
				return err
			case "b":
				o.Block = true
			case "p":
				if sub != "init" {
					return exitcode.ErrUsage
				}
				o.Prefix = v
			case "n":
				if sub != "update" {
					return exitcode.ErrUsage
				}
				dryRun = true
			case "f":
				o.ConvFile = v
			case "restart-changed":
				if sub != "update" {
					return exitcode.ErrUsage
				}
				o.RestartChanged = true
			default:
				return exitcode.ErrUsage
			}
			return nil
		})
		rest = skipOptions(args, func(name string) bool { return valued[name] })
		cmd = sub
		if dryRun {
			o.DryRun = 1
		}
	default:
		o.Up = true
		valued := mainValued
		err = cli.Options(args, valued, func(name, v string) error {
			switch name {
			case "l":
				o.Live = v
			case "b":
				o.Block = true
			case "v":
				x, err := number(v)
				o.Verbose = int(x)
				return err
			case "a":
				o.All = true
			case "u":
				o.Up, o.Force = true, false
			case "d":
				o.Up, o.Force = false, false
			case "D":
				o.Up, o.Force = false, true
			case "p":
				o.Prune = true
			case "e":
				o.HideEssential = true
			case "E":
				o.HideEssential = false
			case "t":
				x, err := number(v)
				o.Timeout = x
				return err
			case "n":
				x, err := number(v)
				o.DryRun = int(x) + 1
				return err
			default:
				return exitcode.ErrUsage
			}
			return nil
		})
		rest = skipOptions(args, valued)
		if len(rest) > 0 {
			cmd, rest = rest[0], rest[1:]
		}
	}
	if err != nil {
		return usage()
	}
	if o.Live != "" && !strings.HasPrefix(o.Live, "/") {
		if wd, err := os.Getwd(); err == nil {
			o.Live = wd + "/" + o.Live
		}
	}
	switch cmd {
	case "check":
		if len(rest) == 0 {
			return usage()
		}
		db, err := rc.Check(rest, o)
		if err == nil && dump {
			_, err = env.Stdout.Write(db.Marshal())
		}
		return report(env, err)
	case "init":
		if len(rest) < 2 {
			return usage()
		}
		if strings.ContainsAny(o.Prefix, "/\n") {
			return usage()
		}
		return report(env, rc.Init(rest[0], rest[1:], o))
	case "update":
		if len(rest) == 0 {
			return usage()
		}
		return report(env, rc.Update(rest, o))
	case "help":
		fmt.Fprintf(env.Stdout, "Usage: %s %s\n", env.Name, synopsis)
		return 0
	case "start":
		o.Up, o.Prune = true, false
		cmd = "change"
	case "stop":
		o.Up = false
		cmd = "change"
	case "change", "list", "listall", "diff", "reload":
	default:
		return usage()
	}
	return report(env, rc.Command(cmd, rest, o))
}

// skipOptions returns args after the options cli.Options walked, and one
// "--".
func skipOptions(args []string, valued func(string) bool) []string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args[i+1:]
		}
		if a == "-" || !strings.HasPrefix(a, "-") {
			return args[i:]
		}
		if strings.HasPrefix(a, "--") {
			continue // long options take no separate value here
		}
		for j := 1; j < len(a); j++ {
			if valued(a[j : j+1]) {
				if j == len(a)-1 {
					i++
				}
				break
			}
		}
	}
	return nil
}

// report prints err as rc does and returns its exit code.
func report(env *cli.Env, err error) int {
	if err == nil {
		return 0
	}
	code := exitcode.Of(err)
	if x, ok := err.(*exitcode.Error); ok && x.Err == nil {
		return code
	}
	env.Fatal(err)
	return code
}
