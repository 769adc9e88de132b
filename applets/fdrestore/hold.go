package fdrestore

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/fdholder"
	"github.com/gotools-dev/gotools/lib/fdrestore"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/tai"
)

// holdCmd is `fdrestore hold`: the fd holder daemon and its clients,
// wire-compatible with s6-fdholderd (section 8).
type holdCmd struct {
	Daemon       holdDaemon       `cmd:"" help:"Run the fd holder daemon on SOCKET (or the listening socket on fd 0 with -)."`
	Store        holdStore        `cmd:"" help:"Store fds in the holder."`
	Retrieve     holdRetrieve     `cmd:"" help:"Retrieve fds from the holder and exec PROG with them."`
	Delete       holdDelete       `cmd:"" help:"Delete ids from the holder."`
	List         holdList         `cmd:"" help:"List the ids the holder keeps."`
	Getdump      holdGetdump      `cmd:"" help:"Exec PROG with every held fd and S6_FD* variables."`
	Setdump      holdSetdump      `cmd:"" help:"Store the fds the S6_FD* variables name."`
	Transferdump holdTransferdump `cmd:"" help:"Copy every held fd from one holder to another."`
}

// timeout is the -t option of every client: milliseconds for each round
// trip, 0 for none.
type timeout struct {
	Timeout int `short:"t" name:"timeout" default:"0" placeholder:"MS" help:"Give up on a request after MS milliseconds (0: never)."`
}

func (t timeout) d() time.Duration { return time.Duration(t.Timeout) * time.Millisecond }

func (t timeout) dial(path string) (*fdholder.Client, error) {
	if t.Timeout < 0 {
		return nil, exitcode.Errorf(exitcode.Usage, "invalid timeout %d", t.Timeout)
	}
	c, err := fdholder.Dial(path, t.d())
	if err != nil {
		_, cause := fdholder.Cause(err)
		return nil, exitcode.Errorf(exitcode.Sys, "unable to connect to %s: %w", path, cause)
	}
	return c, nil
}

// holdErr is the error of a holder request: exit 1, whatever failed (the
// holder's errno, a closed connection, a timeout), as s6's clients.
func holdErr(what string, err error) error {
	code, cause := fdholder.Cause(err)
	return exitcode.Errorf(code, "unable to %s: %w", what, cause)
}

type holdStore struct {
	timeout
	Expire    int      `short:"T" name:"expire" default:"0" placeholder:"MS" help:"The fd expires after MS milliseconds (0: never)."`
	Replace   bool     `short:"r" name:"replace" help:"Replace an fd already stored under the id."`
	From      int      `short:"d" name:"from" default:"0" placeholder:"FD" help:"Store fd FD (default 0)."`
	Each      []string `short:"f" name:"fd" sep:"none" placeholder:"FD=ID" help:"Store fd FD as ID (repeatable)."`
	ListenFDs bool     `name:"listen-fds" help:"Store fds 3.. of LISTEN_FDS under their LISTEN_FDNAMES names."`
	Socket    string   `arg:"" help:"The holder's socket."`
	ID        []string `arg:"" optional:"" help:"The id of the fd (without -f and --listen-fds)."`
}

type storeItem struct {
	fd int
	id string
}

