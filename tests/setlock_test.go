package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/applets"
	"github.com/gotools-dev/gotools/lib/cli"
)

// End-to-end tests of setlock in direct and timed mode (spec/locks.md
// "setlock", "Acceptance tests" 3 to 5). lockd mode (-s) is tested in
// setlock_lockd_test.go.

// busyMsg is setlock's line for a busy lock with -n.
func busyMsg(path string) string {
	return "setlock: fatal: unable to lock " + path + ": Device or resource busy\n"
}

// fileID is what must not change about a lock file: setlock never deletes,
// replaces or writes it.
type fileID struct {
	ino, size uint64
	mode      uint32
}

func statLockFile(t testing.TB, path string) fileID {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return fileID{ino: st.Ino, size: uint64(st.Size), mode: st.Mode}
}

// wantSameFile fails the test unless path is still the file before was
// taken from.
func wantSameFile(t testing.TB, path string, before fileID, when string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Errorf("%s: stat %s: %v; want the lock file still there", when, path, err)
		return
	}
	if after := (fileID{ino: st.Ino, size: uint64(st.Size), mode: st.Mode}); after != before {
		t.Errorf("%s: %s is %+v; want it unchanged, %+v", when, path, after, before)
	}
}

// startProg starts setlock ARGS... with stdin on a pipe, for a prog such as
// `sh -c 'echo ready; read x'` that the test ends by writing a line; it
// returns the process and the pipe's write end.
func startProg(t testing.TB, o Opts, argv ...string) (*Proc, *os.File) {
	t.Helper()
	r, w := pipe(t)
	o.StdinFile = r
	p := startIn(t, o, argv...)
	r.Close()
	return p, w
}

// holdProg is the prog of setlock that says "ready" and holds the lock
// until it reads a line.
var holdProg = []string{"sh", "-c", "echo ready; read x"}

// waitGroupDead waits until no process of p's group is alive (zombies
// aside): a lock helper that outlives prog exits once the last copy of its
// stdin's write end is closed.
func waitGroupDead(t testing.TB, p *Proc) {
	t.Helper()
	var left []procStat
	ok := poll(deadline(t), func() bool {
		left = left[:0]
		for _, st := range groupMembers(p.Pid) {
			if st.State != 'Z' {
				left = append(left, st)
			}
		}
		return len(left) == 0
	})
	if !ok {
		t.Fatalf("%q: processes still alive in its group: %v", p.Argv, left)
	}
}

func TestSetlockUsage(t *testing.T) {
	t.Parallel()
	a, ok := cli.Find(applets.All, "setlock")
	if !ok {
		t.Fatal("setlock is not in the registry")
	}
	want := usageLine("setlock", a)
	path := filepath.Join(t.TempDir(), "lock")
	for _, args := range [][]string{
		{},
		{path},
		{"-n", path},
		{"-t", "x", path, "true"},
		{"-t", "0x10", path, "true"},
		{"-t", "-5", path, "true"},
		{"-d", "-1", path, "true"},
		{"-d", "x", path, "true"},
		{"-x", path, "true"},
	} {
		argv := append([]string{"setlock"}, args...)
		if r := run(t, argv...); r.Code != 100 || r.Stdout != "" || !isUsageLine(r.Stderr, want, "setlock") {
			t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 100, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, want)
		}
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("%s was created by a setlock with a usage error", path)
	}
}

