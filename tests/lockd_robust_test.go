package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/lockproto"
)

// Faults and attacks on lockd (issue 20 items 2, 3 and 10): stalled
// clients, many clients, running out of fds, other users near the lock
// files. The long versions are in soak_lockd_test.go.

// TestLockdUnfinishedFrameTimesOut: clients that send half a frame and
// stop are dropped after 2 s, so that they do not hold their slots; a
// real client gets in afterwards.
func TestLockdUnfinishedFrameTimesOut(t *testing.T) {
	t.Parallel()
	l := startLockd(t, "-c", "2")
	var stalled []*lockClient
	for range 2 {
		c := connectLockd(t, l.sock)
		// The length and 3 bytes of a 14-byte acquire.
		c.send(lockproto.AppendFrame(nil, acquireReq(1, true, 0, "abcde").Marshal())[:7])
		stalled = append(stalled, c)
	}
	t0 := time.Now()
	if h := dialLockd(t, l.sock).hello(); h.Status != unix.EUSERS {
		t.Fatalf("third client with -c 2: hello status %v; want EUSERS", h.Status)
	}
	for _, c := range stalled {
		c.expectEOF()
	}
	if d := time.Since(t0); d < 1900*time.Millisecond {
		t.Errorf("the stalled clients were dropped after %v; want >= 2s", d)
	}
	c := connectLockd(t, l.sock)
	c.lock(1, true, "a")
	c.unlock(1)
}

// TestLockdManyClients: 200 well-behaved clients connected at once are all
// admitted with the default -c.
func TestLockdManyClients(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	var cs []*lockClient
	for range 200 {
		c := dialLockd(t, l.sock)
		c.send([]byte(lockproto.ClientBanner))
		cs = append(cs, c)
	}
	refused := 0
	for _, c := range cs {
		h, err := lockproto.ParseHello(c.readHello())
		if err != nil || h.Status != 0 {
			refused++
		}
	}
	if refused != 0 {
		t.Errorf("%d of 200 clients refused with the default -c; want none", refused)
	}
	cs[199].lock(1, true, "a")
	cs[0].unlockUnknown(0xdead0000) // the first client is served too
}

// unlock of an unknown id, for a client that has nothing.
func (c *lockClient) unlockUnknown(id uint32) {
	c.t.Helper()
	c.release(id)
	c.reply(id, unix.ENOENT)
}

// cpuTicks is utime + stime of pid (/proc/PID/stat), in clock ticks.
func cpuTicks(t testing.TB, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var u, sy int
	fmt.Sscan(f[11], &u)
	fmt.Sscan(f[12], &sy)
	return u + sy
}

// TestLockdOutOfFDs: lockd at its fd limit (RLIMIT_NOFILE lowered under
// it) with clients waiting to be accepted does not spin, warns once, and
// keeps serving the client it has; once fds are back it accepts the
// waiting clients.
func TestLockdOutOfFDs(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	a := connectLockd(t, l.sock)
	a.lock(1, true, "a")
	var old unix.Rlimit
	if err := unix.Prlimit(l.Pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatal(err)
	}
	n := uint64(fdCount(t, l.Pid))
	if err := unix.Prlimit(l.Pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: old.Max}, nil); err != nil {
		t.Fatal(err)
	}
	var waiting []*net.UnixConn
	for range 5 {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: l.sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(lockproto.ClientBanner))
		waiting = append(waiting, c)
	}
	time.Sleep(100 * time.Millisecond) // EMFILE met
	t0 := cpuTicks(t, l.Pid)
	time.Sleep(1500 * time.Millisecond)
	// A spinning lockd burns about 150 ticks in 1.5 s; a paused one, none.
	if used := cpuTicks(t, l.Pid) - t0; used > 30 {
		t.Errorf("lockd used %d clock ticks in 1.5 s at its fd limit; want it to pause, not spin", used)
	}
	// The client it has is served: a list, a release.
	if es := a.list(2); len(es) != 1 {
		t.Errorf("list at the fd limit = %+v; want lock 1", es)
	}
	a.unlock(1)
	if err := unix.Prlimit(l.Pid, unix.RLIMIT_NOFILE, &old, nil); err != nil {
		t.Fatal(err)
	}
	for i, c := range waiting {
		c.SetReadDeadline(deadline(t))
		b := make([]byte, lockproto.HelloSize)
		if _, err := c.Read(b); err != nil {
			t.Fatalf("client %d waiting while lockd was out of fds: %v", i, err)
		}
		if h, err := lockproto.ParseHello(b); err != nil || h.Status != 0 {
			t.Errorf("client %d: hello %+v, %v; want admitted", i, h, err)
		}
	}
	l.Signal(unix.SIGTERM)
	r := l.Wait(t)
	if got := strings.Count(r.Stderr, "\n"); got != 1 || !strings.HasPrefix(r.Stderr, "lockd: warning: unable to accept a client: Too many open files") {
		t.Errorf("lockd's stderr %q; want one warning", r.Stderr)
	}
}

