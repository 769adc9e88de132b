package tests

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/lockproto"
)

// End-to-end tests of lockd (spec/locks.md "lockd", "The protocol",
// "Acceptance tests" 7 to 19). The tests speak the protocol byte by byte
// through the frame codec (lib/lockproto), on Unix sockets, without the Go
// client, and use the test process's own OFD locks (canLock, holdLock) as
// the independent second locker.

// lockdSocket returns the path of a socket in a new directory that every
// uid may traverse (the access tests connect as another uid). It is short:
// a Unix socket path holds at most 107 bytes, which a t.TempDir() path
// with a long test name can exceed.
func lockdSocket(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lockd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "s")
}

// newLockdir returns a new lock directory (mode 0700, owned by the test's
// uid) with symlinks resolved.
func newLockdir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// lockdServer is a lockd in server mode that the test started.
type lockdServer struct {
	*Proc
	sock string
	dir  string
}

// startLockd starts "lockd -s SOCK ARGS... LOCKDIR" on a new socket and
// lock directory and returns once it listens.
func startLockd(t testing.TB, args ...string) *lockdServer {
	t.Helper()
	return startLockdOn(t, Opts{}, lockdSocket(t), newLockdir(t), args...)
}

// startLockdOn is startLockd with settings, on a given socket and lockdir.
func startLockdOn(t testing.TB, o Opts, sock, dir string, args ...string) *lockdServer {
	t.Helper()
	argv := append(append([]string{"lockd", "-s", sock}, args...), dir)
	p := startIn(t, o, argv...)
	waitListening(t, p, sock)
	return &lockdServer{Proc: p, sock: sock, dir: dir}
}

// socketListening reports whether a Unix socket bound to path is listening
// (/proc/net/unix: the __SO_ACCEPTCON flag, 00010000).
func socketListening(path string) bool {
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 8 && f[7] == path && f[3] == "00010000" {
			return true
		}
	}
	return false
}

// waitListening waits until p listens on sock, without connecting (a probe
// connection would take a client slot). It fails at once if p exits.
func waitListening(t testing.TB, p *Proc, sock string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%q to listen on %s", p.Argv, sock), func() bool {
		if !p.Running() {
			r := p.result()
			t.Fatalf("%q exited (%s) before listening; stderr %q", p.Argv, r.Status(), r.Stderr)
		}
		return socketListening(sock)
	})
}

// lockClient speaks the lock protocol over one connection, raw.
type lockClient struct {
	t    testing.TB
	conn *net.UnixConn
	buf  []byte
}

// newLockClient wraps conn, which is closed when the test ends.
func newLockClient(t testing.TB, conn *net.UnixConn) *lockClient {
	t.Cleanup(func() { conn.Close() })
	return &lockClient{t: t, conn: conn, buf: make([]byte, lockproto.MaxPayload)}
}

// dialLockd connects to sock, retrying while the socket is missing or
// refuses connections (a lockd still starting), and says nothing yet.
func dialLockd(t testing.TB, sock string) *lockClient {
	t.Helper()
	var conn *net.UnixConn
	waitFor(t, "lockd to accept on "+sock, func() bool {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
		switch {
		case err == nil:
			conn = c
			return true
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ECONNREFUSED):
			return false
		}
		t.Fatalf("connect(%s): %v", sock, err)
		return false
	})
	return newLockClient(t, conn)
}

// connectLockd connects to sock and completes an admitted handshake.
func connectLockd(t testing.TB, sock string) *lockClient {
	t.Helper()
	c := dialLockd(t, sock)
	if h := c.hello(); h.Status != 0 {
		t.Fatalf("hello from lockd at %s: status %v; want 0", sock, h.Status)
	}
	return c
}

// dialAs connects to sock from a thread whose uids and gids are all uid and
// gid, without supplementary groups: the connect(2) permission check and
// the peer credentials lockd reads (SO_PEERCRED) are that uid's. The
// credentials are changed on that thread alone (raw setresuid, not the
// all-threads syscall.Setresuid), and the thread is never given back to
// the Go runtime: its goroutine exits locked, so the thread exits too.
func dialAs(uid, gid int, sock string) (*net.UnixConn, error) {
	type result struct {
		conn *net.UnixConn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		ch <- func() result {
			for _, sc := range []struct {
				name       string
				trap       uintptr
				a1, a2, a3 uintptr
			}{
				{"setgroups", unix.SYS_SETGROUPS, 0, 0, 0},
				{"setresgid", unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)},
				{"setresuid", unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)},
			} {
				if _, _, e := unix.RawSyscall(sc.trap, sc.a1, sc.a2, sc.a3); e != 0 {
					return result{err: fmt.Errorf("%s: %w", sc.name, e)}
				}
			}
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return result{err: err}
			}
			f := os.NewFile(uintptr(fd), sock)
			defer f.Close()
			if err := unix.Connect(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
				return result{err: err}
			}
			c, err := net.FileConn(f)
			if err != nil {
				return result{err: err}
			}
			return result{conn: c.(*net.UnixConn)}
		}()
	}()
	r := <-ch
	return r.conn, r.err
}

// send writes raw bytes.
func (c *lockClient) send(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write %q to lockd: %v", b, err)
	}
}

// hello sends the client banner and reads lockd's 33-byte answer.
func (c *lockClient) hello() lockproto.Hello {
	c.t.Helper()
	c.send([]byte(lockproto.ClientBanner))
	b := c.readHello()
	h, err := lockproto.ParseHello(b)
	if err != nil {
		c.t.Fatalf("hello from lockd: %q: %v", b, err)
	}
	return h
}

// readHello reads the 33 bytes of a hello.
func (c *lockClient) readHello() []byte {
	c.t.Helper()
	c.conn.SetReadDeadline(deadline(c.t))
	b := make([]byte, lockproto.HelloSize)
	if n, err := io.ReadFull(c.conn, b); err != nil {
		c.t.Fatalf("read hello from lockd: %q, %v", b[:n], err)
	}
	return b
}

// request sends one framed request.
func (c *lockClient) request(r lockproto.Request) {
	c.t.Helper()
	c.send(lockproto.AppendFrame(nil, r.Marshal()))
}

// acquireReq is the acquire request for id.
func acquireReq(id uint32, exclusive bool, timeout uint32, name string) lockproto.Request {
	r := lockproto.Request{Op: lockproto.OpAcquire, ID: id, Timeout: timeout, Name: name}
	if exclusive {
		r.Flags = 1
	}
	return r
}

func (c *lockClient) acquire(id uint32, exclusive bool, timeout uint32, name string) {
	c.t.Helper()
	c.request(acquireReq(id, exclusive, timeout, name))
}

func (c *lockClient) release(id uint32) {
	c.t.Helper()
	c.request(lockproto.Request{Op: lockproto.OpRelease, ID: id})
}

// next reads the next message from lockd.
func (c *lockClient) next() lockproto.Message {
	c.t.Helper()
	c.conn.SetReadDeadline(deadline(c.t))
	p, err := lockproto.ReadFrame(c.conn, c.buf)
	if err != nil {
		c.t.Fatalf("read a message from lockd: %v", err)
	}
	m, err := lockproto.ParseServerMessage(p)
	if err != nil {
		c.t.Fatalf("message from lockd %q: %v", p, err)
	}
	return m
}

// msgString renders m as "r 3 EPROTO", "g 3", "f 3 ETIMEDOUT 65535".
func msgString(m lockproto.Message) string {
	s := fmt.Sprintf("%c %d", m.Type, m.ID)
	switch m.Type {
	case lockproto.MsgReply:
		s += " " + errnoName(m.Errno)
	case lockproto.MsgFailed, lockproto.MsgLost:
		s += fmt.Sprintf(" %s %d", errnoName(m.Errno), m.HStatus)
	case lockproto.MsgEntry:
		s += fmt.Sprintf(" %+v", m.Entry)
	}
	return s
}

