package lockd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/lockproto"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Timing and sizes of spec/locks.md.
const (
	helloWait = 2 * time.Second // for the client's banner
	frameWait = 2 * time.Second // for the rest of a frame the client started
	maxQueued = 64 << 10        // output queued per client before lockd stops reading it
	// After accept(2) fails with EMFILE or ENFILE, lockd stops
	// accepting for a while (the listening socket stays readable, so
	// retrying at once would spin), doubling the pause up to acceptMax.
	acceptMin = 50 * time.Millisecond
	acceptMax = time.Second
)

// daemon is lockd's state: one epoll loop over the listening socket, the
// clients, the helpers' sockets and the signal pipe.
type daemon struct {
	env      *cli.Env
	lockdir  string // absolute
	dirFD    int    // O_PATH|O_DIRECTORY
	socket   string
	mode     uint32
	uids     map[uint32]bool
	perCli   int
	total    int
	clients  int
	verbose  bool
	external bool // GOTOOLS_LOCK_HELPER names another helper: no try mode

	ep       int
	sigR     int
	listenFD int
	sockDev  uint64 // the bound socket file, removed at exit if still ours
	sockIno  uint64
	child    bool // child mode: one client on fds 0 and 1

	byFD   map[int]any    // *conn (by its read fd) or *lockReq (by its helper socket)
	events map[int]uint32 // what epoll reports for each watched fd
	conns  []*conn
	nlocks int
	// waiting holds, per lock name, the pending requests in arrival
	// order; only the head has a helper.
	waiting map[string][]*lockReq
	toFlush []*conn // clients with messages from another's event
	spawner *spawner
	exit    error // set when the loop must end
	ending  bool

	sharedDir bool // --shared-lockdir: others may traverse lockdir

	// Out of fds (EMFILE, ENFILE): accept again at acceptAt, after a
	// pause of backoff; warned once per episode.
	acceptAt time.Time
	backoff  time.Duration
}

func externalHelper() bool { return os.Getenv(lock.HelperEnv) != "" }

// logf prints "lockd: info: ..." with -v.
func (d *daemon) logf(format string, args ...any) {
	if d.verbose {
		fmt.Fprintf(d.env.Stderr, "%s: info: %s\n", d.env.Name, cli.Message(fmt.Errorf(format, args...)))
	}
}

func (d *daemon) run() error {
	// An idle lockd must not wake up: no time-forced GC (the runtime
	// forces one every 2 minutes otherwise); a soft limit bounds the heap
	// instead of a percentage, as in supervise.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(64 << 20)
	if err := fd.EnsureStdio(); err != nil {
		return err
	}
	abs, err := filepath.Abs(d.lockdir)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to resolve %s: %w", d.lockdir, err)
	}
	d.lockdir = abs
	if d.dirFD, err = sys.Open(abs, unix.O_PATH|unix.O_DIRECTORY, 0); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to open %s: %w", abs, sys.Errno(err))
	}
	if d.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to create an epoll fd: %w", err)
	}
	d.listenFD = -1
	if d.socket != "" {
		if err := d.checkLockdir(); err != nil {
			return err
		}
		if err := d.listen(); err != nil {
			return err
		}
	}
	if d.sigR, err = sig.SelfPipe(); err != nil {
		d.removeSocket()
		return exitcode.New(exitcode.Sys, err)
	}
	d.spawner = newSpawner()
	if err := d.watch(d.sigR, unix.EPOLLIN); err != nil {
		d.removeSocket()
		return err
	}
	if d.socket == "" {
		d.child = true
		c, err := d.childConn()
		if err != nil {
			return err
		}
		d.addConn(c)
	} else if err := d.watch(d.listenFD, unix.EPOLLIN); err != nil {
		d.removeSocket()
		return err
	}
	d.loop()
	d.shutdown()
	return d.exit
}

// checkLockdir refuses, in server mode, a lock directory that other
// users could write to or that is not lockd's: lockd creates files there
// on behalf of other uids.
func (d *daemon) checkLockdir() error {
	var st unix.Stat_t
	if err := unix.Fstat(d.dirFD, &st); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to stat %s: %w", d.lockdir, err)
	}
	if st.Uid != uint32(os.Geteuid()) {
		return exitcode.Errorf(exitcode.Usage, "lockdir %s is not owned by lockd's user", d.lockdir)
	}
	if st.Mode&0o022 != 0 {
		return exitcode.Errorf(exitcode.Usage, "lockdir %s is writable by other users", d.lockdir)
	}
	if st.Mode&0o011 != 0 && !d.sharedDir {
		// A user who can reach a lock file can open it and lock it
		// behind lockd's back (issue 20): only with --shared-lockdir.
		return exitcode.Errorf(exitcode.Usage, "lockdir %s can be traversed by other users (mode %04o): make it 0700 or use --shared-lockdir", d.lockdir, st.Mode&0o7777)
	}
	return nil
}

