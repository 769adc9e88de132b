//go:build linux

package lockproto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain makes the test binary a fake child-mode lockd when it is run
// as "lockd" (by Spawn, which runs this binary under that name).
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "lockd" {
		os.Exit(fakeChildLockd(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeChildLockd speaks the protocol on fds 0 and 1 as lockd's child mode
// would: it grants every acquire and release, and lists one entry that
// says who it is (PID: its parent; HelperPID: itself; Name: its lockdir
// and whether fds 0 and 1 are one socket). Its lockdir picks the fate:
// "refuse" answers the hello with EPERM and exits 1; "exit3" exits 3 at
// EOF; anything else exits 0 at EOF.
func fakeChildLockd(args []string) int {
	if len(args) != 1 {
		return 100
	}
	dir := args[0]
	var st0, st1 unix.Stat_t
	same := "differ"
	if unix.Fstat(0, &st0) == nil && unix.Fstat(1, &st1) == nil && st0.Ino == st1.Ino && st0.Mode&unix.S_IFMT == unix.S_IFSOCK {
		same = "same"
	}
	in, out := os.Stdin, os.Stdout
	b := make([]byte, len(ClientBanner))
	if _, err := io.ReadFull(in, b); err != nil || string(b) != ClientBanner {
		return 111
	}
	if dir == "refuse" {
		out.Write(Hello{Status: syscall.EPERM, MaxPayload: MaxPayload, MaxName: MaxName}.Marshal())
		return 1
	}
	out.Write(Hello{MaxPayload: MaxPayload, MaxName: MaxName, MaxLocks: 1024}.Marshal())
	buf := make([]byte, MaxPayload)
	for {
		p, err := ReadFrame(in, buf)
		if errors.Is(err, io.EOF) {
			if dir == "exit3" {
				return 3
			}
			return 0
		}
		if err != nil {
			return 111
		}
		r, err := ParseRequest(p)
		if err != nil {
			return 100
		}
		var ms []Message
		switch r.Op {
		case OpAcquire:
			ms = append(ms, Message{Type: MsgReply, ID: r.ID}, Message{Type: MsgGranted, ID: r.ID})
		case OpRelease:
			ms = append(ms, Message{Type: MsgReply, ID: r.ID})
		case OpList:
			e := Entry{PID: os.Getppid(), HelperPID: os.Getpid(), Name: dir + " " + same, Held: true}
			ms = append(ms, Message{Type: MsgEntry, ID: r.ID, Entry: e}, Message{Type: MsgReply, ID: r.ID})
		}
		var frames []byte
		for _, m := range ms {
			frames = AppendFrame(frames, m.Marshal())
		}
		if _, err := out.Write(frames); err != nil {
			return 111
		}
	}
}

// wantReaped fails unless pid is no child of the test any more.
func wantReaped(t *testing.T, pid int) {
	t.Helper()
	var ws unix.WaitStatus
	if wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); !errors.Is(err, unix.ECHILD) {
		t.Errorf("wait4(%d) = %d, %v; want ECHILD: the spawned lockd was not reaped", pid, wpid, err)
	}
}

// TestSpawn: Spawn runs this binary as "lockd DIR" with one socket as
// fds 0 and 1, talks to it, and Close reaps it.
func TestSpawn(t *testing.T) {
	c, err := Spawn(context.Background(), "dir")
	if err != nil {
		t.Fatalf("Spawn = %v", err)
	}
	l, err := c.TryAcquire("x", Exclusive)
	if err != nil {
		t.Fatalf("TryAcquire = %v", err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("Release = %v", err)
	}
	es, err := c.List(context.Background())
	if err != nil || len(es) != 1 {
		t.Fatalf("List = %+v, %v; want the fake's one entry", es, err)
	}
	if e := es[0]; e.PID != os.Getpid() || e.Name != "dir same" {
		t.Errorf("the spawned lockd says its parent is %d, its lockdir and fds %q; want %d, %q", e.PID, e.Name, os.Getpid(), "dir same")
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	wantReaped(t, es[0].HelperPID)
}

// TestSpawnFailures: a lockd that exits badly is reported by Close; one
// that refuses the hello by Spawn, and both are reaped.
func TestSpawnFailures(t *testing.T) {
	c, err := Spawn(context.Background(), "exit3")
	if err != nil {
		t.Fatalf("Spawn = %v", err)
	}
	es, err := c.List(context.Background())
	if err != nil || len(es) != 1 {
		t.Fatalf("List = %+v, %v", es, err)
	}
	if err := c.Close(); err == nil || !strings.Contains(err.Error(), "exited 3") {
		t.Errorf("Close = %v; want lockd's exit 3", err)
	}
	wantReaped(t, es[0].HelperPID)

	c, err = Spawn(context.Background(), "refuse")
	if c != nil || !errors.Is(err, syscall.EPERM) || !strings.Contains(err.Error(), "exited 1") {
		t.Errorf("Spawn(refuse) = %v, %v; want EPERM and lockd's exit 1", c, err)
	}
}

// fake is the lockd side of a connection, driven by a test: it reads
// requests and writes messages with the codec.
type fake struct {
	t    testing.TB
	conn net.Conn
	buf  []byte
}

// socketPair returns the two ends of a connected Unix stream socket pair.
func socketPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), fmt.Sprint("end", i))
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatalf("FileConn: %v", err)
		}
		conns[i] = c
	}
	t.Cleanup(func() { conns[0].Close(); conns[1].Close() })
	return conns[0], conns[1]
}

