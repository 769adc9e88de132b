// Package setlock is the setlock applet: it takes a lock on a file, then
// executes a program that holds it (spec/locks.md, "setlock").
//
// Synopsis
//
//	setlock [ -r | -w ] [ -n | -N ] [ -t ms ] [ -d fd ] [ -s socket ] lockfile prog...
//
// -w (the default) asks for an exclusive lock, -r for a shared one; -N (the
// default) waits for it, -n fails at once if it is busy and wins over -t;
// -t ms gives up after ms milliseconds (0: never); -d fd puts the fd that
// carries the lock at fd in prog; -s socket asks the lockd listening on
// socket, and lockfile is then a lock name in lockd's directory. The last
// of -r/-w and of -n/-N wins.
//
// Without -t, setlock opens lockfile as s6 does, locks it (fcntl(2)
// F_OFD_SETLKW, or F_OFD_SETLK with -n) and executes prog with the locked
// fd inherited. With -t it tries once; if the lock is busy it runs a
// lockd-helper child, which waits for the lock and can be killed when the
// time is up. prog then inherits a pipe to the helper instead of the
// file. With -s, setlock connects to lockd, asks for the lock (lockd
// measures -t itself) with the locked file passed back (FlagPassFD), and
// executes prog with that file as the lock fd; the connection closes at
// the exec, and lockd forgets the lock. The lock then lives as long as
// prog's copies of the file, whatever happens to lockd. (A lock held by
// an external helper cannot be passed: prog then holds the connection,
// and must not write to it.) In every case the lock is held until every
// copy of the fd is closed, and prog must not assume which kind of fd it
// holds.
//
// Exit codes
//
//	1    the lock is busy (-n), the time ran out (-t), the helper failed to lock, or lockd refused the lock (-s)
//	100  usage error
//	111  system failure (the lock file could not be opened, lockd could not be reached, ...)
//	126  prog could not be executed
//	127  prog was not found
//
// # Differences from s6
//
// --help prints help; long options. Locks are OFD locks, which conflict
// with s6's POSIX locks. With -t, s6-setlock (2.12 and later) waits with
// alarm(2); setlock waits through a helper process as s6 2.11 did, which
// becomes a child of prog, and takes a free lock without any helper. The
// helper is this binary, or $GOTOOLS_LOCK_HELPER. -s SOCKET (a lock from
// gotools' lockd) is new.
package setlock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/lockproto"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Applet is setlock's registry entry.
var Applet = cli.Applet{
	Name:    "setlock",
	Aliases: []string{"s6-setlock"},
	Summary: "take a lock on a file, then run a program that holds it",
	Usage:   "[ -r | -w ] [ -n | -N ] [ -t ms ] [ -d fd ] [ -s socket ] lockfile prog...",
	Help: `Locks lockfile (-w exclusive, the default; -r shared), waiting for it (-N,
the default) or not (-n), then executes prog, which holds the lock until
it and everything that inherited the lock fd have closed it. -t MS gives up
after MS milliseconds (0: never; -n wins over -t); -d FD puts the lock on
fd FD in prog. The last of -r/-w and of -n/-N wins.

-s SOCKET asks the lockd listening on SOCKET instead: lockfile is then a
lock name in lockd's directory. lockd passes the locked file itself and
prog holds it as its lock fd, as without -s: the lock lives as long as
prog and whatever inherits that fd, even if lockd dies or restarts.

Exit codes: 1 busy (-n), timed out (-t), the lock helper failed, or lockd
refused the lock (-s); 100 usage; 111 system failure (lockd unreachable
included); 126 prog not executable; 127 prog not found.

Differences from s6-setlock: long options; OFD locks (they conflict with
s6's POSIX locks); -t waits through a lockd-helper child (this binary, or
$GOTOOLS_LOCK_HELPER), as s6 2.11 did, and that helper becomes a child of
prog; -s SOCKET (ask gotools' lockd) is new.`,
	New:  func() cli.Command { return new(command) },
	Fast: fast,
}

// fast runs setlock's common command lines without kong (issue 16: setlock
// -s through lockd within 1.5x s6-setlock's time, of which building kong's
// model by reflection was a large part): options given one per word (-r,
// -w, -n, -N, and -t MS, -d FD, -s SOCKET with the value in the next
// word), an optional "--", then lockfile and prog. Anything else (a bundle
// such as -rn, an attached value, a long option, --help, a bad number, a
// missing operand) is kong's to parse, so that its messages stay the same.
func fast(args []string, env *cli.Env) (bool, error) {
	c, ok := parseFast(args)
	if !ok {
		return false, nil
	}
	return true, c.Run(env)
}

