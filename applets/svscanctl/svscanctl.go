// Package svscanctl is the svscanctl applet: it sends commands to the
// svscan (or s6-svscan) running on a scan directory, through its control
// FIFO (spec/supervise.md §8).
//
// Synopsis
//
//	svscanctl [ -zabhitqnN ] SCANDIR
//
// The command letters are written in command-line order (-an sends "an",
// -na sends "na"), at most 64 of them, in one write to
// SCANDIR/.s6-svscan/control. Without letters svscanctl only checks that
// svscan listens. Operands after SCANDIR are ignored, as s6-svscanctl
// ignores them.
//
// Exit codes
//
//	0    the letters were written (without letters: svscan listens)
//	100  usage error, too many commands, no svscan listening
//	     ("supervisor not listening"), or SCANDIR/.s6-svscan is broken
//	     (not a directory, or no control FIFO in it)
//	111  SCANDIR is missing or not a directory, or a system call failed
//
// # Differences from s6
//
// --help prints help (-h is the h command), and every letter has a long
// option. The "not listening" line reads "unable to control SCANDIR:
// supervisor not listening": s6-svscanctl 2.11 prints a stray ": " after
// "fatal:" there.
package svscanctl

import (
	"errors"

	"github.com/alecthomas/kong"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
)

// Applet is svscanctl's registry entry.
var Applet = cli.Applet{
	Name:    "svscanctl",
	Aliases: []string{"s6-svscanctl"},
	Summary: "send commands to the svscan of a scan directory",
	Usage:   "[ -zabhitqnN ] SCANDIR",
	Help: `Writes the command letters, in command-line order (-an sends "an"; at
most 64), in one write to SCANDIR/.s6-svscan/control. Without letters it
only checks that svscan listens. Letters: z reap, a scan, b exec finish at
once, h scan then stop inactive supervisors, n/N stop inactive supervisors
(loggers get SIGHUP/SIGTERM), t and i bring everything down and exec
finish, q as t but loggers get SIGTERM too.

Exit codes: 0 sent; 100 usage, too many commands, no svscan listening, or a
broken SCANDIR/.s6-svscan; 111 SCANDIR missing or a system failure.

Differences from s6-svscanctl: --help (-h is the h command) and long
options.`,
	New:     func() cli.Command { return new(command) },
	Options: []kong.Option{kong.NoDefaultHelp()},
}

// MaxCommands is the most letters one svscanctl sends: s6-svscanctl's
// buffer is 64 bytes ("too many commands" past that), and 64 is within
// PIPE_BUF, so the write stays atomic.
const MaxCommands = 64

// letters pairs every command letter with its long option (the names of
// [command]'s fields' name tags). An array, laid out by the linker, not a
// map built at every gotools process's start (issue 16 item 3).
var letters = [...]struct {
	c    byte
	name string
}{
	{'z', "reap"}, {'a', "scan"}, {'b', "abort"}, {'h', "hangup"}, {'i', "interrupt"},
	{'t', "terminate"}, {'q', "quit"}, {'n', "nuke"}, {'N', "nuke-loggers"},
}

// command is svscanctl's grammar. kong checks the command line and gives
// help; the order of the letters is read from the same arguments by
// [scan].
type command struct {
	Help cli.HelpFlag `name:"help" help:"Show this help and exit."`

	Reap      bool `short:"z" name:"reap" help:"Reap dead children now."`
	Scan      bool `short:"a" name:"scan" help:"Scan the directory now."`
	Abort     bool `short:"b" name:"abort" help:"Exec the finish program at once, without waiting."`
	Hangup    bool `short:"h" name:"hangup" help:"Scan, then stop the supervisors of vanished services."`
	Interrupt bool `short:"i" name:"interrupt" help:"As -t."`
	Terminate bool `short:"t" name:"terminate" help:"Bring every service down, wait for the supervisors, exec finish."`
	Quit      bool `short:"q" name:"quit" help:"As -t, but loggers get SIGTERM too (may lose logs)."`
	Nuke      bool `short:"n" name:"nuke" help:"Stop the supervisors of vanished services (loggers get SIGHUP)."`
	NukeLog   bool `short:"N" name:"nuke-loggers" help:"As -n, but loggers get SIGTERM."`

	Args []string `arg:"" passthrough:"partial" name:"scandir" help:"The scan directory."`
}

func (c *command) Run(env *cli.Env) error {
	cmds, err := scan(env.Args)
	if err != nil {
		return err
	}
	args := cli.Operands(c.Args)
	if len(args) == 0 {
		return exitcode.ErrUsage
	}
	return Control(args[0], cmds)
}

// scan reads the command letters off args, in order, as getopt would.
// kong has checked the syntax already.
func scan(args []string) ([]byte, error) {
	var out []byte
	err := cli.Options(args, func(string) bool { return false }, func(name, _ string) error {
		if name == "help" {
			return nil
		}
		c, ok := letterOf(name)
		if !ok {
			return errors.New("internal error: unknown option left by the parser")
		}
		if len(out) == MaxCommands {
			return exitcode.Errorf(exitcode.Usage, "too many commands")
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

func letterOf(name string) (byte, bool) {
	for _, l := range letters {
		if l.name == name || len(name) == 1 && l.c == name[0] {
			return l.c, true
		}
	}
	return 0, false
}
