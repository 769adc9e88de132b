package tests

import (
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The crash guarantee of lockd (issue 20 item 5; README "lockd"): a lock
// taken through lockd by setlock -s lives as long as the program that
// holds it, whatever happens to lockd. lockd passes its locked open file
// to setlock, so prog holds the lock itself; a lockd killed and restarted
// must not let a second client in while the first's prog runs.

// TestLockdCrashKeepsSetlockLock: SIGKILL lockd while prog runs under
// setlock -s, start a new lockd on the same socket and directory: the
// file stays locked, setlock -n is refused, a waiting setlock -s runs its
// prog only after the first prog has exited.
func TestLockdCrashKeepsSetlockLock(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		opts []string
	}{
		{name: "wait"},
		{name: "-t 5000", opts: []string{"-t", "5000"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := startLockd(t)
			path := filepath.Join(l.dir, "db")
			argv := append(append([]string{"setlock", "-s", l.sock}, tt.opts...), "db", "sh", "-c", "echo ready; read x; echo first done")
			first, w := startProg(t, Opts{}, argv...)
			first.WaitLine(t, "^ready$")

			l.Signal(unix.SIGKILL)
			if r := l.Wait(t); r.Signal != unix.SIGKILL {
				t.Fatalf("lockd = %s; want killed by SIGKILL", r.Status())
			}
			wantLockable(t, path, true, false, "lockd was killed while prog holds the lock")
			l2 := startLockdOn(t, Opts{}, l.sock, l.dir)
			wantLockable(t, path, true, false, "a new lockd runs while prog holds the lock")

			r := run(t, "setlock", "-n", "-s", l2.sock, "db", "echo", "second ran")
			if want := busyMsg("db"); r.Code != 1 || r.Stdout != "" || r.Stderr != want {
				t.Errorf("setlock -n -s through the new lockd = %s, stdout %q, stderr %q; want exit 1, %q", r.Status(), r.Stdout, r.Stderr, want)
			}
			second := start(t, "setlock", "-s", l2.sock, "db", "echo", "second ran")
			// It must wait; give it time to be wrongly granted.
			time.Sleep(300 * time.Millisecond)
			if !second.Running() {
				r := second.Wait(t)
				t.Fatalf("a second setlock -s ended (%s, stdout %q, stderr %q) while the first prog holds the lock", r.Status(), r.Stdout, r.Stderr)
			}
			w.WriteString("x\n")
			if r := first.Wait(t); r.Code != 0 || r.Stderr != "" {
				t.Errorf("first %q = %s, stderr %q; want exit 0", argv, r.Status(), r.Stderr)
			}
			if r := second.Wait(t); r.Code != 0 || r.Stdout != "second ran\n" || r.Stderr != "" {
				t.Errorf("second setlock -s = %s, stdout %q, stderr %q; want exit 0, second ran", r.Status(), r.Stdout, r.Stderr)
			}
			wantLockable(t, path, true, true, "both progs exited")
		})
	}
}

// TestLockdCrashAfterWaitKeepsLock: the first client waits in lockd (a
// helper waits for the lock on lockd's open file) and is granted; lockd is
// then killed: its prog still holds the lock.
func TestLockdCrashAfterWaitKeepsLock(t *testing.T) {
	t.Parallel()
	l := startLockd(t)
	path := filepath.Join(l.dir, "db")
	release := holdLock(t, path, true)
	first, w := startProg(t, Opts{}, "setlock", "-s", l.sock, "db", "sh", "-c", "echo ready; read x")
	time.Sleep(100 * time.Millisecond)
	release()
	first.WaitLine(t, "^ready$")
	l.Signal(unix.SIGKILL)
	l.Wait(t)
	l2 := startLockdOn(t, Opts{}, l.sock, l.dir)
	r := run(t, "setlock", "-t", "200", "-s", l2.sock, "db", "true")
	if want := "setlock: fatal: lock db: timed out\n"; r.Code != 1 || r.Stderr != want {
		t.Errorf("setlock -t 200 -s after the crash = %s, stderr %q; want exit 1, %q", r.Status(), r.Stderr, want)
	}
	w.WriteString("x\n")
	first.Wait(t)
	wantLockable(t, path, true, true, "prog exited")
}
