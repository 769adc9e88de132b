// Package withcontenv holds with-contenv and printcontenv, the helpers
// s6-overlay run scripts use to see the container's environment
// (spec/init.md §7).
//
// Synopsis
//
//	with-contenv prog...
//	printcontenv name
//
// with-contenv runs prog as it is when S6_KEEP_ENV is set and not 0;
// otherwise with an environment made of PATH and the variables of
// /run/s6/container_environment (read as envdir -Lf). printcontenv prints
// the value of one container variable and a newline.
//
// Exit codes
//
//	0        printcontenv: the variable is set
//	1        printcontenv: the variable is not set
//	100      usage error
//	111      the environment directory could not be read
//	126/127  prog could not be executed / was not found
//
// # Differences from s6
//
// A missing /run/s6/container_environment is a warning and prog runs with
// its environment unchanged (s6-overlay: exit 111).
package withcontenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/envdir"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/overlay"
	"github.com/gotools-dev/gotools/lib/proc"
)

// Applet is with-contenv's registry entry.
var Applet = cli.Applet{
	Name:    "with-contenv",
	Summary: "run a program with the container's environment (s6-overlay)",
	Usage:   "prog...",
	Help: `With S6_KEEP_ENV set and not 0, runs prog as it is. Otherwise prog gets
PATH and the variables of /run/s6/container_environment (read as envdir
-Lf). Works as a shebang: #!/command/with-contenv sh.

Exit codes: 100 usage; 111 the directory is unreadable; 126/127 prog not
runnable/not found.

Differences from s6-overlay: a missing directory is a warning, not exit 111.`,
	New: func() cli.Command { return new(withCommand) },
}

// PrintApplet is printcontenv's registry entry.
var PrintApplet = cli.Applet{
	Name:    "printcontenv",
	Summary: "print a variable of the container's environment (s6-overlay)",
	Usage:   "name",
	Help: `Prints the value of the container variable name and a newline: from the
environment unless S6_KEEP_ENV is 0, else from
/run/s6/container_environment. Exit codes: 0 printed; 1 not set; 100 usage.`,
	New: func() cli.Command { return new(printCommand) },
}

type withCommand struct {
	Args []string `arg:"" passthrough:"partial" name:"prog" help:"The program and its arguments."`
}

func (c *withCommand) Run(env *cli.Env) error {
	args := cli.Operands(c.Args)
	if len(args) == 0 {
		return exitcode.ErrUsage
	}
	if _, ok := os.LookupEnv("S6_KEEP_ENV"); ok && overlay.KeepEnv() {
		return proc.Exec(args)
	}
	dir := overlay.Path(overlay.ContainerEnv)
	mods, err := envdir.Read(dir, envdir.Options{Verbatim: true, NoClamp: true})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		env.Warnf("unable to read %s: it does not exist; running %s with its environment unchanged", dir, args[0])
		return proc.Exec(args)
	case err != nil:
		return exitcode.New(exitcode.Sys, fmt.Errorf("unable to envdir %s: %w", dir, err))
	}
	var base []string
	if p, ok := os.LookupEnv("PATH"); ok {
		base = []string{"PATH=" + p}
	}
	return proc.ExecEnv(args, envdir.Merge(base, mods))
}

type printCommand struct {
	Name string `arg:"" help:"The variable."`
}

func (c *printCommand) Run(env *cli.Env) error {
	if overlay.KeepEnv() {
		v, ok := os.LookupEnv(c.Name)
		if !ok {
			return exitcode.Exit(exitcode.Refused)
		}
		fmt.Fprintln(env.Stdout, v)
		return nil
	}
	mods, err := envdir.Read(overlay.Path(overlay.ContainerEnv), envdir.Options{Verbatim: true, NoClamp: true})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return exitcode.New(exitcode.Sys, fmt.Errorf("unable to envdir %s: %w", overlay.Path(overlay.ContainerEnv), err))
	}
	for _, m := range mods {
		if m.Name == c.Name && !m.Unset {
			fmt.Fprintln(env.Stdout, m.Value)
			return nil
		}
	}
	return exitcode.Exit(exitcode.Refused)
}
