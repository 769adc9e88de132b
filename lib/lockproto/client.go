//go:build linux

package lockproto

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Error is a failure that lockd reported, or the loss of the connection
// that carried a request: errors.Is(err, syscall.EBUSY) tells a busy lock.
type Error struct {
	Op   string // "handshake", "acquire", "hold" (a held lock was lost), "release", "list"
	Name string // the lock name, if the operation has one
	Err  syscall.Errno
}

func (e *Error) Error() string {
	if e.Name == "" {
		return "lockd " + e.Op + ": " + e.Err.Error()
	}
	return "lockd " + e.Op + " " + Quote(e.Name) + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Limits are what lockd announced in its hello.
type Limits struct {
	MaxPayload int // largest frame payload
	MaxName    int // longest lock name
	MaxLocks   int // locks (pending and held) this client may have
}

// Client is a connection to lockd. It is safe for concurrent use: one
// reader goroutine routes lockd's messages to the requests by id.
type Client struct {
	rw     io.ReadWriteCloser
	limits Limits
	reaped chan error // Spawn: how lockd ended, once reaped

	wmu sync.Mutex // serialises writes, so that reply queues follow the wire

	mu     sync.Mutex
	ids    map[uint32]*slot // every id in use: acquires and lists
	nextID uint32
	err    syscall.Errno // set once the connection is gone
	closed bool          // Close was called

	readerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error
}

// handler gets the errno of one reply, or the connection's errno with
// broken set when the connection failed first. It runs with Client.mu
// held, exactly once.
type handler func(errno syscall.Errno, broken bool)

// slot is the client's side of one id: the replies it waits for, in
// request order, and the lock or list the id belongs to.
type slot struct {
	replies []handler
	lock    *Lock    // an acquire id
	entries *[]Entry // a list id
	over    bool     // no message but replies comes for the id any more
}

// Lock is one acquisition: pending, then held, then free.
type Lock struct {
	c    *Client
	id   uint32 // set before the acquire is written, under c.mu
	name string

	done chan struct{} // granted or failed
	lost chan struct{} // a held lock was lost

	// Guarded by c.mu.
	state    lockState
	err      error
	granted  bool          // a g came: Done was closed for a grant
	broken   bool          // the connection failed while the lock was pending or held
	released chan struct{} // closed once a Release got its answer
	relErr   error
}

type lockState uint8

const (
	pending lockState = iota
	held
	ended // failed, lost, cancelled or released
)

// Dial connects to the lockd listening on socket (a path, or "@name" for
// an abstract socket) and shakes hands; ctx bounds both.
func Dial(ctx context.Context, socket string) (*Client, error) {
	conn, err := dialContext(ctx, socket)
	if err != nil {
		return nil, err
	}
	return NewClient(ctx, conn)
}

// Spawn starts this binary as `lockd lockdir` in child mode, with one end
// of a socket pair as its fds 0 and 1 and this process's stderr as its
// stderr, and returns a client on the other end. Close then also waits
// for that lockd, which exits once the connection is closed.
func Spawn(ctx context.Context, lockdir string) (*Client, error) {
	return spawn(ctx, proc.Self(), lockdir)
}

func spawn(ctx context.Context, exe, lockdir string) (*Client, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("unable to create a socket pair: %w", err)
	}
	// Our end non-blocking, so that os.NewFile hands it to the runtime
	// poller and the client's deadlines work.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("unable to create a socket pair: %w", err)
	}
	conn := os.NewFile(uintptr(fds[0]), "lockd")
	theirs := os.NewFile(uintptr(fds[1]), "lockd client")
	pid, err := proc.Spawn([]string{"lockd", lockdir}, proc.Attr{
		Path:  exe,
		Files: []*os.File{theirs, theirs, os.Stderr},
	})
	theirs.Close()
	if err != nil {
		conn.Close()
		return nil, err
	}
	reaped := make(chan error, 1)
	go func() { reaped <- reap(pid) }()
	c, err := NewClient(ctx, conn) // closes conn on failure: lockd sees EOF and exits
	if err != nil {
		if rerr := <-reaped; rerr != nil {
			return nil, fmt.Errorf("%w (%v)", err, rerr)
		}
		return nil, err
	}
	c.reaped = reaped
	return c, nil
}