// TestSetlockHoldsLockForProg: prog runs with the lock held (exclusive by
// default, with -w, and -r), and the lock is free once prog exited.
func TestSetlockHoldsLockForProg(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		opts      []string
		exclusive bool
	}{
		{name: "default", exclusive: true},
		{name: "-w", opts: []string{"-w"}, exclusive: true},
		{name: "-N", opts: []string{"-N"}, exclusive: true},
		{name: "-r", opts: []string{"-r"}, exclusive: false},
		{name: "-t 0", opts: []string{"-t", "0"}, exclusive: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			before := statLockFile(t, path)
			argv := append(append([]string{"setlock"}, tt.opts...), path)
			p, w := startProg(t, Opts{}, append(argv, holdProg...)...)
			p.WaitLine(t, "^ready$")
			wantLockable(t, path, true, false, "prog runs")
			wantLockable(t, path, false, !tt.exclusive, "prog runs")
			w.WriteString("\n")
			wantProcExit(t, p, 0, "ready\n", "")
			wantLockable(t, path, true, true, "prog exited")
			wantSameFile(t, path, before, "prog exited")
		})
	}
	// prog itself sees the lock busy: a second setlock -n fails.
	t.Run("prog checks", func(t *testing.T) {
		t.Parallel()
		path := newLockFile(t)
		r := run(t, "setlock", path, "sh", "-c", `setlock -n "$0" sh -c "echo ran"; echo "n=$?"`, path)
		if r.Code != 0 || r.Stdout != "n=1\n" || r.Stderr != busyMsg(path) {
			t.Errorf("setlock FILE sh -c 'setlock -n FILE ...' = %s, stdout %q, stderr %q; want exit 0, stdout %q, stderr %q",
				r.Status(), r.Stdout, r.Stderr, "n=1\n", busyMsg(path))
		}
	})
	// The lock lives as long as prog's children hold the fd.
	t.Run("children", func(t *testing.T) {
		t.Parallel()
		path := newLockFile(t)
		// A background job's stdin is /dev/null (POSIX): the child reads
		// the pipe through fd 8; -d 9 keeps the lock fd out of the way.
		p, w := startProg(t, Opts{}, "setlock", "-d", "9", path, "sh", "-c", `exec 8<&0; sh -c 'echo ready; read x <&8' & exit 0`)
		p.WaitLine(t, "^ready$")
		if r := p.Wait(t); r.Code != 0 {
			t.Fatalf("setlock prog = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
		}
		wantLockable(t, path, true, false, "prog exited, its child still runs")
		w.WriteString("\n")
		waitGroupDead(t, p)
		wantLockable(t, path, true, true, "prog and its child exited")
	})
}

// TestSetlockWaits: without -n, setlock blocks while the test holds the
// lock, and runs prog once it is released.
func TestSetlockWaits(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		opts      []string
		exclusive bool // the test's lock
	}{
		{name: "exclusive behind exclusive", exclusive: true},
		{name: "exclusive behind shared", exclusive: false},
		{name: "shared behind exclusive", opts: []string{"-r"}, exclusive: true},
		{name: "-n -N", opts: []string{"-n", "-N"}, exclusive: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			release := holdLock(t, path, tt.exclusive)
			argv := append(append([]string{"setlock"}, tt.opts...), path, "sh", "-c", "echo ran")
			p := start(t, argv...)
			waitBlocked(t, p)
			if got := p.Stdout(); got != "" {
				t.Fatalf("%q: prog ran (%q) while the test holds the lock", argv, got)
			}
			release()
			wantProcExit(t, p, 0, "ran\n", "")
			wantLockable(t, path, true, true, "prog exited")
		})
	}
}

// TestSetlockShared: -r holders coexist, -w is excluded.
func TestSetlockShared(t *testing.T) {
	t.Parallel()
	path := newLockFile(t)
	p, w := startProg(t, Opts{}, append([]string{"setlock", "-r", path}, holdProg...)...)
	p.WaitLine(t, "^ready$")
	for _, tt := range []struct {
		opts   []string
		code   int
		stdout string
		stderr string
	}{
		{opts: []string{"-r", "-n"}, code: 0, stdout: "ran\n"},
		{opts: []string{"-nr"}, code: 0, stdout: "ran\n"},
		{opts: []string{"-n"}, code: 1, stderr: busyMsg(path)},
		{opts: []string{"-w", "-n"}, code: 1, stderr: busyMsg(path)},
	} {
		argv := append(append([]string{"setlock"}, tt.opts...), path, "sh", "-c", "echo ran")
		if r := run(t, argv...); r.Code != tt.code || r.Stdout != tt.stdout || r.Stderr != tt.stderr {
			t.Errorf("run(%q) while setlock -r holds = %s, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q",
				argv, r.Status(), r.Stdout, r.Stderr, tt.code, tt.stdout, tt.stderr)
		}
	}
	// A second -r holder, then both end.
	p2, w2 := startProg(t, Opts{}, append([]string{"setlock", "-r", path}, holdProg...)...)
	p2.WaitLine(t, "^ready$")
	w.WriteString("\n")
	wantProcExit(t, p, 0, "ready\n", "")
	wantLockable(t, path, true, false, "the second setlock -r holds")
	w2.WriteString("\n")
	wantProcExit(t, p2, 0, "ready\n", "")
	wantLockable(t, path, true, true, "both setlock -r exited")
}

