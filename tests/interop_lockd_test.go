package tests

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/lockproto"
)

// Interop of lockd with upstream s6 2.11 (spec/locks.md "Acceptance tests"
// 22 to 24): lockd driving Debian's s6lockd-helper, real s6-setlock
// driving gotools' lockd-helper in s6lockd-helper's place, and locks held
// through lockd seen by real s6-setlock.

// TestLocksInteropLockdWithS6Helper: lockd with GOTOOLS_LOCK_HELPER set to
// s6lockd-helper waits for contended locks through it (the helper then
// holds the lock, as upstream designed), excludes, times out and releases
// as with its own helper; free locks and tries need no helper at all.
func TestLocksInteropLockdWithS6Helper(t *testing.T) {
	t.Parallel()
	helper := requireS6Helper(t)
	l := startLockdOn(t, Opts{Env: []string{"GOTOOLS_LOCK_HELPER=" + helper}}, lockdSocket(t), newLockdir(t))
	a, b := connectLockd(t, l.sock), connectLockd(t, l.sock)
	path := filepath.Join(l.dir, "x")

	// Exclusion.
	a.lock(1, true, "x")
	if h := entry(t, a.list(2), os.Getpid(), 1).HelperPID; h != 0 {
		t.Errorf("a free lock has helper %d; want none", h)
	}
	b.pend(11, true, "x")
	h := b.waitHelperBlocked(11)
	if argv := procArgv(h); !exeIs(h, helper) || !slices.Equal(argv, []string{"lockd-helper", "w", "x"}) {
		t.Errorf("helper %d runs %q; want %s as lockd-helper w x", h, argv, helper)
	}
	a.unlock(1)
	b.expect(lockproto.MsgGranted, 11, 0)
	wantLockable(t, path, false, false, "held through lockd and s6lockd-helper")
	b.unlock(11)
	wantLockable(t, path, true, true, "released")

	// Timeout.
	release := holdLock(t, path, true)
	t0 := time.Now()
	a.acquire(3, false, 300, "x")
	a.reply(3, 0)
	a.expect(lockproto.MsgFailed, 3, unix.ETIMEDOUT)
	if d := time.Since(t0); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("f ETIMEDOUT after %v; want 300ms..3s", d)
	}
	wantNoHelpers(t, l.Pid, "after f ETIMEDOUT")

	// Try mode needs no helper.
	a.acquire(4, true, 0, "x")
	a.reply(4, 0)
	a.expect(lockproto.MsgFailed, 4, unix.EBUSY)
	release()

	// Release: the lock is free at r 0, and a helper killed holding it is
	// EOWNERDEAD.
	for i := range 20 {
		a.lock(5, i%2 == 0, "x")
		a.unlock(5)
		if !canLock(t, path, true) {
			t.Fatalf("cycle %d: the lock is still held after r 0", i)
		}
	}
	release = holdLock(t, path, true)
	a.pend(6, true, "x")
	h = a.waitHelperBlocked(6)
	release()
	a.expect(lockproto.MsgGranted, 6, 0)
	if err := unix.Kill(h, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if m := a.expect(lockproto.MsgLost, 6, unix.EOWNERDEAD); m.HStatus != 137 {
		t.Errorf("x EOWNERDEAD hstatus %d; want 137", m.HStatus)
	}
	wantLockable(t, path, true, true, "its helper was killed")
	wantNoHelpers(t, l.Pid, "the end")
}

