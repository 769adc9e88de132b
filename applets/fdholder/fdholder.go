// Package fdholder is s6's fd holder command lines over `fdrestore hold`:
// one applet per s6 program, each parsing s6's argv with s6's option rules
// and running the same code as the matching `fdrestore hold` command.
//
// Synopsis
//
//	fdholder-store [ -d fd ] [ -t timeout ] [ -T fdtimeout ] socket id
//	fdholder-retrieve [ -D ] [ -t timeout ] socket id prog...
//	fdholder-delete [ -t timeout ] socket id
//	fdholder-list [ -t timeout ] socket
//	fdholder-getdump [ -t timeout ] socket prog...
//	fdholder-setdump [ -t timeout ] socket
//	fdholder-transferdump [ -t timeoutfrom:timeoutto ] socketfrom socketto
//	fdholderd [ -1 ] [ -v verbosity ] [ -c maxconn ] [ -n maxfds ] [ -t timeout ] [ -T lameducktimeout ] [ -i rulesdir | -x rulesfile ]
//	fdholder-daemon [ -d | -D ] [ -1 ] [ -c maxconn ] [ -n maxfds ] [ -b backlog ] [ -G gids ] [ -g gid ] [ -u uid ] [ -U ] [ -t timeout ] [ -T lameducktimeout ] -i rulesdir|-x rulesfile path
//
// Each also answers to its s6 name (s6-fdholder-store, ..., s6-fdholderd).
// Options follow skalibs' getopt: clustered flags (-Dt 100, -t100), "--"
// ends them, and so does the first operand; numbers are decimal, timeouts
// milliseconds with 0 for none. Operands past those s6 reads are ignored,
// as s6 does.
//
// store stores fd 0 (or -d fd) as id, expiring after -T ms. retrieve
// places the fd held as id at fd 0 and execs prog (-D: delete it from the
// holder). getdump execs prog with every held fd and the S6_FD* variables;
// setdump stores the fds those variables name; transferdump copies a whole
// holder to another. fdholderd serves the listening socket on fd 0, as
// s6-fdholderd does under s6-ipcserver-socketbinder.
//
// Exit codes
//
//	0        done (retrieve and getdump: prog runs in place)
//	1        the holder refused (the errno it answered is printed) or closed
//	         the connection
//	2        transferdump: the destination holder refused
//	100      usage; fdholderd: fd 0 is not a listening socket
//	111      the connect failed (a timeout included); a later failure is 1
//	126/127  retrieve, getdump: prog could not be run / was not found
//	0/1/2/3  fdholderd after SIGTERM: 1 if fds were held, | 2 if clients
//	         were left (s6-fdholderd's status)
//
// # Differences from s6
//
// --help prints help. fdholderd and fdholder-daemon read s6's access rules
// directories (-i) and cdb files (-x) at each connection (s6 rereads a cdb
// on SIGHUP only); fdholderd without -i or -x
// uses the rules of `fdrestore hold daemon` without -a (the daemon's uid
// and root may do everything) where s6 refuses to start. -v is accepted
// and ignored. transferdump exits 2 when the destination refuses. list is
// sorted. The rest of the differences are those of `fdrestore hold`
// (spec/fdrestore.md 8.6).
package fdholder

import (
	"errors"
	"fmt"
	"os/signal"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/applets/fdrestore"
	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
)

// errUsage makes run print the applet's one usage line (exit 100).
var errUsage = errors.New("usage")

// command is one s6 program: its option letters in getopt(3) form ("Dt:")
// and how its options and operands become `fdrestore hold` arguments.
type command struct {
	Name, Alias, Usage, Summary, Help string
	spec                              string
	hold                              func(opt map[byte]string, operands []string) ([]string, error)
	// setup runs once the command line is read: fdholder-daemon binds
	// its socket at fd 0 and drops privileges.
	setup  func(opt map[byte]string, operands []string) error
	before func() error // fdholderd: checks fd 0, ignores SIGHUP
}