// parseFast is [fast]'s parser: the command kong would have filled, and
// whether the command line is one fast takes (TestFastMatchesKong).
func parseFast(args []string) (*command, bool) {
	c := new(command)
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" || len(a) != 2 || a[0] != '-' {
			break
		}
		switch a[1] {
		case 'r': // as kong sets them; Run's scan reads their order
			c.Shared = true
			continue
		case 'w':
			c.Exclusive = true
			continue
		case 'n':
			c.NoWait = true
			continue
		case 'N':
			c.Wait = true
			continue
		case 't', 'd', 's':
		default:
			return nil, false
		}
		if i+1 == len(args) || args[i+1] == "" || args[i+1][0] == '-' {
			return nil, false
		}
		i++
		if a[1] == 's' {
			c.Socket = args[i]
			continue
		}
		v, err := cli.ParseDecimal(args[i])
		if err != nil {
			return nil, false
		}
		if a[1] == 't' {
			c.Timeout = cli.Millis(v)
		} else {
			c.FD = cli.Uint(v)
		}
	}
	ops := args[i:]
	if len(ops) > 0 && ops[0] == "--" {
		ops = ops[1:]
	}
	if len(ops) < 2 || ops[0] == "" || ops[0][0] == '-' {
		return nil, false
	}
	c.Args = args[i:]
	return c, true
}

type command struct {
	Shared    bool       `short:"r" name:"shared" help:"Take a shared lock."`
	Exclusive bool       `short:"w" name:"exclusive" help:"Take an exclusive lock (the default)."`
	NoWait    bool       `short:"n" name:"nb" help:"Fail at once if the lock is busy."`
	Wait      bool       `short:"N" name:"block" help:"Wait for the lock (the default)."`
	Timeout   cli.Millis `short:"t" name:"timeout" placeholder:"MS" help:"Give up after MS milliseconds (0: never)."`
	FD        cli.Uint   `short:"d" name:"fd" placeholder:"FD" help:"Put the lock on fd FD in prog."`
	Socket    string     `short:"s" name:"socket" placeholder:"SOCKET" help:"Ask the lockd listening on SOCKET; lockfile is a lock name."`

	Args []string `arg:"" passthrough:"partial" name:"lockfile prog" help:"The lock file, then the program and its arguments."`
}

func (c *command) Run(env *cli.Env) error {
	start := time.Now()
	kind, wait, moved := scan(env.Args)
	args := cli.Operands(c.Args)
	if len(args) < 2 {
		return exitcode.ErrUsage
	}
	path, prog := args[0], args[1:]
	var deadline time.Time
	if wait && c.Timeout > 0 {
		deadline = start.Add(time.Duration(c.Timeout) * time.Millisecond)
	}
	var lfd int
	var err error
	if c.Socket != "" {
		lfd, err = fromLockd(c.Socket, path, kind, wait, deadline)
	} else {
		lfd, err = take(path, kind, wait, deadline)
	}
	if err != nil {
		return err
	}
	if moved {
		if err := moveTo(lfd, int(c.FD)); err != nil {
			unix.Close(lfd)
			return exitcode.New(exitcode.Sys, err)
		}
	} else if err := fd.ClearCloexec(lfd); err != nil {
		unix.Close(lfd)
		return exitcode.New(exitcode.Sys, err)
	}
	return proc.Exec(prog)
}

// take returns an fd that carries the lock: the locked file itself, or
// the pipe to a helper that holds it (-t on a busy lock).
func take(path string, kind lock.Kind, wait bool, deadline time.Time) (int, error) {
	open := lock.OpenShared
	if kind == lock.Exclusive {
		open = lock.OpenExclusive
	}
	f, err := open(path)
	if err != nil {
		return -1, exitcode.New(exitcode.Sys, err)
	}
	switch {
	case !wait:
		err = lock.TryLock(f, kind)
	case deadline.IsZero():
		err = lock.Lock(f, kind)
	default:
		err = lock.TryLock(f, kind)
		if errors.Is(err, lock.ErrBusy) {
			f.Close()
			return viaHelper(path, kind, deadline)
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, lock.ErrBusy) || !wait {
			return -1, exitcode.New(exitcode.Refused, fmt.Errorf("unable to lock %s: %w", path, err))
		}
		return -1, exitcode.New(exitcode.Sys, fmt.Errorf("unable to lock %s: %w", path, err))
	}
	return detach(f)
}

func viaHelper(path string, kind lock.Kind, deadline time.Time) (int, error) {
	f, err := lock.ViaHelper(path, kind, deadline)
	var he *lock.HelperExit
	switch {
	case err == nil:
		return detach(f)
	case errors.Is(err, lock.ErrTimeout):
		return -1, exitcode.New(exitcode.Refused, fmt.Errorf("lock %s: timed out", path))
	case errors.As(err, &he) && he.Status.Exited() && he.Status.ExitStatus() == 1:
		return -1, exitcode.Exit(exitcode.Refused) // the helper said why
	default:
		return -1, exitcode.New(exitcode.Sys, fmt.Errorf("unable to lock %s: %w", path, err))
	}
}