// errnoName is "0" or the errno's symbolic name ("EPROTO").
func errnoName(e syscall.Errno) string {
	if e == 0 {
		return "0"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return strconv.Itoa(int(e))
}

// expect reads the next message and fails unless it has type typ, id and
// (for r, f and x) errno.
func (c *lockClient) expect(typ byte, id uint32, errno syscall.Errno) lockproto.Message {
	c.t.Helper()
	m := c.next()
	want := lockproto.Message{Type: typ, ID: id, Errno: errno}
	if m.Type != typ || m.ID != id || m.Errno != errno {
		c.t.Fatalf("message from lockd: %s; want %s", msgString(m), strings.TrimSuffix(msgString(want), " 0"))
	}
	return m
}

// reply expects "r id errno".
func (c *lockClient) reply(id uint32, errno syscall.Errno) {
	c.t.Helper()
	c.expect(lockproto.MsgReply, id, errno)
}

// lock acquires name (waiting forever) and waits until it is granted.
func (c *lockClient) lock(id uint32, exclusive bool, name string) {
	c.t.Helper()
	c.acquire(id, exclusive, lockproto.Forever, name)
	c.reply(id, 0)
	c.expect(lockproto.MsgGranted, id, 0)
}

// pend acquires name, waiting forever, and expects it to be accepted.
func (c *lockClient) pend(id uint32, exclusive bool, name string) {
	c.t.Helper()
	c.acquire(id, exclusive, lockproto.Forever, name)
	c.reply(id, 0)
}

// unlock releases id and expects "r id 0".
func (c *lockClient) unlock(id uint32) {
	c.t.Helper()
	c.release(id)
	c.reply(id, 0)
}

// list asks for the lock table and returns its entries.
func (c *lockClient) list(id uint32) []lockproto.Entry {
	c.t.Helper()
	c.request(lockproto.Request{Op: lockproto.OpList, ID: id})
	return c.list0(id)
}

// entry returns the entry of the lock id held or requested by pid.
func entry(t testing.TB, es []lockproto.Entry, pid int, id uint32) lockproto.Entry {
	t.Helper()
	for _, e := range es {
		if e.PID == pid && e.ID == id {
			return e
		}
	}
	t.Fatalf("list %+v: no entry for lock %d of pid %d", es, id, pid)
	return lockproto.Entry{}
}

// expectEOF reads until the connection ends and fails if lockd sent
// anything more.
func (c *lockClient) expectEOF() {
	c.t.Helper()
	c.conn.SetReadDeadline(deadline(c.t))
	b, err := io.ReadAll(c.conn)
	if err != nil && !errors.Is(err, unix.ECONNRESET) {
		c.t.Fatalf("read from lockd until EOF: %q, %v", b, err)
	}
	if len(b) != 0 {
		c.t.Fatalf("lockd sent %q; want the connection closed", b)
	}
}

// waitHelperBlocked waits until the helper of lock id of this client
// (found with List) is blocked in fcntl(2), waiting for the lock.
func (c *lockClient) waitHelperBlocked(id uint32) int {
	c.t.Helper()
	var hpid int
	waitFor(c.t, fmt.Sprintf("the helper of lock %d to wait in fcntl", id), func() bool {
		e := entry(c.t, c.list(0xFFFFFF00), os.Getpid(), id)
		if e.Held {
			c.t.Fatalf("lock %d is held; want pending", id)
		}
		hpid = e.HelperPID
		return hpid > 0 && inFcntl(hpid)
	})
	return hpid
}

// helpers returns lockd's children (zombies included): its lock helpers.
func (l *lockdServer) helpers(t testing.TB) []procStat {
	t.Helper()
	return children(t, l.Pid)
}

// wantNoHelpers fails the test if lockd has any child.
func wantNoHelpers(t testing.TB, pid int, when string) {
	t.Helper()
	if kids := children(t, pid); len(kids) != 0 {
		t.Errorf("%s: lockd's children %v; want none", when, kids)
	}
}

// waitNoHelpers waits until lockd has no child left.
func waitNoHelpers(t testing.TB, pid int, when string) {
	t.Helper()
	var kids []procStat
	if !poll(deadline(t), func() bool {
		kids = children(t, pid)
		return len(kids) == 0
	}) {
		t.Fatalf("%s: lockd's children %v; want none", when, kids)
	}
}

// waitLockable waits until the test can lock path exclusively.
func waitLockable(t testing.TB, path, when string) {
	t.Helper()
	wantLockable(t, path, true, true, when)
}

// fdCount is the number of open fds of pid.
func fdCount(t testing.TB, pid int) int {
	t.Helper()
	return len(openFDs(t, pid))
}

// TestLockdHandshake: lockd's hello is exactly the 33 bytes of the spec; a
// wrong banner gets EPROTO and the connection closed; a silent client is
// dropped after 2 s; with -c 1 a second client gets EUSERS.
func TestLockdHandshake(t *testing.T) {
	t.Parallel()
	t.Run("bytes", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name string
			args []string
			max  uint32
		}{
			{name: "default", max: 1024},
			{name: "-n 3", args: []string{"-n", "3"}, max: 3},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				l := startLockd(t, tt.args...)
				c := dialLockd(t, l.sock)
				c.send([]byte("gotools-lockd v1 (c)\n"))
				want := append([]byte("gotools-lockd v1 (s)\n\x00\x00\x00\x00\x10\x00\x04\x00"), binary.BigEndian.AppendUint32(nil, tt.max)...)
				if got := c.readHello(); !bytes.Equal(got, want) {
					t.Errorf("hello = %q; want %q", got, want)
				}
				// The connection is usable: an empty list.
				if es := c.list(1); len(es) != 0 {
					t.Errorf("list = %+v; want nothing", es)
				}
			})
		}
	})
	t.Run("wrong banner", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t)
		req := lockproto.AppendFrame(nil, acquireReq(1, true, 0, "abcde").Marshal())
		for _, tt := range []struct {
			name   string
			banner string
		}{
			{name: "v2", banner: "gotools-lockd v2 (c)\n"},
			{name: "server banner", banner: lockproto.ServerBanner},
			{name: "a request first", banner: string(req)},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if len(tt.banner) != len(lockproto.ClientBanner) {
					t.Fatalf("banner %q of %d bytes; want %d", tt.banner, len(tt.banner), len(lockproto.ClientBanner))
				}
				c := dialLockd(t, l.sock)
				c.send([]byte(tt.banner))
				b := c.readHello()
				h, err := lockproto.ParseHello(b)
				if err != nil || h.Status != unix.EPROTO {
					t.Errorf("hello after banner %q = %q (%+v, %v); want status EPROTO", tt.banner, b, h, err)
				}
				c.expectEOF()
			})
		}
		// lockd is still there for others.
		connectLockd(t, l.sock)
	})
	t.Run("silence", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t)
		t0 := time.Now()
		c := dialLockd(t, l.sock)
		c.expectEOF()
		if d := time.Since(t0); d < 2*time.Second || d > 20*time.Second {
			t.Errorf("lockd dropped a silent client after %v; want 2 s (2s..20s)", d)
		}
		connectLockd(t, l.sock)
	})
	t.Run("too many clients", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t, "-c", "1")
		first := connectLockd(t, l.sock)
		second := dialLockd(t, l.sock)
		if h := second.hello(); h.Status != unix.EUSERS {
			t.Errorf("second client's hello with -c 1: status %v; want EUSERS", h.Status)
		}
		second.expectEOF()
		first.lock(1, true, "a")
		first.conn.Close()
		// Once lockd has seen the first client go, a new one is admitted.
		waitFor(t, "lockd to admit a client again", func() bool {
			c := dialLockd(t, l.sock)
			defer c.conn.Close()
			return c.hello().Status == 0
		})
		waitLockable(t, filepath.Join(l.dir, "a"), "the first client left")
	})
}

// TestLockdExcludes: locks exclude each other across clients as fcntl
// locks do, and a waiting request is granted when the holders let go.
func TestLockdExcludes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		holders []bool // the modes of the holders (true: exclusive)
		waiter  bool
	}{
		{name: "ex vs ex", holders: []bool{true}, waiter: true},
		{name: "ex vs sh", holders: []bool{true}, waiter: false},
		{name: "sh vs ex", holders: []bool{false}, waiter: true},
		{name: "two sh vs ex", holders: []bool{false, false}, waiter: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := startLockd(t)
			path := filepath.Join(l.dir, "x")
			var hs []*lockClient
			for _, ex := range tt.holders {
				h := connectLockd(t, l.sock)
				h.lock(1, ex, "x")
				hs = append(hs, h)
			}
			wantLockable(t, path, true, false, "held through lockd")
			w := connectLockd(t, l.sock)
			w.pend(2, tt.waiter, "x")
			w.waitHelperBlocked(2)
			for i, h := range hs {
				if i < len(hs)-1 {
					h.unlock(1)
					// Still a holder left: still pending.
					w.waitHelperBlocked(2)
					if e := entry(t, w.list(3), os.Getpid(), 2); e.Held {
						t.Errorf("waiter granted with %d holder(s) left", len(hs)-1-i)
					}
					continue
				}
				h.unlock(1)
			}
			w.expect(lockproto.MsgGranted, 2, 0)
			if tt.waiter {
				wantLockable(t, path, false, false, "the waiter holds")
			} else {
				wantLockable(t, path, false, true, "the waiter holds")
			}
			w.unlock(2)
			wantLockable(t, path, true, true, "all released")
		})
	}
	t.Run("sh and sh", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t)
		a, b := connectLockd(t, l.sock), connectLockd(t, l.sock)
		a.lock(1, false, "x")
		b.lock(1, false, "x")
		path := filepath.Join(l.dir, "x")
		wantLockable(t, path, false, true, "two shared holders")
		wantLockable(t, path, true, false, "two shared holders")
	})
	t.Run("same client", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t)
		c := connectLockd(t, l.sock)
		c.lock(1, true, "x")
		c.pend(2, true, "x")
		c.waitHelperBlocked(2)
		c.unlock(1)
		c.expect(lockproto.MsgGranted, 2, 0)
	})
}

// TestLockdTimeouts: a timed request on a busy lock fails with ETIMEDOUT
// no earlier than its timeout, a try with EBUSY, and no helper is left;
// one that is freed in time is granted.
func TestLockdTimeouts(t *testing.T) {
	t.Parallel()
	for _, ex := range []bool{true, false} {
		t.Run("timeout "+lockKind(ex), func(t *testing.T) {
			t.Parallel()
			l := startLockd(t)
			path := filepath.Join(l.dir, "x")
			holdLock(t, path, true)
			c := connectLockd(t, l.sock)
			t0 := time.Now()
			c.acquire(1, ex, 300, "x")
			c.reply(1, 0)
			m := c.expect(lockproto.MsgFailed, 1, unix.ETIMEDOUT)
			if d := time.Since(t0); d < 300*time.Millisecond || d > 3*time.Second {
				t.Errorf("f ETIMEDOUT after %v; want 300ms..3s", d)
			}
			if m.HStatus != lockproto.KilledByLockd {
				t.Errorf("f ETIMEDOUT hstatus %d; want %d (killed by lockd)", m.HStatus, lockproto.KilledByLockd)
			}
			wantNoHelpers(t, l.Pid, "after f ETIMEDOUT")
			c.release(1)
			c.reply(1, unix.ENOENT)
		})
		t.Run("try "+lockKind(ex), func(t *testing.T) {
			t.Parallel()
			l := startLockd(t)
			path := filepath.Join(l.dir, "x")
			release := holdLock(t, path, true)
			c := connectLockd(t, l.sock)
			c.acquire(1, ex, 0, "x")
			c.reply(1, 0)
			if m := c.expect(lockproto.MsgFailed, 1, unix.EBUSY); m.HStatus != 0 {
				t.Errorf("f EBUSY hstatus %d; want 0 (no helper: lockd tried itself)", m.HStatus)
			}
			wantNoHelpers(t, l.Pid, "after f EBUSY")
			release()
			c.acquire(2, ex, 0, "free")
			c.reply(2, 0)
			c.expect(lockproto.MsgGranted, 2, 0)
			wantLockable(t, filepath.Join(l.dir, "free"), true, false, "granted by a try")
		})
	}
	t.Run("freed in time", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t)
		holder := connectLockd(t, l.sock)
		holder.lock(1, true, "x")
		c := connectLockd(t, l.sock)
		c.acquire(5, true, 60000, "x")
		c.reply(5, 0)
		c.waitHelperBlocked(5)
		holder.unlock(1)
		c.expect(lockproto.MsgGranted, 5, 0)
		if e := entry(t, c.list(2), os.Getpid(), 5); !e.Held || e.Left != 0 {
			t.Errorf("entry of the granted lock %+v; want held, left 0", e)
		}
	})
}

