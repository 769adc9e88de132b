package lockd

import (
	"errors"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/lockproto"
)

// conn is one client: a socket (rfd == wfd), or fds 0 and 1 in child mode.
type conn struct {
	rfd, wfd int
	pid, uid int
	in       []byte // bytes read, not yet a whole frame
	out      []byte // framed messages not yet written
	greeted  bool   // the banner was read and the hello sent
	refuse   syscall.Errno
	helloBy  time.Time
	frameBy  time.Time // a frame was started: the rest must come by then
	locks    map[uint32]*lockReq
	closed   bool
	dropping bool    // being dropped: its queued requests are skipped
	paused   bool    // not reading: too much output queued
	sock     bool    // wfd is a Unix socket: fds can be passed
	fds      []outFD // fds to attach to bytes of out (G frames)
}

// outFD is an fd to send with the byte at offset off of a conn's out.
type outFD struct{ off, fd int }

// lockList returns c's locks in id order, for deterministic output.
func (c *conn) lockList() []*lockReq {
	ls := make([]*lockReq, 0, len(c.locks))
	for _, l := range c.locks {
		ls = append(ls, l)
	}
	slices.SortFunc(ls, func(a, b *lockReq) int { return int(a.id) - int(b.id) })
	return ls
}

// childConn is the client of child mode: fds 0 and 1, non-blocking. Its
// credentials are the peer's on a socket, else the parent's.
func (d *daemon) childConn() (*conn, error) {
	c := &conn{rfd: 0, wfd: 1, pid: os.Getppid(), uid: os.Geteuid()}
	if cred, err := unix.GetsockoptUcred(0, unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
		c.pid, c.uid = int(cred.Pid), int(cred.Uid)
	}
	if dom, err := unix.GetsockoptInt(1, unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil && dom == unix.AF_UNIX {
		c.sock = true // under a UCSPI server: fd 1 is the accepted socket
	}
	for _, fd := range []int{0, 1} {
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, exitcode.Errorf(exitcode.Sys, "unable to make fd %d non-blocking: %w", fd, err)
		}
	}
	return c, nil
}

func (d *daemon) addConn(c *conn) {
	c.helloBy = time.Now().Add(helloWait)
	c.locks = map[uint32]*lockReq{}
	d.conns = append(d.conns, c)
	d.byFD[c.rfd] = c
	if err := d.watch(c.rfd, unix.EPOLLIN|unix.EPOLLRDHUP); err != nil {
		d.exit = err
	}
	if c.wfd != c.rfd {
		// Only to learn of EPOLLOUT/EPOLLERR when output is queued.
		d.byFD[c.wfd] = c
		_ = d.watch(c.wfd, 0)
	}
}

// accept takes every waiting connection; the admission check happens
// here, the answer after the client's banner.
func (d *daemon) accept() {
	for {
		s, _, err := unix.Accept4(d.listenFD, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
			return
		case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE):
			// Out of fds: pause accepting (the clients wait in the
			// backlog), keep serving the others; one warning per
			// episode.
			if d.backoff == 0 {
				d.env.Warnf("unable to accept a client: %w (pausing)", err)
				d.backoff = acceptMin
			} else {
				d.backoff = min(2*d.backoff, acceptMax)
			}
			d.acceptAt = time.Now().Add(d.backoff)
			d.rewatch(d.listenFD, 0)
			return
		case err != nil:
			d.fatalf("unable to accept: %w", err)
			return
		}
		if d.backoff != 0 {
			d.logf("accepting clients again")
			d.backoff = 0
		}
		c := &conn{rfd: s, wfd: s, pid: -1, uid: -1, sock: true}
		if cred, err := unix.GetsockoptUcred(s, unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			c.pid, c.uid = int(cred.Pid), int(cred.Uid)
		}
		if !d.admitted(c.uid) {
			c.refuse = syscall.EPERM
			d.logf("client pid %d uid %d: uid not admitted", c.pid, c.uid)
		} else {
			d.logf("client pid %d uid %d: connected", c.pid, c.uid)
		}
		d.addConn(c)
	}
}