// fromLockd asks the lockd listening on socket for the lock name and
// returns the connection, which then carries the lock: a blocking,
// close-on-exec fd. The exchange is synchronous, on the raw fd, so that
// nothing but the kernel holds it when prog is executed.
func fromLockd(socket, name string, kind lock.Kind, wait bool, deadline time.Time) (int, error) {
	timeout := uint32(lockproto.Forever)
	switch {
	case !wait:
		timeout = 0
	case !deadline.IsZero():
		// lockd measures the timeout from when it reads the request; the
		// time since setlock started is already spent.
		left := time.Until(deadline)
		timeout = uint32(max(1, min((left+time.Millisecond-1)/time.Millisecond, lockproto.Forever-1)))
	}
	if why := lockproto.NameProblem(name); why != "" {
		// lockd would refuse it with EINVAL: say what is wrong instead.
		return -1, exitcode.New(exitcode.Refused, fmt.Errorf("unable to lock %s: the lock name %s", name, why))
	}
	mode := lockproto.Shared
	if kind == lock.Exclusive {
		mode = lockproto.Exclusive
	}
	s, err := dial(socket)
	if err != nil {
		return -1, exitcode.New(exitcode.Sys, fmt.Errorf("unable to connect to %s: %w", socket, err))
	}
	lfd, err := askLockd(s, lockproto.Request{Op: lockproto.OpAcquire, ID: 1, Flags: byte(mode) | lockproto.FlagPassFD, Timeout: timeout, Name: name})
	var refused lockRefusal
	switch {
	case err == nil && lfd >= 0:
		// prog holds the locked file itself, as in direct mode: the lock
		// lives as long as prog's copies, whatever happens to lockd.
		// lockd forgets it (and closes its own copy) when this
		// connection ends.
		unix.Close(s)
		return lfd, nil
	case err == nil:
		// Held by lockd's external helper: the connection carries it.
		return s, nil
	case errors.As(err, &refused) && refused.errno == unix.ETIMEDOUT:
		err = exitcode.New(exitcode.Refused, fmt.Errorf("lock %s: timed out", name))
	case errors.As(err, &refused):
		err = exitcode.New(exitcode.Refused, fmt.Errorf("unable to lock %s: %w", name, refused.errno))
	default:
		err = exitcode.New(exitcode.Sys, fmt.Errorf("unable to talk to lockd at %s: %w", socket, err))
	}
	unix.Close(s)
	return -1, err
}

// handshakeWait bounds lockd's answer to setlock's banner.
var handshakeWait = 10 * time.Second

// lockRefusal is lockd's answer that the lock was not granted: a rejected
// request (r) or a failed acquisition (f).
type lockRefusal struct{ errno unix.Errno }

func (r lockRefusal) Error() string { return r.errno.Error() }

// dial connects a blocking, close-on-exec Unix stream socket to socket (a
// path, or "@name" for an abstract socket).
func dial(socket string) (int, error) {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	err = unix.Connect(s, &unix.SockaddrUnix{Name: socket})
	if errors.Is(err, unix.EINTR) {
		// The connection goes on in the background: wait for its outcome.
		pfd := []unix.PollFd{{Fd: int32(s), Events: unix.POLLOUT}}
		if _, err = sys.Poll(pfd, -1); err == nil {
			var soerr int
			if soerr, err = unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && soerr != 0 {
				err = unix.Errno(soerr)
			}
		}
	}
	if err != nil {
		unix.Close(s)
		return -1, sys.Errno(err)
	}
	return s, nil
}

// askLockd shakes hands on s, sends req and waits for its outcome: the
// locked file lockd passed with its grant (close-on-exec), or -1 with a
// nil error if it granted without one; a [lockRefusal] if lockd said no,
// another error if the exchange failed.
func askLockd(s int, req lockproto.Request) (int, error) {
	if len(req.Name) > lockproto.MaxName {
		return -1, lockRefusal{unix.ENAMETOOLONG} // too long to frame
	}
	r := &fdReader{fd: s}
	defer r.closeFDs()
	lfd, err := r.ask(req)
	return lfd, err
}

