// Package fdrestore is the fdrestore applet: the command line of
// lib/fdrestore (spec/fdrestore.md). Built: `restore` in flags mode and
// `grab`, on the in-place and re-exec paths of section 6.3.
//
// Synopsis
//
//	fdrestore restore [ -C ] [ --listen-fds ] [ --name N=NAME ]... [ --setsid ] [ --ctty N ]
//	    [ --allow-dirfd ] [ -v ] [ --check ] -f [N=]SOURCE... -- PROG [ARG...]
//	fdrestore grab [ -C ] [ --listen-fds ] [ --name N=NAME ]... [ --allow-dirfd ] [ -v ]
//	    PID FD[=TARGET]... -- PROG [ARG...]
//
// restore creates every SOURCE once (section 2: file, null, pipe,
// socketpair, listen, pty, memfd, eventfd, epoll, fd, dup, close, grab),
// places each at its fd N (without N=, the lowest number >= 3 no other -f
// names), registers the epolls under the final numbers, sets LISTEN_FDS,
// LISTEN_FDNAMES and LISTEN_PID with --listen-fds, and execs PROG in place:
// the pid stays. Fds no -f names pass through unless -C closes those >= 3.
// --check prints the plan on stdout and exits 0 without creating anything;
// -v prints it on stderr, with the path taken, before going on. When the Go
// runtime holds an fd at a target (the netpoller's epoll and eventfd,
// opened at 3 and 4 when fd 0, 1 or 2 is O_NONBLOCK), fdrestore re-executes
// itself as the hidden `fdrestore stage --control N`, same pid, with every
// file in flight on a socket, and places them there.
//
// grab is restore with -f TARGET=grab:PID:FD for each FD[=TARGET] (TARGET
// defaults to FD, or with --listen-fds to the next number from 3).
//
// Directory and O_PATH fds are refused (exit 1) unless --allow-dirfd.
//
// restore IMAGE|- [-- PROG...] rebuilds the processes of a JSON image
// (section 5): every file created once, shared files shared; a one-process
// image execs in place, a multi-process one spawns a stage per process,
// execs them all or none, and stays their parent (signals forwarded, the
// first process's status as its own). Files this engine cannot create
// (established sockets, deleted files, seals, escaped epoll targets,
// signalfd, timerfd...) are refused (exit 1) unless they have a live
// source or --lossy closes their fds.
//
// hold is the fd holder of section 8 (see its --help).
//
// dump [-o FILE] [--tree] [--live] [--data] [--data-max BYTES] [--strict]
// PID... writes the image of running processes (section 4): sharing found
// with kcmp, pipe, socket and pty peers, epoll targets; --strict exits 1
// (after writing) if a file is unsupported or incomplete. Not built:
// --freeze (every image says "racy"), the verify check at restore.
//
// Exit codes
//
//	1        refused: a directory or O_PATH fd without --allow-dirfd, a
//	         file an image cannot restore, a holder request that failed;
//	         --check found problems
//	100      usage: bad flags, source syntax, duplicate target, fd out of
//	         range, an unsupported subcommand or mode
//	101      internal error (a bug)
//	111      a system call failed while realising the plan (open, bind,
//	         grab, dup3, epoll_ctl, setsid, TIOCSCTTY)
//	126/127  PROG could not be run / was not found (created paths removed)
//	0        --check found none; otherwise restore and grab do not return:
//	         PROG runs
package fdrestore

import (
	"github.com/alecthomas/kong"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
)