// live counts the admitted clients that have said hello.
func (d *daemon) live() int {
	n := 0
	for _, o := range d.conns {
		if !o.closed && o.greeted && o.refuse == 0 {
			n++
		}
	}
	return n
}

func (d *daemon) admitted(uid int) bool {
	return uid == 0 || uid == os.Geteuid() || (uid >= 0 && d.uids[uint32(uid)])
}

// connEvent reads what the client sent and acts on every whole frame, or
// writes queued output.
func (d *daemon) connEvent(c *conn, ev uint32) {
	if ev&unix.EPOLLOUT != 0 || (c.wfd != c.rfd && ev&unix.EPOLLERR != 0) {
		d.flush(c)
		if c.closed {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 || c.paused {
		return
	}
	buf := make([]byte, 8192)
	for !c.closed && !c.paused {
		n, err := unix.Read(c.rfd, buf)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if n <= 0 || err != nil {
			d.gone(c)
			return
		}
		c.in = append(c.in, buf[:n]...)
		d.frames(c)
	}
	d.flush(c)
}

// frames handles the handshake, then every whole request frame in c.in.
func (d *daemon) frames(c *conn) {
	if !c.greeted {
		if len(c.in) < len(lockproto.ClientBanner) {
			return
		}
		banner := string(c.in[:len(lockproto.ClientBanner)])
		c.in = c.in[len(lockproto.ClientBanner):]
		c.greeted = true
		// The -c limit counts greeted clients: connections that never
		// say hello are dropped after helloWait and take no slot.
		if c.refuse == 0 && !d.child && d.live() > d.clients { // c counts itself
			c.refuse = syscall.EUSERS
			d.logf("client pid %d uid %d: too many clients", c.pid, c.uid)
		}
		status := c.refuse
		if banner != lockproto.ClientBanner {
			status = syscall.EPROTO
		}
		hello := lockproto.Hello{Status: status, MaxPayload: lockproto.MaxPayload, MaxName: lockproto.MaxName, MaxLocks: uint32(d.perCli)}
		c.out = append(c.out, hello.Marshal()...)
		if status != 0 {
			d.flush(c)
			if status == syscall.EPROTO && d.child {
				d.exit = exitcode.Errorf(exitcode.Usage, "protocol error: bad banner")
			}
			d.drop(c)
			return
		}
	}
	for !c.closed {
		p, n, err := lockproto.SplitFrame(c.in)
		if err == nil && n == 0 {
			break
		}
		var r lockproto.Request
		if err == nil {
			r, err = lockproto.ParseRequest(p)
		}
		if err != nil {
			d.protocolError(c, err)
			return
		}
		c.in = c.in[n:]
		d.request(c, r)
	}
	// A frame begun and not finished must be finished within frameWait:
	// a client that stops mid-frame must not hold its slot forever.
	switch {
	case len(c.in) == 0:
		c.frameBy = time.Time{}
	case c.frameBy.IsZero():
		c.frameBy = time.Now().Add(frameWait)
	}
	if len(c.out) > maxQueued && !c.paused {
		c.paused = true
	}
}

// protocolError answers id 0 EPROTO and drops the client (its locks go).
func (d *daemon) protocolError(c *conn, err error) {
	d.send(c, lockproto.Message{Type: lockproto.MsgReply, ID: 0, Errno: syscall.EPROTO})
	d.flush(c)
	d.logf("client pid %d uid %d: %v, dropped", c.pid, c.uid, err)
	if d.child {
		d.exit = exitcode.Errorf(exitcode.Usage, "protocol error: %w", err)
	}
	d.drop(c)
}

func (d *daemon) send(c *conn, m lockproto.Message) {
	if c.closed {
		return
	}
	c.out = lockproto.AppendFrame(c.out, m.Marshal())
}

func (d *daemon) reply(c *conn, id uint32, e syscall.Errno) {
	d.send(c, lockproto.Message{Type: lockproto.MsgReply, ID: id, Errno: e})
}

// flush writes queued output without blocking; the rest waits for
// EPOLLOUT. A dead reader ends the client (child mode: lockd).
func (d *daemon) flush(c *conn) {
	for len(c.out) > 0 && !c.closed {
		n, err := d.write(c)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			d.gone(c)
			return
		}
		c.out = c.out[n:]
		for i := range c.fds {
			c.fds[i].off -= n
		}
	}
	if c.closed {
		return
	}
	want := uint32(0)
	if len(c.out) > 0 {
		want = unix.EPOLLOUT
	}
	if c.wfd == c.rfd {
		in := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
		if c.paused && len(c.out) <= maxQueued {
			c.paused = false
		}
		if c.paused {
			in = 0
		}
		d.rewatch(c.rfd, in|want)
	} else {
		d.rewatch(c.wfd, want)
		if c.paused && len(c.out) <= maxQueued {
			c.paused = false
			d.rewatch(c.rfd, unix.EPOLLIN|unix.EPOLLRDHUP)
		} else if c.paused {
			d.rewatch(c.rfd, 0)
		}
	}
	if len(c.out) == 0 {
		c.out = nil
	}
}

// write writes the head of c.out: up to the next byte that carries an
// fd, or from that byte with the fd attached (SCM_RIGHTS), one fd per
// call so that each goes with its own G frame. A sent fd is lockd's
// duplicate, closed once the kernel has its copy.
func (d *daemon) write(c *conn) (int, error) {
	if len(c.fds) == 0 {
		return unix.Write(c.wfd, c.out)
	}
	if c.fds[0].off > 0 {
		return unix.Write(c.wfd, c.out[:c.fds[0].off])
	}
	end := len(c.out)
	if len(c.fds) > 1 {
		end = c.fds[1].off
	}
	n, err := unix.SendmsgN(c.wfd, c.out[:end], unix.UnixRights(c.fds[0].fd), nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
	if err == nil && n > 0 {
		unix.Close(c.fds[0].fd)
		c.fds = c.fds[1:]
	}
	return n, err
}

// gone handles a client that hung up (EOF, EPIPE): child mode ends.
func (d *daemon) gone(c *conn) {
	d.logf("client pid %d uid %d: disconnected", c.pid, c.uid)
	if d.child {
		d.ending = true
	}
	d.drop(c)
}

// drop ends a client: its helpers are killed and reaped, so its locks are
// free, then its connection is closed.
func (d *daemon) drop(c *conn) {
	if c.closed {
		return
	}
	c.dropping = true
	ls := c.lockList()
	d.endHelpers(ls)
	for _, l := range ls {
		d.forget(l)
		d.logf("client pid %d uid %d: released %s (disconnect)", c.pid, c.uid, lockproto.Quote(l.name))
	}
	d.closeConn(c)
}

func (d *daemon) closeConn(c *conn) {
	if c.closed {
		return
	}
	c.closed = true
	for _, f := range c.fds {
		unix.Close(f.fd)
	}
	c.fds = nil
	d.unwatch(c.rfd)
	if c.wfd != c.rfd {
		d.unwatch(c.wfd)
	}
	if !d.child {
		unix.Close(c.rfd)
	}
	d.conns = slices.DeleteFunc(d.conns, func(o *conn) bool { return o == c })
}

// request handles one request of a greeted client, in order.
func (d *daemon) request(c *conn, r lockproto.Request) {
	switch r.Op {
	case lockproto.OpList:
		d.list(c, r.ID)
	case lockproto.OpRelease:
		l, ok := c.locks[r.ID]
		if !ok {
			d.reply(c, r.ID, syscall.ENOENT)
			return
		}
		if helperGone(l) {
			// Its f or x is decided already: that first, then ENOENT.
			d.drainHelper(l)
			if l.done {
				d.reply(c, r.ID, syscall.ENOENT)
				return
			}
		}
		d.endHelper(l)
		d.forget(l)
		d.reply(c, r.ID, 0)
		d.logf("client pid %d uid %d: released %s", c.pid, c.uid, lockproto.Quote(l.name))
	case lockproto.OpAcquire:
		d.acquire(c, r)
	}
}

func (d *daemon) acquire(c *conn, r lockproto.Request) {
	switch {
	case r.ID == 0 || r.Flags&^(lockproto.FlagExclusive|lockproto.FlagPassFD) != 0:
		d.reply(c, r.ID, syscall.EINVAL)
		return
	case c.locks[r.ID] != nil:
		d.reply(c, r.ID, syscall.EEXIST)
		return
	}
	if e := lockproto.CheckName(r.Name); e != 0 {
		d.reply(c, r.ID, e)
		return
	}
	if len(c.locks) >= d.perCli || d.nlocks >= d.total {
		d.reply(c, r.ID, syscall.ENOLCK)
		return
	}
	fd, e := d.openLock(r.Name, r.Mode())
	if e != 0 {
		d.reply(c, r.ID, e)
		return
	}
	l := &lockReq{c: c, id: r.ID, name: r.Name, mode: r.Mode(), try: r.Timeout == 0, since: time.Now(),
		pass: r.Flags&lockproto.FlagPassFD != 0, fd: fd, sock: -1}
	// A free lock is taken at once, on lockd's own open file: no process.
	err := lock.TryLockFD(fd, l.kind())
	switch {
	case err == nil:
		d.register(l)
		d.reply(c, r.ID, 0)
		d.grant(l)
		return
	case !errors.Is(err, lock.ErrBusy) || l.try:
		// Busy in try mode, or the kernel refused the lock (ENOLCK):
		// accepted, then failed, as if a helper had tried.
		unix.Close(fd)
		e := syscall.ENOLCK
		if errors.Is(err, lock.ErrBusy) {
			e = syscall.EBUSY
		}
		d.reply(c, r.ID, 0)
		d.send(c, lockproto.Message{Type: lockproto.MsgFailed, ID: r.ID, Errno: e})
		return
	}
	if r.Timeout != lockproto.Forever {
		l.deadline = l.since.Add(time.Duration(r.Timeout) * time.Millisecond)
	}
	// One helper per contended name: a request behind another one for
	// the same name waits in lockd's queue, with no process, and is
	// tried again when the one ahead of it ends.
	if len(d.waiting[l.name]) == 0 {
		if err := d.startWaiter(l); err != nil {
			if l.fd >= 0 {
				unix.Close(l.fd)
			}
			d.env.Warnf("unable to spawn a lock helper: %w", err)
			d.reply(c, r.ID, syscall.EAGAIN)
			return
		}
	}
	d.waiting[l.name] = append(d.waiting[l.name], l)
	d.register(l)
	d.reply(c, r.ID, 0)
}

// startWaiter starts the helper that waits for l's lock: gotools' helper
// locks lockd's open file; an external one (s6lockd-helper) opens the
// file and holds the lock itself.
func (d *daemon) startWaiter(l *lockReq) error {
	if d.external && l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
	return d.startHelper(l)
}

// dequeue takes l out of its name's wait queue, and reports whether it
// was at the head (the request whose helper waits).
func (d *daemon) dequeue(l *lockReq) bool {
	q := d.waiting[l.name]
	i := slices.Index(q, l)
	if i < 0 {
		return false
	}
	q = slices.Delete(q, i, i+1)
	if len(q) == 0 {
		delete(d.waiting, l.name)
	} else {
		d.waiting[l.name] = q
	}
	return i == 0
}

// advance moves name's wait queue on once its head has ended: each
// request in turn tries the lock (compatible shared requests are granted
// together); the first that finds it busy gets the helper.
func (d *daemon) advance(name string) {
	if d.ending || d.exit != nil {
		return
	}
	for len(d.waiting[name]) > 0 {
		l := d.waiting[name][0]
		if l.pid > 0 {
			return // it has its helper already
		}
		if l.c.closed || l.c.dropping {
			d.dequeue(l)
			continue
		}
		if l.fd < 0 {
			fd, e := d.openLock(l.name, l.mode)
			if e != 0 {
				d.dequeue(l)
				d.finish(l, lockproto.MsgFailed, syscall.EIO, 0)
				d.dirty(l.c)
				continue
			}
			l.fd = fd
		}
		err := lock.TryLockFD(l.fd, l.kind())
		switch {
		case err == nil:
			d.dequeue(l)
			d.grant(l)
			d.dirty(l.c)
			continue
		case !errors.Is(err, lock.ErrBusy):
			d.dequeue(l)
			d.finish(l, lockproto.MsgFailed, syscall.ENOLCK, 0)
			d.dirty(l.c)
			continue
		}
		if err := d.startWaiter(l); err != nil {
			d.env.Warnf("unable to spawn a lock helper: %w", err)
			d.dequeue(l)
			d.finish(l, lockproto.MsgFailed, syscall.EAGAIN, 0)
			d.dirty(l.c)
			continue
		}
		return
	}
}

// dirty marks c's queued output to be flushed at the end of the loop's
// round: messages for other clients than the one being served.
func (d *daemon) dirty(c *conn) {
	if !slices.Contains(d.toFlush, c) {
		d.toFlush = append(d.toFlush, c)
	}
}

func (d *daemon) register(l *lockReq) {
	l.c.locks[l.id] = l
	d.nlocks++
}

// grant marks l held and tells its client: with the locked file itself
// (G and the fd) when the client asked for it and lockd holds the lock
// on its own open file, else g.
func (d *daemon) grant(l *lockReq) {
	l.held = true
	l.grantedAt = time.Now()
	l.deadline = time.Time{}
	if d.dequeue(l) {
		defer d.advance(l.name) // compatible requests behind it, or the next waiter's helper
	}
	c := l.c
	if l.pass && l.fd >= 0 && c.sock && !c.closed {
		if dup, err := unix.FcntlInt(uintptr(l.fd), unix.F_DUPFD_CLOEXEC, 0); err == nil {
			c.fds = append(c.fds, outFD{off: len(c.out), fd: dup})
			d.send(c, lockproto.Message{Type: lockproto.MsgGrantedFD, ID: l.id})
			return
		}
	}
	d.send(c, lockproto.Message{Type: lockproto.MsgGranted, ID: l.id})
}

// finish sends the final f or x of l and forgets it.
func (d *daemon) finish(l *lockReq, typ byte, e syscall.Errno, hstatus uint16) {
	d.send(l.c, lockproto.Message{Type: typ, ID: l.id, Errno: e, HStatus: hstatus})
	l.done = true
	d.forget(l)
}

// forget removes l from its client and the counts and closes lockd's
// open file; its helper is gone, so the lock is free (unless the client
// holds the file it was given).
func (d *daemon) forget(l *lockReq) {
	if l.c.locks[l.id] == l {
		delete(l.c.locks, l.id)
		d.nlocks--
	}
	if l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
	if d.dequeue(l) {
		d.advance(l.name)
	}
}

// list answers a list request: one e per lock of every client, then r 0.
func (d *daemon) list(c *conn, id uint32) {
	now := time.Now()
	for _, o := range d.conns {
		for _, l := range o.lockList() {
			e := lockproto.Entry{ID: l.id, PID: o.pid, UID: o.uid, HelperPID: l.pid, Name: l.name, Mode: l.mode, Held: l.held}
			if l.held {
				e.Age = now.Sub(l.grantedAt)
			} else {
				e.Age = now.Sub(l.since)
				e.Left = -1
				if !l.deadline.IsZero() {
					e.Left = max(l.deadline.Sub(now), 0)
				}
			}
			d.send(c, lockproto.Message{Type: lockproto.MsgEntry, ID: id, Entry: e})
		}
	}
	d.reply(c, id, 0)
}
