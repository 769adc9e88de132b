package tests

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// End-to-end tests of lockd-helper (spec/locks.md "lockd-helper",
// "Acceptance tests" 1 and 2). The test process is its own second locker:
// it takes and probes OFD locks on its own open file descriptions
// (holdLock, canLock), which conflict with every lock a child takes, so no
// check depends on the applet under test.

// s6HelperPath is where Debian's s6 2.11 keeps s6lockd-helper (s6's libexec
// directory, not on $PATH).
const s6HelperPath = "/usr/lib/x86_64-linux-gnu/s6/s6lockd-helper"

// requireS6Helper returns s6HelperPath. A missing helper skips the test, or
// fails it when GOTOOLS_REQUIRE_S6=1, as requireS6 does for tools on $PATH.
func requireS6Helper(t testing.TB) string {
	t.Helper()
	st, err := os.Stat(s6HelperPath)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		if os.Getenv("GOTOOLS_REQUIRE_S6") == "1" {
			t.Fatalf("%s is not an executable file (%v), and GOTOOLS_REQUIRE_S6=1", s6HelperPath, err)
		}
		t.Skipf("%s is not an executable file (%v) (GOTOOLS_REQUIRE_S6=1 makes this a failure)", s6HelperPath, err)
	}
	return s6HelperPath
}

// newLockFile creates an empty file in a new temporary directory and
// returns its path, with symlinks resolved, so that it compares equal to
// what /proc/PID/fd/N reads.
func newLockFile(t testing.TB) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "lock")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// lockKind names a lock type for messages.
func lockKind(exclusive bool) string {
	if exclusive {
		return "exclusive"
	}
	return "shared"
}

// ofdLock tries once (F_OFD_SETLK) to lock all of f, exclusive or shared.
func ofdLock(f *os.File, exclusive bool) error {
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: 0, Len: 0}
	if exclusive {
		lk.Type = unix.F_WRLCK
	}
	for {
		err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// canLock reports whether the test could take a lock of that kind on the
// existing file path right now, through an open file description of its
// own, which it closes again (so the probe holds nothing afterwards).
func canLock(t testing.TB, path string, exclusive bool) bool {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("canLock: %v", err)
	}
	defer f.Close()
	switch err := ofdLock(f, exclusive); {
	case err == nil:
		return true
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EACCES):
		return false
	default:
		t.Fatalf("canLock(%s): fcntl(F_OFD_SETLK): %v", path, err)
		return false
	}
}

// wantLockable fails the test unless a lock of each kind can (free) or
// cannot (want false) be taken on path: free means both kinds succeed,
// held exclusively means neither does.
//
// A lock that should be free is polled for, up to the test's deadline: a
// child that a parallel test is forking holds copies of the test's fds,
// and with them its released OFD lock, until it execs. A lock that should
// be held is checked once: such copies can only make it look held longer.
func wantLockable(t testing.TB, path string, exclusive, want bool, when string) {
	t.Helper()
	if want {
		if !poll(deadline(t), func() bool { return canLock(t, path, exclusive) }) {
			t.Errorf("%s: an %s lock on %s cannot be taken", when, lockKind(exclusive), path)
		}
		return
	}
	if canLock(t, path, exclusive) {
		t.Errorf("%s: an %s lock on %s can be taken; want it held", when, lockKind(exclusive), path)
	}
}

// holdLock takes a lock of that kind on path (created if missing) for the
// test itself, and returns the function that releases it by closing the
// open file description. The test fails if the lock is busy. The lock is
// released at the end of the test in any case.
func holdLock(t testing.TB, path string, exclusive bool) (release func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("holdLock: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	if err := ofdLock(f, exclusive); err != nil {
		f.Close()
		t.Fatalf("holdLock(%s, %s): %v", path, lockKind(exclusive), err)
	}
	return func() { f.Close() }
}