// TestSetlockBusy: -n on a held lock fails at once with s6's message and
// does not run prog; the last of -r/-w and of -n/-N wins.
func TestSetlockBusy(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		opts      []string
		exclusive bool // the test's lock
		busy      bool
	}{
		{name: "-n on exclusive", opts: []string{"-n"}, exclusive: true, busy: true},
		{name: "-n on shared", opts: []string{"-n"}, exclusive: false, busy: true},
		{name: "-r -n on exclusive", opts: []string{"-r", "-n"}, exclusive: true, busy: true},
		{name: "-r -w -n on shared", opts: []string{"-r", "-w", "-n"}, exclusive: false, busy: true},
		{name: "-w -r -n on shared", opts: []string{"-w", "-r", "-n"}, exclusive: false, busy: false},
		{name: "-rwn on shared", opts: []string{"-rwn"}, exclusive: false, busy: true},
		{name: "-wrn on shared", opts: []string{"-wrn"}, exclusive: false, busy: false},
		{name: "-N -n on exclusive", opts: []string{"-N", "-n"}, exclusive: true, busy: true},
		{name: "-- after -n", opts: []string{"-n", "--"}, exclusive: true, busy: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			holdLock(t, path, tt.exclusive)
			before := statLockFile(t, path)
			argv := append(append([]string{"setlock"}, tt.opts...), path, "sh", "-c", "echo ran")
			r := run(t, argv...)
			want := Result{Code: 1, Stderr: busyMsg(path)}
			if !tt.busy {
				want = Result{Code: 0, Stdout: "ran\n"}
			}
			if r.Code != want.Code || r.Signal != 0 || r.Stdout != want.Stdout || r.Stderr != want.Stderr {
				t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q",
					argv, r.Status(), r.Stdout, r.Stderr, want.Code, want.Stdout, want.Stderr)
			}
			wantSameFile(t, path, before, "setlock ended")
		})
	}
}

// fdLines parses fdlist's output into fd -> target.
func fdLines(t testing.TB, out string) map[int]string {
	t.Helper()
	m := map[int]string{}
	for _, l := range lines(out) {
		n, target, ok := strings.Cut(l, " -> ")
		fd, err := strconv.Atoi(n)
		if !ok || err != nil {
			t.Fatalf("fdlist printed %q", out)
		}
		m[fd] = target
	}
	return m
}