// reap waits for the spawned lockd and says how it ended, nil for exit 0.
func reap(pid int) error {
	var ws unix.WaitStatus
	if _, err := sys.Wait4(pid, &ws, 0); err != nil {
		return fmt.Errorf("unable to reap lockd: %w", err)
	}
	switch {
	case ws.Exited() && ws.ExitStatus() == 0:
		return nil
	case ws.Signaled():
		return fmt.Errorf("lockd (pid %d) was killed by %s", pid, unix.SignalName(ws.Signal()))
	}
	return fmt.Errorf("lockd (pid %d) exited %d", pid, ws.ExitStatus())
}

type deadliner interface{ SetDeadline(time.Time) error }

// NewClient shakes hands with lockd on rw (any duplex stream whose Close
// unblocks a Read: lockd's socket, or a socket to its fds 0 and 1) and
// returns a client that owns rw. The handshake gives up when ctx ends
// (through rw's SetDeadline if it has one, else by closing rw). On failure
// rw is closed; a refusal is an [*Error] with lockd's status (EPERM,
// EUSERS, EPROTO), a peer that is not a gotools-lockd v1 server gives
// EPROTO, and an end of ctx gives ctx.Err().
func NewClient(ctx context.Context, rw io.ReadWriteCloser) (*Client, error) {
	if err := ctx.Err(); err != nil {
		rw.Close()
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() {
		if d, ok := rw.(deadliner); ok && d.SetDeadline(time.Unix(1, 0)) == nil {
			return
		}
		rw.Close()
	})
	h, err := handshake(rw)
	if !stop() {
		rw.Close()
		return nil, ctx.Err()
	}
	if d, ok := rw.(deadliner); ok {
		_ = d.SetDeadline(time.Time{})
	}
	if err != nil {
		rw.Close()
		return nil, err
	}
	c := &Client{
		rw: rw,
		limits: Limits{
			MaxPayload: int(h.MaxPayload),
			MaxName:    int(h.MaxName),
			MaxLocks:   int(h.MaxLocks),
		},
		ids:        make(map[uint32]*slot),
		readerDone: make(chan struct{}),
	}
	go c.read()
	return c, nil
}

func handshake(rw io.ReadWriter) (Hello, error) {
	if _, err := io.WriteString(rw, ClientBanner); err != nil {
		return Hello{}, &Error{Op: "handshake", Err: connErrno(err)}
	}
	var b [HelloSize]byte
	if _, err := io.ReadFull(rw, b[:]); err != nil {
		return Hello{}, &Error{Op: "handshake", Err: connErrno(err)}
	}
	h, err := ParseHello(b[:])
	if err != nil {
		return Hello{}, &Error{Op: "handshake", Err: syscall.EPROTO}
	}
	if h.Status != 0 {
		return Hello{}, &Error{Op: "handshake", Err: h.Status}
	}
	return h, nil
}

// connErrno turns an error of the connection into the errno that calls
// and locks fail with: the system's if there is one, EPROTO for a
// protocol error, ECONNRESET for an end of file.
func connErrno(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return errno
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.ErrClosedPipe):
		return syscall.ECONNRESET
	case errors.Is(err, os.ErrDeadlineExceeded):
		return syscall.ETIMEDOUT
	case errors.Is(err, os.ErrClosed):
		return syscall.ECONNABORTED
	}
	return syscall.EIO
}

// Limits returns what lockd announced in its hello.
func (c *Client) Limits() Limits { return c.limits }