// TestLocksInteropLockdBlocksS6Setlock: a lock held through lockd is busy
// for real s6-setlock -n on lockdir/NAME (exit 1, s6's message); a shared
// one lets s6-setlock -r -n run; once released s6-setlock gets it.
func TestLocksInteropLockdBlocksS6Setlock(t *testing.T) {
	t.Parallel()
	s6setlock := requireS6(t, "s6-setlock")[0]
	l := startLockd(t)
	c := connectLockd(t, l.sock)
	path := filepath.Join(l.dir, "x")
	for _, ex := range []bool{true, false} {
		c.lock(1, ex, "x")
		if r := run(t, s6setlock, "-n", path, "true"); r.Code != 1 || r.Stderr != s6BusyMsg(path) {
			t.Errorf("lockd holds %s; s6-setlock -n = %s, stderr %q; want exit 1, stderr %q", lockKind(ex), r.Status(), r.Stderr, s6BusyMsg(path))
		}
		want := 1
		if !ex {
			want = 0
		}
		if r := run(t, s6setlock, "-r", "-n", path, "true"); r.Code != want {
			t.Errorf("lockd holds %s; s6-setlock -r -n = %s, stderr %q; want exit %d", lockKind(ex), r.Status(), r.Stderr, want)
		}
		c.unlock(1)
		if r := run(t, s6setlock, "-n", path, "true"); r.Code != 0 || r.Stderr != "" {
			t.Errorf("lockd released; s6-setlock -n = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
		}
	}
	// And the other way: s6-setlock holds, lockd's try is busy and a wait
	// is granted when s6-setlock's prog exits.
	p, w := startProg(t, Opts{}, append([]string{s6setlock, path}, holdProg...)...)
	p.WaitLine(t, "^ready$")
	c.acquire(2, true, 0, "x")
	c.reply(2, 0)
	c.expect(lockproto.MsgFailed, 2, unix.EBUSY)
	c.pend(3, true, "x")
	c.waitHelperBlocked(3)
	w.WriteString("\n")
	wantProcExit(t, p, 0, "ready\n", "")
	c.expect(lockproto.MsgGranted, 3, 0)
}

// TestLocksInteropS6SetlockUsesGotoolsHelper: in a private mount namespace
// where the gotools binary is bind-mounted on s6lockd-helper, real
// s6-setlock -t 500 takes a free lock through gotools' helper (a child of
// prog, as in s6 2.11) and times out on a held one. The bind mount never
// shows in the test's own namespace.
func TestLocksInteropS6SetlockUsesGotoolsHelper(t *testing.T) {
	t.Parallel()
	s6setlock := requireS6(t, "s6-setlock")[0]
	helper := requireS6Helper(t)
	if os.Geteuid() != 0 {
		t.Skip("a bind mount needs root")
	}
	before, err := os.Stat(helper)
	if err != nil {
		t.Fatal(err)
	}
	untouched := func(when string) {
		t.Helper()
		after, err := os.Stat(helper)
		if err != nil || !os.SameFile(after, before) || mountedOn(t, helper) {
			t.Errorf("%s: %s is not the real helper any more (%v, %v), or a mount point in the test's namespace", when, helper, after, err)
		}
	}
	t.Cleanup(func() { untouched("after the test") })
	ns := func(o Opts, argv ...string) *Proc {
		return startIn(t, o, append([]string{
			"unshare", "--mount", "--propagation", "private",
			"sh", "-c", `mount --bind "$1" "$2" && shift 2 && exec "$@"`,
			"sh", gotoolsBin, helper}, argv...)...)
	}

	t.Run("free", func(t *testing.T) {
		t.Parallel()
		path := newLockFile(t)
		r, w := pipe(t)
		p := ns(Opts{StdinFile: r}, append([]string{s6setlock, "-t", "500", path}, holdProg...)...)
		r.Close()
		p.WaitLine(t, "^ready$")
		untouched("while s6-setlock's prog runs")
		hs := lockHelpersUnder(t, p.Pid)
		if len(hs) != 1 || !exeIs(hs[0].Pid, gotoolsBin) {
			t.Errorf("prog's lock helpers %v; want one running %s", hs, gotoolsBin)
		}
		wantLockable(t, path, false, false, "s6-setlock's prog runs")
		w.WriteString("\n")
		wantProcExit(t, p, 0, "ready\n", "")
		waitGroupDead(t, p)
		wantLockable(t, path, true, true, "prog and the helper exited")
	})
	t.Run("held", func(t *testing.T) {
		t.Parallel()
		path := newLockFile(t)
		holdLock(t, path, true)
		t0 := time.Now()
		p := ns(Opts{}, s6setlock, "-t", "500", path, "sh", "-c", "echo ran")
		res := p.Wait(t)
		d := time.Since(t0)
		want := "s6-setlock: fatal: unable to acquire lock: Connection timed out\n"
		if res.Code != 1 || res.Stdout != "" || res.Stderr != want || d < 500*time.Millisecond || d > 5*time.Second {
			t.Errorf("s6-setlock -t 500 on a held lock = %s after %v, stdout %q, stderr %q; want exit 1 after 500ms..5s, %q", res.Status(), d, res.Stdout, res.Stderr, want)
		}
	})
}