// TestSetlockFD: prog inherits the lock fd (at -d fd if given) and no other
// fd; closing it releases the lock; in timed mode, when the lock was busy,
// it is a pipe to the helper.
func TestSetlockFD(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		opts []string
		busy bool // the lock is held when setlock starts, released later
		fd   int  // -d; 0: any fd above 2
		pipe bool // the lock fd is a pipe, not the file
	}{
		{name: "direct", opts: nil},
		{name: "direct -d 5", opts: []string{"-d", "5"}, fd: 5},
		{name: "direct -d 0 -d 7", opts: []string{"-d", "0", "-d", "7"}, fd: 7},
		{name: "fast path -t 5000 -d 5", opts: []string{"-t", "5000", "-d", "5"}, fd: 5},
		{name: "timed -t 5000", opts: []string{"-t", "5000"}, busy: true, pipe: true},
		{name: "timed -t 5000 -d 5", opts: []string{"-t", "5000", "-d", "5"}, busy: true, fd: 5, pipe: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			wait := func(p *Proc) {}
			if tt.busy {
				release := holdLock(t, path, true)
				wait = func(p *Proc) {
					waitFor(t, "a lock helper blocked in fcntl", func() bool {
						for _, h := range lockHelpersUnder(t, p.Pid) {
							if inFcntl(h.Pid) {
								return true
							}
						}
						return !p.Running()
					})
					release()
				}
			}
			argv := append(append([]string{"setlock"}, tt.opts...), path, "fdlist")
			p := start(t, argv...)
			wait(p)
			r := p.Wait(t)
			if r.Code != 0 || r.Stderr != "" {
				t.Fatalf("%q = %s, stderr %q; want exit 0", argv, r.Status(), r.Stderr)
			}
			fds := beyondStdio(fdLines(t, r.Stdout))
			ok := len(fds) == 1 && len(fdLines(t, r.Stdout)) == 4
			for fd, target := range fds {
				ok = ok && (tt.fd == 0 || fd == tt.fd)
				if tt.pipe {
					ok = ok && strings.HasPrefix(target, "pipe:")
				} else {
					ok = ok && target == path
				}
			}
			if !ok {
				what := "the lock file " + path
				if tt.pipe {
					what = "a pipe"
				}
				t.Errorf("%q: prog inherited\n%s\nwant 0, 1, 2 and one fd (%d if not 0) on %s", argv, r.Stdout, tt.fd, what)
			}
			waitGroupDead(t, p)
			wantLockable(t, path, true, true, "prog and the helper exited")
		})
	}
	// The brief's form: /proc/$$/fd/5 of a shell prog.
	t.Run("readlink", func(t *testing.T) {
		t.Parallel()
		path := newLockFile(t)
		r := run(t, "setlock", "-d", "5", path, "sh", "-c", `readlink /proc/$$/fd/5`)
		if r.Code != 0 || r.Stdout != path+"\n" || r.Stderr != "" {
			t.Errorf("setlock -d 5 FILE sh -c 'readlink /proc/$$/fd/5' = %s, stdout %q, stderr %q; want exit 0, %q", r.Status(), r.Stdout, r.Stderr, path+"\n")
		}
	})
	// Closing fd 5 in prog releases the lock while prog still runs.
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprintf("close fd 5, timed, busy %v", busy), func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			var release func()
			if busy {
				release = holdLock(t, path, true)
			}
			p, w := startProg(t, Opts{}, "setlock", "-t", "5000", "-d", "5", path, "sh", "-c", "exec 5>&-; echo closed; read x")
			if busy {
				waitFor(t, "a lock helper under setlock", func() bool { return len(lockHelpersUnder(t, p.Pid)) > 0 || !p.Running() })
				release()
			}
			p.WaitLine(t, "^closed$")
			waitFor(t, "the lock to be free after prog closed fd 5", func() bool { return canLock(t, path, true) })
			w.WriteString("\n")
			wantProcExit(t, p, 0, "closed\n", "")
		})
	}
	t.Run("close fd 5, direct", func(t *testing.T) {
		t.Parallel()
		path := newLockFile(t)
		p, w := startProg(t, Opts{}, "setlock", "-d", "5", path, "sh", "-c", "exec 5>&-; echo closed; read x")
		p.WaitLine(t, "^closed$")
		wantLockable(t, path, true, true, "prog closed fd 5")
		w.WriteString("\n")
		wantProcExit(t, p, 0, "closed\n", "")
	})
}

// TestSetlockOpenFailure: a lock file that cannot be opened is 111 with
// upstream's message, and prog does not run.
func TestSetlockOpenFailure(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing", "lock")
	for _, tt := range []struct {
		opts []string
		msg  string
	}{
		{opts: nil, msg: "unable to open " + path + " for writing: No such file or directory"},
		{opts: []string{"-n"}, msg: "unable to open " + path + " for writing: No such file or directory"},
		{opts: []string{"-t", "1000"}, msg: "unable to open " + path + " for writing: No such file or directory"},
		{opts: []string{"-r"}, msg: "unable to create " + path + ": No such file or directory"},
	} {
		argv := append(append([]string{"setlock"}, tt.opts...), path, "sh", "-c", "echo ran")
		r := run(t, argv...)
		if want := "setlock: fatal: " + tt.msg + "\n"; r.Code != 111 || r.Stdout != "" || r.Stderr != want {
			t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 111, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, want)
		}
	}
}