// waitStdout waits until p's stdout is exactly want. It fails the test at
// once if stdout holds anything that is not a prefix of want, and if the
// process group is gone without writing it.
func waitStdout(t testing.TB, p *Proc, want string) {
	t.Helper()
	var got string
	gone := false
	ok := poll(deadline(t), func() bool {
		gone = !p.Running() && len(groupMembers(p.Pid)) == 0
		got = p.Stdout()
		return got == want || !strings.HasPrefix(want, got) || gone
	})
	if !ok || got != want {
		t.Fatalf("%q: stdout %q (gone: %v, stderr %q); want %q", p.Argv, got, gone, p.Stderr(), want)
	}
}

// inFcntl reports whether some thread of pid is blocked in fcntl(2)
// (/proc/PID/task/TID/syscall), which is where a process waits for a lock
// with F_OFD_SETLKW or F_SETLKW.
func inFcntl(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/syscall", pid, task.Name()))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 && f[0] == strconv.Itoa(unix.SYS_FCNTL) {
			return true
		}
	}
	return false
}

// waitBlocked waits until p is blocked in fcntl(2), waiting for a lock. It
// fails the test at once if p exits or writes on stdout first (a helper's
// "!", or a prog that ran: either means p did not wait).
func waitBlocked(t testing.TB, p *Proc) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%q (pid %d) to block in fcntl", p.Argv, p.Pid), func() bool {
		if !p.Running() || p.Stdout() != "" {
			t.Fatalf("%q exited (%s) instead of waiting for the lock; stdout %q, stderr %q", p.Argv, p.result().Status(), p.Stdout(), p.Stderr())
		}
		return inFcntl(p.Pid)
	})
}

// isLockHelper reports whether st runs a lock helper: argv[0] of
// basename lockd-helper or s6lockd-helper.
func isLockHelper(st procStat) bool {
	argv := procArgv(st.Pid)
	if len(argv) == 0 {
		return false
	}
	name := filepath.Base(argv[0])
	return name == "lockd-helper" || name == "s6lockd-helper"
}

// lockHelpersUnder returns the children of pid that run a lock helper.
func lockHelpersUnder(t testing.TB, pid int) []procStat {
	t.Helper()
	var h []procStat
	for _, st := range children(t, pid) {
		if isLockHelper(st) {
			h = append(h, st)
		}
	}
	return h
}

// fdTargets returns the targets of the fds of pid above 2.
func fdTargets(t testing.TB, pid int) []string {
	t.Helper()
	var targets []string
	for _, target := range beyondStdio(openFDs(t, pid)) {
		targets = append(targets, target)
	}
	slices.Sort(targets)
	return targets
}

// startHelper starts lockd-helper MODE PATH with stdin on a pipe and returns
// it and the write end of that pipe.
func startHelper(t testing.TB, helper, mode, path string) (*Proc, *os.File) {
	t.Helper()
	r, w := pipe(t)
	p := startIn(t, Opts{StdinFile: r}, helper, mode, path)
	r.Close()
	return p, w
}

// wantProcExit waits for p and fails the test unless it exited with code and
// wrote exactly stdout and stderr.
func wantProcExit(t testing.TB, p *Proc, code int, stdout, stderr string) Result {
	t.Helper()
	r := p.Wait(t)
	if r.Code != code || r.Signal != 0 || r.Stdout != stdout || r.Stderr != stderr {
		t.Errorf("%q = %s, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q",
			p.Argv, r.Status(), r.Stdout, r.Stderr, code, stdout, stderr)
	}
	return r
}

func TestLockdHelperUsage(t *testing.T) {
	t.Parallel()
	want := "lockd-helper: usage: lockd-helper r|w lockfile\n"
	for _, argv := range [][]string{
		{"lockd-helper"},
		{"lockd-helper", "w"},
		{"lockd-helper", "r"},
		{"gotools", "lockd-helper", "w"},
	} {
		if r := run(t, argv...); r.Code != 100 || r.Stdout != "" || r.Stderr != want {
			t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 100, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, want)
		}
	}
	// No option parsing: "-x" is the lock file (created in the cwd), and
	// extra operands are ignored.
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, w := pipe(t)
	p := startIn(t, Opts{StdinFile: r, Dir: dir}, "lockd-helper", "w", "-x", "extra", "operands")
	r.Close()
	waitStdout(t, p, "!")
	wantLockable(t, filepath.Join(dir, "-x"), true, false, "lockd-helper w -x holds the lock")
	w.Close()
	wantProcExit(t, p, 0, "!", "")
}