func (c command) applet() cli.Applet {
	return cli.Applet{
		Name:    c.Name,
		Aliases: []string{c.Alias},
		Summary: c.Summary,
		Usage:   c.Usage,
		Help:    c.Help,
		Raw:     c.run,
	}
}

// run parses args as s6 does, then runs the fdrestore applet on the
// equivalent `hold` command line, under the name it was called by.
func (c command) run(args []string, env *cli.Env) int {
	opt, operands, err := getopt(args, c.spec)
	var hold []string
	if err == nil {
		hold, err = c.hold(opt, operands)
	}
	if err == nil && c.setup != nil {
		err = c.setup(opt, operands)
	}
	switch {
	case errors.Is(err, errHelp):
		fmt.Fprintf(env.Stdout, "Usage: %s %s\n\n%s\n\n%s\n", env.Name, c.Usage, c.Summary, c.Help)
		return exitcode.OK
	case errors.Is(err, errUsage):
		fmt.Fprintln(env.Stderr, cli.UsageLine(env.Name, cli.Applet{Usage: c.Usage}))
		return exitcode.Usage
	case err != nil:
		env.Fatal(err)
		return exitcode.Of(err)
	}
	if c.before != nil {
		if err := c.before(); err != nil {
			if errors.Is(err, errUsage) {
				fmt.Fprintln(env.Stderr, cli.UsageLine(env.Name, cli.Applet{Usage: c.Usage}))
				return exitcode.Usage
			}
			env.Fatal(err)
			return exitcode.Of(err)
		}
	}
	return cli.Run(fdrestore.Applet, hold, env)
}

// translate returns the fdrestore arguments ("hold", "store", ...) of an
// s6 command line.
func (c command) translate(args []string) ([]string, error) {
	opt, operands, err := getopt(args, c.spec)
	if err != nil {
		return nil, err
	}
	return c.hold(opt, operands)
}

// Keys of opt that are no option letter: which of -i and -x came last,
// and --allow-dirfd (a gotools option of the commands that hand fds to a
// program; their spec starts with '+').
const (
	lastRules  = 0
	allowDirFD = 1
)

// errHelp is --help in option position (a gotools addition: skalibs'
// getopt reads it as an unknown option).
var errHelp = errors.New("help")

// getopt reads args as skalibs' subgetopt does: options until "--" (which
// it consumes), "-" or the first argument not starting with '-'; letters
// may be clustered, and a letter followed by ':' in spec takes the rest of
// its argument or else the next one. It returns each option's last value
// ("" for a flag) and the operands.
func getopt(args []string, spec string) (map[byte]string, []string, error) {
	opt := map[byte]string{}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if a == "--help" {
			return nil, nil, errHelp
		}
		if a == "--allow-dirfd" && strings.HasPrefix(spec, "+") {
			opt[allowDirFD] = ""
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			k := strings.IndexByte(spec, a[j])
			if a[j] == ':' || a[j] == '+' || k < 0 {
				return nil, nil, errUsage
			}
			if k+1 == len(spec) || spec[k+1] != ':' {
				opt[a[j]] = ""
				continue
			}
			switch {
			case j+1 < len(a):
				opt[a[j]] = a[j+1:]
			case i+1 < len(args):
				i++
				opt[a[j]] = args[i]
			default:
				return nil, nil, errUsage
			}
			if a[j] == 'i' || a[j] == 'x' {
				opt[lastRules] = a[j : j+1] // s6: the last of -i and -x wins
			}
			break
		}
	}
	return opt, args[i:], nil
}

// uint0 reads a decimal unsigned 32-bit number as skalibs' uint0_scan:
// digits only, the whole string.
func uint0(s string) (uint64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errUsage
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, errUsage
	}
	return n, nil
}