// Close disconnects: lockd releases every lock of this client, pending or
// held, and whatever still waits fails with ECONNABORTED. A client from
// [Spawn] also waits for its lockd to exit, and reports an exit other
// than 0. Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		broken := c.err != 0
		c.mu.Unlock()
		if err := c.rw.Close(); err != nil && !broken {
			c.closeErr = err // else rw may have been closed already
		}
		<-c.readerDone
		if c.reaped != nil {
			if err := <-c.reaped; err != nil && c.closeErr == nil {
				c.closeErr = err
			}
		}
	})
	return c.closeErr
}

// read routes every message from lockd until the connection fails.
func (c *Client) read() {
	defer close(c.readerDone)
	br := bufio.NewReaderSize(c.rw, MaxPayload+4)
	buf := make([]byte, MaxPayload)
	for {
		p, err := ReadFrame(br, buf)
		if err != nil {
			c.fail(err)
			return
		}
		m, err := ParseServerMessage(p)
		if err == nil {
			err = c.route(m)
		}
		if err != nil {
			c.fail(err)
			c.rw.Close() // a protocol error: lockd is not to be trusted further
			return
		}
	}
}

// route hands m to its id's slot. A message for an id that waits for
// nothing is a protocol error.
func (c *Client) route(m Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.Type == MsgReply && m.ID == 0 {
		return fmt.Errorf("lockd saw a protocol error (%w)", ErrProto)
	}
	s := c.ids[m.ID]
	if s == nil {
		return protoErr("%c message for id %d, which waits for nothing", m.Type, m.ID)
	}
	switch m.Type {
	case MsgReply:
		if len(s.replies) == 0 {
			return protoErr("reply for id %d, which waits for none", m.ID)
		}
		h := s.replies[0]
		s.replies = s.replies[1:]
		h(m.Errno, false)
	case MsgGranted, MsgGrantedFD, MsgFailed, MsgLost:
		// The client never asks for the locked file (FlagPassFD), so a G
		// carries nothing it reads: the kernel closes an fd sent to a
		// reader without a control buffer. It is a grant all the same.
		l := s.lock
		switch {
		case l == nil:
			return protoErr("%c message for list id %d", m.Type, m.ID)
		case (m.Type == MsgGranted || m.Type == MsgGrantedFD) && l.state == pending:
			l.state = held
			l.granted = true
			close(l.done)
		case m.Type == MsgFailed && l.state == pending:
			l.end(&Error{Op: "acquire", Name: l.name, Err: m.Errno})
			close(l.done)
		case m.Type == MsgLost && l.state == held:
			l.end(&Error{Op: "hold", Name: l.name, Err: m.Errno})
			close(l.lost)
		default:
			return protoErr("%c message for id %d in the wrong state", m.Type, m.ID)
		}
	case MsgEntry:
		if s.entries == nil {
			return protoErr("entry for acquire id %d", m.ID)
		}
		*s.entries = append(*s.entries, m.Entry)
	}
	if len(s.replies) == 0 && (s.over || s.lock != nil && s.lock.state == ended) {
		delete(c.ids, m.ID) // the id may serve again
	}
	return nil
}

// end marks l as over, err saying why (nil for a release). c.mu is held.
func (l *Lock) end(err error) {
	l.state = ended
	l.err = err
}

// fail ends the connection: every waiting reply, pending lock and held
// lock fails with the connection's errno.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != 0 {
		return
	}
	errno := connErrno(err)
	if c.closed {
		errno = syscall.ECONNABORTED
	}
	c.err = errno
	for id, s := range c.ids {
		for _, h := range s.replies {
			h(errno, true)
		}
		s.replies = nil
		if l := s.lock; l != nil {
			switch l.state {
			case pending:
				l.end(&Error{Op: "acquire", Name: l.name, Err: errno})
				l.broken = true
				close(l.done)
			case held:
				l.end(&Error{Op: "hold", Name: l.name, Err: errno})
				l.broken = true
				close(l.lost)
			}
		}
		delete(c.ids, id)
	}
}