// listen binds the server socket, replacing a stale one.
func (d *daemon) listen() error {
	abstract := d.socket[0] == '@'
	if !abstract {
		var st unix.Stat_t
		err := unix.Lstat(d.socket, &st)
		switch {
		case err == nil && st.Mode&unix.S_IFMT != unix.S_IFSOCK:
			return exitcode.Errorf(exitcode.Usage, "%s exists and is not a socket", d.socket)
		case err == nil:
			if alive(d.socket) {
				return exitcode.Errorf(exitcode.Sys, "unable to bind %s: %w", d.socket, unix.EADDRINUSE)
			}
			if err := unix.Unlink(d.socket); err != nil && !errors.Is(err, unix.ENOENT) {
				return exitcode.Errorf(exitcode.Sys, "unable to remove the stale socket %s: %w", d.socket, err)
			}
		case !errors.Is(err, unix.ENOENT):
			return exitcode.Errorf(exitcode.Sys, "unable to stat %s: %w", d.socket, err)
		}
	}
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to create a socket: %w", err)
	}
	name := d.socket
	if abstract {
		name = "\x00" + name[1:]
	}
	old := unix.Umask(0o777 &^ int(d.mode))
	err = unix.Bind(s, &unix.SockaddrUnix{Name: name})
	unix.Umask(old)
	if err != nil {
		unix.Close(s)
		return exitcode.Errorf(exitcode.Sys, "unable to bind %s: %w", d.socket, err)
	}
	if !abstract {
		var st unix.Stat_t
		if err := unix.Chmod(d.socket, d.mode); err == nil && unix.Stat(d.socket, &st) == nil {
			d.sockDev, d.sockIno = st.Dev, st.Ino
		}
	}
	// A deep backlog: a burst of clients waits there rather than
	// failing to connect (the kernel caps it at net.core.somaxconn).
	if err := unix.Listen(s, 4096); err != nil {
		unix.Close(s)
		d.removeSocket()
		return exitcode.Errorf(exitcode.Sys, "unable to listen on %s: %w", d.socket, err)
	}
	d.listenFD = s
	return nil
}

// alive reports whether something accepts connections on the socket.
func alive(path string) bool {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(s)
	return unix.Connect(s, &unix.SockaddrUnix{Name: path}) == nil
}

// removeSocket unlinks the socket file if it is still the one bound.
func (d *daemon) removeSocket() {
	if d.socket == "" || d.socket[0] == '@' || d.sockIno == 0 {
		return
	}
	var st unix.Stat_t
	if unix.Lstat(d.socket, &st) == nil && st.Dev == d.sockDev && st.Ino == d.sockIno {
		_ = unix.Unlink(d.socket)
	}
	d.sockIno = 0
}

func (d *daemon) watch(fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(d.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to add fd %d to epoll: %w", fd, err)
	}
	d.events[fd] = events
	return nil
}

// rewatch changes the events epoll reports for fd, with no system call
// when they are the ones registered already.
func (d *daemon) rewatch(fd int, events uint32) {
	if cur, ok := d.events[fd]; ok && cur == events {
		return
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if unix.EpollCtl(d.ep, unix.EPOLL_CTL_MOD, fd, &ev) == nil {
		d.events[fd] = events
	}
}

func (d *daemon) unwatch(fd int) {
	_ = unix.EpollCtl(d.ep, unix.EPOLL_CTL_DEL, fd, nil)
	delete(d.byFD, fd)
	delete(d.events, fd)
}

// loop runs until a signal, a fatal error, or (child mode) the client's end.
func (d *daemon) loop() {
	events := make([]unix.EpollEvent, 64)
	for d.exit == nil && !d.ending {
		n, err := unix.EpollWait(d.ep, events, d.timeout())
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			d.exit = exitcode.Errorf(exitcode.Sys, "unable to wait on epoll: %w", err)
			return
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			switch {
			case fd == d.sigR:
				d.readSignals()
			case fd == d.listenFD:
				d.accept()
			default:
				switch o := d.byFD[fd].(type) {
				case *conn:
					d.connEvent(o, ev.Events)
				case *lockReq:
					d.helperEvent(o)
				}
			}
			if d.exit != nil || d.ending {
				return
			}
		}
		d.expire()
		for len(d.toFlush) > 0 {
			c := d.toFlush[0]
			d.toFlush = d.toFlush[1:]
			d.flush(c)
		}
	}
}