// numbers appends "-X N" to hold for each option of letters that opt has,
// as hold's option name (the same letter unless renamed in to), checking
// each is a decimal number.
func numbers(hold []string, opt map[byte]string, letters string) ([]string, error) {
	for i := 0; i < len(letters); i++ {
		v, ok := opt[letters[i]]
		if !ok {
			continue
		}
		n, err := uint0(v)
		if err != nil {
			return nil, err
		}
		hold = append(hold, "-"+string(letters[i]), strconv.FormatUint(n, 10))
	}
	return hold, nil
}

// The registry entries, one per s6 program, in the order the registry
// lists them.
var (
	StoreApplet        = store.applet()
	RetrieveApplet     = retrieve.applet()
	DeleteApplet       = deleteCmd.applet()
	ListApplet         = list.applet()
	GetdumpApplet      = getdump.applet()
	SetdumpApplet      = setdump.applet()
	TransferdumpApplet = transferdump.applet()
	DaemonApplet       = daemon.applet()
	FullDaemonApplet   = fullDaemon.applet()
)

// commands are the s6 programs, for the tests.
var commands = []command{store, retrieve, deleteCmd, list, getdump, setdump, transferdump, daemon, fullDaemon}

var store = command{
	Name: "fdholder-store", Alias: "s6-fdholder-store",
	Usage:   "[ -d fd ] [ -t timeout ] [ -T fdtimeout ] socket id",
	Summary: "store fd 0 (or -d fd) in an fd holder as id (s6's argv for fdrestore hold store)",
	Help: `-d fd: store this fd instead of 0. -t timeout: give up after timeout ms
(0: never). -T fdtimeout: the holder closes the fd after fdtimeout ms
(0: never).

Exit codes: 0 stored; 1 the holder refused (EBUSY: id in use, EPERM,
ENFILE), or the request failed (a timeout included); 100 usage; 111
the connect failed.`,
	spec: "d:t:T:",
	hold: func(opt map[byte]string, ops []string) ([]string, error) {
		if len(ops) < 2 {
			return nil, errUsage
		}
		hold, err := numbers([]string{"hold", "store"}, opt, "dtT")
		if err != nil {
			return nil, err
		}
		return append(hold, "--", ops[0], ops[1]), nil
	},
}

var retrieve = command{
	Name: "fdholder-retrieve", Alias: "s6-fdholder-retrieve",
	Usage:   "[ -D ] [ -t timeout ] socket id prog...",
	Summary: "exec prog with the fd an fd holder keeps as id on fd 0 (s6's argv for fdrestore hold retrieve)",
	Help: `-D: delete id from the holder once retrieved. -t timeout: give up after
timeout ms (0: never). Other fds pass through to prog. A directory or
O_PATH fd is refused (exit 1) unless --allow-dirfd (a gotools option).

Exit codes: 1 the holder refused (ENOENT, EPERM) or the request failed
(a timeout included); 100 usage; 111 the connect failed; 126/127 prog
could not be run / was not found. Otherwise prog runs in place.`,
	spec: "+Dt:",
	hold: func(opt map[byte]string, ops []string) ([]string, error) {
		if len(ops) < 3 {
			return nil, errUsage
		}
		hold, err := numbers([]string{"hold", "retrieve"}, opt, "t")
		if err != nil {
			return nil, err
		}
		if _, ok := opt['D']; ok {
			hold = append(hold, "-D")
		}
		if _, ok := opt[allowDirFD]; ok {
			hold = append(hold, "--allow-dirfd")
		}
		hold = append(hold, "--fd=0="+ops[1], "--", ops[0], "--")
		return append(hold, ops[2:]...), nil
	},
}

var deleteCmd = command{
	Name: "fdholder-delete", Alias: "s6-fdholder-delete",
	Usage:   "[ -t timeout ] socket id",
	Summary: "delete id from an fd holder (s6's argv for fdrestore hold delete)",
	Help: `-t timeout: give up after timeout ms (0: never).

Exit codes: 0 deleted; 1 the holder refused (ENOENT, EPERM); 100 usage;
111 system failure.`,
	spec: "t:",
	hold: func(opt map[byte]string, ops []string) ([]string, error) {
		if len(ops) < 2 {
			return nil, errUsage
		}
		hold, err := numbers([]string{"hold", "delete"}, opt, "t")
		if err != nil {
			return nil, err
		}
		return append(hold, "--", ops[0], ops[1]), nil
	},
}