func newFake(t testing.TB) (net.Conn, *fake) {
	c, s := socketPair(t)
	return c, &fake{t: t, conn: s, buf: make([]byte, MaxPayload)}
}

// banner reads the client's banner and returns it.
func (f *fake) banner() string {
	f.t.Helper()
	b := make([]byte, len(ClientBanner))
	if _, err := io.ReadFull(f.conn, b); err != nil {
		f.t.Errorf("fake lockd: read banner: %v", err)
	}
	return string(b)
}

// hello reads the banner and answers with status.
func (f *fake) hello(status syscall.Errno) {
	f.t.Helper()
	if got := f.banner(); got != ClientBanner {
		f.t.Errorf("client banner = %q; want %q", got, ClientBanner)
	}
	f.write(Hello{Status: status, MaxPayload: MaxPayload, MaxName: MaxName, MaxLocks: 7}.Marshal())
}

func (f *fake) write(b []byte) {
	f.t.Helper()
	if _, err := f.conn.Write(b); err != nil {
		f.t.Errorf("fake lockd: write: %v", err)
	}
}

// req reads one request.
func (f *fake) req() Request {
	f.t.Helper()
	p, err := ReadFrame(f.conn, f.buf)
	if err != nil {
		f.t.Errorf("fake lockd: read request: %v", err)
		return Request{}
	}
	r, err := ParseRequest(p)
	if err != nil {
		f.t.Errorf("fake lockd: ParseRequest(%q): %v", p, err)
	}
	return r
}

// send writes messages, each in its own frame.
func (f *fake) send(ms ...Message) {
	f.t.Helper()
	var b []byte
	for _, m := range ms {
		b = AppendFrame(b, m.Marshal())
	}
	f.write(b)
}

func reply(id uint32, errno syscall.Errno) Message {
	return Message{Type: MsgReply, ID: id, Errno: errno}
}

// connect returns a client on a fake lockd that admitted it.
func connect(t *testing.T) (*Client, *fake) {
	t.Helper()
	cc, f := newFake(t)
	go f.hello(0)
	c, err := NewClient(context.Background(), cc)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, f
}

// serve runs fn as the fake lockd in a goroutine and returns a function
// that waits for it.
func serve(fn func()) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	return func() { <-done }
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// wantErrno fails unless err is an *Error with op and errno.
func wantErrno(t *testing.T, what string, err error, op string, errno syscall.Errno) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Op != op || !errors.Is(err, errno) {
		t.Errorf("%s = %v; want an *Error of %s with %v", what, err, op, errno)
	}
}