// TestLockdHelperHoldsUntilTold: w writes exactly "!" once locked, holds the
// lock while it waits on stdin, and exits 0 on a byte or on EOF with the
// lock released.
func TestLockdHelperHoldsUntilTold(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		stop func(w *os.File) error
	}{
		{name: "byte", stop: func(w *os.File) error { _, err := w.Write([]byte("x")); return err }},
		{name: "EOF", stop: func(w *os.File) error { return w.Close() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			p, w := startHelper(t, "lockd-helper", "w", path)
			waitStdout(t, p, "!")
			wantLockable(t, path, false, false, "lockd-helper w holds the lock")
			wantLockable(t, path, true, false, "lockd-helper w holds the lock")
			if !p.Running() {
				t.Fatalf("%q exited before it was told to: %s", p.Argv, p.result().Status())
			}
			if err := tt.stop(w); err != nil {
				t.Fatal(err)
			}
			wantProcExit(t, p, 0, "!", "")
			wantLockable(t, path, true, true, "lockd-helper exited")
		})
	}
}

// TestLockdHelperFDs: while it holds the lock, lockd-helper has fds 0, 1, 2
// and the lock file, nothing else.
func TestLockdHelperFDs(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"w", "r"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			p, w := startHelper(t, "lockd-helper", mode, path)
			waitStdout(t, p, "!")
			fds := openFDs(t, p.Pid)
			var keys []int
			for n := range fds {
				keys = append(keys, n)
			}
			slices.Sort(keys)
			if len(keys) != 4 || keys[0] != 0 || keys[1] != 1 || keys[2] != 2 || fds[keys[3]] != path {
				t.Errorf("lockd-helper %s: open fds %v; want 0, 1, 2 and one fd on %s", mode, fds, path)
			}
			w.Close()
			wantProcExit(t, p, 0, "!", "")
		})
	}
}

// TestLockdHelperWaits: a w helper blocks while the test holds the lock,
// says nothing, and says "!" once the lock is released.
func TestLockdHelperWaits(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		mode      string
		exclusive bool // the test's lock
	}{
		{name: "w behind exclusive", mode: "w", exclusive: true},
		{name: "w behind shared", mode: "w", exclusive: false},
		{name: "r behind exclusive", mode: "r", exclusive: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			release := holdLock(t, path, tt.exclusive)
			p, w := startHelper(t, "lockd-helper", tt.mode, path)
			waitBlocked(t, p)
			if got := p.Stdout(); got != "" {
				t.Fatalf("lockd-helper %s wrote %q while the test holds the lock", tt.mode, got)
			}
			release()
			waitStdout(t, p, "!")
			wantLockable(t, path, true, false, "lockd-helper got the lock")
			w.Write([]byte("x"))
			wantProcExit(t, p, 0, "!", "")
			wantLockable(t, path, true, true, "lockd-helper exited")
		})
	}
}

// TestLockdHelperShared: two r helpers hold the lock together, a w helper
// waits for both.
func TestLockdHelperShared(t *testing.T) {
	t.Parallel()
	path := newLockFile(t)
	r1, w1 := startHelper(t, "lockd-helper", "r", path)
	waitStdout(t, r1, "!")
	r2, w2 := startHelper(t, "lockd-helper", "r", path)
	waitStdout(t, r2, "!")
	wantLockable(t, path, false, true, "two r helpers hold the lock")
	wantLockable(t, path, true, false, "two r helpers hold the lock")

	wp, ww := startHelper(t, "lockd-helper", "w", path)
	waitBlocked(t, wp)
	w1.Write([]byte("x"))
	wantProcExit(t, r1, 0, "!", "")
	if got := wp.Stdout(); got != "" {
		t.Errorf("lockd-helper w wrote %q while an r helper still holds the lock", got)
	}
	w2.Close()
	wantProcExit(t, r2, 0, "!", "")
	waitStdout(t, wp, "!")
	wantLockable(t, path, false, false, "lockd-helper w holds the lock")
	ww.Close()
	wantProcExit(t, wp, 0, "!", "")
	wantLockable(t, path, true, true, "every helper exited")
}

