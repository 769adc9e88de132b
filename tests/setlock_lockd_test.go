package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/lockproto"
)

// End-to-end tests of setlock -s, a lock from lockd (spec/locks.md
// "setlock", lockd mode; "Acceptance tests" 6), and of the Go client
// (lib/lockproto) against the real lockd. lockd runs in the foreground
// under the harness; the test's own OFD locks are the independent second
// locker, and the client's List shows who holds what.

// slLockd is a lockd in server mode for a setlock test.
type slLockd struct {
	sock string // the socket
	dir  string // the lock directory
	p    *Proc
}

// startSlLockd starts `lockd -s SOCK DIR` on a new socket and lock
// directory and waits until it answers a handshake.
func startSlLockd(t *testing.T) *slLockd {
	t.Helper()
	// A Unix socket path holds at most 107 bytes: keep it short.
	sdir, err := os.MkdirTemp("", "sl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sdir) })
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	l := &slLockd{sock: filepath.Join(sdir, "s"), dir: dir}
	l.p = start(t, "lockd", "-s", l.sock, dir)
	waitFor(t, "lockd to answer on "+l.sock, func() bool {
		if !l.p.Running() {
			t.Fatalf("lockd exited: %s, stderr %q", l.p.Wait(t).Status(), l.p.Stderr())
		}
		c, err := lockproto.Dial(context.Background(), l.sock)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return l
}

// client returns a Go client of l, closed at the end of the test.
func (l *slLockd) client(t *testing.T) *lockproto.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := lockproto.Dial(ctx, l.sock)
	if err != nil {
		t.Fatalf("Dial(%s): %v", l.sock, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// list returns lockd's table.
func slList(t *testing.T, c *lockproto.Client) []lockproto.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	es, err := c.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return es
}

// entriesOf returns the entries of l's table owned by pid.
func slEntriesOf(t *testing.T, c *lockproto.Client, pid int) []lockproto.Entry {
	t.Helper()
	var mine []lockproto.Entry
	for _, e := range slList(t, c) {
		if e.PID == pid {
			mine = append(mine, e)
		}
	}
	return mine
}

// waitTableEmpty waits until lockd's table is empty: every lock released.
func slWaitTableEmpty(t *testing.T, c *lockproto.Client, when string) {
	t.Helper()
	var es []lockproto.Entry
	if !poll(deadline(t), func() bool { es = slList(t, c); return len(es) == 0 }) {
		t.Fatalf("%s: lockd still lists %+v", when, es)
	}
}

// TestSetlockLockdHoldsLockForProg: prog runs holding the lock from lockd
// on the locked file itself (lockd passed its open file): the file is
// locked, lockd no longer lists it (setlock's connection ended at exec),
// -n and -t fail with s6's messages, and the lock is free once prog exits.
func TestSetlockLockdHoldsLockForProg(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		opts []string
		mode lockproto.Mode
	}{
		{name: "default", mode: lockproto.Exclusive},
		{name: "-w -t 5000", opts: []string{"-w", "-t", "5000"}, mode: lockproto.Exclusive},
		{name: "-r", opts: []string{"-r"}, mode: lockproto.Shared},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := startSlLockd(t)
			c := l.client(t)
			path := filepath.Join(l.dir, "db")
			argv := append(append([]string{"setlock", "-s", l.sock}, tt.opts...), append([]string{"db"}, holdProg...)...)
			p, w := startProg(t, Opts{}, argv...)
			p.WaitLine(t, "^ready$")

			slWaitTableEmpty(t, c, "setlock handed the lock to prog")
			lockFDs := 0
			for _, target := range beyondStdio(openFDs(t, p.Pid)) {
				if target == path {
					lockFDs++
				}
			}
			if lockFDs != 1 {
				t.Errorf("%q: prog's fds %v; want exactly one on %s", argv, openFDs(t, p.Pid), path)
			}
			wantLockable(t, path, true, false, "prog holds the lock from lockd")
			wantLockable(t, path, false, tt.mode == lockproto.Shared, "prog holds the lock from lockd")

			// An exclusive request fails either way.
			r := run(t, "setlock", "-n", "-s", l.sock, "db", "sh", "-c", "echo ran")
			if want := busyMsg("db"); r.Code != 1 || r.Stdout != "" || r.Stderr != want {
				t.Errorf("setlock -n -s SOCK db = %s, stdout %q, stderr %q; want exit 1, stderr %q", r.Status(), r.Stdout, r.Stderr, want)
			}
			begin := time.Now()
			r = run(t, "setlock", "-t", "300", "-s", l.sock, "db", "sh", "-c", "echo ran")
			elapsed := time.Since(begin)
			if want := "setlock: fatal: lock db: timed out\n"; r.Code != 1 || r.Stdout != "" || r.Stderr != want {
				t.Errorf("setlock -t 300 -s SOCK db = %s, stdout %q, stderr %q; want exit 1, stderr %q", r.Status(), r.Stdout, r.Stderr, want)
			}
			if elapsed < 300*time.Millisecond {
				t.Errorf("setlock -t 300 -s SOCK db gave up after %v; want >= 300ms", elapsed)
			}
			// A shared request runs along a shared holder.
			r = run(t, "setlock", "-r", "-n", "-s", l.sock, "db", "sh", "-c", "echo ran")
			if tt.mode == lockproto.Shared {
				if r.Code != 0 || r.Stdout != "ran\n" || r.Stderr != "" {
					t.Errorf("setlock -r -n -s SOCK db along -r = %s, stdout %q, stderr %q; want exit 0, ran", r.Status(), r.Stdout, r.Stderr)
				}
			} else if want := busyMsg("db"); r.Code != 1 || r.Stderr != want {
				t.Errorf("setlock -r -n -s SOCK db along -w = %s, stderr %q; want exit 1, %q", r.Status(), r.Stderr, want)
			}

			w.WriteString("x\n")
			if r := p.Wait(t); r.Code != 0 || r.Stderr != "" {
				t.Errorf("%q = %s, stderr %q; want exit 0", argv, r.Status(), r.Stderr)
			}
			slWaitTableEmpty(t, c, "prog exited")
			wantLockable(t, path, true, true, "prog exited and lockd released its lock")
			lk, err := c.TryAcquire("db", lockproto.Exclusive)
			if err != nil {
				t.Fatalf("TryAcquire(db) after prog exited: %v", err)
			}
			if err := lk.Release(); err != nil {
				t.Errorf("Release: %v", err)
			}
		})
	}
}

// TestSetlockLockdWaits: without -n, setlock -s waits (pending in lockd)
// while the lock is busy, and prog runs once it is free; -t does the same
// within its time.
func TestSetlockLockdWaits(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		opts []string
	}{
		{name: "forever"},
		{name: "-t 10000", opts: []string{"-t", "10000"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := startSlLockd(t)
			c := l.client(t)
			held, err := c.TryAcquire("db", lockproto.Exclusive)
			if err != nil {
				t.Fatalf("TryAcquire: %v", err)
			}
			argv := append(append([]string{"setlock", "-s", l.sock}, tt.opts...), "db", "sh", "-c", "echo ran")
			p := start(t, argv...)
			waitFor(t, "setlock's request pending in lockd", func() bool {
				es := slEntriesOf(t, c, p.Pid)
				return len(es) == 1 && !es[0].Held || !p.Running()
			})
			if !p.Running() || p.Stdout() != "" {
				t.Fatalf("%q ran while the lock was busy: %s, stdout %q, stderr %q", argv, p.Wait(t).Status(), p.Stdout(), p.Stderr())
			}
			if err := held.Release(); err != nil {
				t.Fatalf("Release: %v", err)
			}
			if r := p.Wait(t); r.Code != 0 || r.Stdout != "ran\n" || r.Stderr != "" {
				t.Errorf("%q = %s, stdout %q, stderr %q; want exit 0, ran", argv, r.Status(), r.Stdout, r.Stderr)
			}
			slWaitTableEmpty(t, c, "prog exited")
		})
	}
}