// TestLockdLockFileMode: lockd creates lock files 0600 whatever its umask,
// so that nobody else can open them and lock them behind its back.
func TestLockdLockFileMode(t *testing.T) {
	t.Parallel()
	dir := newLockdir(t)
	l := startLockdOn(t, Opts{}, lockdSocket(t), dir)
	c := connectLockd(t, l.sock)
	c.lock(1, true, "ex")
	c.lock(2, false, "sh")
	for _, name := range []string{"ex", "sh"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("lock file %s created with mode %v; want 0600", name, st.Mode().Perm())
		}
	}
}

// TestLockdLockdirOthers: in server mode lockd refuses a lockdir that
// other users can traverse unless --shared-lockdir, and one they can
// write into always.
func TestLockdLockdirOthers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mode   os.FileMode
		shared bool
		ok     bool
		msg    string
	}{
		{mode: 0o700, ok: true},
		{mode: 0o755, msg: "can be traversed by other users (mode 0755)"},
		{mode: 0o711, msg: "can be traversed by other users (mode 0711)"},
		{mode: 0o750, msg: "can be traversed by other users (mode 0750)"},
		{mode: 0o755, shared: true, ok: true},
		{mode: 0o775, shared: true, msg: "is writable by other users"},
		{mode: 0o703, shared: true, msg: "is writable by other users"},
	} {
		t.Run(fmt.Sprintf("%04o shared=%v", tt.mode, tt.shared), func(t *testing.T) {
			t.Parallel()
			dir := newLockdir(t)
			if err := os.Chmod(dir, tt.mode); err != nil {
				t.Fatal(err)
			}
			args := []string{"lockd", "-s", lockdSocket(t)}
			if tt.shared {
				args = append(args, "--shared-lockdir")
			}
			args = append(args, dir)
			if tt.ok {
				p := start(t, args...)
				waitListening(t, p, args[2])
				return
			}
			r := run(t, args...)
			if want := "lockd: fatal: lockdir " + dir + " " + tt.msg; r.Code != 100 || !oneLine(r.Stderr) || !strings.HasPrefix(r.Stderr, want) {
				t.Errorf("%q = %s, stderr %q; want exit 100, %q...", args, r.Status(), r.Stderr, want)
			}
		})
	}
}