func TestHandshake(t *testing.T) {
	garbage := bytes.Repeat([]byte("x"), HelloSize)
	for _, tt := range []struct {
		name   string
		answer []byte // what the fake lockd writes after the banner; then it closes
		errno  syscall.Errno
	}{
		{name: "admitted", answer: Hello{MaxPayload: 4096, MaxName: 1024, MaxLocks: 3}.Marshal()},
		{name: "EPERM", answer: Hello{Status: syscall.EPERM, MaxPayload: 4096, MaxName: 1024}.Marshal(), errno: syscall.EPERM},
		{name: "EUSERS", answer: Hello{Status: syscall.EUSERS, MaxPayload: 4096, MaxName: 1024}.Marshal(), errno: syscall.EUSERS},
		{name: "wrong banner", answer: garbage, errno: syscall.EPROTO},
		{name: "short hello", answer: []byte(ServerBanner), errno: syscall.ECONNRESET},
		{name: "closed at once", errno: syscall.ECONNRESET},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cc, f := newFake(t)
			var banner string
			wait := serve(func() {
				banner = f.banner()
				f.write(tt.answer)
				f.conn.Close()
			})
			c, err := NewClient(context.Background(), cc)
			wait()
			if banner != ClientBanner {
				t.Errorf("banner = %q; want %q", banner, ClientBanner)
			}
			if tt.errno != 0 {
				if c != nil {
					t.Errorf("NewClient = %v, %v; want no client", c, err)
				}
				wantErrno(t, "NewClient", err, "handshake", tt.errno)
				return
			}
			if err != nil {
				t.Fatalf("NewClient = %v", err)
			}
			defer c.Close()
			if got, want := c.Limits(), (Limits{MaxPayload: 4096, MaxName: 1024, MaxLocks: 3}); got != want {
				t.Errorf("Limits() = %+v; want %+v", got, want)
			}
		})
	}
}

// TestHandshakeContext: a lockd that never answers does not hold the
// client past its context, whether rw has deadlines or not.
func TestHandshakeContext(t *testing.T) {
	for _, tt := range []struct {
		name string
		wrap func(net.Conn) io.ReadWriteCloser
	}{
		{name: "conn", wrap: func(c net.Conn) io.ReadWriteCloser { return c }},
		{name: "no deadline", wrap: func(c net.Conn) io.ReadWriteCloser { return struct{ io.ReadWriteCloser }{c} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cc, f := newFake(t)
			wait := serve(func() { f.banner() })
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			c, err := NewClient(ctx, tt.wrap(cc))
			wait()
			if c != nil || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("NewClient(silent lockd) = %v, %v; want context.DeadlineExceeded", c, err)
			}
		})
	}
}

func TestAcquireGrantedThenReleased(t *testing.T) {
	c, f := connect(t)
	var acq, rel Request
	wait := serve(func() {
		acq = f.req()
		f.send(reply(acq.ID, 0), Message{Type: MsgGranted, ID: acq.ID})
		rel = f.req()
		f.send(reply(rel.ID, 0))
	})
	l, err := c.Acquire(context.Background(), "db", Exclusive)
	if err != nil {
		t.Fatalf("Acquire = %v", err)
	}
	if !isClosed(l.Done()) || isClosed(l.Lost()) || l.Err() != nil {
		t.Errorf("granted lock: done %v, lost %v, err %v; want true, false, nil", isClosed(l.Done()), isClosed(l.Lost()), l.Err())
	}
	if err := l.Release(); err != nil {
		t.Errorf("Release = %v", err)
	}
	wait()
	want := Request{Op: OpAcquire, ID: acq.ID, Flags: 1, Timeout: Forever, Name: "db"}
	if acq != want || acq.ID == 0 {
		t.Errorf("acquire request = %+v; want %+v with a non-zero id", acq, want)
	}
	if want := (Request{Op: OpRelease, ID: acq.ID}); rel != want {
		t.Errorf("release request = %+v; want %+v", rel, want)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release = %v; want nil", err)
	}
}

