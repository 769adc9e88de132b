// Package envdir is the envdir applet (s6-envdir): it runs a program with
// its environment changed by the files of a directory.
//
// Synopsis
//
//	envdir [ -I | -i ] [ -n ] [ -f ] [ -L ] [ -c nullchar ] dir prog...
//
// Each file of dir whose name neither starts with a dot nor holds '=' sets
// the variable of its name to its first line, trailing spaces, tabs and
// carriage returns removed (-n keeps them), or with -f to its whole
// contents minus one final newline (-n keeps it); NULs become newlines (-c:
// nullchar's first byte). An empty file unsets the variable. Without -L at
// most 4095 bytes of a file are read. -I makes a missing dir no error.
//
// Exit codes
//
//	100      usage error
//	111      dir could not be read
//	126/127  prog could not be executed / was not found
//
// # Differences from s6
//
// --help prints help. With -L and without -f, a file whose only line has
// no final newline gives that line (s6-envdir 2.11 gives an empty value).
package envdir

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	libenvdir "github.com/gotools-dev/gotools/lib/envdir"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/proc"
)

// Applet is envdir's registry entry.
var Applet = cli.Applet{
	Name:    "envdir",
	Aliases: []string{"s6-envdir"},
	Summary: "run a program with environment variables read from a directory",
	Usage:   "[ -I | -i ] [ -n ] [ -f ] [ -L ] [ -c nullchar ] dir prog...",
	Help: `Each file of dir (not starting with '.', without '=') sets the variable of
its name to its first line, trailing blanks removed; -f: the whole file
minus one final newline; -n keeps what would be removed. An empty file
unsets the variable. NULs become newlines (-c: nullchar). Without -L at
most 4095 bytes of each file are read. -I: a missing dir is no error.

Exit codes: 100 usage; 111 dir unreadable; 126/127 prog not runnable/not
found.

Differences from s6-envdir: with -L and without -f, a last line without a
newline is read as it is (s6-envdir 2.11 reads it as empty).`,
	New: func() cli.Command { return new(command) },
}

type command struct {
	Lax      bool     `short:"I" help:"A missing dir is no error."`
	Strict   bool     `short:"i" help:"A missing dir is an error (the default)."`
	NoChomp  bool     `short:"n" help:"Keep trailing blanks, or the final newline with -f."`
	Verbatim bool     `short:"f" help:"The whole file, not its first line."`
	NoClamp  bool     `short:"L" help:"No 4095-byte limit per file."`
	NullIs   *string  `short:"c" placeholder:"nullchar" help:"Turn NULs into the first byte of nullchar."`
	Args     []string `arg:"" passthrough:"partial" name:"dir prog" help:"The directory, then the program and its arguments."`
}

func (c *command) Run(env *cli.Env) error {
	args := cli.Operands(c.Args)
	if len(args) < 2 {
		return exitcode.ErrUsage
	}
	o := libenvdir.Options{Verbatim: c.Verbatim, NoChomp: c.NoChomp, NoClamp: c.NoClamp}
	dir := args[0]
	var mods []libenvdir.Modif
	var err error
	if c.NullIs != nil && *c.NullIs == "" {
		err = unix.EINVAL // skalibs refuses a NUL "nullis"
	} else {
		if c.NullIs != nil {
			o.NullIs = (*c.NullIs)[0]
		}
		mods, err = libenvdir.Read(dir, o)
	}
	// -I and -i: the last one given wins, as with s6's getopt loop.
	insist := true
	_ = cli.Options(env.Args, func(n string) bool { return n == "c" }, func(n, _ string) error {
		insist = insist && n != "I" || n == "i"
		return nil
	})
	// A file that vanished is EIDRM (lib/envdir): ENOENT is dir itself.
	if err != nil && (insist || !errors.Is(err, unix.ENOENT)) {
		return exitcode.New(exitcode.Sys, fmt.Errorf("unable to envdir %s: %w", dir, err))
	}
	return proc.ExecEnv(args[1:], libenvdir.Merge(os.Environ(), mods))
}