// TestLockdPassesLockedFile: an acquire with FlagPassFD is granted with G
// and the locked file attached; the client's copy keeps the lock after
// lockd forgets it (release), and closing it frees the lock.
func TestLockdPassesLockedFile(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	c := connectLockd(t, l.sock)
	c.request(lockproto.Request{Op: lockproto.OpAcquire, ID: 1, Flags: lockproto.FlagExclusive | lockproto.FlagPassFD, Timeout: lockproto.Forever, Name: "f"})
	c.reply(1, 0)
	c.conn.SetReadDeadline(deadline(t))
	buf := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := lockproto.SplitFrame(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	if m, err := lockproto.ParseServerMessage(p); err != nil || m.Type != lockproto.MsgGrantedFD || m.ID != 1 {
		t.Fatalf("after r 1 0: %q, %v; want G 1", p, err)
	}
	cms, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(cms) != 1 {
		t.Fatalf("control messages %v, %v; want one", cms, err)
	}
	fds, err := unix.ParseUnixRights(&cms[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights %v, %v; want one fd", fds, err)
	}
	path := filepath.Join(l.dir, "f")
	if got, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fds[0])); err != nil || got != path {
		t.Errorf("passed fd is %q, %v; want %s", got, err, path)
	}
	c.unlock(1)
	wantLockable(t, path, true, false, "lockd released, the client still holds the passed file")
	syscall.Close(fds[0])
	wantLockable(t, path, true, true, "the client closed the passed file")
}

// idleFlood opens n connections to l that never say anything, then checks
// that a real client is admitted and served at once, that the silent ones
// are dropped after the hello timeout, and that lockd's fd count comes
// back. (TestLockdIdleConnections; TestSoakLockdIdleConnections with
// 10,000.)
func idleFlood(t *testing.T, n int) {
	l := startLockd(t)
	base := fdCount(t, l.Pid)
	idle := make([]*net.UnixConn, 0, n)
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for len(idle) < n {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: l.sock, Net: "unix"})
		if errors.Is(err, unix.EAGAIN) {
			time.Sleep(time.Millisecond) // the backlog is full: let lockd accept
			continue
		}
		if err != nil {
			t.Fatalf("connection %d: %v", len(idle), err)
		}
		idle = append(idle, c)
	}
	c := connectLockd(t, l.sock)
	c.lock(1, true, "a")
	c.unlock(1)
	for _, ic := range idle[:min(n, 50)] {
		ic.SetReadDeadline(deadline(t))
		if b, err := io.ReadAll(ic); len(b) != 0 || (err != nil && !errors.Is(err, unix.ECONNRESET)) {
			t.Fatalf("a silent connection read %q, %v; want EOF", b, err)
		}
	}
	var now int
	if !poll(deadline(t), func() bool { now = fdCount(t, l.Pid); return now <= base+1 }) {
		t.Errorf("lockd has %d fds after the silent connections were dropped; want %d (+1, the real client)", now, base)
	}
}

// TestLockdIdleConnections: 500 silent connections do not keep a real
// client out, and are dropped.
func TestLockdIdleConnections(t *testing.T) {
	t.Parallel()
	idleFlood(t, 500)
}