// TestSetlockExecFailure: 127 for a prog that is not found, 126 for one
// that is not executable, with s6's message; the lock is released.
func TestSetlockExecFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "notexec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		opts []string
		prog string
		code int
		msg  string
	}{
		{prog: "gotools-no-such-prog", code: 127, msg: "No such file or directory"},
		{prog: filepath.Join(dir, "nosuch"), code: 127, msg: "No such file or directory"},
		{prog: notExec, code: 126, msg: "Permission denied"},
		{opts: []string{"-t", "1000"}, prog: "gotools-no-such-prog", code: 127, msg: "No such file or directory"},
		{opts: []string{"-r", "-d", "5"}, prog: notExec, code: 126, msg: "Permission denied"},
	} {
		path := newLockFile(t)
		before := statLockFile(t, path)
		argv := append(append([]string{"setlock"}, tt.opts...), path, tt.prog)
		r := run(t, argv...)
		want := "setlock: fatal: unable to exec " + tt.prog + ": " + tt.msg + "\n"
		if r.Code != tt.code || r.Stdout != "" || r.Stderr != want {
			t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit %d, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, tt.code, want)
		}
		wantLockable(t, path, true, true, "setlock failed to exec")
		wantSameFile(t, path, before, "setlock failed to exec")
	}
}

// TestSetlockFileMode: a missing lock file is created with mode 0666 minus
// the umask, for -w and -r.
func TestSetlockFileMode(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		umask string
		opt   string
		want  os.FileMode
	}{
		{umask: "000", opt: "-w", want: 0o666},
		{umask: "022", opt: "-w", want: 0o644},
		{umask: "027", opt: "-w", want: 0o640},
		{umask: "077", opt: "-w", want: 0o600},
		{umask: "000", opt: "-r", want: 0o666},
		{umask: "027", opt: "-r", want: 0o640},
		{umask: "000", opt: "-n", want: 0o666},
	} {
		path := filepath.Join(t.TempDir(), "lock")
		r := run(t, "sh", "-c", `umask "$1"; exec setlock "$2" "$3" true`, "sh", tt.umask, tt.opt, path)
		if r.Code != 0 || r.Stderr != "" {
			t.Errorf("umask %s; setlock %s FILE true = %s, stderr %q; want exit 0", tt.umask, tt.opt, r.Status(), r.Stderr)
			continue
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("umask %s; setlock %s FILE true: %v; want the file created (and never deleted)", tt.umask, tt.opt, err)
			continue
		}
		if got := st.Mode(); got != tt.want || st.Size() != 0 {
			t.Errorf("umask %s; setlock %s: %s is %v, %d bytes; want %v, empty", tt.umask, tt.opt, path, got, st.Size(), tt.want)
		}
	}
}

// TestSetlockTimeout: -t 300 on a held lock gives up after at least 300 ms
// with s6 HEAD's message, leaves no helper behind and the file unchanged.
func TestSetlockTimeout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		opts      []string
		exclusive bool // the test's lock
	}{
		{name: "-t 300", opts: []string{"-t", "300"}, exclusive: true},
		{name: "-w -t 300 on shared", opts: []string{"-w", "-t", "300"}, exclusive: false},
		{name: "-r -t 300", opts: []string{"-r", "-t", "300"}, exclusive: true},
		{name: "-d 5 -t300", opts: []string{"-d", "5", "-t300"}, exclusive: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			holdLock(t, path, tt.exclusive)
			before := statLockFile(t, path)
			argv := append(append([]string{"setlock"}, tt.opts...), path, "sh", "-c", "echo ran")
			t0 := time.Now()
			p := start(t, argv...)
			r := p.Wait(t)
			elapsed := time.Since(t0)
			want := "setlock: fatal: lock " + path + ": timed out\n"
			if r.Code != 1 || r.Stdout != "" || r.Stderr != want {
				t.Errorf("%q = %s, stdout %q, stderr %q; want exit 1, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, want)
			}
			if elapsed < 300*time.Millisecond || elapsed > 3*time.Second {
				t.Errorf("%q gave up after %v; want at least 300ms (and well under 3s)", argv, elapsed)
			}
			// setlock was the leader: a helper it left alive or unreaped
			// would still be in its group (re-parented to the test).
			if left := groupMembers(p.Pid); len(left) != 0 {
				t.Errorf("%q left %v behind", argv, left)
			}
			wantSameFile(t, path, before, "setlock timed out")
		})
	}
}

