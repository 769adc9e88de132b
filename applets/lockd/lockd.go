// Package lockd is the lockd applet: a lock daemon that takes fcntl locks
// on files of a lock directory for its clients (spec/locks.md, "lockd"
// and "The protocol"). It holds free locks itself, on open files of its
// own; a lockd-helper child waits for a contended lock (so that the wait
// can time out) by locking lockd's open file, and exits once it has. One
// helper per contended name: later requests for it queue in lockd. A
// client may get the locked file itself with the grant (FlagPassFD, the
// G message); then its lock outlives lockd (lib/lockproto/PROTOCOL.md).
//
// Synopsis
//
//	lockd [ -s socket ] [ -m mode ] [ -u uid,uid... ] [ -n max ] [ -N max ] [ -c max ] [ --shared-lockdir ] [ -v ] lockdir
//	lockd -L socket [ --json ]
//
// With -s, lockd listens on the Unix stream socket (a name starting with
// "@" is abstract) and serves up to -c clients, admitting root, its own
// euid and the -u uids. Without -s it serves one client on fds 0 and 1
// (child mode: lib/lockproto.Spawn, or under a UCSPI server). -n limits
// the locks of one client, -N those of all; -v logs connections,
// refusals and releases. lockd -L SOCKET prints the lock table of a
// running lockd: pid uid id mode state age_ms left_ms hpid name, tab
// separated.
//
// Exit codes
//
//	0    ended by SIGTERM, SIGINT, SIGHUP or SIGQUIT (child mode: by EOF);
//	     -L printed the table
//	1    -L: lockd refused us (EPERM)
//	100  usage; lockdir writable by others; the socket path is not a
//	     socket; child mode: the client broke the protocol
//	111  system failure; -L: lockd unreachable
//
// # Differences from s6
//
// s6lockd never granted a lock (its framing was off by one) and was removed
// from s6 in 2.12. lockd speaks a new protocol on one duplex stream, with
// relative timeouts, a lock list, checked names and access by uid; a
// helper that dies while holding a lock is reported as EOWNERDEAD.
package lockd

import (
	"strconv"
	"strings"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
)

// Applet is lockd's registry entry.
var Applet = cli.Applet{
	Name:    "lockd",
	Aliases: []string{"s6lockd"},
	Summary: "lock daemon: timed shared and exclusive locks for many clients",
	Usage:   "[ -s socket ] [ -m mode ] [ -u uid,uid... ] [ -n max ] [ -N max ] [ -c max ] [ --shared-lockdir ] [ -v ] lockdir | -L socket [ --json ]",
	Help: `Takes fcntl (OFD) locks on files of lockdir for its clients. lockd
holds every lock itself, on an open file of its own; only a contended
name has a process, a lockd-helper child that waits for it (and is killed
when the wait times out) and exits once lockd's file holds it; other
requests for that name wait in lockd's queue, in order. Lock files
are created mode 0600, owned by lockd's uid.

Guarantee: a client that asks for the locked file (setlock -s does) gets
it with the grant, so the lock lives as long as the program holding that
file, whatever happens to lockd: a lockd killed and restarted cannot let
a second client in meanwhile. Other clients' locks end when lockd ends
or their connection closes.

With -s SOCKET lockd serves clients on a Unix socket (mode -m, default
0600; "@name" is abstract); without -s, one client on fds 0 and 1.
Admitted: root, lockd's euid and the -u uids. In server mode lockdir must
be lockd's and not writable by others, nor traversable by others unless
--shared-lockdir. -n: locks per client (default 1024, at most 65536); -N:
locks in all (4096); -c: clients at once (1000): a client beyond the limit
gets EUSERS in its hello and is disconnected (setlock -s: exit 111, "Too
many users"). A client that says no hello, or leaves a frame unfinished,
for 2 s is disconnected. Out of fds, lockd pauses accepting (warning once)
and serves the clients it has. -v: log to stderr.

lockd -L SOCKET prints the lock table, one line per lock, tab-separated:
pid and uid of the owning client, its lock id, mode (ex, sh), state
(held, pending), age in ms (since granted, or since asked), ms left
before a pending request times out (- for none), the pid of the helper
waiting for it (0 for none), and the name (bytes outside printable
ASCII as \xHH). --json prints one JSON array of objects instead.

Exit codes: 0 ended by a signal (child mode: by EOF), or -L done; 1 -L
refused; 100 usage, lockdir writable (or traversable) by others, the
socket path is not a socket, or (child mode) a protocol error; 111 system
failure, or -L: lockd unreachable.

Differences from s6lockd: a new protocol (s6lockd's never granted a lock),
relative timeouts, one duplex stream, a lock list, checked names, access
by uid; no process per held lock.`,
	New: func() cli.Command { return new(command) },
}