var list = command{
	Name: "fdholder-list", Alias: "s6-fdholder-list",
	Usage:   "[ -t timeout ] socket",
	Summary: "print the ids an fd holder keeps (s6's argv for fdrestore hold list)",
	Help: `-t timeout: give up after timeout ms (0: never). One id per line, sorted,
bytes outside 0x21..0x7e and '\' written as \xHH.

Exit codes: 0 listed; 1 the holder refused (EPERM); 100 usage; 111 system
failure.`,
	spec: "t:",
	hold: func(opt map[byte]string, ops []string) ([]string, error) {
		if len(ops) < 1 {
			return nil, errUsage
		}
		hold, err := numbers([]string{"hold", "list"}, opt, "t")
		if err != nil {
			return nil, err
		}
		return append(hold, "--", ops[0]), nil
	},
}

var getdump = command{
	Name: "fdholder-getdump", Alias: "s6-fdholder-getdump",
	Usage:   "[ -t timeout ] socket prog...",
	Summary: "exec prog with every fd an fd holder keeps (s6's argv for fdrestore hold getdump)",
	Help: `-t timeout: give up after timeout ms (0: never). prog gets the fds open and
S6_FD#, S6_FD_i, S6_FDID_i and S6_FDLIMIT_i in its environment. A
directory or O_PATH fd among them is refused (exit 1) unless
--allow-dirfd (a gotools option).

Exit codes: 1 the holder refused (EPERM); 100 usage; 111 system failure;
126/127 prog could not be run / was not found. Otherwise prog runs in
place.`,
	spec: "+t:",
	hold: func(opt map[byte]string, ops []string) ([]string, error) {
		if len(ops) < 2 {
			return nil, errUsage
		}
		hold, err := numbers([]string{"hold", "getdump"}, opt, "t")
		if err != nil {
			return nil, err
		}
		if _, ok := opt[allowDirFD]; ok {
			hold = append(hold, "--allow-dirfd")
		}
		return append(append(hold, "--"), ops...), nil
	},
}

var setdump = command{
	Name: "fdholder-setdump", Alias: "s6-fdholder-setdump",
	Usage:   "[ -t timeout ] socket",
	Summary: "store the fds the S6_FD* variables name in an fd holder (s6's argv for fdrestore hold setdump)",
	Help: `-t timeout: give up after timeout ms (0: never). Reads S6_FD#, S6_FD_i,
S6_FDID_i and S6_FDLIMIT_i, as getdump sets them.

Exit codes: 0 stored; 1 the holder refused; 100 usage (S6_FD# or an
S6_FD_i missing or invalid included); 111 system failure.`,
	spec: "t:",
	hold: func(opt map[byte]string, ops []string) ([]string, error) {
		if len(ops) < 1 {
			return nil, errUsage
		}
		hold, err := numbers([]string{"hold", "setdump"}, opt, "t")
		if err != nil {
			return nil, err
		}
		return append(hold, "--", ops[0]), nil
	},
}

var transferdump = command{
	Name: "fdholder-transferdump", Alias: "s6-fdholder-transferdump",
	Usage:   "[ -t timeoutfrom:timeoutto ] socketfrom socketto",
	Summary: "copy every fd of one fd holder to another (s6's argv for fdrestore hold transferdump)",
	Help: `-t timeoutfrom:timeoutto: give up on the source holder after
timeoutfrom ms, on the destination after timeoutto (0 or empty: never).

Exit codes: 0 copied; 1 the source holder refused; 2 the destination
refused; 100 usage; 111 system failure.`,
	spec: "t:",
	hold: func(opt map[byte]string, ops []string) ([]string, error) {
		if len(ops) < 2 {
			return nil, errUsage
		}
		hold := []string{"hold", "transferdump"}
		if v, ok := opt['t']; ok {
			from, to, err := transferTimeouts(v)
			if err != nil {
				return nil, err
			}
			hold = append(hold, "-t", strconv.FormatUint(from, 10), "--to-timeout", strconv.FormatUint(to, 10))
		}
		return append(hold, "--", ops[0], ops[1]), nil
	},
}