// Applet is fdrestore's registry entry.
var Applet = cli.Applet{
	Name:    "fdrestore",
	Summary: "create files at chosen fd numbers and exec a program with them",
	Usage:   "restore [OPTIONS] -f [N=]SOURCE... -- PROG... | restore IMAGE [-- PROG...] | grab [OPTIONS] PID FD[=TARGET]... -- PROG... | dump [OPTIONS] PID... | hold COMMAND ...",
	Help: `restore places each SOURCE at fd N (no N=: the lowest free number >= 3 no
other -f names) and execs PROG in place. SOURCE is file:PATH[:FLAGS][@POS],
null, pipe:NAME:r|w, socketpair:NAME:0|1[:TYPE], listen:tcp|udp:HOST:PORT,
listen:unix:PATH, pty:NAME:master|slave, memfd:NAME, eventfd:N[:FLAGS],
epoll:T[/EV],..., fd:M, dup:N, close or grab:PID:FD. Unnamed fds pass
through unless -C closes those >= 3. --listen-fds sets LISTEN_FDS,
LISTEN_FDNAMES (--name N=NAME, default "unknown") and LISTEN_PID.
--setsid starts a new session; --ctty N also makes target N the
controlling terminal. --check prints the plan and creates nothing; -v
prints it on stderr with the placement path (in place, or re-exec when the
Go runtime holds a target, e.g. with a non-blocking stdin).

grab PID FD[=TARGET]... takes fds of a running process with pidfd_getfd
(same open file: listen queue, offset, locks) and execs PROG with them.

Directory and O_PATH fds are refused unless --allow-dirfd.

restore IMAGE|- [-- PROG...] rebuilds the processes of a JSON image (one
stage process each, all exec'd or none); --lossy closes the fds of files
it cannot create, --inherit-stdio keeps fdrestore's 0-2 in every process.

hold is an fd holder wire-compatible with s6-fdholderd: fdrestore hold
daemon|store|retrieve|delete|list|getdump|setdump|transferdump.

dump [-o FILE] [--tree] [--live] [--data] [--strict] PID... writes a JSON
image of running processes' fd tables (restore reads it back).
Not built: dump --freeze.

Exit codes: 1 refused (directory fd, unrestorable file, a failed holder
request, dump --strict, problems --check found); 100 usage, bad source,
duplicate target, unsupported; 111 a system call failed (a holder's
connect included); 126/127 PROG not runnable/not found, before anything
is opened; 0 --check found nothing wrong.`,
	New:     func() cli.Command { return new(command) },
	NewFor:  newFor,
	Prescan: prescan,
}

type command struct {
	Restore restoreCmd `cmd:"" help:"Create files at fd numbers and exec PROG in place."`
	Grab    grabCmd    `cmd:"" help:"Take fds of a running process (pidfd_getfd) and exec PROG with them."`
	Dump    dumpCmd    `cmd:"" help:"Write a JSON image of running processes' fd tables."`
	Hold    holdCmd    `cmd:"" help:"The fd holder daemon and its clients, wire-compatible with s6-fdholderd."`
	Stage   stageCmd   `cmd:"" hidden:"" help:"The stage process of the re-exec path (internal)."`
}

// Run is the root's: the selected command has already run.
func (c *command) Run(*cli.Env) error { return nil }

// AfterApply makes the subcommand required: kong lets a grammar whose root
// has a Run method parse without one.
func (c *command) AfterApply(kctx *kong.Context) error {
	if kctx.Selected() == nil {
		return exitcode.ErrUsage
	}
	return nil
}

// The grammars of one command each: newFor builds only the one the first
// argument names (cli.Applet.NewFor), the whole command otherwise (--help).
type (
	restoreOnly struct {
		Restore restoreCmd `cmd:"" help:"Create files at fd numbers and exec PROG in place."`
	}
	grabOnly struct {
		Grab grabCmd `cmd:"" help:"Take fds of a running process (pidfd_getfd) and exec PROG with them."`
	}
	dumpOnly struct {
		Dump dumpCmd `cmd:"" help:"Write a JSON image of running processes' fd tables."`
	}
	holdOnly struct {
		Hold holdCmd `cmd:"" help:"The fd holder daemon and its clients, wire-compatible with s6-fdholderd."`
	}
	stageOnly struct {
		Stage stageCmd `cmd:"" hidden:"" help:"The stage process of the re-exec path (internal)."`
	}
)

func (*restoreOnly) Run(*cli.Env) error { return nil }
func (*grabOnly) Run(*cli.Env) error    { return nil }
func (*dumpOnly) Run(*cli.Env) error    { return nil }
func (*holdOnly) Run(*cli.Env) error    { return nil }
func (*stageOnly) Run(*cli.Env) error   { return nil }

func (c *command) restore() *restoreCmd     { return &c.Restore }
func (c *restoreOnly) restore() *restoreCmd { return &c.Restore }

func newFor(args []string) cli.Command {
	noGC(args)
	if len(args) > 0 {
		switch args[0] {
		case "restore":
			return new(restoreOnly)
		case "grab":
			return new(grabOnly)
		case "dump":
			return new(dumpOnly)
		case "hold":
			return new(holdOnly)
		case "stage":
			return new(stageOnly)
		}
	}
	return new(command)
}