// TestSetlockLockdClientKilledMidAcquire: a setlock -s killed while its
// request is pending in lockd leaves nothing behind: its entry and its
// helper go, and the lock, once released by its holder, goes straight to
// the next locker.
func TestSetlockLockdClientKilledMidAcquire(t *testing.T) {
	t.Parallel()
	l := startSlLockd(t)
	c := l.client(t)
	held, err := c.TryAcquire("db", lockproto.Exclusive)
	if err != nil {
		t.Fatalf("TryAcquire: %v", err)
	}
	p := start(t, "setlock", "-s", l.sock, "db", "sh", "-c", "echo ran")
	var helper int
	waitFor(t, "setlock's request pending in lockd", func() bool {
		es := slEntriesOf(t, c, p.Pid)
		if len(es) == 1 && !es[0].Held {
			helper = es[0].HelperPID
			return true
		}
		return false
	})
	p.Signal(unix.SIGKILL)
	if r := p.Wait(t); r.Signal != unix.SIGKILL || r.Stdout != "" {
		t.Fatalf("setlock = %s, stdout %q; want killed before prog ran", r.Status(), r.Stdout)
	}
	waitFor(t, "the killed client's entry to go", func() bool { return len(slEntriesOf(t, c, p.Pid)) == 0 })
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", helper)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("helper %d of the killed client: %v; want it gone (killed and reaped)", helper, err)
	}
	next := start(t, "setlock", "-s", l.sock, "db", "sh", "-c", "echo next")
	waitFor(t, "the next request pending", func() bool {
		es := slEntriesOf(t, c, next.Pid)
		return len(es) == 1 && !es[0].Held
	})
	if err := held.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if r := next.Wait(t); r.Code != 0 || r.Stdout != "next\n" {
		t.Errorf("next setlock = %s, stdout %q; want exit 0, next", r.Status(), r.Stdout)
	}
	slWaitTableEmpty(t, c, "every locker done")
}