type command struct {
	Socket  string   `short:"s" name:"socket" placeholder:"SOCKET" help:"Listen on this Unix socket (server mode)."`
	Mode    string   `short:"m" name:"mode" placeholder:"MODE" default:"0600" help:"Octal mode of the socket file."`
	UIDs    string   `short:"u" name:"uids" placeholder:"UID,..." help:"Numeric uids admitted besides root and lockd's euid."`
	PerCli  cli.Uint `short:"n" name:"client-locks" placeholder:"MAX" default:"1024" help:"Locks per client (at most 65536)."`
	Total   cli.Uint `short:"N" name:"locks" placeholder:"MAX" default:"4096" help:"Locks for all clients together."`
	Clients cli.Uint `short:"c" name:"clients" placeholder:"MAX" default:"1000" help:"Simultaneous clients (server mode); beyond, a client is refused (EUSERS)."`
	Shared  bool     `name:"shared-lockdir" help:"Accept a lockdir that other users can traverse (never one they can write into)."`
	Verbose bool     `short:"v" name:"verbose" help:"Log connections, refusals and releases."`
	List    string   `short:"L" name:"list" placeholder:"SOCKET" help:"Print the lock table of the lockd on SOCKET."`
	JSON    bool     `name:"json" help:"With -L: print the table as a JSON array."`
	Args    []string `arg:"" optional:"" passthrough:"partial" name:"lockdir" help:"The lock directory."`
}

func (c *command) Run(env *cli.Env) error {
	args := cli.Operands(c.Args)
	if c.List != "" {
		if len(args) != 0 {
			return exitcode.ErrUsage
		}
		return list(env, c.List, c.JSON)
	}
	if len(args) != 1 || args[0] == "" || c.JSON {
		return exitcode.ErrUsage
	}
	mode, err := strconv.ParseUint(c.Mode, 8, 32)
	if err != nil || mode > 0o777 {
		return exitcode.ErrUsage
	}
	uids, ok := parseUIDs(c.UIDs)
	if !ok || c.PerCli == 0 || c.PerCli > 65536 || c.Total == 0 || c.Clients == 0 {
		return exitcode.ErrUsage
	}
	d := &daemon{
		env:       env,
		lockdir:   args[0],
		socket:    c.Socket,
		mode:      uint32(mode),
		uids:      uids,
		perCli:    int(c.PerCli),
		total:     int(c.Total),
		clients:   int(c.Clients),
		verbose:   c.Verbose,
		sharedDir: c.Shared,
		byFD:      map[int]any{},
		events:    map[int]uint32{},
		waiting:   map[string][]*lockReq{},
		external:  externalHelper(),
	}
	return d.run()
}

// parseUIDs reads "-u 1000,1001": decimal uids, comma-separated.
func parseUIDs(s string) (map[uint32]bool, bool) {
	m := map[uint32]bool{}
	if s == "" {
		return m, true
	}
	for f := range strings.SplitSeq(s, ",") {
		u, err := cli.ParseDecimal(f)
		if err != nil {
			return nil, false
		}
		m[u] = true
	}
	return m, true
}