// send writes req after queueing h for its reply (see enqueue).
func (c *Client) send(s *slot, req Request, h handler) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	err := c.enqueue(s, &req, h)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.write(req)
}

// enqueue queues h for the reply to req; a req without an ID gets a new
// one, given to s (and s.lock). Holding c.wmu from here to the write keeps
// each id's queue in the order of the requests on the wire. h is called
// exactly once, also when the connection failed. c.wmu and c.mu are held.
func (c *Client) enqueue(s *slot, req *Request, h handler) error {
	if c.err != 0 {
		h(c.err, true)
		return c.err
	}
	if req.ID == 0 {
		for {
			c.nextID++
			if c.nextID != 0 && c.ids[c.nextID] == nil {
				break
			}
		}
		req.ID = c.nextID
		c.ids[req.ID] = s
		if s.lock != nil {
			s.lock.id = req.ID
		}
	}
	s.replies = append(s.replies, h)
	return nil
}

// write writes req; c.wmu is held. A failure fails the connection, which
// calls the queued handlers.
func (c *Client) write(req Request) error {
	if _, err := c.rw.Write(AppendFrame(nil, req.Marshal())); err != nil {
		c.fail(err)
		c.rw.Close()
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.err
	}
	return nil
}

// Start sends an acquire and returns at once. Done is closed when the
// lock is granted, or when the acquisition ended without it: Err then
// says why (an [*Error] with EBUSY, ETIMEDOUT, lockd's refusal of the
// name, ...). timeout 0 tries once; a negative timeout waits forever;
// others are rounded up to a millisecond.
func (c *Client) Start(name string, m Mode, timeout time.Duration) (*Lock, error) {
	ms := uint32(Forever)
	if timeout >= 0 {
		ms = uint32(min((timeout+time.Millisecond-1)/time.Millisecond, Forever-1))
	}
	return c.start(name, m, ms)
}

func (c *Client) start(name string, m Mode, ms uint32) (*Lock, error) {
	if len(name) > MaxName {
		return nil, &Error{Op: "acquire", Name: name, Err: syscall.ENAMETOOLONG}
	}
	l := &Lock{c: c, name: name, done: make(chan struct{}), lost: make(chan struct{})}
	accept := func(errno syscall.Errno, broken bool) {
		if errno != 0 && !broken && l.state == pending {
			l.end(&Error{Op: "acquire", Name: name, Err: errno})
			close(l.done)
		}
	}
	req := Request{Op: OpAcquire, Flags: byte(m & Exclusive), Timeout: ms, Name: name}
	if err := c.send(&slot{lock: l}, req, accept); err != nil {
		return nil, opErr("acquire", name, err)
	}
	return l, nil
}

// opErr makes an [*Error] of a connection errno.
func opErr(op, name string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return &Error{Op: op, Name: name, Err: errno}
	}
	return err
}

// Acquire waits until the lock is granted. If ctx has a deadline, lockd
// gives up then (the timeout sent is the time left, rounded up to a
// millisecond); when ctx ends first, Acquire cancels the request, waits
// until lockd confirmed it (the lock is then not held) and returns
// ctx.Err(). Other failures and refusals are an [*Error].
func (c *Client) Acquire(ctx context.Context, name string, m Mode) (*Lock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ms := uint32(Forever)
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		left := time.Until(dl)
		ms = uint32(max(1, min((left+time.Millisecond-1)/time.Millisecond, Forever-1)))
	}
	l, err := c.start(name, m, ms)
	if err != nil {
		return nil, err
	}
	select {
	case <-l.done:
	case <-ctx.Done():
		_ = l.Release()
		return nil, ctx.Err()
	}
	if err := l.acquired(); err != nil {
		// lockd's timeout and ctx's deadline are one moment seen from two
		// clocks, lockd's later: report it as ctx does.
		if errors.Is(err, syscall.ETIMEDOUT) && hasDeadline && time.Until(dl) < time.Second {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, err
	}
	return l, nil
}