// TestLockdReleaseGuarantee: when the client reads "r 0" for a release,
// the lock is free: the test's own F_OFD_SETLK succeeds right away, 1000
// times in a row, and lockd is left with no more fds or children than
// before. A cancelled pending request is never granted.
func TestLockdReleaseGuarantee(t *testing.T) {
	t.Parallel()
	// 1000 cycles in a row (100 with -short), with a try on a busy lock and
	// a cancellation every tenth cycle; lockd's fds and children are as before at the
	// end (spec test 19, "no leaks").
	t.Run("release", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t)
		c := connectLockd(t, l.sock)
		c.list(1)
		fds := openFDs(t, l.Pid)
		holdLock(t, filepath.Join(l.dir, "busy"), true)
		path := filepath.Join(l.dir, "x")
		id := uint32(1)
		n := 1000
		if testing.Short() {
			n = 100
		}
		for i := range n {
			if i%10 == 0 {
				id++
				c.acquire(id, i%20 == 0, 0, "busy")
				c.reply(id, 0)
				c.expect(lockproto.MsgFailed, id, unix.EBUSY)
				id++
				c.pend(id, i%20 == 0, "busy")
				c.unlock(id)
			}
			id++
			c.lock(id, i%2 == 0, "x")
			c.unlock(id)
			if i%100 == 0 {
				// Reaped before the reply.
				wantNoHelpers(t, l.Pid, fmt.Sprintf("cycle %d: r 0 of a release", i))
			}
			f, err := lock.OpenExclusive(path)
			if err != nil {
				t.Fatal(err)
			}
			err = lock.TryLock(f, lock.Exclusive)
			f.Close()
			if err != nil {
				t.Fatalf("cycle %d: F_OFD_SETLK right after r 0: %v; want the lock free", i, err)
			}
		}
		wantNoHelpers(t, l.Pid, fmt.Sprintf("after %d cycles", n))
		if got := openFDs(t, l.Pid); len(got) != len(fds) {
			t.Errorf("lockd's fds after %d cycles: %v; want %v", n, got, fds)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t)
		path := filepath.Join(l.dir, "x")
		release := holdLock(t, path, true)
		c := connectLockd(t, l.sock)
		c.pend(1, true, "x")
		c.waitHelperBlocked(1)
		c.unlock(1)
		wantNoHelpers(t, l.Pid, "after the cancellation's r 0")
		// Cancelled before its helper could even start.
		c.send(append(lockproto.AppendFrame(nil, acquireReq(2, true, lockproto.Forever, "x").Marshal()),
			lockproto.AppendFrame(nil, lockproto.Request{Op: lockproto.OpRelease, ID: 2}.Marshal())...))
		c.reply(2, 0)
		c.reply(2, 0)
		wantNoHelpers(t, l.Pid, "after the second cancellation's r 0")
		release()
		// No g may come: the ids are dead.
		c.release(1)
		c.reply(1, unix.ENOENT)
		c.release(2)
		c.reply(2, unix.ENOENT)
		if es := c.list(3); len(es) != 0 {
			t.Errorf("list after the cancellations = %+v; want nothing", es)
		}
		wantLockable(t, path, true, true, "cancelled")
	})
}

// TestLockdDisconnectReleasesAll: a client that holds 20 locks and waits
// for 5 more closes its socket: every file becomes lockable, no helper
// is left, and lockd's fd count is back where it was.
func TestLockdDisconnectReleasesAll(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	fds := fdCount(t, l.Pid)
	c := connectLockd(t, l.sock)
	var held, pending []string
	var releases []func()
	for i := range 20 {
		name := fmt.Sprintf("held%02d", i)
		c.lock(uint32(i+1), i%2 == 0, name)
		held = append(held, filepath.Join(l.dir, name))
	}
	for i := range 5 {
		name := fmt.Sprintf("pending%d", i)
		path := filepath.Join(l.dir, name)
		releases = append(releases, holdLock(t, path, true))
		c.pend(uint32(100+i), i%2 == 0, name)
		pending = append(pending, path)
	}
	for i := range 5 {
		c.waitHelperBlocked(uint32(100 + i))
	}
	// Held locks cost no process: only the 5 waits have helpers.
	if n := len(l.helpers(t)); n != 5 {
		t.Errorf("lockd has %d children; want 5 helpers (one per pending lock)", n)
	}
	c.conn.Close()
	waitNoHelpers(t, l.Pid, "the client disconnected")
	for _, path := range held {
		wantLockable(t, path, true, true, "the client disconnected")
	}
	for _, r := range releases {
		r()
	}
	for _, path := range pending {
		wantLockable(t, path, true, true, "the client disconnected")
	}
	var now int
	if !poll(deadline(t), func() bool {
		now = fdCount(t, l.Pid)
		return now == fds
	}) {
		t.Errorf("lockd has %d fds after the client left (%v); want %d as before", now, openFDs(t, l.Pid), fds)
	}
}

