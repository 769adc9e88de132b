package lockd

import (
	"errors"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/lockproto"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sys"
)

// lockReq is one acquire id of a client: the lock file lockd holds open
// (and locked, once held), and while the lock is contended the helper
// that waits for it.
//
// lockd takes a free lock itself, on its own open file description
// (fd): no process. A contended lock is waited for by a lockd-helper
// child in "d" mode, which locks that same open file description (its
// fd 3) in F_OFD_SETLKW, says "!" and exits; killing it cancels the wait.
// The lock then belongs to lockd's fd whatever happens to the helper.
// With an external helper ($GOTOOLS_LOCK_HELPER, s6lockd-helper), a
// contended lock is held by the helper process itself, as upstream
// designed it (fd is -1 then).
type lockReq struct {
	c         *conn
	id        uint32
	name      string
	mode      lockproto.Mode
	try       bool
	since     time.Time // when the request was read
	deadline  time.Time // zero: none
	grantedAt time.Time
	held      bool
	done      bool // its f or x was sent
	pass      bool // the client asked for the locked fd (FlagPassFD)
	pid       int  // the helper; 0: none
	sock      int  // lockd's end of the helper's socketpair; -1 once closed
	fd        int  // the lock file, opened by lockd; -1: none (external helper)
}

// spawner spawns helpers from one goroutine locked to an OS thread that
// lives as long as lockd: PR_SET_PDEATHSIG follows the thread that forked,
// so a helper dies with lockd, not with some thread the runtime retires.
type spawner struct {
	req chan spawnReq
}

type spawnReq struct {
	argv  []string
	attr  proc.Attr
	reply chan spawnRes
}

type spawnRes struct {
	pid int
	err error
}

func newSpawner() *spawner {
	s := &spawner{req: make(chan spawnReq)}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as lockd
		for r := range s.req {
			pid, err := proc.Spawn(r.argv, r.attr)
			r.reply <- spawnRes{pid, err}
		}
	}()
	return s
}

func (s *spawner) spawn(argv []string, attr proc.Attr) (int, error) {
	reply := make(chan spawnRes)
	s.req <- spawnReq{argv, attr, reply}
	res := <-reply
	return res.pid, res.err
}

// startHelper runs "lockd-helper MODE NAME" in lockdir with its fds 0 and
// 1 on one end of a socketpair, an empty environment, and SIGKILL as its
// parent-death signal.
func (d *daemon) startHelper(l *lockReq) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	child := os.NewFile(uintptr(fds[1]), "helper socket")
	mode := "r"
	if l.mode == lockproto.Exclusive {
		mode = "w"
	}
	files := []*os.File{child, child, os.Stderr}
	if l.fd >= 0 {
		// "d": lock the open file on fd 3, lockd's own, say "!", exit.
		mode += "d"
		dup, err := unix.FcntlInt(uintptr(l.fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			child.Close()
			unix.Close(fds[0])
			return err
		}
		files = append(files, os.NewFile(uintptr(dup), l.name))
	}
	pid, err := d.spawner.spawn([]string{"lockd-helper", mode, l.name}, proc.Attr{
		Files:     files,
		Env:       []string{},
		Dir:       d.lockdir,
		Path:      lock.HelperPath(),
		Pdeathsig: unix.SIGKILL,
	})
	for _, f := range files[1:] {
		if f != os.Stderr && f != child {
			f.Close()
		}
	}
	child.Close()
	if err != nil {
		unix.Close(fds[0])
		return err
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		reapHelper(pid)
		unix.Close(fds[0])
		return err
	}
	l.pid, l.sock = pid, fds[0]
	d.byFD[l.sock] = l
	if err := d.watch(l.sock, unix.EPOLLIN|unix.EPOLLRDHUP); err != nil {
		d.endHelper(l)
		return err
	}
	return nil
}

// helperEvent reads what the helper said: "!" grants a pending lock; EOF
// means it died, which fails a pending lock and loses a held one.
func (d *daemon) helperEvent(l *lockReq) {
	d.drainHelper(l)
	d.flush(l.c)
}