func (s *holdStore) Run(env *cli.Env) error {
	var items []storeItem
	switch {
	case s.ListenFDs && len(s.Each) > 0, (s.ListenFDs || len(s.Each) > 0) && len(s.ID) > 0,
		!s.ListenFDs && len(s.Each) == 0 && len(s.ID) != 1, s.Expire < 0, s.From < 0:
		return exitcode.ErrUsage
	case s.ListenFDs:
		var err error
		if items, err = listenItems(); err != nil {
			return err
		}
	case len(s.Each) > 0:
		for _, f := range s.Each {
			n, id, ok := strings.Cut(f, "=")
			v, err := strconv.Atoi(n)
			if !ok || err != nil || v < 0 || n != strconv.Itoa(v) || id == "" {
				return exitcode.Errorf(exitcode.Usage, "invalid -f %q: it must be FD=ID", f)
			}
			items = append(items, storeItem{v, id})
		}
	default:
		items = []storeItem{{s.From, s.ID[0]}}
	}
	for _, it := range items {
		if err := fdholder.CheckID(it.id); err != nil {
			return exitcode.Errorf(exitcode.Usage, "%v", err)
		}
	}
	c, err := s.dial(s.Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	limit := fdholder.LimitAfter(time.Duration(s.Expire) * time.Millisecond)
	var stored []string
	for _, it := range items {
		if s.Replace {
			if err := c.Delete(it.id); err != nil && !errors.Is(err, unix.ENOENT) {
				return s.undo(c, stored, holdErr("replace "+it.id+" in "+s.Socket, err))
			}
		}
		if err := c.Store(it.fd, it.id, limit); err != nil {
			return s.undo(c, stored, holdErr(fmt.Sprintf("store fd %d as %s in %s", it.fd, it.id, s.Socket), err))
		}
		stored = append(stored, it.id)
	}
	return nil
}

// undo deletes what this call stored, so that a failed multi-fd store
// leaves nothing of its own behind.
func (s *holdStore) undo(c *fdholder.Client, stored []string, err error) error {
	for _, id := range stored {
		_ = c.Delete(id)
	}
	return err
}

// listenItems reads fds 3.. from LISTEN_FDS and their LISTEN_FDNAMES
// names; LISTEN_PID must be this process.
func listenItems() ([]storeItem, error) {
	if pid := os.Getenv("LISTEN_PID"); pid != strconv.Itoa(os.Getpid()) {
		return nil, exitcode.Errorf(exitcode.Usage, "LISTEN_PID is %q, not this process (%d)", pid, os.Getpid())
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil, exitcode.Errorf(exitcode.Usage, "LISTEN_FDS is %q: no fd to store", os.Getenv("LISTEN_FDS"))
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	if len(names) != n {
		return nil, exitcode.Errorf(exitcode.Usage, "LISTEN_FDNAMES has %d names for %d fds", len(names), n)
	}
	items := make([]storeItem, n)
	for i := range items {
		items[i] = storeItem{3 + i, names[i]}
	}
	return items, nil
}

type holdRetrieve struct {
	timeout
	Delete bool     `short:"D" name:"delete" help:"Delete the ids from the holder once every fd is retrieved."`
	FD     []string `short:"f" name:"fd" sep:"none" placeholder:"N=ID" help:"Place id ID at fd N (repeatable)."`
	placement
	Args []string `arg:"" optional:"" passthrough:"partial" name:"socket" help:"SOCKET [ID...] -- PROG [ARG...]"`
}

// Run is retrieve: -f N=ID and each positional ID (at the next free number
// from 3) become hold:SOCKET:ID sources of a restore plan.
func (r *holdRetrieve) Run(env *cli.Env) error {
	args := cli.Operands(r.Args)
	i := slices.Index(args, "--")
	if len(args) < 1 || i < 1 || i == len(args)-1 || r.Timeout < 0 {
		return exitcode.ErrUsage
	}
	sock, ids, prog := args[0], args[1:i], args[i+1:]
	if len(ids) == 0 && len(r.FD) == 0 {
		return exitcode.ErrUsage
	}
	cfg := fdrestore.FlagsConfig{HoldTimeout: r.d(), HoldDelete: r.Delete}
	for _, f := range r.FD {
		n, id, ok := strings.Cut(f, "=")
		t, err := strconv.Atoi(n)
		if !ok || err != nil || t < 0 || n != strconv.Itoa(t) {
			return exitcode.Errorf(exitcode.Usage, "invalid -f %q: it must be N=ID", f)
		}
		cfg.Holds = append(cfg.Holds, fdrestore.Hold{Target: t, Socket: sock, ID: id})
	}
	for _, id := range ids {
		cfg.Holds = append(cfg.Holds, fdrestore.Hold{Target: -1, Socket: sock, ID: id})
	}
	return r.placement.run(env, cfg, prog, false)
}

type holdDelete struct {
	timeout
	Socket string   `arg:"" help:"The holder's socket."`
	ID     []string `arg:"" help:"The ids to delete."`
}

func (d *holdDelete) Run(env *cli.Env) error {
	c, err := d.dial(d.Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, id := range d.ID {
		if err := c.Delete(id); err != nil {
			return holdErr("delete "+id+" from "+d.Socket, err)
		}
	}
	return nil
}

type holdList struct {
	timeout
	Socket string `arg:"" help:"The holder's socket."`
}

// Run prints one id per line in byte order, bytes outside 0x21..0x7e and
// '\' as \xHH.
func (l *holdList) Run(env *cli.Env) error {
	c, err := l.dial(l.Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	ids, err := c.List()
	if err != nil {
		return holdErr("list "+l.Socket, err)
	}
	slices.Sort(ids)
	var b strings.Builder
	for _, id := range ids {
		for i := 0; i < len(id); i++ {
			if ch := id[i]; ch < 0x21 || ch > 0x7e || ch == '\\' {
				fmt.Fprintf(&b, `\x%02x`, ch)
			} else {
				b.WriteByte(ch)
			}
		}
		b.WriteByte('\n')
	}
	_, err = env.Stdout.Write([]byte(b.String()))
	return err
}

type holdGetdump struct {
	timeout
	AllowDirFD bool     `name:"allow-dirfd" help:"Permit directory and O_PATH fds among those PROG gets."`
	Socket     string   `arg:"" help:"The holder's socket."`
	Prog       []string `arg:"" passthrough:"" help:"The program and its arguments."`
}

// Run execs PROG with every held fd open and S6_FD#, S6_FD_i, S6_FDID_i and
// S6_FDLIMIT_i set, as s6-fdholder-getdump.
func (g *holdGetdump) Run(env *cli.Env) error {
	prog := cli.Operands(g.Prog)
	if len(prog) == 0 {
		return exitcode.ErrUsage
	}
	c, err := g.dial(g.Socket)
	if err != nil {
		return err
	}
	entries, err := c.GetDump()
	c.Close()
	if err != nil {
		return holdErr("get the dump of "+g.Socket, err)
	}
	if !g.AllowDirFD {
		for _, e := range entries {
			if what := fdrestore.DirFD(e.FD); what != "" {
				for _, e := range entries {
					_ = unix.Close(e.FD)
				}
				return exitcode.Errorf(exitcode.Refused,
					"refusing to pass %s (id %s) to %s: it can reach outside a container's root; use --allow-dirfd", what, e.ID, prog[0])
			}
		}
	}
	vars := []string{"S6_FD#=" + strconv.Itoa(len(entries))}
	for i, e := range entries {
		if err := fd.ClearCloexec(e.FD); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to pass fd %d on: %w", e.FD, err)
		}
		n := strconv.Itoa(i)
		vars = append(vars, "S6_FD_"+n+"="+strconv.Itoa(e.FD), "S6_FDID_"+n+"="+e.ID)
		if !e.Limit.IsZero() {
			vars = append(vars, "S6_FDLIMIT_"+n+"="+e.Limit.String())
		}
	}
	progEnv := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "S6_FD") })
	return proc.ExecEnv(prog, append(progEnv, vars...))
}