// TestLockdHelperKilled: a held lock has no helper (lockd holds it on its
// own open file); a helper killed while it waits for a lock fails the
// request with "f EPIPE", hstatus 137, leaves the lock untaken, and List
// forgets the request.
func TestLockdHelperKilled(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	c := connectLockd(t, l.sock)
	c.lock(1, true, "x")
	if e := entry(t, c.list(2), os.Getpid(), 1); e.HelperPID != 0 || len(l.helpers(t)) != 0 {
		t.Fatalf("held lock %+v, lockd's children %v; want no helper", e, l.helpers(t))
	}
	release := holdLock(t, filepath.Join(l.dir, "y"), true)
	c.pend(3, true, "y")
	h := c.waitHelperBlocked(3)
	if err := unix.Kill(h, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if m := c.expect(lockproto.MsgFailed, 3, unix.EPIPE); m.HStatus != 137 {
		t.Errorf("f EPIPE hstatus %d; want 137", m.HStatus)
	}
	es := c.list(4)
	if len(es) != 1 || es[0].ID != 1 {
		t.Errorf("list after the helper died = %+v; want only lock 1", es)
	}
	c.release(3)
	c.reply(3, unix.ENOENT)
	release()
	wantLockable(t, filepath.Join(l.dir, "y"), true, true, "its helper died")
	wantLockable(t, filepath.Join(l.dir, "x"), true, false, "lock 1 is held")
	if n := len(l.helpers(t)); n != 0 {
		t.Errorf("lockd has %d children; want 0", n)
	}
}

// TestLockdKilled: lockd killed with SIGKILL while it holds 50 locks and
// waits for 5: its helpers die with it (PR_SET_PDEATHSIG), every file
// becomes lockable (the locks were on lockd's own open files), and the
// next lockd replaces the stale socket.
func TestLockdKilled(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	c := connectLockd(t, l.sock)
	var held, pending []string
	var releases []func()
	for i := range 50 {
		name := fmt.Sprintf("held%02d", i)
		c.lock(uint32(i+1), i%3 != 0, name)
		held = append(held, filepath.Join(l.dir, name))
	}
	for i := range 5 {
		name := fmt.Sprintf("pending%d", i)
		path := filepath.Join(l.dir, name)
		releases = append(releases, holdLock(t, path, true))
		c.pend(uint32(100+i), true, name)
		pending = append(pending, path)
	}
	for i := range 5 {
		c.waitHelperBlocked(uint32(100 + i))
	}
	hs := l.helpers(t)
	if len(hs) != 5 {
		t.Fatalf("lockd has %d children; want 5 helpers (one per pending lock)", len(hs))
	}
	l.Signal(unix.SIGKILL)
	if r := l.Wait(t); r.Signal != unix.SIGKILL {
		t.Fatalf("lockd = %s; want killed by SIGKILL", r.Status())
	}
	// The helpers were re-parented to the test process (a subreaper) and
	// die by their PDEATHSIG.
	for _, h := range hs {
		if ws := reapOrphan(t, h.Pid); !(ws.Signaled() && ws.Signal() == unix.SIGKILL) {
			t.Errorf("helper %d: wait status %#x; want killed by SIGKILL (PDEATHSIG)", h.Pid, ws)
		}
	}
	c.expectEOF()
	for _, path := range held {
		wantLockable(t, path, true, true, "lockd was killed")
	}
	for _, r := range releases {
		r()
	}
	for _, path := range pending {
		wantLockable(t, path, true, true, "lockd was killed")
	}
	if st, err := os.Lstat(l.sock); err != nil || st.Mode().Type() != os.ModeSocket {
		t.Fatalf("Lstat(%s) = %v, %v; want the stale socket", l.sock, st, err)
	}
	l2 := startLockdOn(t, Opts{}, l.sock, l.dir)
	c2 := connectLockd(t, l2.sock)
	c2.lock(1, true, "held00")
}

// TestLockdNames: every row of the names table, plus symlinks planted in
// lockdir; nothing is created outside lockdir.
func TestLockdNames(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	outside := t.TempDir()
	for _, d := range []string{"dir", "sub", "d1", strings.Repeat("a", 200)} {
		if err := os.Mkdir(filepath.Join(l.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("a", 200)
	deep := filepath.Join(l.dir, long, long, long, long)
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(l.dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"evil":      filepath.Join(outside, "target"),
		"evildir":   outside,
		"inlink":    "file",
		"sub/up":    "..",
		"dirlink":   "sub",
		"d1/escape": "../../" + filepath.Base(outside),
	} {
		if err := os.Symlink(target, filepath.Join(l.dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	name1024 := long + "/" + long + "/" + long + "/" + long + "/" + strings.Repeat("b", 1024-4*201)
	c := connectLockd(t, l.sock)
	id := uint32(0)
	for _, tt := range []struct {
		name string
		ex   bool
		want syscall.Errno
	}{
		{"ok", true, 0},
		{"ok shared", false, 0},
		{"sub/ok", true, 0},
		{"odd \x01\xff\n name", true, 0},
		{strings.Repeat("c", 255), true, 0},
		{name1024, true, 0},
		{"", true, unix.EINVAL},
		{"a\x00b", true, unix.EINVAL},
		{"/abs", true, unix.EINVAL},
		{"sub//x", true, unix.EINVAL},
		{"sub/", true, unix.EINVAL},
		{".", true, unix.EINVAL},
		{"..", true, unix.EINVAL},
		{"./x", true, unix.EINVAL},
		{"sub/./x", true, unix.EINVAL},
		{"sub/../x", true, unix.EINVAL},
		{"../x", true, unix.EINVAL},
		{strings.Repeat("c", 1025), true, unix.ENAMETOOLONG},
		{name1024 + "b", true, unix.ENAMETOOLONG},
		{strings.Repeat("c", 256), true, unix.ENAMETOOLONG},
		{"missing/" + strings.Repeat("c", 256), true, unix.ENAMETOOLONG},
		{"evil", true, unix.ELOOP},
		{"evil", false, unix.ELOOP},
		{"evildir/x", true, unix.ELOOP},
		{"evildir/x", false, unix.ELOOP},
		{"inlink", true, unix.ELOOP},
		{"sub/up/x", true, unix.ELOOP},
		{"dirlink/x", true, unix.ELOOP},
		{"d1/escape/x", true, unix.ELOOP},
		{"missing/x", true, unix.ENOENT},
		{"missing/x", false, unix.ENOENT},
		{"dir", true, unix.EISDIR},
		{"dir", false, unix.EISDIR},
		{"fifo", false, unix.EINVAL},
		{"file/x", true, unix.ENOTDIR},
	} {
		id++
		c.acquire(id, tt.ex, lockproto.Forever, tt.name)
		m := c.next()
		if m.Type != lockproto.MsgReply || m.ID != id || m.Errno != tt.want {
			t.Errorf("acquire %s %.60q: %s; want r %d %s", lockKind(tt.ex), tt.name, msgString(m), id, errnoName(tt.want))
			if m.Type != lockproto.MsgReply || m.Errno != 0 {
				continue
			}
		}
		if m.Errno != 0 {
			continue
		}
		c.expect(lockproto.MsgGranted, id, 0)
		path := filepath.Join(l.dir, tt.name)
		wantLockable(t, path, true, false, fmt.Sprintf("%.60q held", tt.name))
		c.unlock(id)
		st, err := os.Lstat(path)
		if err != nil || !st.Mode().IsRegular() {
			t.Errorf("Lstat(%.60q) = %v, %v; want a regular file", path, st, err)
		}
	}
	if ents, err := os.ReadDir(outside); err != nil || len(ents) != 0 {
		t.Errorf("ReadDir(%s) = %v, %v; want nothing created outside lockdir", outside, ents, err)
	}
	for _, p := range []string{"missing", "sub/x", "dir/x"} {
		if _, err := os.Lstat(filepath.Join(l.dir, p)); err == nil {
			t.Errorf("%s was created", p)
		}
	}
	wantNoHelpers(t, l.Pid, "all names tried")
}

// TestLockdAccess: the socket mode and the uid list are two gates; lock
// files belong to lockd's uid; a lockdir writable by others is refused.
func TestLockdAccess(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("connecting as uid 65534 needs root")
	}
	const nobody = 65534
	t.Run("socket 0600", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t)
		connectLockd(t, l.sock) // lockd's setup is done
		if st, err := os.Stat(l.sock); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("Stat(%s) = %v, %v; want mode 0600", l.sock, st, err)
		}
		conn, err := dialAs(nobody, nobody, l.sock)
		if err == nil {
			conn.Close()
		}
		if !errors.Is(err, unix.EACCES) {
			t.Errorf("connect as uid %d: %v; want EACCES", nobody, err)
		}
	})
	t.Run("not admitted", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t, "-m", "0666")
		connectLockd(t, l.sock)
		if st, err := os.Stat(l.sock); err != nil || st.Mode().Perm() != 0o666 {
			t.Errorf("Stat(%s) = %v, %v; want mode 0666", l.sock, st, err)
		}
		conn, err := dialAs(nobody, nobody, l.sock)
		if err != nil {
			t.Fatalf("connect as uid %d: %v", nobody, err)
		}
		c := newLockClient(t, conn)
		if h := c.hello(); h.Status != unix.EPERM {
			t.Errorf("hello as uid %d without -u: status %v; want EPERM", nobody, h.Status)
		}
		c.expectEOF()
	})
	t.Run("admitted", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t, "-m", "0666", "-u", "123,65534")
		root := connectLockd(t, l.sock)
		conn, err := dialAs(nobody, nobody, l.sock)
		if err != nil {
			t.Fatalf("connect as uid %d: %v", nobody, err)
		}
		c := newLockClient(t, conn)
		if h := c.hello(); h.Status != 0 {
			t.Fatalf("hello as uid %d with -u: status %v; want 0", nobody, h.Status)
		}
		c.lock(1, true, "n")
		st, err := os.Stat(filepath.Join(l.dir, "n"))
		if err != nil || st.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
			t.Errorf("Stat(lockdir/n) = %v, %v; want a file owned by lockd's uid %d", st, err, os.Geteuid())
		}
		root.lock(1, true, "r")
		// Each admitted client sees every lock.
		for _, cl := range []*lockClient{root, c} {
			es := cl.list(2)
			if len(es) != 2 {
				t.Errorf("list = %+v; want 2 entries", es)
				continue
			}
			for _, e := range es {
				want := map[string]int{"n": nobody, "r": 0}[e.Name]
				if e.UID != want || e.PID != os.Getpid() {
					t.Errorf("entry %+v; want uid %d, pid %d", e, want, os.Getpid())
				}
			}
		}
	})
	t.Run("bad lockdir", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name  string
			mode  os.FileMode
			owner int
			msg   bool
		}{
			{name: "0777", mode: 0o777, owner: 0, msg: true},
			{name: "0770", mode: 0o770, owner: 0, msg: true},
			{name: "0702", mode: 0o702, owner: 0, msg: true},
			{name: "owned by another uid", mode: 0o700, owner: nobody},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				dir := newLockdir(t)
				if err := os.Chmod(dir, tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(dir, tt.owner, tt.owner); err != nil {
					t.Fatal(err)
				}
				sock := lockdSocket(t)
				r := run(t, "lockd", "-s", sock, dir)
				want := "lockd: fatal: lockdir " + dir + " is writable by other users\n"
				if r.Code != 100 || tt.msg && r.Stderr != want || !oneLine(r.Stderr) {
					t.Errorf("lockd -s %s on a lockdir %s = %s, stderr %q; want exit 100, %q", sock, tt.name, r.Status(), r.Stderr, want)
				}
				if _, err := os.Lstat(sock); err == nil {
					t.Errorf("lockd left %s behind", sock)
				}
			})
		}
	})
}

// TestLockdAccessCommands: gotools' own clients run as uid 65534 (through
// setpriv): lockd -L is refused (exit 1) unless the uid is admitted, and
// setlock -s then takes a lock in a file owned by lockd's uid.
func TestLockdAccessCommands(t *testing.T) {
	t.Parallel()
	bin, as := nobodyFarm(t, "lockd", "setlock")
	refused := startLockd(t, "-m", "0666")
	if r := run(t, append(as, filepath.Join(bin, "lockd"), "-L", refused.sock)...); r.Code != 1 || !oneLine(r.Stderr) {
		t.Errorf("lockd -L as uid 65534, not admitted = %s, stdout %q, stderr %q; want exit 1 and one line", r.Status(), r.Stdout, r.Stderr)
	}
	closed := startLockd(t)
	if r := run(t, append(as, filepath.Join(bin, "lockd"), "-L", closed.sock)...); r.Code != 111 || !oneLine(r.Stderr) {
		t.Errorf("lockd -L as uid 65534 on a 0600 socket = %s, stderr %q; want exit 111 and one line", r.Status(), r.Stderr)
	}
	l := startLockd(t, "-m", "0666", "-u", "65534")
	if r := run(t, append(as, filepath.Join(bin, "lockd"), "-L", l.sock)...); r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		t.Errorf("lockd -L as uid 65534, admitted = %s, stdout %q, stderr %q; want exit 0, no lock", r.Status(), r.Stdout, r.Stderr)
	}
	r := run(t, append(as, filepath.Join(bin, "setlock"), "-s", l.sock, "n", "sh", "-c", "id -u")...)
	if r.Code != 0 || r.Stdout != "65534\n" || r.Stderr != "" {
		t.Errorf("setlock -s as uid 65534 = %s, stdout %q, stderr %q; want exit 0, 65534", r.Status(), r.Stdout, r.Stderr)
	}
	st, err := os.Stat(filepath.Join(l.dir, "n"))
	if err != nil || st.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
		t.Errorf("Stat(lockdir/n) = %v, %v; want a file owned by lockd's uid %d", st, err, os.Geteuid())
	}
	wantLockable(t, filepath.Join(l.dir, "n"), true, true, "setlock's prog exited")
}