// TestSetlockTimedAcquires: -t 5000 on a lock released while setlock waits:
// a lock helper (a child of setlock, in the same cwd, with an empty
// environment) takes it, prog runs with the lock held and the helper as its
// child, and both the lock and the helper go when prog exits.
func TestSetlockTimedAcquires(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		opts      []string
		exclusive bool // setlock's lock
		mode      string
	}{
		{name: "-t 5000", opts: []string{"-t", "5000"}, exclusive: true, mode: "w"},
		{name: "-r -t 5000", opts: []string{"-r", "-t", "5000"}, exclusive: false, mode: "r"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			dir := filepath.Dir(path)
			release := holdLock(t, path, true)
			// A relative lock file name: the helper must run in setlock's cwd.
			argv := append(append([]string{"setlock"}, tt.opts...), "lock")
			p, w := startProg(t, Opts{Dir: dir}, append(argv, holdProg...)...)
			var helper procStat
			waitFor(t, "a lock helper under setlock, blocked in fcntl", func() bool {
				for _, h := range lockHelpersUnder(t, p.Pid) {
					if inFcntl(h.Pid) {
						helper = h
						return true
					}
				}
				if !p.Running() {
					t.Fatalf("%q exited: %s, stderr %q", argv, p.result().Status(), p.Stderr())
				}
				return false
			})
			if got, want := procArgv(helper.Pid), []string{"lockd-helper", tt.mode, "lock"}; !slices.Equal(got, want) {
				t.Errorf("helper argv %q; want %q", got, want)
			}
			if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", helper.Pid)); err != nil || len(env) != 0 {
				t.Errorf("helper environment %q (%v); want empty", env, err)
			}
			if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", helper.Pid)); err != nil || cwd != dir {
				t.Errorf("helper cwd %q (%v); want %q", cwd, err, dir)
			}
			if got := p.Stdout(); got != "" {
				t.Fatalf("prog ran (%q) while the test holds the lock", got)
			}
			release()
			p.WaitLine(t, "^ready$")
			wantLockable(t, path, true, false, "prog runs")
			wantLockable(t, path, false, !tt.exclusive, "prog runs")
			if hs := lockHelpersUnder(t, p.Pid); len(hs) != 1 || hs[0].Pid != helper.Pid {
				t.Errorf("lock helpers under prog %d: %v; want the helper %d", p.Pid, hs, helper.Pid)
			}
			for _, target := range fdTargets(t, p.Pid) {
				if target == path {
					t.Errorf("prog holds the lock file itself (%v); want the helper to hold it", fdTargets(t, p.Pid))
				}
			}
			w.WriteString("\n")
			wantProcExit(t, p, 0, "ready\n", "")
			waitGroupDead(t, p)
			wantLockable(t, path, true, true, "prog and the helper exited")
		})
	}
}

// TestSetlockTimedFastPath: -t on a free lock takes it directly: prog holds
// the lock file itself and has no child.
func TestSetlockTimedFastPath(t *testing.T) {
	t.Parallel()
	for _, opts := range [][]string{{"-t", "5000"}, {"-r", "-t", "5000"}} {
		t.Run(strings.Join(opts, " "), func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			argv := append(append([]string{"setlock"}, opts...), path)
			p, w := startProg(t, Opts{}, append(argv, holdProg...)...)
			p.WaitLine(t, "^ready$")
			if kids := children(t, p.Pid); len(kids) != 0 {
				t.Errorf("%q: prog has children %v; want none (no helper)", argv, kids)
			}
			if got := fdTargets(t, p.Pid); !slices.Contains(got, path) {
				t.Errorf("%q: prog's fds above 2: %v; want one on %s", argv, got, path)
			}
			wantLockable(t, path, true, false, "prog runs")
			w.WriteString("\n")
			wantProcExit(t, p, 0, "ready\n", "")
			wantLockable(t, path, true, true, "prog exited")
		})
	}
}

