package tests

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Interop with upstream s6 2.11's locking tools (spec/locks.md: gotools
// takes OFD locks, s6 POSIX locks, and on Linux the two conflict). The s6
// tools are called by absolute path: the farm's s6-setlock is gotools.
//
// What s6 2.11 does that these tests rely on (checked by hand against
// Debian's s6 2.11.3.2):
//   - s6-setlock [ -r | -w ] [ -n | -N | -t timeout ] lockfile prog...; no
//     -d. Busy with -n: "s6-setlock: fatal: unable to lock FILE: Device or
//     resource busy", exit 1.
//   - s6-setlock -t spawns s6lockd-helper from s6's libexec directory even
//     when the lock is free, and on timeout says "s6-setlock: fatal: unable
//     to acquire lock: Connection timed out", exit 1, having killed the
//     helper but without reaping it.
//   - s6lockd-helper r|w lockfile: "!" once locked, then waits for a byte
//     or EOF on stdin.

// s6BusyMsg is upstream s6-setlock's line for a busy lock with -n.
func s6BusyMsg(path string) string {
	return "s6-setlock: fatal: unable to lock " + path + ": Device or resource busy\n"
}

// lockTool is one implementation of setlock: its path and its busy line.
type lockTool struct {
	name string
	prog string
	busy func(path string) string
}

// TestLocksInteropSetlockExcludes: a lock held through one implementation's
// setlock (exclusive or shared) is seen by the other's setlock -n, in both
// directions, and a blocked setlock of either runs once the other's prog
// exits.
func TestLocksInteropSetlockExcludes(t *testing.T) {
	t.Parallel()
	s6 := lockTool{name: "s6", prog: requireS6(t, "s6-setlock")[0], busy: s6BusyMsg}
	gt := lockTool{name: "gotools", prog: "setlock", busy: busyMsg}
	for _, pair := range [][2]lockTool{{s6, gt}, {gt, s6}} {
		holder, prober := pair[0], pair[1]
		for _, held := range []string{"-w", "-r"} {
			t.Run(holder.name+" "+held+" vs "+prober.name, func(t *testing.T) {
				t.Parallel()
				path := newLockFile(t)
				p, w := startProg(t, Opts{}, append([]string{holder.prog, held, path}, holdProg...)...)
				p.WaitLine(t, "^ready$")
				for _, probe := range []string{"-w", "-r"} {
					argv := []string{prober.prog, probe, "-n", path, "sh", "-c", "echo ran"}
					want := Result{Code: 1, Stderr: prober.busy(path)}
					if held == "-r" && probe == "-r" {
						want = Result{Code: 0, Stdout: "ran\n"}
					}
					if r := run(t, argv...); r.Code != want.Code || r.Signal != 0 || r.Stdout != want.Stdout || r.Stderr != want.Stderr {
						t.Errorf("%s setlock %s holds; run(%q) = %s, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q",
							holder.name, held, argv, r.Status(), r.Stdout, r.Stderr, want.Code, want.Stdout, want.Stderr)
					}
				}
				// A blocking exclusive request of the other waits for prog.
				q := start(t, prober.prog, path, "sh", "-c", "echo ran")
				waitBlocked(t, q)
				if got := q.Stdout(); got != "" {
					t.Fatalf("%s setlock ran prog (%q) while %s setlock %s holds the lock", prober.name, got, holder.name, held)
				}
				w.WriteString("\n")
				wantProcExit(t, p, 0, "ready\n", "")
				wantProcExit(t, q, 0, "ran\n", "")
				wantLockable(t, path, true, true, "both setlocks exited")
			})
		}
	}
}