func (r *fdReader) ask(req lockproto.Request) (int, error) {
	s := r.fd
	// A peer that accepts and never answers must not hang setlock: the
	// handshake gets handshakeWait; the wait for the lock is lockd's.
	tv := unix.NsecToTimeval(handshakeWait.Nanoseconds())
	if err := unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return -1, err
	}
	// The banner and the request go in one write: lockd reads frames
	// right after the banner, and a refused client's request is never
	// looked at. One round trip instead of two.
	out := lockproto.AppendFrame([]byte(lockproto.ClientBanner), req.Marshal())
	if _, err := sys.Write(s, out); err != nil {
		return -1, sys.Errno(err)
	}
	var hb [lockproto.HelloSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return -1, eofReset(err)
	}
	h, err := lockproto.ParseHello(hb[:])
	if err != nil {
		return -1, unix.EPROTO
	}
	if h.Status != 0 {
		return -1, h.Status
	}
	if err := unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{}); err != nil {
		return -1, err
	}
	buf := make([]byte, lockproto.MaxPayload)
	accepted := false
	for {
		p, err := lockproto.ReadFrame(r, buf)
		if err != nil {
			return -1, eofReset(err)
		}
		m, err := lockproto.ParseServerMessage(p)
		if err != nil || m.ID != req.ID {
			return -1, unix.EPROTO // also lockd's own report of one: r with id 0
		}
		switch {
		case m.Type == lockproto.MsgReply && !accepted:
			if m.Errno != 0 {
				return -1, lockRefusal{m.Errno}
			}
			accepted = true
		case m.Type == lockproto.MsgGranted && accepted:
			return -1, nil
		case m.Type == lockproto.MsgGrantedFD && accepted && len(r.fds) > 0:
			lfd := r.fds[0]
			r.fds = r.fds[1:]
			return lfd, nil
		case m.Type == lockproto.MsgFailed && accepted:
			return -1, lockRefusal{m.Errno}
		default:
			return -1, unix.EPROTO
		}
	}
}

// fdReader reads a raw blocking socket, keeping the fds that come with
// the bytes (SCM_RIGHTS, close-on-exec): lockd attaches the locked file
// to its G frame.
type fdReader struct {
	fd  int
	fds []int
	oob []byte
}

func (r *fdReader) Read(p []byte) (int, error) {
	if r.oob == nil {
		r.oob = make([]byte, unix.CmsgSpace(4*4))
	}
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(r.fd, p, r.oob, unix.MSG_CMSG_CLOEXEC)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if errors.Is(err, unix.EAGAIN) {
		return 0, unix.ETIMEDOUT // SO_RCVTIMEO ran out
	}
	if err != nil {
		return 0, sys.Errno(err)
	}
	if oobn > 0 {
		if cms, err := unix.ParseSocketControlMessage(r.oob[:oobn]); err == nil {
			for _, cm := range cms {
				if fds, err := unix.ParseUnixRights(&cm); err == nil {
					r.fds = append(r.fds, fds...)
				}
			}
		}
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// closeFDs closes the fds received and not taken.
func (r *fdReader) closeFDs() {
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = nil
}

// eofReset reports lockd closing the connection as ECONNRESET.
func eofReset(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return unix.ECONNRESET
	}
	if errors.Is(err, lockproto.ErrProto) {
		return unix.EPROTO
	}
	return err
}

// detach takes the fd out of f without closing it; it stays blocking and
// close-on-exec.
func detach(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return -1, exitcode.New(exitcode.Sys, err)
	}
	nfd := -1
	cerr := rc.Control(func(u uintptr) {
		nfd, err = unix.FcntlInt(u, unix.F_DUPFD_CLOEXEC, 0)
	})
	f.Close() // the lock is on the open file, which nfd still holds
	if cerr != nil {
		err = cerr
	}
	if err != nil {
		return -1, exitcode.New(exitcode.Sys, fmt.Errorf("unable to duplicate the lock fd: %w", err))
	}
	return nfd, nil
}

// moveTo makes the lock fd be fd to, inheritable, and closes lfd.
func moveTo(lfd, to int) error {
	if lfd == to {
		return fd.ClearCloexec(lfd)
	}
	if err := unix.Dup3(lfd, to, 0); err != nil {
		return fmt.Errorf("unable to move the lock to fd %d: %w", to, err)
	}
	unix.Close(lfd)
	return nil
}

// scan returns the last of -r/-w, whether the last of -n/-N was -N and
// whether -d was given, reading the arguments as getopt would. kong has
// checked the syntax.
func scan(args []string) (kind lock.Kind, wait, moved bool) {
	kind, wait = lock.Exclusive, true
	valued := func(name string) bool {
		switch name {
		case "t", "timeout", "d", "fd", "s", "socket":
			return true
		}
		return false
	}
	_ = cli.Options(args, valued, func(name, _ string) error {
		switch name {
		case "r", "shared":
			kind = lock.Shared
		case "w", "exclusive":
			kind = lock.Exclusive
		case "n", "nb":
			wait = false
		case "N", "block":
			wait = true
		case "d", "fd":
			moved = true
		}
		return nil
	})
	return kind, wait, moved
}