// TestSetlockTryWinsOverTimeout: -n with -t on a held lock fails at once
// with the busy message, not the timeout.
func TestSetlockTryWinsOverTimeout(t *testing.T) {
	t.Parallel()
	for _, opts := range [][]string{{"-n", "-t", "1000"}, {"-t", "1000", "-n"}, {"-n", "-t", "600000"}} {
		path := newLockFile(t)
		holdLock(t, path, true)
		argv := append(append([]string{"setlock"}, opts...), path, "sh", "-c", "echo ran")
		t0 := time.Now()
		r := run(t, argv...)
		if elapsed := time.Since(t0); r.Code != 1 || r.Stdout != "" || r.Stderr != busyMsg(path) || elapsed > 30*time.Second {
			t.Errorf("run(%q) = %s after %v, stdout %q, stderr %q; want exit 1 at once, stderr %q", argv, r.Status(), elapsed, r.Stdout, r.Stderr, busyMsg(path))
		}
	}
}

// TestSetlockS6Helper: GOTOOLS_LOCK_HELPER makes setlock -t use s6's
// s6lockd-helper, for the wait and for the timeout.
func TestSetlockS6Helper(t *testing.T) {
	t.Parallel()
	helper := requireS6Helper(t)
	env := []string{"GOTOOLS_LOCK_HELPER=" + helper}
	t.Run("acquires", func(t *testing.T) {
		t.Parallel()
		path := newLockFile(t)
		release := holdLock(t, path, true)
		p, w := startProg(t, Opts{Env: env}, append([]string{"setlock", "-t", "5000", path}, holdProg...)...)
		var h procStat
		waitFor(t, "s6lockd-helper under setlock, blocked in fcntl", func() bool {
			for _, st := range children(t, p.Pid) {
				if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", st.Pid)); exe == helper && inFcntl(st.Pid) {
					h = st
					return true
				}
			}
			if !p.Running() {
				t.Fatalf("setlock exited: %s, stderr %q", p.result().Status(), p.Stderr())
			}
			return false
		})
		release()
		p.WaitLine(t, "^ready$")
		wantLockable(t, path, false, false, "prog runs")
		if kids := children(t, p.Pid); len(kids) != 1 || kids[0].Pid != h.Pid {
			t.Errorf("prog's children %v; want s6lockd-helper %d", kids, h.Pid)
		}
		w.WriteString("\n")
		wantProcExit(t, p, 0, "ready\n", "")
		waitGroupDead(t, p)
		wantLockable(t, path, true, true, "prog and s6lockd-helper exited")
	})
	t.Run("times out", func(t *testing.T) {
		t.Parallel()
		path := newLockFile(t)
		holdLock(t, path, true)
		t0 := time.Now()
		p := startIn(t, Opts{Env: env}, "setlock", "-t", "300", path, "sh", "-c", "echo ran")
		r := p.Wait(t)
		elapsed := time.Since(t0)
		want := "setlock: fatal: lock " + path + ": timed out\n"
		if r.Code != 1 || r.Stdout != "" || r.Stderr != want || elapsed < 300*time.Millisecond || elapsed > 3*time.Second {
			t.Errorf("setlock -t 300 with s6lockd-helper = %s after %v, stdout %q, stderr %q; want exit 1 after 300ms..3s, stderr %q",
				r.Status(), elapsed, r.Stdout, r.Stderr, want)
		}
		if left := groupMembers(p.Pid); len(left) != 0 {
			t.Errorf("setlock left %v behind", left)
		}
	})
}