// timeout is the epoll_wait timeout: until the earliest deadline (pending
// locks, handshakes), or forever when there is none.
func (d *daemon) timeout() int {
	first := d.acceptAt
	for _, c := range d.conns {
		if !c.greeted && (first.IsZero() || c.helloBy.Before(first)) {
			first = c.helloBy
		}
		if by := c.frameBy; !by.IsZero() && !c.paused && (first.IsZero() || by.Before(first)) {
			first = by
		}
		for _, l := range c.locks {
			if !l.held && !l.deadline.IsZero() && (first.IsZero() || l.deadline.Before(first)) {
				first = l.deadline
			}
		}
	}
	if first.IsZero() {
		return -1
	}
	ms := time.Until(first).Milliseconds() + 1
	return int(max(ms, 0))
}

// expire acts on the deadlines that passed: a silent client is dropped,
// a pending lock times out (unless its helper said "!" in time).
func (d *daemon) expire() {
	now := time.Now()
	if !d.acceptAt.IsZero() && !now.Before(d.acceptAt) && d.listenFD >= 0 {
		d.acceptAt = time.Time{}
		d.rewatch(d.listenFD, unix.EPOLLIN)
	}
	for _, c := range append([]*conn(nil), d.conns...) {
		if c.closed {
			continue
		}
		if !c.frameBy.IsZero() && !c.paused && !now.Before(c.frameBy) {
			if d.child {
				d.exit = exitcode.Errorf(exitcode.Usage, "protocol error: a frame left unfinished for %v", frameWait)
				return
			}
			d.logf("client pid %d uid %d: frame unfinished for %v, dropped", c.pid, c.uid, frameWait)
			d.drop(c)
			continue
		}
		if !c.greeted && !now.Before(c.helloBy) {
			if d.child {
				d.exit = exitcode.Errorf(exitcode.Sys, "unable to sync with client")
				return
			}
			d.logf("client pid %d uid %d: no hello in 2 s, dropped", c.pid, c.uid)
			d.drop(c)
			continue
		}
		sent := false
		for _, l := range c.locks {
			if l.held || l.deadline.IsZero() || now.Before(l.deadline) {
				continue
			}
			sent = true
			if d.drainHelper(l) {
				continue // "!" arrived first: granted, or failed
			}
			hs := uint16(lockproto.KilledByLockd)
			if l.pid == 0 {
				hs = 0 // queued behind another request: no helper
			}
			d.endHelper(l)
			d.finish(l, lockproto.MsgFailed, syscall.ETIMEDOUT, hs)
		}
		if sent {
			d.flush(c)
		}
	}
}

func (d *daemon) readSignals() {
	buf := make([]byte, 64)
	for {
		n, err := unix.Read(d.sigR, buf)
		if n <= 0 || err != nil {
			return
		}
		for _, b := range buf[:n] {
			switch unix.Signal(b) {
			case unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT:
				d.ending = true
			}
		}
	}
}

// shutdown tells every client its locks are gone (best effort), kills and
// reaps every helper, and removes the socket.
func (d *daemon) shutdown() {
	if d.listenFD >= 0 {
		unix.Close(d.listenFD)
		d.listenFD = -1
	}
	var all []*lockReq
	for _, c := range d.conns {
		all = append(all, c.lockList()...)
	}
	d.endHelpers(all)
	for _, c := range slices.Clone(d.conns) { // closeConn removes c from d.conns
		if c.closed {
			continue
		}
		for _, l := range c.lockList() {
			typ := lockproto.MsgFailed
			if l.held {
				typ = lockproto.MsgLost
			}
			d.finish(l, byte(typ), syscall.ESHUTDOWN, lockproto.KilledByLockd)
		}
		d.flush(c)
		d.closeConn(c)
	}
	d.removeSocket()
}

// fatalf ends lockd with a system failure.
func (d *daemon) fatalf(format string, args ...any) {
	if d.exit == nil {
		d.exit = exitcode.New(exitcode.Sys, fmt.Errorf(format, args...))
	}
}