// TestSetlockLockdFailures: refusals by lockd exit 1 with its reason; an
// unreachable lockd or a peer that is not lockd exit 111. Nothing is
// created outside the lock directory.
func TestSetlockLockdFailures(t *testing.T) {
	t.Parallel()
	l := startSlLockd(t)
	c := l.client(t)
	stale := filepath.Join(t.TempDir(), "stale")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // a socket file nobody listens on
	long := strings.Repeat("a", lockproto.MaxName+1)
	for _, tt := range []struct {
		name string
		sock string
		lock string
		code int
		msg  string
	}{
		// A bad name is named (issue 14 item 9), not "Invalid argument".
		{name: "dotdot", sock: l.sock, lock: "../x", code: 1, msg: `unable to lock ../x: the lock name has a ".." component: it must stay inside lockd's directory`},
		{name: "escape", sock: l.sock, lock: "../escape", code: 1, msg: `unable to lock ../escape: the lock name has a ".." component: it must stay inside lockd's directory`},
		{name: "dot", sock: l.sock, lock: "a/./b", code: 1, msg: `unable to lock a/./b: the lock name has a "." component: it must stay inside lockd's directory`},
		{name: "absolute", sock: l.sock, lock: "/etc/passwd", code: 1, msg: "unable to lock /etc/passwd: the lock name is absolute (starts with /): it must be relative to lockd's directory"},
		{name: "empty component", sock: l.sock, lock: "a//b", code: 1, msg: "unable to lock a//b: the lock name has an empty component (// or a trailing /)"},
		{name: "missing directory", sock: l.sock, lock: "nodir/x", code: 1, msg: "unable to lock nodir/x: No such file or directory"},
		{name: "too long", sock: l.sock, lock: long, code: 1, msg: "unable to lock " + long + ": the lock name is longer than 1024 bytes"},
		{name: "no lockd", sock: filepath.Join(t.TempDir(), "none"), lock: "x", code: 111, msg: "unable to connect to SOCK: No such file or directory"},
		{name: "stale socket", sock: stale, lock: "x", code: 111, msg: "unable to connect to SOCK: Connection refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			argv := []string{"setlock", "-s", tt.sock, tt.lock, "sh", "-c", "echo ran"}
			r := run(t, argv...)
			want := "setlock: fatal: " + strings.ReplaceAll(tt.msg, "SOCK", tt.sock) + "\n"
			if r.Code != tt.code || r.Stdout != "" || r.Stderr != want {
				t.Errorf("setlock -s %s %s ... = %s, stdout %q, stderr %q; want exit %d, stderr %q", tt.sock, tt.lock, r.Status(), r.Stdout, r.Stderr, tt.code, want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(l.dir), "x")); err == nil {
		t.Errorf("setlock -s SOCK ../x created %s", filepath.Join(filepath.Dir(l.dir), "x"))
	}
	if es := slList(t, c); len(es) != 0 {
		t.Errorf("lockd lists %+v after refusals; want nothing", es)
	}
}

// TestSetlockLockdNotLockd: a peer that answers the banner with something
// else, or refuses the client, is "unable to talk to lockd", exit 111.
func TestSetlockLockdNotLockd(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		answer []byte
		reason string
	}{
		{name: "garbage", answer: []byte(strings.Repeat("?", lockproto.HelloSize)), reason: "Protocol error"},
		{name: "EPERM", answer: lockproto.Hello{Status: syscall.EPERM, MaxPayload: 4096, MaxName: 1024}.Marshal(), reason: "Operation not permitted"},
		{name: "EUSERS", answer: lockproto.Hello{Status: syscall.EUSERS, MaxPayload: 4096, MaxName: 1024}.Marshal(), reason: "Too many users"},
		{name: "silence then close", reason: "Connection reset by peer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sdir, err := os.MkdirTemp("", "sl-")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(sdir)
			sock := filepath.Join(sdir, "s")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			served := make(chan error, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					served <- err
					return
				}
				defer conn.Close()
				b := make([]byte, len(lockproto.ClientBanner))
				if _, err := conn.Read(b); err != nil {
					served <- err
					return
				}
				_, err = conn.Write(tt.answer)
				served <- err
			}()
			r := run(t, "setlock", "-s", sock, "db", "sh", "-c", "echo ran")
			want := "setlock: fatal: unable to talk to lockd at " + sock + ": " + tt.reason + "\n"
			if r.Code != 111 || r.Stdout != "" || r.Stderr != want {
				t.Errorf("setlock -s SOCK db ... = %s, stdout %q, stderr %q; want exit 111, stderr %q", r.Status(), r.Stdout, r.Stderr, want)
			}
			if err := <-served; err != nil {
				t.Errorf("fake lockd: %v", err)
			}
		})
	}
}