// TestSetlockHelperFailures: a helper that exits, dies or talks nonsense
// before its "!" (GOTOOLS_LOCK_HELPER names a script) fails setlock -t as
// the spec's table says, and nothing stays behind.
func TestSetlockHelperFailures(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		script string
		code   int
		msg    string
	}{
		// The helper printed why; whether setlock adds a line is not
		// specified.
		{name: "exits 1", script: "echo 'helper: it is busy' >&2; exit 1", code: 1, msg: `^helper: it is busy\n(setlock: fatal: [^\n]*\n)?$`},
		{name: "exits 3", script: "exit 3", code: 111, msg: `^setlock: fatal: unable to lock FILE: lock helper exited 3\n$`},
		{name: "garbage", script: "printf x; exec /bin/sleep 30", code: 111, msg: `^setlock: fatal: unable to lock FILE: helper sent garbage\n$`},
		{name: "killed", script: "kill -TERM $$", code: 111, msg: `^setlock: fatal: unable to lock FILE: lock helper crashed with signal (SIG)?TERM\n$`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			holdLock(t, path, true)
			script := filepath.Join(t.TempDir(), "helper")
			if err := writeExecutable(script, []byte("#!/bin/sh\n"+tt.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			p := startIn(t, Opts{Env: []string{"GOTOOLS_LOCK_HELPER=" + script}}, "setlock", "-t", "20000", path, "sh", "-c", "echo ran")
			r := p.Wait(t)
			want := strings.ReplaceAll(tt.msg, "FILE", regexp.QuoteMeta(path))
			if r.Code != tt.code || r.Stdout != "" || !regexp.MustCompile(want).MatchString(r.Stderr) {
				t.Errorf("setlock -t 20000 with a helper that %s = %s, stdout %q, stderr %q; want exit %d, stderr matching %q",
					tt.name, r.Status(), r.Stdout, r.Stderr, tt.code, want)
			}
			if left := groupMembers(p.Pid); len(left) != 0 {
				t.Errorf("setlock left %v behind", left)
			}
		})
	}
}

// TestSetlockReadOnlyFile: for a user who may only read the lock file, -w
// fails to open it (111) and -r works.
func TestSetlockReadOnlyFile(t *testing.T) {
	t.Parallel()
	dir, asNobody := nobodyFarm(t, "setlock")
	path := filepath.Join(dir, "ro")
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	setlock := filepath.Join(dir, "setlock")
	for _, opts := range [][]string{{"-w"}, {"-w", "-n"}, {"-w", "-t", "1000"}} {
		argv := append(append(append(asNobody, setlock), opts...), path, "sh", "-c", "echo ran")
		r := run(t, argv...)
		if want := "setlock: fatal: unable to open " + path + " for writing: Permission denied\n"; r.Code != 111 || r.Stdout != "" || r.Stderr != want {
			t.Errorf("as nobody, setlock %s on a 0444 file = %s, stdout %q, stderr %q; want exit 111, stderr %q", opts, r.Status(), r.Stdout, r.Stderr, want)
		}
	}
	if r := run(t, append(asNobody, setlock, "-r", path, "sh", "-c", "echo ran")...); r.Code != 0 || r.Stdout != "ran\n" || r.Stderr != "" {
		t.Errorf("as nobody, setlock -r on a 0444 file = %s, stdout %q, stderr %q; want exit 0, stdout %q", r.Status(), r.Stdout, r.Stderr, "ran\n")
	}
}

// TestSetlockBytes: a lock file name and prog's arguments that are not
// valid UTF-8 pass through byte for byte, as with s6-setlock (issue 20
// item 1): the lock file is created under the exact name, prog gets the
// exact bytes; with -s the lock name reaches lockd unchanged.
// (The command-line parser's side is fixed on the cli branch; this test
// fails until it is merged.)
func TestSetlockBytes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := "lock\xff\xfe-\xc3("
	arg := "arg\xff\x80end"
	r := run(t, "setlock", filepath.Join(dir, name), "sh", "-c", `printf '%s' "$1"`, "sh", arg)
	if r.Code != 0 || r.Stdout != arg || r.Stderr != "" {
		t.Errorf("setlock FILE sh -c ... %q = %s, stdout %q, stderr %q; want exit 0 and the argument byte for byte", arg, r.Status(), r.Stdout, r.Stderr)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != name {
		var got []string
		for _, e := range ents {
			got = append(got, e.Name())
		}
		t.Errorf("lock files created: %q; want exactly %q", got, name)
	}

	l := startSlLockd(t)
	r = run(t, "setlock", "-s", l.sock, name, "sh", "-c", `printf '%s' "$1"`, "sh", arg)
	if r.Code != 0 || r.Stdout != arg || r.Stderr != "" {
		t.Errorf("setlock -s SOCK NAME sh -c ... %q = %s, stdout %q, stderr %q; want exit 0 and the argument byte for byte", arg, r.Status(), r.Stdout, r.Stderr)
	}
	if _, err := os.Lstat(filepath.Join(l.dir, name)); err != nil {
		t.Errorf("lockd's lock file %q: %v; want it under the exact name", name, err)
	}
}