// TestLockdLockdirProblems: a missing lockdir is a system failure (111,
// nothing bound); one lockd's user cannot write to gives each acquire the
// open's errno (EACCES) in its reply, and lockd serves on.
func TestLockdLockdirProblems(t *testing.T) {
	t.Parallel()
	sock := lockdSocket(t)
	missing := filepath.Join(t.TempDir(), "nosuch")
	if r := run(t, "lockd", "-s", sock, missing); r.Code != 111 || !oneLine(r.Stderr) || !strings.Contains(r.Stderr, missing) {
		t.Errorf("lockd on a missing lockdir = %s, stderr %q; want exit 111 and one line naming it", r.Status(), r.Stderr)
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Errorf("lockd on a missing lockdir left %s", sock)
	}

	bin, asNobody := nobodyFarm(t, "lockd")
	dir := filepath.Join(bin, "locks")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	rundir := filepath.Join(bin, "run")
	if err := os.Mkdir(rundir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(rundir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	nsock := filepath.Join(rundir, "s")
	p := start(t, append(asNobody, filepath.Join(bin, "lockd"), "-s", nsock, dir)...)
	waitFor(t, "lockd as uid 65534 to listen", func() bool {
		if !p.Running() {
			t.Fatalf("lockd as uid 65534 exited: %s, stderr %q", p.Wait(t).Status(), p.Stderr())
		}
		c, err := lockproto.Dial(context.Background(), nsock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	c, err := lockproto.Dial(context.Background(), nsock)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if _, err := c.TryAcquire("db", lockproto.Exclusive); !errors.Is(err, syscall.EACCES) {
		t.Errorf("acquire in a lockdir lockd cannot write = %v; want EACCES", err)
	}
	if es, err := c.List(context.Background()); err != nil || len(es) != 0 {
		t.Errorf("List after the refusal = %+v, %v; want no entry", es, err)
	}
}

// TestLockdLimits: -n and -N limit the locks, pending ones included; id
// errors are request errors.
func TestLockdLimits(t *testing.T) {
	t.Parallel()
	t.Run("-n 3", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t, "-n", "3")
		c := dialLockd(t, l.sock)
		if h := c.hello(); h.Status != 0 || h.MaxLocks != 3 {
			t.Fatalf("hello %+v; want status 0, maxlocks 3", h)
		}
		holdLock(t, filepath.Join(l.dir, "p"), true)
		c.lock(1, true, "a")
		c.lock(2, false, "b")
		c.pend(3, true, "p")
		c.acquire(4, true, lockproto.Forever, "c")
		c.reply(4, unix.ENOLCK)
		c.unlock(1)
		c.lock(4, true, "c")
		// Another client has its own 3.
		o := connectLockd(t, l.sock)
		o.lock(1, true, "d")
	})
	t.Run("-N 3", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t, "-N", "3")
		holdLock(t, filepath.Join(l.dir, "p"), true)
		a, b := connectLockd(t, l.sock), connectLockd(t, l.sock)
		a.lock(1, true, "a")
		a.pend(2, true, "p")
		b.lock(1, true, "b")
		b.acquire(2, true, lockproto.Forever, "c")
		b.reply(2, unix.ENOLCK)
		a.unlock(2)
		b.lock(2, true, "c")
	})
	t.Run("ids", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t)
		holdLock(t, filepath.Join(l.dir, "p"), true)
		c := connectLockd(t, l.sock)
		c.lock(1, true, "a")
		c.pend(2, true, "p")
		for _, tt := range []struct {
			name string
			req  lockproto.Request
			want syscall.Errno
		}{
			{name: "held id", req: acquireReq(1, true, lockproto.Forever, "b"), want: unix.EEXIST},
			{name: "pending id", req: acquireReq(2, true, 0, "b"), want: unix.EEXIST},
			{name: "id 0", req: acquireReq(0, true, lockproto.Forever, "b"), want: unix.EINVAL},
			{name: "flags 4", req: lockproto.Request{Op: lockproto.OpAcquire, ID: 3, Flags: 4, Timeout: 0, Name: "b"}, want: unix.EINVAL},
			{name: "flags 0x81", req: lockproto.Request{Op: lockproto.OpAcquire, ID: 3, Flags: 0x81, Timeout: 0, Name: "b"}, want: unix.EINVAL},
			{name: "release unknown", req: lockproto.Request{Op: lockproto.OpRelease, ID: 3}, want: unix.ENOENT},
		} {
			c.request(tt.req)
			if m := c.next(); m.Type != lockproto.MsgReply || m.ID != tt.req.ID || m.Errno != tt.want {
				t.Errorf("%s: %s; want r %d %s", tt.name, msgString(m), tt.req.ID, errnoName(tt.want))
			}
		}
		// Nothing was taken or spawned for them.
		if es := c.list(9); len(es) != 2 {
			t.Errorf("list = %+v; want locks 1 and 2 only", es)
		}
		if _, err := os.Lstat(filepath.Join(l.dir, "b")); err == nil {
			t.Errorf("lockdir/b was created by a refused request")
		}
		c.unlock(1)
		c.unlock(2)
		c.lock(1, true, "a")
	})
}

// TestLockdProtocolErrors: a bad frame or request gets "r 0 EPROTO" and the
// connection is dropped, which releases its locks; other clients go on.
func TestLockdProtocolErrors(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	other := connectLockd(t, l.sock)
	other.lock(1, true, "other")
	frame := func(p []byte) []byte { return lockproto.AppendFrame(nil, p) }
	for i, tt := range []struct {
		name  string
		bytes []byte
	}{
		{name: "frame length 0", bytes: []byte{0, 0, 0, 0}},
		{name: "frame length 4097", bytes: []byte{0, 0, 0x10, 0x01, 'L', 0, 0, 0, 1}},
		{name: "frame length 2^32-1", bytes: []byte{0xff, 0xff, 0xff, 0xff}},
		{name: "unknown op", bytes: frame([]byte{'Z', 0, 0, 0, 9})},
		{name: "lowercase op", bytes: frame([]byte{'a', 0, 0, 0, 9})},
		{name: "short acquire", bytes: frame([]byte{'A', 0, 0, 0, 9, 1})},
		{name: "short release", bytes: frame([]byte{'R', 0, 0, 9})},
		{name: "long release", bytes: frame([]byte{'R', 0, 0, 0, 9, 0})},
		{name: "short list", bytes: frame([]byte{'L'})},
		{name: "namelen too big", bytes: frame([]byte{'A', 0, 0, 0, 9, 1, 0, 0, 0, 0, 0, 5, 'a', 'b', 'c'})},
		{name: "namelen too small", bytes: frame([]byte{'A', 0, 0, 0, 9, 1, 0, 0, 0, 0, 0, 1, 'a', 'b', 'c'})},
		{name: "second hello", bytes: []byte(lockproto.ClientBanner)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := connectLockd(t, l.sock)
			held := fmt.Sprintf("held%d", i)
			pend := fmt.Sprintf("pend%d", i)
			c.lock(1, true, held)
			release := holdLock(t, filepath.Join(l.dir, pend), true)
			c.pend(2, true, pend)
			c.send(tt.bytes)
			if m := c.next(); m.Type != lockproto.MsgReply || m.ID != 0 || m.Errno != unix.EPROTO {
				t.Errorf("after %q: %s; want r 0 EPROTO", tt.bytes, msgString(m))
			}
			c.expectEOF()
			waitLockable(t, filepath.Join(l.dir, held), "the bad client was dropped")
			var kids []procStat
			if !poll(deadline(t), func() bool {
				kids = l.helpers(t)
				return len(kids) == 0
			}) {
				t.Errorf("lockd's children %v; want none (the other client's lock is held by lockd itself)", kids)
			}
			release()
			wantLockable(t, filepath.Join(l.dir, pend), true, true, "the bad client was dropped")
		})
	}
	wantLockable(t, filepath.Join(l.dir, "other"), true, false, "the other client holds")
	if es := other.list(2); len(es) != 1 || es[0].Name != "other" || !es[0].Held {
		t.Errorf("the other client's list = %+v; want its lock alone", es)
	}
	other.lock(3, true, "more")
}