// lockLoad runs clients Go clients on locks lock names for d, each taking
// one lock after another (exclusive, or shared one time in four) and
// checking in-process that no exclusive holder ever overlaps another
// holder. (TestLockdLoad; TestSoakLockdLoad with 200 clients on 10 locks
// for 30 s.)
func lockLoad(t *testing.T, clients, locks int, d time.Duration) {
	l := startLockd(t)
	type state struct{ ex, sh atomic.Int32 }
	st := make([]state, locks)
	var overlaps, taken atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
			defer cancel()
			c, err := lockproto.Dial(ctx, l.sock)
			if err != nil {
				errs <- fmt.Errorf("client %d: Dial: %w", i, err)
				return
			}
			defer c.Close()
			for j := i; time.Now().Before(stop); j++ {
				k := j % locks
				mode := lockproto.Exclusive
				if j%4 == 0 {
					mode = lockproto.Shared
				}
				lk, err := c.Acquire(ctx, fmt.Sprintf("l%d", k), mode)
				if err != nil {
					errs <- fmt.Errorf("client %d: Acquire(l%d): %w", i, k, err)
					return
				}
				if mode == lockproto.Exclusive {
					if st[k].ex.Add(1) != 1 || st[k].sh.Load() != 0 {
						overlaps.Add(1)
					}
					time.Sleep(100 * time.Microsecond)
					st[k].ex.Add(-1)
				} else {
					st[k].sh.Add(1)
					if st[k].ex.Load() != 0 {
						overlaps.Add(1)
					}
					time.Sleep(100 * time.Microsecond)
					st[k].sh.Add(-1)
				}
				taken.Add(1)
				if err := lk.Release(); err != nil {
					errs <- fmt.Errorf("client %d: Release(l%d): %w", i, k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d overlapping critical sections; want 0", n)
	}
	if taken.Load() < int64(clients) {
		t.Errorf("%d locks taken by %d clients in %v; want each client to get at least one", taken.Load(), clients, d)
	}
	t.Logf("%d clients on %d locks for %v: %d critical sections", clients, locks, d, taken.Load())
	if !l.Running() {
		t.Fatalf("lockd died: %s", l.Wait(t).Status())
	}
}

// TestLockdLoad: 20 clients on 2 locks for 1 s.
func TestLockdLoad(t *testing.T) {
	t.Parallel()
	lockLoad(t, 20, 2, time.Second)
}

// TestLockdListJSON: lockd -L SOCKET --json prints the table as one JSON
// array (issue 14 item 12); --json without -L is a usage error.
func TestLockdListJSON(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	c := connectLockd(t, l.sock)
	if r := run(t, "lockd", "-L", l.sock, "--json"); r.Code != 0 || r.Stdout != "[]\n" || r.Stderr != "" {
		t.Errorf("lockd -L --json on an empty table = %s, stdout %q, stderr %q; want [] and exit 0", r.Status(), r.Stdout, r.Stderr)
	}
	c.lock(7, true, "held")
	c.lock(8, false, "odd\xffname")
	release := holdLock(t, filepath.Join(l.dir, "busy"), true)
	defer release()
	c.acquire(9, false, 60000, "busy")
	c.reply(9, 0)
	hpid := c.waitHelperBlocked(9)
	r := run(t, "lockd", "-L", l.sock, "--json")
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("lockd -L --json = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &rows); err != nil {
		t.Fatalf("lockd -L --json printed %q: %v", r.Stdout, err)
	}
	byID := map[float64]map[string]any{}
	for _, row := range rows {
		byID[row["id"].(float64)] = row
	}
	me := float64(os.Getpid())
	for _, want := range []map[string]any{
		{"id": 7.0, "pid": me, "mode": "ex", "state": "held", "left_ms": nil, "helper_pid": 0.0, "name": "held", "name_hex": "68656c64"},
		{"id": 8.0, "pid": me, "mode": "sh", "state": "held", "left_ms": nil, "helper_pid": 0.0, "name": `odd\xffname`, "name_hex": "6f6464ff6e616d65"},
		{"id": 9.0, "pid": me, "mode": "sh", "state": "pending", "helper_pid": float64(hpid), "name": "busy"},
	} {
		got := byID[want["id"].(float64)]
		for k, v := range want {
			if got == nil || got[k] != v {
				t.Errorf("lockd -L --json row %v: %s = %v; want %v (all: %s)", want["id"], k, got[k], v, r.Stdout)
			}
		}
	}
	if left, ok := byID[9]["left_ms"].(float64); !ok || left <= 0 || left > 60000 {
		t.Errorf("pending row left_ms = %v; want 0..60000", byID[9]["left_ms"])
	}
	if len(rows) != 3 {
		t.Errorf("lockd -L --json printed %d rows; want 3", len(rows))
	}
	if r := run(t, "lockd", "--json", l.dir); r.Code != 100 {
		t.Errorf("lockd --json without -L = %s; want exit 100", r.Status())
	}
}

// TestLockdOneHelperPerName: requests waiting for the same name share one
// helper (the head's); the others wait in lockd's queue, are granted in
// order, shared ones together, time out and cancel without a helper.
func TestLockdOneHelperPerName(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	path := filepath.Join(l.dir, "q")
	release := holdLock(t, path, true)
	var cs []*lockClient
	for i := range 5 {
		c := connectLockd(t, l.sock)
		c.pend(uint32(i+1), true, "q")
		cs = append(cs, c)
	}
	cs[0].waitHelperBlocked(1)
	if n := len(l.helpers(t)); n != 1 {
		t.Errorf("5 requests wait for one name: lockd has %d children; want 1", n)
	}
	// A queued request times out on its own; one cancels.
	t0 := time.Now()
	cs[2].acquire(30, true, 200, "q")
	cs[2].reply(30, 0)
	if m := cs[2].expect(lockproto.MsgFailed, 30, unix.ETIMEDOUT); m.HStatus != 0 {
		t.Errorf("queued request timed out with hstatus %d; want 0 (no helper)", m.HStatus)
	}
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Errorf("queued request timed out after %v; want >= 200ms", d)
	}
	cs[3].unlock(4) // cancel, queued: r 0
	release()
	for _, i := range []int{0, 1, 2, 4} {
		cs[i].expect(lockproto.MsgGranted, uint32(i+1), 0)
		wantLockable(t, path, false, false, fmt.Sprintf("request %d granted", i+1))
		if n := len(l.helpers(t)); n > 1 {
			t.Errorf("lockd has %d children; want at most 1", n)
		}
		cs[i].unlock(uint32(i + 1))
	}
	// Shared requests behind an exclusive holder are granted together.
	a := connectLockd(t, l.sock)
	a.lock(100, true, "q")
	for i := range 3 {
		cs[i].pend(uint32(200+i), false, "q")
	}
	cs[0].waitHelperBlocked(200)
	a.unlock(100)
	for i := range 3 {
		cs[i].expect(lockproto.MsgGranted, uint32(200+i), 0)
	}
	wantLockable(t, path, false, true, "three shared holders")
	waitNoHelpers(t, l.Pid, "every request granted")
}

// TestLockdNoLeaksNewPaths: passed files, queued waits that time out, are
// cancelled or are dropped with their client, and helpers killed at the
// head of a queue leave lockd's fd and child counts where they were.
func TestLockdNoLeaksNewPaths(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	base := fdCount(t, l.Pid)
	path := filepath.Join(l.dir, "busy")
	for i := range 20 {
		c := connectLockd(t, l.sock)
		id := uint32(i*10 + 1)
		// A passed file: G, then release; the client closes its copy.
		c.request(lockproto.Request{Op: lockproto.OpAcquire, ID: id, Flags: lockproto.FlagExclusive | lockproto.FlagPassFD, Timeout: lockproto.Forever, Name: "p"})
		c.reply(id, 0)
		c.conn.SetReadDeadline(deadline(t))
		buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				fds, _ := unix.ParseUnixRights(&cm)
				for _, fd := range fds {
					syscall.Close(fd)
				}
			}
		}
		c.unlock(id)
		// Waits on a busy name: the head and one queued; the queued one
		// times out, the head is cancelled, and a third is dropped with
		// the connection.
		release := holdLock(t, path, true)
		c.pend(id+1, true, "busy")
		c.acquire(id+2, false, 50, "busy")
		c.reply(id+2, 0)
		c.pend(id+3, true, "busy")
		c.expect(lockproto.MsgFailed, id+2, unix.ETIMEDOUT)
		c.unlock(id + 1)
		c.conn.Close()
		release()
	}
	waitNoHelpers(t, l.Pid, "every client gone")
	var now int
	if !poll(deadline(t), func() bool { now = fdCount(t, l.Pid); return now == base }) {
		t.Errorf("lockd has %d fds after 20 rounds (%v); want %d as before", now, openFDs(t, l.Pid), base)
	}
	wantLockable(t, path, true, true, "every client gone")
}