// TestLockdHelperTry: the gotools extension "wn"/"rn" tries once.
func TestLockdHelperTry(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		mode      string
		exclusive bool // the test's lock
		busy      bool
	}{
		{name: "wn on exclusive", mode: "wn", exclusive: true, busy: true},
		{name: "wn on shared", mode: "wn", exclusive: false, busy: true},
		{name: "rn on exclusive", mode: "rn", exclusive: true, busy: true},
		{name: "rn on shared", mode: "rn", exclusive: false, busy: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := newLockFile(t)
			holdLock(t, path, tt.exclusive)
			p, w := startHelper(t, "lockd-helper", tt.mode, path)
			if tt.busy {
				wantProcExit(t, p, 1, "", "lockd-helper: fatal: unable to lock "+path+": Device or resource busy\n")
				return
			}
			waitStdout(t, p, "!")
			w.Close()
			wantProcExit(t, p, 0, "!", "")
		})
	}
	t.Run("wn on a free file", func(t *testing.T) {
		t.Parallel()
		path := newLockFile(t)
		p, w := startHelper(t, "lockd-helper", "wn", path)
		waitStdout(t, p, "!")
		wantLockable(t, path, false, false, "lockd-helper wn holds the lock")
		w.Close()
		wantProcExit(t, p, 0, "!", "")
		wantLockable(t, path, true, true, "lockd-helper wn exited")
	})
}

// TestLockdHelperOpenFailure: a file that cannot be opened or created is a
// system failure, 111, and nothing on stdout.
func TestLockdHelperOpenFailure(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing", "lock")
	for _, tt := range []struct {
		mode string
		msg  string
	}{
		{mode: "w", msg: "unable to open " + path + " for writing: No such file or directory"},
		{mode: "r", msg: "unable to create " + path + ": No such file or directory"},
	} {
		r := run(t, "lockd-helper", tt.mode, path)
		if want := "lockd-helper: fatal: " + tt.msg + "\n"; r.Code != 111 || r.Stdout != "" || r.Stderr != want {
			t.Errorf("run(lockd-helper %s %s) = %s, stdout %q, stderr %q; want exit 111, stderr %q", tt.mode, path, r.Status(), r.Stdout, r.Stderr, want)
		}
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(%s) = %v; want it still missing", filepath.Dir(path), err)
	}
}

// TestLockdHelperSignals: no signal is caught; TERM, HUP and KILL end the
// helper while it holds the lock and while it waits, and the lock is free.
func TestLockdHelperSignals(t *testing.T) {
	t.Parallel()
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGHUP, unix.SIGKILL} {
		for _, phase := range []string{"holding", "waiting"} {
			t.Run(unix.SignalName(sig)+"/"+phase, func(t *testing.T) {
				t.Parallel()
				path := newLockFile(t)
				var release func()
				if phase == "waiting" {
					release = holdLock(t, path, true)
				}
				p, _ := startHelper(t, "lockd-helper", "w", path)
				want := "!"
				if phase == "waiting" {
					waitBlocked(t, p)
					want = ""
				} else {
					waitStdout(t, p, "!")
				}
				p.Signal(sig)
				r := p.Wait(t)
				if r.Signal != sig || r.Stdout != want || r.Stderr != "" {
					t.Errorf("lockd-helper w, sent %s while %s: %s, stdout %q, stderr %q; want killed by it, stdout %q",
						unix.SignalName(sig), phase, r.Status(), r.Stdout, r.Stderr, want)
				}
				if release != nil {
					release()
				}
				wantLockable(t, path, true, true, "lockd-helper was killed")
			})
		}
	}
}