func TestTryAcquireBusy(t *testing.T) {
	c, f := connect(t)
	var got Request
	wait := serve(func() {
		got = f.req()
		f.send(reply(got.ID, 0), Message{Type: MsgFailed, ID: got.ID, Errno: syscall.EBUSY, HStatus: 1})
	})
	l, err := c.TryAcquire("a/b", Shared)
	wait()
	if l != nil {
		t.Errorf("TryAcquire = %v; want no lock", l)
	}
	wantErrno(t, "TryAcquire(busy)", err, "acquire", syscall.EBUSY)
	if want := (Request{Op: OpAcquire, ID: got.ID, Flags: 0, Timeout: 0, Name: "a/b"}); got != want {
		t.Errorf("request = %+v; want %+v", got, want)
	}
	if want := `lockd acquire a/b: device or resource busy`; err != nil && err.Error() != want {
		t.Errorf("error = %q; want %q", err, want)
	}
}

func TestAcquireRejected(t *testing.T) {
	c, f := connect(t)
	wait := serve(func() {
		r := f.req()
		f.send(reply(r.ID, syscall.EINVAL))
		// The rejected id is free again: the next acquire may reuse it.
		r = f.req()
		f.send(reply(r.ID, 0), Message{Type: MsgGranted, ID: r.ID})
	})
	if _, err := c.Acquire(context.Background(), "../x", Exclusive); err == nil {
		t.Errorf("Acquire(../x) = nil; want EINVAL")
	} else {
		wantErrno(t, "Acquire(../x)", err, "acquire", syscall.EINVAL)
	}
	if _, err := c.TryAcquire("x", Exclusive); err != nil {
		t.Errorf("TryAcquire after a rejection = %v", err)
	}
	wait()
}

// TestAcquireContextDeadline: the timeout sent is the context's, and when
// the context ends first the request is cancelled with R before Acquire
// returns ctx.Err().
func TestAcquireContextDeadline(t *testing.T) {
	c, f := connect(t)
	var acq, rel Request
	released := make(chan struct{})
	wait := serve(func() {
		acq = f.req()
		f.send(reply(acq.ID, 0))
		rel = f.req() // sent when the context ended
		close(released)
		f.send(reply(rel.ID, 0))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	l, err := c.Acquire(ctx, "db", Exclusive)
	if l != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire = %v, %v; want context.DeadlineExceeded", l, err)
	}
	if !isClosed(released) {
		t.Errorf("Acquire returned before lockd answered its release")
	}
	wait()
	if acq.Timeout < 1 || acq.Timeout > 300 {
		t.Errorf("acquire timeout = %d ms; want 1..300", acq.Timeout)
	}
	if want := (Request{Op: OpRelease, ID: acq.ID}); rel != want {
		t.Errorf("release request = %+v; want %+v", rel, want)
	}
}

// TestAcquireCancelled: a context without a deadline waits forever, and a
// cancellation races with a late grant: lockd frees the lock either way.
func TestAcquireCancelled(t *testing.T) {
	c, f := connect(t)
	var acq Request
	ctx, cancel := context.WithCancel(context.Background())
	wait := serve(func() {
		acq = f.req()
		f.send(reply(acq.ID, 0))
		cancel()
		rel := f.req()
		// The grant crossed the release on the wire.
		f.send(Message{Type: MsgGranted, ID: acq.ID}, reply(rel.ID, 0))
	})
	l, err := c.Acquire(ctx, "db", Shared)
	wait()
	if l != nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire = %v, %v; want context.Canceled", l, err)
	}
	if acq.Timeout != Forever {
		t.Errorf("acquire timeout = %#x; want Forever", acq.Timeout)
	}
}

// TestLockdTimeout: an f ETIMEDOUT for a Start is an *Error.
func TestLockdTimeout(t *testing.T) {
	c, f := connect(t)
	wait := serve(func() {
		r := f.req()
		if r.Timeout != 250 {
			t.Errorf("timeout = %d; want 250", r.Timeout)
		}
		f.send(reply(r.ID, 0), Message{Type: MsgFailed, ID: r.ID, Errno: syscall.ETIMEDOUT, HStatus: KilledByLockd})
	})
	l, err := c.Start("db", Exclusive, 250*time.Millisecond)
	if err != nil {
		t.Fatalf("Start = %v", err)
	}
	<-l.Done()
	wait()
	wantErrno(t, "Err() after f ETIMEDOUT", l.Err(), "acquire", syscall.ETIMEDOUT)
	if err := l.Release(); err != nil {
		t.Errorf("Release of a failed lock = %v; want nil", err)
	}
}