var daemon = command{
	Name: "fdholderd", Alias: "s6-fdholderd",
	Usage:   "[ -1 ] [ -v verbosity ] [ -c maxconn ] [ -n maxfds ] [ -t timeout ] [ -T lameducktimeout ] [ -i rulesdir | -x rulesfile ] (fd 0: a listening socket)",
	Summary: "the fd holder daemon on the listening socket fd 0 (s6's argv for fdrestore hold daemon -)",
	Help: `-1: write a newline on fd 1 once ready. -c maxconn: serve at most maxconn
clients at once (1..256). -n maxfds: hold at most maxfds fds. -t timeout:
drop a client idle timeout ms mid-request. -T lameducktimeout: after
SIGTERM, exit after that many ms even with clients left. -v is ignored.
SIGHUP is ignored. Run it under s6-ipcserver-socketbinder SOCKET.

-i rulesdir: s6's access rules directory (uid/UID, gid/GID, uid/default
with allow or deny and env/S6_FDHOLDER_*), read at each connection: no
rule, no access, root included. -x rulesfile: the same rules in a cdb
(s6-accessrules-cdb-from-fs), also read at each connection (no SIGHUP
needed). Without -i or -x, the daemon's uid and root may do everything
(s6 refuses to start); for other rules use fdrestore hold daemon -a RULE -.

Exit codes: after SIGTERM, 1 if fds were held, | 2 if clients were left;
100 usage (fd 0 not a listening socket); 111 system failure.`,
	spec: "1v:c:n:t:T:i:x:",
	hold: func(opt map[byte]string, ops []string) ([]string, error) {
		return daemonArgs(opt, "-")
	},
	before: func() error {
		if v, err := unix.GetsockoptInt(0, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v == 0 {
			return errUsage
		}
		// s6-fdholderd traps SIGHUP (it rereads its rules); a Go
		// program would die of it and lose every held fd.
		signal.Ignore(unix.SIGHUP)
		return nil
	},
}

// daemonArgs is the `fdrestore hold daemon` command line of the options
// s6-fdholderd takes (-1 -v -c -n -t -T -i -x), serving socket.
func daemonArgs(opt map[byte]string, socket string) ([]string, error) {
	if v, ok := opt['v']; ok {
		if _, err := uint0(v); err != nil {
			return nil, err
		}
	}
	hold := []string{"hold", "daemon"}
	if _, ok := opt['1']; ok {
		hold = append(hold, "-1")
	}
	hold, err := numbers(hold, opt, "cntT")
	if err != nil {
		return nil, err
	}
	// s6 takes the last of -i and -x.
	switch opt[lastRules] {
	case "x":
		hold = append(hold, "-x", opt['x'])
	case "i":
		hold = append(hold, "-i", opt['i'])
	}
	return append(hold, "--", socket), nil
}

// transferTimeouts reads -t timeoutfrom:timeoutto as
// s6-fdholder-transferdump does ("N", "N:", ":M", "N:M", ":"; an empty side
// is 0, no timeout): one timeout per holder.
func transferTimeouts(v string) (from, to uint64, err error) {
	f, t, _ := strings.Cut(v, ":")
	if v == "" || (f == "" && !strings.HasPrefix(v, ":")) {
		return 0, 0, errUsage
	}
	var ms [2]uint64
	for i, s := range []string{f, t} {
		if s == "" {
			continue
		}
		if ms[i], err = uint0(s); err != nil {
			return 0, 0, err
		}
	}
	return ms[0], ms[1], nil
}