// TestLockdList: List rows carry the owner's pid and uid, the helper's
// pid, mode, state, name, a growing age and the time left; lockd -L
// prints them.
func TestLockdList(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	a, b := connectLockd(t, l.sock), connectLockd(t, l.sock)
	holdLock(t, filepath.Join(l.dir, "busy"), true)
	a.lock(7, true, "held")
	a.lock(8, false, "odd\x01\xffname")
	b.acquire(9, false, 60000, "busy")
	b.reply(9, 0)
	b.acquire(3, true, lockproto.Forever, "busy")
	b.reply(3, 0)
	b.waitHelperBlocked(9)
	// Lock 3 waits behind lock 9 for the same name: queued in lockd,
	// with no helper of its own.
	es := a.list(100)
	if len(es) != 4 {
		t.Fatalf("list = %+v; want 4 entries", es)
	}
	me := os.Getpid()
	type row struct {
		id   uint32
		name string
		mode lockproto.Mode
		held bool
	}
	rows := []row{
		{7, "held", lockproto.Exclusive, true},
		{8, "odd\x01\xffname", lockproto.Shared, true},
		{9, "busy", lockproto.Shared, false},
		{3, "busy", lockproto.Exclusive, false},
	}
	hpids := map[uint32]int{}
	for _, r := range rows {
		e := entry(t, es, me, r.id)
		hpids[r.id] = e.HelperPID
		if e.Name != r.name || e.Mode != r.mode || e.Held != r.held || e.UID != os.Geteuid() || e.Age < 0 {
			t.Errorf("entry %+v; want name %q, mode %v, held %v, uid %d", e, r.name, r.mode, r.held, os.Geteuid())
		}
		// A held lock has no helper; a pending one's helper locks
		// lockd's open file ("d" mode).
		argv := procArgv(e.HelperPID)
		mode := map[lockproto.Mode]string{lockproto.Exclusive: "wd", lockproto.Shared: "rd"}[r.mode]
		if r.held || r.id == 3 {
			if e.HelperPID != 0 {
				t.Errorf("entry %+v: helper pid %d; want 0 for a lock lockd holds itself or a queued request", e, e.HelperPID)
			}
		} else if st, err := readStat(e.HelperPID); err != nil || st.PPid != l.Pid || !slices.Equal(argv, []string{"lockd-helper", mode, r.name}) {
			t.Errorf("entry %+v: helper %d has argv %q, parent %v (%v); want lockd-helper %s %q, a child of lockd %d", e, e.HelperPID, argv, st, err, mode, r.name, l.Pid)
		}
		switch {
		case r.held && e.Left != 0:
			t.Errorf("entry %+v: left %v; want 0 when held", e, e.Left)
		case r.id == 9 && (e.Left <= 0 || e.Left > 60*time.Second):
			t.Errorf("entry %+v: left %v; want 0..60s", e, e.Left)
		case r.id == 3 && e.Left != -1:
			t.Errorf("entry %+v: left %v; want forever (-1)", e, e.Left)
		}
	}
	// b sees the same table.
	if esb := b.list(100); len(esb) != 4 {
		t.Errorf("the other client's list = %+v; want 4 entries", esb)
	}
	// Age grows, left shrinks.
	age0 := entry(t, es, me, 7).Age
	left0 := entry(t, es, me, 9).Left
	waitFor(t, "the age of lock 7 to grow", func() bool {
		es2 := a.list(101)
		return entry(t, es2, me, 7).Age > age0 && entry(t, es2, me, 9).Left < left0
	})

	r := run(t, "lockd", "-L", l.sock)
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("lockd -L = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	got := lines(r.Stdout)
	if len(got) != 4 || !strings.HasSuffix(r.Stdout, "\n") {
		t.Fatalf("lockd -L printed %q; want 4 lines", r.Stdout)
	}
	for _, want := range []struct {
		id                      uint32
		mode, state, left, name string
	}{
		{7, "ex", "held", "-", "held"},
		{8, "sh", "held", "-", `odd\x01\xffname`},
		{9, "sh", "pending", "[0-9]+", "busy"},
		{3, "ex", "pending", "-", "busy"},
	} {
		re := regexp.MustCompile(fmt.Sprintf(`^%d\t%d\t%d\t%s\t%s\t[0-9]+\t%s\t%d\t%s$`,
			me, os.Geteuid(), want.id, want.mode, want.state, want.left, hpids[want.id], regexp.QuoteMeta(want.name)))
		if !slices.ContainsFunc(got, re.MatchString) {
			t.Errorf("lockd -L printed %q; want a line matching %q", r.Stdout, re)
		}
	}
	if r := run(t, "lockd", "-L", lockdSocket(t)); r.Code != 111 || !oneLine(r.Stderr) {
		t.Errorf("lockd -L without a lockd = %s, stderr %q; want exit 111 and one line", r.Status(), r.Stderr)
	}
}

// startChildLockd starts "lockd LOCKDIR" in child mode with fds 0 and 1
// both one end of a socketpair, and returns it and a client on the other
// end.
func startChildLockd(t testing.TB, dir string) (*Proc, *lockClient) {
	t.Helper()
	p, conn := startChildLockdConn(t, dir)
	return p, newLockClient(t, conn)
}

// startChildLockdConn is startChildLockd with the bare connection.
func startChildLockdConn(t testing.TB, dir string) (*Proc, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "lockd client"), os.NewFile(uintptr(fds[1]), "lockd fd 0")
	defer mine.Close()
	p := startIn(t, Opts{StdinFile: theirs}, "sh", "-c", `exec lockd "$1" >&0`, "sh", dir)
	theirs.Close()
	c, err := net.FileConn(mine)
	if err != nil {
		t.Fatal(err)
	}
	return p, c.(*net.UnixConn)
}