func TestStartThenCancel(t *testing.T) {
	c, f := connect(t)
	wait := serve(func() {
		r := f.req()
		f.send(reply(r.ID, 0))
		rel := f.req()
		f.send(reply(rel.ID, 0))
	})
	l, err := c.Start("db", Exclusive, -1)
	if err != nil {
		t.Fatalf("Start = %v", err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("Release of a pending lock = %v", err)
	}
	wait()
	if !isClosed(l.Done()) {
		t.Fatalf("Done() not closed after a cancellation")
	}
	wantErrno(t, "Err() after a cancellation", l.Err(), "acquire", syscall.ECANCELED)
}

func TestLost(t *testing.T) {
	c, f := connect(t)
	wait := serve(func() {
		r := f.req()
		f.send(reply(r.ID, 0), Message{Type: MsgGranted, ID: r.ID}, Message{Type: MsgLost, ID: r.ID, Errno: syscall.EOWNERDEAD, HStatus: 137})
	})
	l, err := c.Acquire(context.Background(), "db", Exclusive)
	if err != nil {
		t.Fatalf("Acquire = %v", err)
	}
	<-l.Lost()
	wait()
	wantErrno(t, "Err() after x", l.Err(), "hold", syscall.EOWNERDEAD)
	if err := l.Release(); err != nil {
		t.Errorf("Release of a lost lock = %v; want nil", err)
	}
}

// TestReleaseCrossesLoss: lockd decided x before it read R: it sends the
// x, then r ENOENT, and Release is content.
func TestReleaseCrossesLoss(t *testing.T) {
	c, f := connect(t)
	var l *Lock
	wait := serve(func() {
		r := f.req()
		f.send(reply(r.ID, 0), Message{Type: MsgGranted, ID: r.ID})
		rel := f.req()
		f.send(Message{Type: MsgLost, ID: r.ID, Errno: syscall.EOWNERDEAD, HStatus: 9}, reply(rel.ID, syscall.ENOENT))
	})
	l, err := c.Acquire(context.Background(), "db", Exclusive)
	if err != nil {
		t.Fatalf("Acquire = %v", err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("Release = %v; want nil", err)
	}
	wait()
	if !isClosed(l.Lost()) {
		t.Errorf("Lost() not closed by the x")
	}
}

func TestList(t *testing.T) {
	c, f := connect(t)
	want := []Entry{
		{ID: 3, PID: 10, UID: 0, HelperPID: 11, Name: "a", Mode: Exclusive, Held: true, Age: 1500 * time.Millisecond},
		{ID: 4, PID: 12, UID: 1000, HelperPID: 13, Name: "b\x01", Mode: Shared, Age: 2 * time.Millisecond, Left: -1},
	}
	wait := serve(func() {
		r := f.req()
		if r.Op != OpList || r.ID == 0 {
			t.Errorf("list request = %+v", r)
		}
		for _, e := range want {
			f.send(Message{Type: MsgEntry, ID: r.ID, Entry: e})
		}
		f.send(reply(r.ID, 0))
	})
	got, err := c.List(context.Background())
	wait()
	if err != nil {
		t.Fatalf("List = %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("List = %+v; want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("List()[%d] = %+v; want %+v", i, got[i], want[i])
		}
	}
}

// TestServerDrop: when lockd goes away, pending locks fail, held locks
// are lost, and every call returns an error instead of hanging.
func TestServerDrop(t *testing.T) {
	c, f := connect(t)
	wait := serve(func() {
		r := f.req()
		f.send(reply(r.ID, 0), Message{Type: MsgGranted, ID: r.ID})
		r = f.req()
		f.send(reply(r.ID, 0))
		f.req() // a list, never answered
		f.conn.Close()
	})
	heldLock, err := c.Acquire(context.Background(), "held", Exclusive)
	if err != nil {
		t.Fatalf("Acquire = %v", err)
	}
	pendingLock, err := c.Start("pending", Exclusive, -1)
	if err != nil {
		t.Fatalf("Start = %v", err)
	}
	_, err = c.List(context.Background())
	wait()
	wantErrno(t, "List across the drop", err, "list", syscall.ECONNRESET)
	<-pendingLock.Done()
	wantErrno(t, "pending Err()", pendingLock.Err(), "acquire", syscall.ECONNRESET)
	<-heldLock.Lost()
	wantErrno(t, "held Err()", heldLock.Err(), "hold", syscall.ECONNRESET)
	wantErrno(t, "Release after the drop", heldLock.Release(), "release", syscall.ECONNRESET)
	if _, err := c.TryAcquire("x", Exclusive); err == nil {
		t.Errorf("TryAcquire after the drop = nil; want an error")
	}
	if _, err := c.Acquire(context.Background(), "x", Exclusive); err == nil {
		t.Errorf("Acquire after the drop = nil; want an error")
	}
	if _, err := c.List(context.Background()); err == nil {
		t.Errorf("List after the drop = nil; want an error")
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
}

// TestProtocolErrors: a message lockd should not send, or its report of a
// protocol error (r with id 0), ends the connection with EPROTO.
func TestProtocolErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		msg  Message
	}{
		{name: "r id 0", msg: reply(0, syscall.EPROTO)},
		{name: "unknown id", msg: Message{Type: MsgGranted, ID: 999}},
		{name: "x while pending", msg: Message{Type: MsgLost, ID: 1, Errno: syscall.EOWNERDEAD}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, f := connect(t)
			wait := serve(func() {
				r := f.req()
				if r.ID != 1 {
					t.Errorf("first id = %d; want 1", r.ID)
				}
				f.send(reply(r.ID, 0), tt.msg)
			})
			l, err := c.Acquire(context.Background(), "db", Exclusive)
			wait()
			if l != nil {
				t.Errorf("Acquire = %v; want no lock", l)
			}
			wantErrno(t, "Acquire", err, "acquire", syscall.EPROTO)
			if err := c.Close(); err != nil {
				t.Errorf("Close after a protocol error = %v; want nil", err)
			}
		})
	}
}

