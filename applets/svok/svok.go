// Package svok is the svok applet: it tells whether a supervisor runs on a
// service directory.
//
// Synopsis
//
//	svok DIR
//
// It prints nothing. A supervisor runs on DIR when some process holds a
// lock on DIR/supervise/lock (fcntl(2) F_OFD_GETLK): the lock, not the
// file, is the proof (spec/supervise.md §2.1, §6).
//
// Exit codes
//
//	0    a supervisor holds DIR/supervise/lock
//	1    none does (the lock file or DIR itself missing included)
//	100  usage error
//	111  a system call failed (ENOTDIR, EACCES, ...)
//
// # Differences from s6
//
// --help prints help. The lock is queried with F_OFD_GETLK, which sees
// s6's POSIX locks and gotools' OFD locks alike.
package svok

import (
	"fmt"
	"path/filepath"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/lock"
)

// Applet is svok's registry entry.
var Applet = cli.Applet{
	Name:    "svok",
	Aliases: []string{"s6-svok"},
	Summary: "tell whether a supervisor runs on a service directory",
	Usage:   "DIR",
	Help: `Prints nothing. Exits 0 if a supervisor (gotools supervise or s6-supervise)
holds DIR/supervise/lock, 1 if none does (a missing lock file or DIR
included).

Exit codes: 0 supervised; 1 not supervised; 100 usage; 111 system failure
(e.g. DIR is not a directory, permission denied).`,
	New:  func() cli.Command { return new(command) },
	Fast: fast,
}

// fast runs "svok DIR" (or "svok -- DIR") without kong; anything else is
// kong's to parse.
func fast(args []string, env *cli.Env) (bool, error) {
	dir, ok := cli.OneOperand(args)
	if !ok {
		return false, nil
	}
	return true, (&command{Dir: dir}).Run(env)
}

// command is svok's grammar: exactly one DIR, so that --help says what
// the parser accepts (issue 14 item 8).
type command struct {
	Dir string `arg:"" name:"dir" help:"The service directory."`
}

func (c *command) Run(env *cli.Env) error {
	dir := c.Dir
	held, err := lock.Held(filepath.Join(dir, "supervise", "lock"))
	if err != nil {
		return exitcode.New(exitcode.Sys, fmt.Errorf("unable to check %s: %w", dir, err))
	}
	if !held {
		return exitcode.Exit(exitcode.Refused)
	}
	return nil
}