// TryAcquire takes the lock if it is free, without waiting: a busy lock
// is an [*Error] with EBUSY.
func (c *Client) TryAcquire(name string, m Mode) (*Lock, error) {
	l, err := c.start(name, m, 0)
	if err != nil {
		return nil, err
	}
	<-l.done
	if err := l.acquired(); err != nil {
		return nil, err
	}
	return l, nil
}

// acquired returns nil if l was granted (it may have been lost since),
// else why not. Done is closed.
func (l *Lock) acquired() error {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if l.granted {
		return nil
	}
	return l.err
}

// List returns lockd's table: every pending and held lock of every
// client, as lockd saw it when it read the request.
func (c *Client) List(ctx context.Context) ([]Entry, error) {
	var entries []Entry
	s := &slot{entries: &entries}
	reply := make(chan error, 1)
	h := func(errno syscall.Errno, broken bool) {
		s.over = true
		if errno != 0 {
			reply <- &Error{Op: "list", Err: errno}
			return
		}
		reply <- nil
	}
	if err := c.send(s, Request{Op: OpList}, h); err != nil {
		return nil, opErr("list", "", err)
	}
	select {
	case err := <-reply:
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return entries, nil
	case <-ctx.Done():
		return nil, ctx.Err() // the reply still comes, and frees the id
	}
}

// Done is closed when the lock is granted, or when the acquisition ended
// without it (Err says why).
func (l *Lock) Done() <-chan struct{} { return l.done }

// Lost is closed when a held lock is no longer held: its helper died,
// lockd shut down, or the connection failed; Err says why. Release does
// not close it.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Err says why the lock was not granted or was lost; nil while it is
// pending or held, and after a Release.
func (l *Lock) Err() error {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	return l.err
}

// Release frees a held lock, or cancels a pending acquisition (Done is
// then closed and Err is ECANCELED), and returns once lockd confirmed it:
// the lock is then free. Releasing a lock that already failed, was lost
// or was released does nothing and returns nil. If the connection failed,
// Release returns its error: lockd then releases the client's locks by
// itself, but nothing confirms when.
func (l *Lock) Release() error {
	c := l.c
	c.wmu.Lock()
	c.mu.Lock()
	switch {
	case l.released != nil:
		ch := l.released
		c.mu.Unlock()
		c.wmu.Unlock()
		<-ch
		c.mu.Lock()
		defer c.mu.Unlock()
		return l.relErr
	case l.state == ended:
		var err error
		if l.broken {
			err = &Error{Op: "release", Name: l.name, Err: c.err}
		}
		c.mu.Unlock()
		c.wmu.Unlock()
		return err
	}
	ch := make(chan struct{})
	l.released = ch
	h := func(errno syscall.Errno, broken bool) {
		switch {
		case broken:
			l.relErr = &Error{Op: "release", Name: l.name, Err: errno}
		case errno == 0 || errno == syscall.ENOENT:
			// 0: freed or cancelled; ENOENT: an f or x came first and
			// ended the lock.
			switch l.state {
			case pending:
				l.end(&Error{Op: "acquire", Name: l.name, Err: syscall.ECANCELED})
				close(l.done)
			case held:
				l.end(nil)
			}
		default:
			l.relErr = &Error{Op: "release", Name: l.name, Err: errno}
		}
		close(ch)
	}
	// The lock is pending or held, so its id is in c.ids and c.err is 0.
	req := Request{Op: OpRelease, ID: l.id}
	err := c.enqueue(c.ids[l.id], &req, h)
	c.mu.Unlock()
	if err == nil {
		_ = c.write(req) // a failure calls h
	}
	c.wmu.Unlock()
	<-ch
	c.mu.Lock()
	defer c.mu.Unlock()
	return l.relErr
}