type holdSetdump struct {
	timeout
	Socket string `arg:"" help:"The holder's socket."`
}

// Run stores the fds S6_FD#, S6_FD_i, S6_FDID_i and S6_FDLIMIT_i name.
func (s *holdSetdump) Run(env *cli.Env) error {
	entries, err := dumpFromEnv()
	if err != nil {
		return err
	}
	c, err := s.dial(s.Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDump(entries); err != nil {
		return holdErr("set the dump of "+s.Socket, err)
	}
	return nil
}

// dumpFromEnv reads the S6_FD* variables getdump sets (exit 100 when
// S6_FD# or an S6_FD_i is missing or malformed).
func dumpFromEnv() ([]fdholder.Entry, error) {
	n, err := strconv.Atoi(os.Getenv("S6_FD#"))
	if err != nil || n < 0 {
		return nil, exitcode.Errorf(exitcode.Usage, "S6_FD# is missing or invalid")
	}
	entries := make([]fdholder.Entry, n)
	for i := range entries {
		k := strconv.Itoa(i)
		v, err := strconv.Atoi(os.Getenv("S6_FD_" + k))
		if err != nil || v < 0 {
			return nil, exitcode.Errorf(exitcode.Usage, "S6_FD_%d is missing or invalid", i)
		}
		id, ok := os.LookupEnv("S6_FDID_" + k)
		if !ok {
			return nil, exitcode.Errorf(exitcode.Usage, "S6_FDID_%d is missing", i)
		}
		e := fdholder.Entry{FD: v, ID: id}
		if l, ok := os.LookupEnv("S6_FDLIMIT_" + k); ok {
			if e.Limit, err = tai.Parse(l); err != nil {
				return nil, exitcode.Errorf(exitcode.Usage, "S6_FDLIMIT_%d is invalid: %q", i, l)
			}
		}
		entries[i] = e
	}
	return entries, nil
}

type holdTransferdump struct {
	timeout
	ToTimeout *int   `name:"to-timeout" placeholder:"MS" help:"Give up on the destination holder after MS milliseconds (default: -t's; 0: never)."`
	From      string `arg:"" help:"The socket of the holder to copy from."`
	To        string `arg:"" help:"The socket of the holder to copy to."`
}

// Run copies every held fd from From to To; exit 2 when To refuses (as
// s6's documentation says), 1 when From does.
func (t *holdTransferdump) Run(env *cli.Env) error {
	from, err := t.dial(t.From)
	if err != nil {
		return err
	}
	entries, err := from.GetDump()
	from.Close()
	if err != nil {
		return holdErr("get the dump of "+t.From, err)
	}
	defer func() {
		for _, e := range entries {
			_ = unix.Close(e.FD)
		}
	}()
	toTimeout := t.timeout
	if t.ToTimeout != nil {
		toTimeout.Timeout = *t.ToTimeout
	}
	to, err := toTimeout.dial(t.To)
	if err != nil {
		return err
	}
	defer to.Close()
	if err := to.SetDump(entries); err != nil {
		err = holdErr("set the dump of "+t.To, err)
		if exitcode.Of(err) == exitcode.Refused {
			err = exitcode.New(2, errors.Unwrap(err))
		}
		return err
	}
	return nil
}

type holdDaemon struct {
	Notify   bool     `short:"1" name:"notify" help:"Write a newline to fd 1 and close it once listening."`
	MaxConn  int      `short:"c" name:"max-conn" default:"16" placeholder:"N" help:"Serve at most N clients at once (1..256)."`
	MaxFDs   int      `short:"n" name:"max-fds" default:"1000" placeholder:"N" help:"Hold at most N fds."`
	Timeout  int      `short:"t" name:"timeout" default:"0" placeholder:"MS" help:"Drop a client idle MS milliseconds mid-request (0: never)."`
	LameDuck int      `short:"T" name:"lameduck" default:"0" placeholder:"MS" help:"After SIGTERM, exit after MS milliseconds even with clients (0: wait)."`
	Rule     []string `short:"a" name:"allow" sep:"none" placeholder:"WHO[,RIGHT...][:REGEX]" help:"Access rule (repeatable; several rules for one peer add up)."`
	RulesDir string   `short:"i" name:"rules-dir" placeholder:"DIR" help:"Read s6's access rules directory DIR at each connection instead of -a rules (no rule, no access: root included)."`
	RulesCDB string   `short:"x" name:"rules-cdb" placeholder:"FILE" help:"Read s6's access rules cdb FILE (s6-accessrules-cdb-from-fs) at each connection instead of -a rules."`
	Socket   string   `arg:"" help:"The socket to bind, or - for the listening socket on fd 0."`
}

// Run binds SOCKET (or takes fd 0), serves until SIGTERM and exits with
// s6's status: 1 if fds were held, | 2 if clients were left.
func (d *holdDaemon) Run(env *cli.Env) error {
	if d.Timeout < 0 || d.LameDuck < 0 || d.MaxConn < 0 || d.MaxFDs < 0 {
		return exitcode.ErrUsage
	}
	// s6 reads -c 0 and -n 0 as 1; the library's 0 is its default.
	d.MaxConn, d.MaxFDs = max(d.MaxConn, 1), max(d.MaxFDs, 1)
	cfg := fdholder.Config{
		MaxConn: d.MaxConn, MaxFDs: d.MaxFDs,
		Timeout:  time.Duration(d.Timeout) * time.Millisecond,
		LameDuck: time.Duration(d.LameDuck) * time.Millisecond,
	}
	switch {
	case (d.RulesDir != "" || d.RulesCDB != "") && len(d.Rule) > 0:
		return exitcode.Errorf(exitcode.Usage, "-i or -x and -a are exclusive: the rules directory or cdb is the whole policy")
	case d.RulesDir != "" && d.RulesCDB != "":
		return exitcode.Errorf(exitcode.Usage, "-i and -x are exclusive")
	case d.RulesCDB != "":
		if err := unix.Access(d.RulesCDB, unix.R_OK); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to open %s for reading: %w", d.RulesCDB, err)
		}
		cfg.RulesCDB = d.RulesCDB
		cfg.Warn = env.Warn
	case d.RulesDir != "":
		var st unix.Stat_t
		if err := unix.Stat(d.RulesDir, &st); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to read rules directory %s: %w", d.RulesDir, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return exitcode.Errorf(exitcode.Usage, "rules directory %s is not a directory", d.RulesDir)
		}
		cfg.RulesDir = d.RulesDir
		cfg.Warn = env.Warn
	}
	for _, r := range d.Rule {
		rule, err := fdholder.ParseRule(r)
		if err != nil {
			return exitcode.Errorf(exitcode.Usage, "%v", err)
		}
		cfg.Rules = append(cfg.Rules, rule)
	}
	// SIGTERM becomes its number on a pipe, the daemon's stop fd (Serve
	// reads signal numbers, as from lib/sig.SelfPipe).
	var stop [2]int
	if err := unix.Pipe2(stop[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to create the signal pipe: %w", err)
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGTERM)
	go func() {
		for range ch {
			_, _ = unix.Write(stop[1], []byte{byte(unix.SIGTERM)})
		}
	}()

	listen, path := 0, ""
	var st unix.Stat_t
	if d.Socket == "-" {
		if v, err := unix.GetsockoptInt(0, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v == 0 {
			return exitcode.Errorf(exitcode.Usage, "fd 0 is not a listening socket")
		}
	} else {
		var created bool
		var err error
		if listen, created, err = fdrestore.ListenUnix(d.Socket); err != nil {
			return err
		}
		if created && unix.Lstat(d.Socket, &st) == nil {
			path = d.Socket
			// Every uid may connect, as to s6-fdholder-daemon's socket: the
			// access rules decide, at accept.
			if err := unix.Chmod(path, 0o777); err != nil {
				env.Warnf("unable to make %s connectable by every uid: %v", path, err)
			}
		}
	}
	if d.Notify {
		if err := fd.Notify(1); err != nil {
			env.Warnf("unable to notify readiness on fd 1: %v", err)
		}
	}
	status, err := fdholder.Serve(listen, cfg, stop[0])
	if path != "" {
		// Remove the socket file only if it is still the one we bound.
		var now unix.Stat_t
		if unix.Lstat(path, &now) == nil && now.Ino == st.Ino && now.Dev == st.Dev {
			_ = unix.Unlink(path)
		}
	}
	if err != nil {
		return exitcode.New(exitcode.Sys, err)
	}
	return exitcode.Exit(status)
}