// TestClose: Close ends pending requests with ECONNABORTED, and a closed
// client refuses new ones.
func TestClose(t *testing.T) {
	c, f := connect(t)
	wait := serve(func() {
		r := f.req()
		f.send(reply(r.ID, 0))
	})
	l, err := c.Start("db", Exclusive, -1)
	if err != nil {
		t.Fatalf("Start = %v", err)
	}
	wait()
	if err := c.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	<-l.Done()
	wantErrno(t, "Err() after Close", l.Err(), "acquire", syscall.ECONNABORTED)
	if _, err := c.TryAcquire("db", Exclusive); err == nil {
		t.Errorf("TryAcquire after Close = nil; want an error")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestConcurrentUse: many goroutines acquire and release at once; the
// fake lockd checks that no live id is used twice and answers in order.
func TestConcurrentUse(t *testing.T) {
	c, f := connect(t)
	const workers, rounds = 8, 50
	wait := serve(func() {
		live := make(map[uint32]bool)
		for n := 0; n < workers*rounds*2; n++ {
			r := f.req()
			switch r.Op {
			case OpAcquire:
				if r.ID == 0 || live[r.ID] {
					t.Errorf("acquire with id %d, which is live or 0", r.ID)
				}
				live[r.ID] = true
				f.send(reply(r.ID, 0), Message{Type: MsgGranted, ID: r.ID})
			case OpRelease:
				if !live[r.ID] {
					t.Errorf("release of id %d, which is not live", r.ID)
				}
				delete(live, r.ID)
				f.send(reply(r.ID, 0))
			default:
				t.Errorf("request %+v", r)
				return
			}
		}
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				l, err := c.Acquire(context.Background(), fmt.Sprintf("w%d/%d", w, i), Exclusive)
				if err != nil {
					t.Errorf("Acquire = %v", err)
					return
				}
				if err := l.Release(); err != nil {
					t.Errorf("Release = %v", err)
				}
			}
		})
	}
	wg.Wait()
	wait()
}

func TestNameTooLong(t *testing.T) {
	c, _ := connect(t)
	name := string(bytes.Repeat([]byte("a"), MaxName+1))
	_, err := c.TryAcquire(name, Exclusive)
	wantErrno(t, "TryAcquire(long name)", err, "acquire", syscall.ENAMETOOLONG)
}