// drainHelper reads the helper's socket without blocking and acts on it.
// It reports whether something was decided (granted, failed or lost).
func (d *daemon) drainHelper(l *lockReq) bool {
	if l.sock < 0 {
		return false
	}
	var b [1]byte
	for {
		n, err := unix.Read(l.sock, b[:])
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return false
		case n == 1 && b[0] == '!' && !l.held && l.fd >= 0:
			// The helper locked lockd's own open file and exits: reap
			// it, then check that the lock is ours (a lock call on an
			// open file that holds it succeeds at once).
			d.endHelper(l)
			if err := lock.TryLockFD(l.fd, l.kind()); err != nil {
				d.finish(l, lockproto.MsgFailed, syscall.EPROTO, lockproto.KilledByLockd)
				return true
			}
			d.grant(l)
			return true
		case n == 1 && b[0] == '!' && !l.held:
			d.grant(l)
			return true
		case n == 1:
			// Garbage (or a second "!"): the helper is not one we trust.
			typ := byte(lockproto.MsgFailed)
			if l.held {
				typ = lockproto.MsgLost
			}
			d.endHelper(l)
			d.finish(l, typ, syscall.EPROTO, lockproto.KilledByLockd)
			return true
		default:
			// EOF or an error: the helper died. Reap it before telling
			// the client: a reaped helper has released its lock.
			d.closeHelperSock(l)
			ws := reapHelper(l.pid)
			hs := uint16(exitcode.Approx(ws))
			if l.held {
				d.finish(l, lockproto.MsgLost, syscall.EOWNERDEAD, hs)
				d.logf("client pid %d uid %d: lost %s (helper status %d)", l.c.pid, l.c.uid, lockproto.Quote(l.name), hs)
				return true
			}
			e := syscall.EPIPE
			switch {
			case ws.Exited() && ws.ExitStatus() == 1:
				e = syscall.ENOLCK
			case ws.Exited() && ws.ExitStatus() == 111:
				e = syscall.EIO
			}
			d.finish(l, lockproto.MsgFailed, e, hs)
			return true
		}
	}
}

// helperGone reports whether l's helper has hung up with nothing left
// unread: it died, and its f or x is decided. An unread "!" is not looked
// at: a release cancels a pending lock without granting it first.
func helperGone(l *lockReq) bool {
	if l.sock < 0 {
		return false
	}
	var b [1]byte
	for {
		n, _, err := unix.Recvfrom(l.sock, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n == 0
	}
}

func (d *daemon) closeHelperSock(l *lockReq) {
	if l.sock >= 0 {
		d.unwatch(l.sock)
		unix.Close(l.sock)
		l.sock = -1
	}
}

// endHelper ends l's helper: its socket closed, SIGKILL, reaped. When it
// returns the lock is free.
func (d *daemon) endHelper(l *lockReq) {
	if l.pid <= 0 {
		return
	}
	d.closeHelperSock(l)
	unix.Kill(l.pid, unix.SIGKILL)
	reapHelper(l.pid)
	l.pid = 0
}

// endHelpers ends many helpers at once: every socket closed and SIGKILL
// sent first, then every helper reaped, so that their teardowns overlap
// (a client with 1000 locks disconnecting, lockd shutting down).
func (d *daemon) endHelpers(ls []*lockReq) {
	for _, l := range ls {
		if l.pid > 0 {
			d.closeHelperSock(l)
			unix.Kill(l.pid, unix.SIGKILL)
		}
	}
	for _, l := range ls {
		if l.pid > 0 {
			reapHelper(l.pid)
			l.pid = 0
		}
	}
}

func reapHelper(pid int) unix.WaitStatus {
	var ws unix.WaitStatus
	if pid > 0 {
		_, _ = sys.Wait4(pid, &ws, 0)
	}
	return ws
}

// openLock opens the lock file (creating it 0600: nobody but lockd's uid
// may open it and lock it behind lockd's back), beneath lockdir and
// through no symlink, and checks it is a regular file, so that a bad name
// is refused precisely in the acquire's reply. The fd is blocking and
// close-on-exec: it is the open file description that carries the lock,
// and what a client given it (FlagPassFD) hands to its program.
func (d *daemon) openLock(name string, m lockproto.Mode) (int, syscall.Errno) {
	flags := unix.O_RDONLY
	if m == lockproto.Exclusive {
		flags = unix.O_WRONLY
	}
	how := &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CREAT | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY),
		Mode:    0o600,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	var err error
	for {
		fd, err = unix.Openat2(d.dirFD, name, how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		var e syscall.Errno
		if errors.As(err, &e) {
			if e == unix.EXDEV {
				e = syscall.ELOOP // a path escaping lockdir: only through a symlink here
			}
			return -1, e
		}
		return -1, syscall.EIO
	}
	var st unix.Stat_t
	e := syscall.Errno(0)
	switch {
	case unix.Fstat(fd, &st) != nil:
		e = syscall.EIO
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		e = syscall.EISDIR
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		e = syscall.EINVAL
	}
	if e == 0 {
		// O_NONBLOCK only kept open(2) from blocking; the open file
		// goes to helpers and clients' programs, which expect a
		// blocking fd as setlock gives them.
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
			_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
			if err != nil {
				e = syscall.EIO
			}
		}
	}
	if e != 0 {
		unix.Close(fd)
		return -1, e
	}
	return fd, 0
}

// kind is l's lock kind for lib/lock.
func (l *lockReq) kind() lock.Kind {
	if l.mode == lockproto.Exclusive {
		return lock.Exclusive
	}
	return lock.Shared
}