// TestSetlockLockdFD: prog gets the connection to lockd as its only fd
// beyond stdio, at -d fd if given; closing it releases the lock while
// prog keeps running.
func TestSetlockLockdFD(t *testing.T) {
	t.Parallel()
	l := startSlLockd(t)
	c := l.client(t)
	for _, tt := range []struct {
		name string
		opts []string
		fd   int // 0: any fd above 2
	}{
		{name: "anywhere"},
		{name: "-d 5", opts: []string{"-d", "5"}, fd: 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			argv := append(append([]string{"setlock", "-s", l.sock}, tt.opts...), "fd-"+strings.ReplaceAll(tt.name, " ", ""), "fdlist")
			r := run(t, argv...)
			if r.Code != 0 || r.Stderr != "" {
				t.Fatalf("%q = %s, stderr %q; want exit 0", argv, r.Status(), r.Stderr)
			}
			all := fdLines(t, r.Stdout)
			fds := beyondStdio(all)
			ok := len(fds) == 1 && len(all) == 4
			file := filepath.Join(l.dir, argv[len(argv)-2])
			for fd, target := range fds {
				ok = ok && (tt.fd == 0 || fd == tt.fd) && target == file
			}
			if !ok {
				t.Errorf("%q: prog inherited\n%s\nwant 0, 1, 2 and the lock file %s (at fd %d if not 0)", argv, r.Stdout, file, tt.fd)
			}
		})
	}
	slWaitTableEmpty(t, c, "the fdlist progs exited")

	p, w := startProg(t, Opts{}, "setlock", "-s", l.sock, "-d", "5", "db", "sh", "-c", "exec 5>&-; echo closed; read x")
	p.WaitLine(t, "^closed$")
	slWaitTableEmpty(t, c, "prog closed fd 5")
	wantLockable(t, filepath.Join(l.dir, "db"), true, true, "prog closed fd 5")
	w.WriteString("x\n")
	if r := p.Wait(t); r.Code != 0 {
		t.Errorf("setlock -d 5 ... = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
}

// TestLockprotoClient drives the Go client against the real lockd:
// acquire, busy, context deadline, list, release, and a disconnect that
// releases everything.
func TestLockprotoClient(t *testing.T) {
	t.Parallel()
	l := startSlLockd(t)
	a := l.client(t)
	b := l.client(t)
	if lim := a.Limits(); lim.MaxPayload != lockproto.MaxPayload || lim.MaxName != lockproto.MaxName || lim.MaxLocks != 1024 {
		t.Errorf("Limits() = %+v; want 4096, 1024, 1024", lim)
	}
	ctx := context.Background()
	la, err := a.Acquire(ctx, "x", lockproto.Exclusive)
	if err != nil {
		t.Fatalf("Acquire(x): %v", err)
	}
	path := filepath.Join(l.dir, "x")
	wantLockable(t, path, false, false, "client a holds x")
	if _, err := b.TryAcquire("x", lockproto.Shared); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("TryAcquire(x) by b = %v; want EBUSY", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	begin := time.Now()
	_, err = b.Acquire(dctx, "x", lockproto.Exclusive)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) < 200*time.Millisecond {
		t.Errorf("Acquire(x, 200ms) by b = %v after %v; want context.DeadlineExceeded after >= 200ms", err, time.Since(begin))
	}
	if _, err := a.Acquire(ctx, "../x", lockproto.Exclusive); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Acquire(../x) = %v; want EINVAL", err)
	}
	pending, err := b.Start("x", lockproto.Shared, -1)
	if err != nil {
		t.Fatalf("Start(x): %v", err)
	}
	var es []lockproto.Entry
	waitFor(t, "b's request pending in List", func() bool {
		es = slList(t, a)
		return len(es) == 2
	})
	held, wait := 0, 0
	for _, e := range es {
		if e.PID != os.Getpid() || e.Name != "x" {
			t.Errorf("List entry %+v; want pid %d, name x", e, os.Getpid())
		}
		if e.Held {
			held++
		} else {
			wait++
		}
	}
	if held != 1 || wait != 1 {
		t.Errorf("List = %+v; want one held and one pending", es)
	}
	if err := la.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	<-pending.Done()
	if err := pending.Err(); err != nil {
		t.Fatalf("b's pending lock after a's release: %v", err)
	}
	wantLockable(t, path, false, true, "b holds x shared")
	wantLockable(t, path, true, false, "b holds x shared")
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	<-pending.Lost()
	slWaitTableEmpty(t, a, "b disconnected")
	wantLockable(t, path, true, true, "b disconnected")
}