// TestLockdGoClient: the Go client (lib/lockproto) on a child-mode lockd,
// as lockproto.Spawn sets it up: acquire, busy try, release, a lost lock,
// and Close ending lockd with exit 0.
func TestLockdGoClient(t *testing.T) {
	t.Parallel()
	dir := newLockdir(t)
	p, conn := startChildLockdConn(t, dir)
	ctx := context.Background()
	c, err := lockproto.NewClient(ctx, conn)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	a, err := c.Acquire(ctx, "a", lockproto.Exclusive)
	if err != nil {
		t.Fatalf("Acquire(a): %v", err)
	}
	wantLockable(t, filepath.Join(dir, "a"), false, false, "a held")
	if _, err := c.TryAcquire("a", lockproto.Shared); !errors.Is(err, unix.EBUSY) {
		t.Errorf("TryAcquire(a) while held = %v; want EBUSY", err)
	}
	es, err := c.List(ctx)
	if err != nil || len(es) != 1 || es[0].Name != "a" || !es[0].Held || es[0].PID != os.Getpid() {
		t.Fatalf("List() = %+v, %v; want a, held by pid %d", es, err, os.Getpid())
	}
	// A wait whose helper is killed fails with EPIPE.
	w, err := c.Start("a", lockproto.Exclusive, time.Minute)
	if err != nil {
		t.Fatalf("Start(a) while held: %v", err)
	}
	var hpid int
	waitFor(t, "a helper to wait for a", func() bool {
		es, err := c.List(ctx)
		for _, e := range es {
			if err == nil && !e.Held && e.HelperPID > 0 && inFcntl(e.HelperPID) {
				hpid = e.HelperPID
			}
		}
		return hpid > 0
	})
	if err := unix.Kill(hpid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Done():
	case <-time.After(time.Until(deadline(t))):
		t.Fatal("Done() not closed after the helper was killed")
	}
	if err := w.Err(); !errors.Is(err, unix.EPIPE) {
		t.Errorf("Err() of a wait whose helper died = %v; want EPIPE", err)
	}
	if err := a.Release(); err != nil {
		t.Errorf("Release(a): %v", err)
	}
	b, err := c.Acquire(ctx, "b", lockproto.Shared)
	if err != nil {
		t.Fatalf("Acquire(b): %v", err)
	}
	if err := b.Release(); err != nil {
		t.Errorf("Release(b): %v", err)
	}
	if !canLock(t, filepath.Join(dir, "b"), true) {
		t.Errorf("b still locked after Release returned")
	}
	if _, err := c.Acquire(ctx, "c", lockproto.Exclusive); err != nil {
		t.Fatalf("Acquire(c): %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// The busy try's helper said so on lockd's stderr, its own fd 2.
	if r := p.Wait(t); r.Code != 0 || strings.Contains(r.Stderr, "lockd:") {
		t.Errorf("lockd after Close = %s, stderr %q; want exit 0, no message of lockd's", r.Status(), r.Stderr)
	}
	wantLockable(t, filepath.Join(dir, "c"), true, true, "lockd exited")
}

// TestLockdChildMode: lockd on its fds 0 and 1 serves one client; EOF
// makes it exit 0 after releasing everything, a protocol error exit 100,
// silence exit 111.
func TestLockdChildMode(t *testing.T) {
	t.Parallel()
	t.Run("eof", func(t *testing.T) {
		t.Parallel()
		dir := newLockdir(t)
		p, c := startChildLockd(t, dir)
		if h := c.hello(); h.Status != 0 || h.MaxLocks != 1024 {
			t.Fatalf("hello %+v; want status 0, maxlocks 1024", h)
		}
		c.lock(1, true, "a")
		wantLockable(t, filepath.Join(dir, "a"), true, false, "held")
		c.unlock(1)
		wantLockable(t, filepath.Join(dir, "a"), true, true, "released")
		c.lock(2, true, "a")
		holdLock(t, filepath.Join(dir, "p"), true)
		c.pend(3, true, "p")
		e := entry(t, c.list(4), os.Getpid(), 2)
		if e.UID != os.Geteuid() {
			t.Errorf("entry %+v; want uid %d", e, os.Geteuid())
		}
		c.conn.Close()
		if r := p.Wait(t); r.Code != 0 || r.Stderr != "" {
			t.Errorf("lockd after EOF = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
		}
		if left := groupMembers(p.Pid); len(left) != 0 {
			t.Errorf("lockd exited, leaving %v", left)
		}
		wantLockable(t, filepath.Join(dir, "a"), true, true, "lockd exited")
	})
	t.Run("protocol error", func(t *testing.T) {
		t.Parallel()
		dir := newLockdir(t)
		p, c := startChildLockd(t, dir)
		c.hello()
		c.lock(1, true, "a")
		c.send([]byte{0, 0, 0, 0})
		c.reply(0, unix.EPROTO)
		c.expectEOF()
		if r := p.Wait(t); r.Code != 100 || !oneLine(r.Stderr) {
			t.Errorf("lockd after a protocol error = %s, stderr %q; want exit 100 and one line", r.Status(), r.Stderr)
		}
		if left := groupMembers(p.Pid); len(left) != 0 {
			t.Errorf("lockd exited, leaving %v", left)
		}
		wantLockable(t, filepath.Join(dir, "a"), true, true, "lockd exited")
	})
	t.Run("silence", func(t *testing.T) {
		t.Parallel()
		t0 := time.Now()
		p, _ := startChildLockd(t, newLockdir(t))
		r := p.Wait(t)
		want := "lockd: fatal: unable to sync with client\n"
		if d := time.Since(t0); r.Code != 111 || r.Stderr != want || d < 2*time.Second || d > 20*time.Second {
			t.Errorf("lockd with a silent client = %s after %v, stderr %q; want exit 111 after 2s..20s, %q", r.Status(), d, r.Stderr, want)
		}
	})
	t.Run("s6-ipcserver", func(t *testing.T) {
		t.Parallel()
		ipcserver := requireS6(t, "s6-ipcserver")[0]
		dir := newLockdir(t)
		sock := lockdSocket(t)
		p := start(t, ipcserver, sock, "lockd", dir)
		waitListening(t, p, sock)
		for range 2 {
			c := connectLockd(t, sock)
			c.lock(1, true, "a")
			wantLockable(t, filepath.Join(dir, "a"), true, false, "held")
			if e := entry(t, c.list(2), os.Getpid(), 1); e.Name != "a" {
				t.Errorf("entry %+v; want a", e)
			}
			c.conn.Close()
			waitLockable(t, filepath.Join(dir, "a"), "the client left")
		}
	})
}

// TestLockdShutdown: SIGTERM makes lockd tell its clients (f and x
// ESHUTDOWN), release everything, remove its socket and exit 0.
func TestLockdShutdown(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	c := connectLockd(t, l.sock)
	c.lock(1, true, "a")
	holdLock(t, filepath.Join(l.dir, "p"), true)
	c.pend(2, true, "p")
	c.waitHelperBlocked(2)
	l.Signal(unix.SIGTERM)
	got := map[string]bool{}
	for range 2 {
		m := c.next()
		got[fmt.Sprintf("%c %d %s", m.Type, m.ID, errnoName(m.Errno))] = true
	}
	if !got["x 1 ESHUTDOWN"] || !got["f 2 ESHUTDOWN"] {
		t.Errorf("lockd on SIGTERM sent %v; want x 1 ESHUTDOWN and f 2 ESHUTDOWN", got)
	}
	c.expectEOF()
	if r := l.Wait(t); r.Code != 0 {
		t.Errorf("lockd on SIGTERM = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	if left := groupMembers(l.Pid); len(left) != 0 {
		t.Errorf("lockd exited, leaving %v", left)
	}
	if _, err := os.Lstat(l.sock); err == nil {
		t.Errorf("lockd left its socket %s", l.sock)
	}
	wantLockable(t, filepath.Join(l.dir, "a"), true, true, "lockd exited")
}

// TestLockdSocketFile: a stale socket is replaced, a live one is left to
// its lockd (111), a non-socket refused (100); "@name" is abstract; a
// missing lockdir is a system failure (111).
func TestLockdSocketFile(t *testing.T) {
	t.Parallel()
	t.Run("in use", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t)
		r := run(t, "lockd", "-s", l.sock, newLockdir(t))
		want := "lockd: fatal: unable to bind " + l.sock + ": Address already in use\n"
		if r.Code != 111 || r.Stderr != want {
			t.Errorf("a second lockd on %s = %s, stderr %q; want exit 111, %q", l.sock, r.Status(), r.Stderr, want)
		}
		connectLockd(t, l.sock).lock(1, true, "a")
	})
	t.Run("stale", func(t *testing.T) {
		t.Parallel()
		sock := lockdSocket(t)
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close()
		l := startLockdOn(t, Opts{}, sock, newLockdir(t))
		connectLockd(t, l.sock).lock(1, true, "a")
	})
	t.Run("not a socket", func(t *testing.T) {
		t.Parallel()
		sock := lockdSocket(t)
		if err := os.WriteFile(sock, []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := run(t, "lockd", "-s", sock, newLockdir(t)); r.Code != 100 || !oneLine(r.Stderr) {
			t.Errorf("lockd -s on a regular file = %s, stderr %q; want exit 100 and one line", r.Status(), r.Stderr)
		}
		if b, err := os.ReadFile(sock); err != nil || string(b) != "data" {
			t.Errorf("ReadFile(%s) = %q, %v; want it untouched", sock, b, err)
		}
	})
	t.Run("abstract", func(t *testing.T) {
		t.Parallel()
		name := fmt.Sprintf("@gotools-test-lockd-%d-%d", os.Getpid(), time.Now().UnixNano())
		l := startLockdOn(t, Opts{}, name, newLockdir(t))
		c := connectLockd(t, name)
		c.lock(1, true, "a")
		wantLockable(t, filepath.Join(l.dir, "a"), true, false, "held")
	})
	t.Run("missing lockdir", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "missing")
		if r := run(t, "lockd", "-s", lockdSocket(t), dir); r.Code != 111 || !oneLine(r.Stderr) {
			t.Errorf("lockd on a missing lockdir = %s, stderr %q; want exit 111 and one line", r.Status(), r.Stderr)
		}
	})
}

// TestLockdPipelined: requests written in one burst are answered in
// order, each acquire's g after its r.
func TestLockdPipelined(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	c := connectLockd(t, l.sock)
	var burst []byte
	for i := range 50 {
		id := uint32(i + 1)
		burst = lockproto.AppendFrame(burst, acquireReq(id, i%2 == 0, 0, fmt.Sprintf("p%d", i)).Marshal())
		burst = lockproto.AppendFrame(burst, lockproto.Request{Op: lockproto.OpRelease, ID: 1000 + id}.Marshal())
	}
	c.send(burst)
	accepted := map[uint32]bool{}
	granted := 0
	next := 0 // index of the next reply expected: 2 per round
	for next < 100 || granted < 50 {
		m := c.next()
		switch m.Type {
		case lockproto.MsgReply:
			id, errno := uint32(next/2+1), syscall.Errno(0)
			if next%2 == 1 {
				id, errno = 1000+id, unix.ENOENT
			}
			if m.ID != id || m.Errno != errno {
				t.Fatalf("reply %d: %s; want r %d %s", next, msgString(m), id, errnoName(errno))
			}
			if next%2 == 0 {
				accepted[id] = true
			}
			next++
		case lockproto.MsgGranted:
			if !accepted[m.ID] {
				t.Fatalf("%s before its r", msgString(m))
			}
			granted++
		default:
			t.Fatalf("unexpected %s", msgString(m))
		}
	}
	if es := c.list(9999); len(es) != 50 {
		t.Errorf("list has %d entries; want 50", len(es))
	}
}

// TestLockdHelperEnvironment: a helper runs in lockdir, with an empty
// environment, fds 0 and 1 one socket, fd 2 lockd's stderr and nothing
// else but the lock file it opens, no signal ignored or blocked by inheritance.
func TestLockdHelperEnvironment(t *testing.T) {
	t.Parallel()
	l := startLockdOn(t, Opts{Env: []string{"GOTOOLS_TEST_LEAK=1"}}, lockdSocket(t), newLockdir(t))
	c := connectLockd(t, l.sock)
	release := holdLock(t, filepath.Join(l.dir, "a"), true)
	defer release()
	c.pend(1, true, "a")
	h := c.waitHelperBlocked(1)
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", h)); err != nil || cwd != l.dir {
		t.Errorf("helper cwd %q, %v; want %s", cwd, err, l.dir)
	}
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", h)); err != nil || len(env) != 0 {
		t.Errorf("helper environment %q, %v; want empty", env, err)
	}
	fds := withoutGoRuntime(openFDs(t, h))
	lockdFDs := openFDs(t, l.Pid)
	// fd 3 is lockd's open lock file, which the helper locks.
	lockFile := filepath.Join(l.dir, "a")
	if len(fds) != 4 || !strings.HasPrefix(fds[0], "socket:") || fds[1] != fds[0] || fds[2] != lockdFDs[2] || fds[3] != lockFile {
		t.Errorf("helper fds %v; want 0 and 1 one socket, 2 lockd's stderr %q, 3 %s", fds, lockdFDs[2], lockFile)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "SigIgn" || k == "SigBlk") && strings.Trim(strings.TrimSpace(v), "0") != "" {
			exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", h))
			lst, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", l.Pid))
			t.Errorf("helper %d (%s) %s: %s; want none (lockd's: %q)", h, exe, k, strings.TrimSpace(v), sigLines(string(lst)))
		}
	}
}

// sigLines keeps the Sig* lines of a /proc/PID/status text.
func sigLines(status string) []string {
	var out []string
	for _, line := range strings.Split(status, "\n") {
		if strings.HasPrefix(line, "Sig") {
			out = append(out, line)
		}
	}
	return out
}

// TestLockdHelperFailures: how a helper ends before or after "!" becomes
// f or x with the errno of the spec's table and the helper's status, with
// fake helpers named by GOTOOLS_LOCK_HELPER.
func TestLockdHelperFailures(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		script  string
		granted bool // the script says "!" first
		typ     byte
		errno   syscall.Errno
		hstatus uint16
	}{
		{name: "exit 1", script: "exit 1", typ: lockproto.MsgFailed, errno: unix.ENOLCK, hstatus: 1},
		{name: "exit 111", script: "exit 111", typ: lockproto.MsgFailed, errno: unix.EIO, hstatus: 111},
		{name: "exit 3", script: "exit 3", typ: lockproto.MsgFailed, errno: unix.EPIPE, hstatus: 3},
		{name: "exit 0", script: "exit 0", typ: lockproto.MsgFailed, errno: unix.EPIPE, hstatus: 0},
		{name: "killed", script: "kill -TERM $$", typ: lockproto.MsgFailed, errno: unix.EPIPE, hstatus: 128 + 15},
		{name: "garbage", script: "printf x; exec /bin/sleep 1000", typ: lockproto.MsgFailed, errno: unix.EPROTO, hstatus: lockproto.KilledByLockd},
		{name: "held then exit 0", script: "printf '!'; exit 0", granted: true, typ: lockproto.MsgLost, errno: unix.EOWNERDEAD, hstatus: 0},
		{name: "held then exit 5", script: "printf '!'; exit 5", granted: true, typ: lockproto.MsgLost, errno: unix.EOWNERDEAD, hstatus: 5},
		{name: "held then killed", script: "printf '!'; kill -KILL $$", granted: true, typ: lockproto.MsgLost, errno: unix.EOWNERDEAD, hstatus: 137},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			helper := filepath.Join(t.TempDir(), "helper")
			if err := writeExecutable(helper, []byte("#!/bin/sh\n"+tt.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			l := startLockdOn(t, Opts{Env: []string{"GOTOOLS_LOCK_HELPER=" + helper}}, lockdSocket(t), newLockdir(t))
			c := connectLockd(t, l.sock)
			// lockd takes a free lock itself: hold it, so that it waits
			// through the helper.
			release := holdLock(t, filepath.Join(l.dir, "x"), true)
			defer release()
			c.pend(1, true, "x")
			if tt.granted {
				c.expect(lockproto.MsgGranted, 1, 0)
			}
			if m := c.expect(tt.typ, 1, tt.errno); m.HStatus != tt.hstatus {
				t.Errorf("%s: hstatus %d; want %d", msgString(m), m.HStatus, tt.hstatus)
			}
			wantNoHelpers(t, l.Pid, "after "+tt.name)
			c.release(1)
			c.reply(1, unix.ENOENT)
			if es := c.list(2); len(es) != 0 {
				t.Errorf("list = %+v; want nothing", es)
			}
		})
	}
}