// TestLockdHelperSocket: lockd passes one socket as fds 0 and 1.
func TestLockdHelperSocket(t *testing.T) {
	t.Parallel()
	path := newLockFile(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Non-blocking, so that os.NewFile puts it in the poller and read
	// deadlines work; the helper's end stays blocking.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "theirs")
	t.Cleanup(func() { ours.Close() })
	p := startIn(t, Opts{ExtraFiles: []*os.File{theirs}}, "sh", "-c", `exec lockd-helper w "$1" <&3 >&3 3<&-`, "sh", path)
	theirs.Close()
	if err := ours.SetReadDeadline(deadline(t)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	n, err := ours.Read(b)
	if err != nil || string(b[:n]) != "!" {
		t.Fatalf("read from lockd-helper's socket: %q, %v; want %q", b[:n], err, "!")
	}
	wantLockable(t, path, false, false, "lockd-helper w on a socket holds the lock")
	if _, err := ours.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	wantProcExit(t, p, 0, "", "")
	if n, err := ours.Read(b); err == nil || n != 0 {
		t.Errorf("read after lockd-helper exited: %q, %v; want EOF (nothing else written)", b[:n], err)
	}
	wantLockable(t, path, true, true, "lockd-helper exited")
}

// nobodyFarm returns a directory that uid 65534 can search, holding a copy
// of gotools and a symlink to it for each applet name given, and the argv
// prefix that runs a program as uid and gid 65534 (setpriv). The farm of
// TestMain lives in a 0700 directory, out of that user's reach. The test
// is skipped unless it runs as root with setpriv installed.
func nobodyFarm(t testing.TB, names ...string) (dir string, asNobody []string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("switching to uid 65534 needs root")
	}
	setpriv, ok := realLookPath("setpriv")
	if !ok {
		t.Skip("setpriv (util-linux) not found")
	}
	dir, err := os.MkdirTemp("", "gotools-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(gotoolsBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeExecutable(filepath.Join(dir, "gotools"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.Symlink("gotools", filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}
}

// TestLockdHelperReadOnlyFile: for a user who may only read the file, w
// cannot open it (111) and r can (spec: the shared lock opens read-only).
func TestLockdHelperReadOnlyFile(t *testing.T) {
	t.Parallel()
	dir, asNobody := nobodyFarm(t, "lockd-helper")
	path := filepath.Join(dir, "ro")
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(dir, "lockd-helper")
	r := run(t, append(asNobody, helper, "w", path)...)
	if want := "lockd-helper: fatal: unable to open " + path + " for writing: Permission denied\n"; r.Code != 111 || r.Stdout != "" || r.Stderr != want {
		t.Errorf("as nobody, lockd-helper w on a 0444 file = %s, stdout %q, stderr %q; want exit 111, stderr %q", r.Status(), r.Stdout, r.Stderr, want)
	}
	// stdin is /dev/null: "!" once locked, then EOF ends it.
	if r := run(t, append(asNobody, helper, "r", path)...); r.Code != 0 || r.Stdout != "!" || r.Stderr != "" {
		t.Errorf("as nobody, lockd-helper r on a 0444 file = %s, stdout %q, stderr %q; want exit 0, stdout %q", r.Status(), r.Stdout, r.Stderr, "!")
	}
}

// TestLockdHelperHelp: "lockd-helper --help" alone prints help on stdout
// and exits 0, as every applet does (issue 14 item 8); upstream's argv is
// otherwise untouched: "--help" as a mode with a lock file is a shared
// lock, as s6lockd-helper reads it.
func TestLockdHelperHelp(t *testing.T) {
	t.Parallel()
	for _, argv := range [][]string{{"lockd-helper", "--help"}, {"s6lockd-helper", "--help"}} {
		r := run(t, argv...)
		if want := "Usage: " + argv[0] + " r|w lockfile\n"; r.Code != 0 || r.Stderr != "" || !strings.HasPrefix(r.Stdout, want) || !strings.Contains(r.Stdout, "Exit codes:") {
			t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 0 and help starting %q", argv, r.Status(), r.Stdout, r.Stderr, want)
		}
	}
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, w := pipe(t)
	p := startIn(t, Opts{StdinFile: r, Dir: dir}, "lockd-helper", "--help", "f")
	r.Close()
	waitStdout(t, p, "!")
	wantLockable(t, filepath.Join(dir, "f"), false, true, "lockd-helper --help f holds a shared lock")
	wantLockable(t, filepath.Join(dir, "f"), true, false, "lockd-helper --help f holds a shared lock")
	w.Close()
	wantProcExit(t, p, 0, "!", "")
}