// TestLocksInteropGotoolsTimedWaitsForS6: gotools setlock -t (through its
// own lock helper) waits for a lock that s6-setlock holds, and gets it when
// s6-setlock's prog exits.
func TestLocksInteropGotoolsTimedWaitsForS6(t *testing.T) {
	t.Parallel()
	s6setlock := requireS6(t, "s6-setlock")[0]
	path := newLockFile(t)
	h, hw := startProg(t, Opts{}, append([]string{s6setlock, path}, holdProg...)...)
	h.WaitLine(t, "^ready$")
	p, w := startProg(t, Opts{}, append([]string{"setlock", "-t", "10000", path}, holdProg...)...)
	waitFor(t, "a lock helper under setlock, blocked in fcntl", func() bool {
		for _, st := range lockHelpersUnder(t, p.Pid) {
			if inFcntl(st.Pid) {
				return true
			}
		}
		if !p.Running() {
			t.Fatalf("setlock -t exited: %s, stderr %q", p.result().Status(), p.Stderr())
		}
		return false
	})
	hw.WriteString("\n")
	wantProcExit(t, h, 0, "ready\n", "")
	p.WaitLine(t, "^ready$")
	if r := run(t, s6setlock, "-n", path, "true"); r.Code != 1 || r.Stderr != s6BusyMsg(path) {
		t.Errorf("s6-setlock -n while gotools setlock -t holds = %s, stderr %q; want exit 1, stderr %q", r.Status(), r.Stderr, s6BusyMsg(path))
	}
	w.WriteString("\n")
	wantProcExit(t, p, 0, "ready\n", "")
	waitGroupDead(t, p)
	wantLockable(t, path, true, true, "everything exited")
}

// TestLocksInteropS6SetlockTimesOut: s6-setlock -t 300 gives up on a lock
// that gotools setlock holds, after at least 300 ms, leaving nothing
// behind.
func TestLocksInteropS6SetlockTimesOut(t *testing.T) {
	t.Parallel()
	s6setlock := requireS6(t, "s6-setlock")[0]
	for _, held := range []string{"-w", "-r"} {
		t.Run("gotools "+held, func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			h, hw := startProg(t, Opts{}, append([]string{"setlock", held, path}, holdProg...)...)
			h.WaitLine(t, "^ready$")
			t0 := time.Now()
			p := start(t, s6setlock, "-t", "300", path, "sh", "-c", "echo ran")
			r := p.Wait(t)
			elapsed := time.Since(t0)
			want := "s6-setlock: fatal: unable to acquire lock: Connection timed out\n"
			if r.Code != 1 || r.Stdout != "" || r.Stderr != want || elapsed < 300*time.Millisecond || elapsed > 3*time.Second {
				t.Errorf("s6-setlock -t 300 while gotools setlock %s holds = %s after %v, stdout %q, stderr %q; want exit 1 after 300ms..3s, stderr %q",
					held, r.Status(), elapsed, r.Stdout, r.Stderr, want)
			}
			// Upstream kills its helper but exits without reaping it (a
			// zombie re-parented to the test, reaped by the harness). The
			// SIGKILL may still be on its way when s6-setlock has exited.
			waitFor(t, "s6-setlock's helper to die", func() bool {
				for _, st := range groupMembers(p.Pid) {
					if st.State != 'Z' {
						return false
					}
				}
				return true
			})
			hw.WriteString("\n")
			wantProcExit(t, h, 0, "ready\n", "")
			wantLockable(t, path, true, true, "gotools setlock exited")
		})
	}
}