// TestLockdSlowReader: a client that sends requests and reads nothing
// does not hold lockd up for the others, and gets every answer, in order,
// once it reads.
func TestLockdSlowReader(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	slow := connectLockd(t, l.sock)
	const locks, lists = 10, 200
	for i := range locks {
		slow.lock(uint32(i+1), false, fmt.Sprintf("%03d-%s", i, strings.Repeat("n", 250)))
	}
	// About 2.8 KB per list: 560 KB of answers, beyond any socket buffer
	// and lockd's 64 KiB queue.
	var burst []byte
	for i := range lists {
		burst = lockproto.AppendFrame(burst, lockproto.Request{Op: lockproto.OpList, ID: uint32(1000 + i)}.Marshal())
	}
	done := make(chan error, 1)
	go func() {
		_, err := slow.conn.Write(burst) // may block: lockd stops reading
		done <- err
	}()
	other := connectLockd(t, l.sock)
	for i := range 20 {
		other.lock(uint32(i+1), true, "other")
		other.unlock(uint32(i + 1))
	}
	if es := other.list(99); len(es) != locks {
		t.Errorf("the other client's list has %d entries; want %d", len(es), locks)
	}
	// lockd may answer the first lists while the other client holds its
	// lock: count the slow client's own entries.
	for i := range lists {
		es := slow.list0(uint32(1000 + i))
		mine := 0
		for _, e := range es {
			if e.Name != "other" {
				mine++
			}
		}
		if mine != locks || len(es) > locks+1 {
			t.Fatalf("list %d has %d entries, %d of them the slow client's; want %d of them", i, len(es), mine, locks)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("write of %d list requests: %v", lists, err)
	}
	slow.lock(5000, true, "after")
}

// list0 reads the answer to a list request already sent: entries, then r.
func (c *lockClient) list0(id uint32) []lockproto.Entry {
	c.t.Helper()
	var es []lockproto.Entry
	for {
		m := c.next()
		switch {
		case m.Type == lockproto.MsgEntry && m.ID == id:
			es = append(es, m.Entry)
		case m.Type == lockproto.MsgReply && m.ID == id && m.Errno == 0:
			return es
		default:
			c.t.Fatalf("message from lockd during list %d: %s; want entries, then r %d 0", id, msgString(m), id)
		}
	}
}

// TestLockdTimeoutOnlyWhilePending: the timeout of a granted request no
// longer matters: the lock stays held past it.
func TestLockdTimeoutOnlyWhilePending(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	c := connectLockd(t, l.sock)
	c.acquire(1, true, 100, "x")
	c.reply(1, 0)
	c.expect(lockproto.MsgGranted, 1, 0)
	waitFor(t, "the lock to be held for 500 ms", func() bool {
		return entry(t, c.list(2), os.Getpid(), 1).Age >= 500*time.Millisecond
	})
	wantLockable(t, filepath.Join(l.dir, "x"), true, false, "held past its timeout")
	c.unlock(1)
}

// TestLockdUsage: bad options and operands exit 100 with one line.
func TestLockdUsage(t *testing.T) {
	t.Parallel()
	dir := newLockdir(t)
	sock := lockdSocket(t)
	for _, argv := range [][]string{
		{"lockd"},
		{"lockd", "-s", sock},
		{"lockd", "-n", "65537", "-s", sock, dir},
		{"lockd", "-n", "x", "-s", sock, dir},
		{"lockd", "-N", "-1", "-s", sock, dir},
		{"lockd", "-c", "0x10", "-s", sock, dir},
		{"lockd", "-m", "0999", "-s", sock, dir},
		{"lockd", "-u", "nobody", "-s", sock, dir},
		{"lockd", "-x", "-s", sock, dir},
	} {
		if r := run(t, argv...); r.Code != 100 || !(oneLine(r.Stderr) || isUsageError(r.Stderr, "lockd")) {
			t.Errorf("run(%q) = %s, stderr %q; want exit 100 and one line (or the usage line and one naming the bad word)", argv, r.Status(), r.Stderr)
		}
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Errorf("a refused lockd left %s", sock)
	}
}

// TestLockdShutdownSignals: SIGINT, SIGHUP and SIGQUIT end lockd as SIGTERM
// does; a socket path that no longer holds lockd's socket is left alone.
func TestLockdShutdownSignals(t *testing.T) {
	t.Parallel()
	for _, sig := range []unix.Signal{unix.SIGINT, unix.SIGHUP, unix.SIGQUIT} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			t.Parallel()
			l := startLockd(t)
			c := connectLockd(t, l.sock)
			c.lock(1, true, "a")
			l.Signal(sig)
			if m := c.next(); m.Type != lockproto.MsgLost || m.ID != 1 || m.Errno != unix.ESHUTDOWN {
				t.Errorf("on %s: %s; want x 1 ESHUTDOWN", unix.SignalName(sig), msgString(m))
			}
			c.expectEOF()
			if r := l.Wait(t); r.Code != 0 {
				t.Errorf("lockd on %s = %s, stderr %q; want exit 0", unix.SignalName(sig), r.Status(), r.Stderr)
			}
			if _, err := os.Lstat(l.sock); err == nil {
				t.Errorf("lockd left its socket %s", l.sock)
			}
		})
	}
	t.Run("replaced socket", func(t *testing.T) {
		t.Parallel()
		l := startLockd(t)
		connectLockd(t, l.sock)
		if err := os.Remove(l.sock); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(l.sock, []byte("mine"), 0o600); err != nil {
			t.Fatal(err)
		}
		l.Signal(unix.SIGTERM)
		if r := l.Wait(t); r.Code != 0 {
			t.Errorf("lockd on SIGTERM = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
		}
		if b, err := os.ReadFile(l.sock); err != nil || string(b) != "mine" {
			t.Errorf("ReadFile(%s) = %q, %v; want the file that replaced lockd's socket", l.sock, b, err)
		}
	})
}

// TestLockdVerbose: lockd is silent on stderr by default; with -v it logs
// (connections, refusals, releases) in lines of its own.
func TestLockdVerbose(t *testing.T) {
	t.Parallel()
	for _, verbose := range []bool{false, true} {
		t.Run(fmt.Sprintf("-v %v", verbose), func(t *testing.T) {
			t.Parallel()
			var args []string
			if verbose {
				args = []string{"-v"}
			}
			l := startLockd(t, args...)
			c := connectLockd(t, l.sock)
			c.lock(1, true, "a")
			c.unlock(1)
			c.lock(2, true, "a")
			c.conn.Close()
			waitNoHelpers(t, l.Pid, "the client left")
			bad := dialLockd(t, l.sock)
			bad.send([]byte("gotools-lockd v0 (c)\n"))
			bad.readHello()
			bad.expectEOF()
			if verbose {
				waitFor(t, "lockd -v to log", func() bool { return len(lines(l.Stderr())) >= 2 })
			}
			l.Signal(unix.SIGTERM)
			r := l.Wait(t)
			switch {
			case !verbose && r.Stderr != "":
				t.Errorf("lockd without -v wrote %q; want nothing", r.Stderr)
			case verbose && !strings.HasSuffix(r.Stderr, "\n"):
				t.Errorf("lockd -v wrote %q; want whole lines", r.Stderr)
			case verbose:
				for _, line := range lines(r.Stderr) {
					if !strings.HasPrefix(line, "lockd: ") {
						t.Errorf("lockd -v line %q; want a lockd: prefix", line)
					}
				}
			}
		})
	}
}

// pipePair is a client's duplex stream made of two pipes.
type pipePair struct {
	r, w *os.File
}

func (p pipePair) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p pipePair) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p pipePair) Close() error {
	p.w.Close()
	return p.r.Close()
}

// TestLockdChildModePipes: child mode on two pipes instead of a socket;
// the client is then lockd's parent, with lockd's uid.
func TestLockdChildModePipes(t *testing.T) {
	t.Parallel()
	dir := newLockdir(t)
	inR, inW := pipe(t)
	outR, outW := pipe(t)
	p := startIn(t, Opts{StdinFile: inR, ExtraFiles: []*os.File{outW}}, "sh", "-c", `exec lockd "$1" >&3 3>&-`, "sh", dir)
	inR.Close()
	outW.Close()
	ctx := context.Background()
	c, err := lockproto.NewClient(ctx, pipePair{r: outR, w: inW})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	if _, err := c.Acquire(ctx, "a", lockproto.Exclusive); err != nil {
		t.Fatalf("Acquire(a): %v", err)
	}
	es, err := c.List(ctx)
	if err != nil || len(es) != 1 || es[0].PID != os.Getpid() || es[0].UID != os.Geteuid() {
		t.Errorf("List() = %+v, %v; want one entry, pid %d (lockd's parent), uid %d", es, err, os.Getpid(), os.Geteuid())
	}
	wantLockable(t, filepath.Join(dir, "a"), true, false, "a held")
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if r := p.Wait(t); r.Code != 0 || r.Stderr != "" {
		t.Errorf("lockd after EOF = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	wantLockable(t, filepath.Join(dir, "a"), true, true, "lockd exited")
}