// TestLocksInteropHelpers: gotools' lockd-helper, driven as s6-setlock 2.11
// drives s6lockd-helper (stdin and stdout on pipes, "!" then a byte), holds
// a lock that s6-setlock -n sees; and s6's own s6lockd-helper holds one that
// gotools setlock -n and lockd-helper wn see.
func TestLocksInteropHelpers(t *testing.T) {
	t.Parallel()
	s6setlock := requireS6(t, "s6-setlock")[0]
	t.Run("gotools lockd-helper vs s6-setlock", func(t *testing.T) {
		t.Parallel()
		for _, mode := range []string{"w", "r"} {
			path := newLockFile(t)
			p, w := startHelper(t, "lockd-helper", mode, path)
			waitStdout(t, p, "!")
			for _, probe := range []string{"-w", "-r"} {
				want := Result{Code: 1, Stderr: s6BusyMsg(path)}
				if mode == "r" && probe == "-r" {
					want = Result{Code: 0, Stdout: "ran\n"}
				}
				if r := run(t, s6setlock, probe, "-n", path, "sh", "-c", "echo ran"); r.Code != want.Code || r.Stdout != want.Stdout || r.Stderr != want.Stderr {
					t.Errorf("lockd-helper %s holds; s6-setlock %s -n = %s, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q",
						mode, probe, r.Status(), r.Stdout, r.Stderr, want.Code, want.Stdout, want.Stderr)
				}
			}
			w.Write([]byte{0})
			wantProcExit(t, p, 0, "!", "")
			if r := run(t, s6setlock, "-n", path, "true"); r.Code != 0 || r.Stderr != "" {
				t.Errorf("lockd-helper %s exited; s6-setlock -n = %s, stderr %q; want exit 0", mode, r.Status(), r.Stderr)
			}
		}
	})
	t.Run("s6lockd-helper vs gotools", func(t *testing.T) {
		t.Parallel()
		helper := requireS6Helper(t)
		for _, mode := range []string{"w", "r"} {
			path := newLockFile(t)
			p, w := startHelper(t, helper, mode, path)
			waitStdout(t, p, "!")
			for _, probe := range []string{"-w", "-r"} {
				want := Result{Code: 1, Stderr: busyMsg(path)}
				if mode == "r" && probe == "-r" {
					want = Result{Code: 0, Stdout: "ran\n"}
				}
				if r := run(t, "setlock", probe, "-n", path, "sh", "-c", "echo ran"); r.Code != want.Code || r.Stdout != want.Stdout || r.Stderr != want.Stderr {
					t.Errorf("s6lockd-helper %s holds; setlock %s -n = %s, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q",
						mode, probe, r.Status(), r.Stdout, r.Stderr, want.Code, want.Stdout, want.Stderr)
				}
			}
			wantBusy := "lockd-helper: fatal: unable to lock " + path + ": Device or resource busy\n"
			if r := run(t, "lockd-helper", "wn", path); r.Code != 1 || r.Stdout != "" || r.Stderr != wantBusy {
				t.Errorf("s6lockd-helper %s holds; lockd-helper wn = %s, stdout %q, stderr %q; want exit 1, stderr %q", mode, r.Status(), r.Stdout, r.Stderr, wantBusy)
			}
			w.Close()
			wantProcExit(t, p, 0, "!", "")
			wantLockable(t, path, true, true, "s6lockd-helper exited")
		}
	})
}

// TestLocksInteropSameHelperBehaviour runs the basic lockd-helper protocol
// against both helpers: "!" once locked and not before, exit 0 on a byte,
// killed by SIGTERM while waiting. gotools must behave as upstream does.
func TestLocksInteropSameHelperBehaviour(t *testing.T) {
	t.Parallel()
	helpers := map[string]string{"gotools": "lockd-helper", "s6": requireS6Helper(t)}
	for name, helper := range helpers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			release := holdLock(t, path, false)
			p, w := startHelper(t, helper, "w", path)
			waitBlocked(t, p)
			if got := p.Stdout(); got != "" {
				t.Fatalf("%s helper wrote %q while the test holds a shared lock", name, got)
			}
			release()
			waitStdout(t, p, "!")
			wantLockable(t, path, false, false, name+" helper holds")
			w.Write([]byte("\n"))
			r := p.Wait(t)
			if r.Code != 0 || r.Stdout != "!" || r.Stderr != "" {
				t.Errorf("%s helper = %s, stdout %q, stderr %q; want exit 0, stdout %q", name, r.Status(), r.Stdout, r.Stderr, "!")
			}
			wantLockable(t, path, true, true, name+" helper exited")

			holdLock(t, path, true)
			q, _ := startHelper(t, helper, "r", path)
			waitBlocked(t, q)
			q.Signal(unix.SIGTERM)
			if r := q.Wait(t); r.Signal != unix.SIGTERM || r.Stdout != "" || r.Stderr != "" {
				t.Errorf("%s helper r, SIGTERM while waiting: %s, stdout %q, stderr %q; want killed by SIGTERM, no output", name, r.Status(), r.Stdout, r.Stderr)
			}
		})
	}
}
