package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// shmDir makes a fresh directory for the test's segments in /dev/shm, a
// tmpfs as lib/shm wants (t.TempDir() may be on a disk), and removes it
// when the test ends. Each test has its own, so names never collide with
// another run's or with a real user's segments.
func shmDir(t *testing.T) string {
	t.Helper()
	var fs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		t.Skipf("/dev/shm is not a tmpfs (statfs: %v)", err)
	}
	d, err := os.MkdirTemp("/dev/shm", "gotools-shmlock-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// shm returns the argv of "shmlock --dir DIR ARGS...".
func shmArgv(dir string, args ...string) []string {
	return append([]string{"shmlock", "--dir", dir}, args...)
}

// anyOut, as the stdout wanted by [expect], accepts any stdout: the caller
// checks it.
const anyOut = "\x00any"

// expect fails the test unless r ended with code and printed exactly
// stdout (unless it is anyOut) and stderr.
func expect(t *testing.T, argv []string, r Result, code int, stdout, stderr string) {
	t.Helper()
	if r.Code != code || (stdout != anyOut && r.Stdout != stdout) || r.Stderr != stderr {
		t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q",
			argv, r.Status(), r.Stdout, r.Stderr, code, stdout, stderr)
	}
}

// shmRun runs shmlock on dir and checks its outcome.
func shmRun(t *testing.T, dir string, code int, stdout, stderr string, args ...string) Result {
	t.Helper()
	argv := shmArgv(dir, args...)
	r := run(t, argv...)
	expect(t, argv, r, code, stdout, stderr)
	return r
}

// statusLine is one parsed line of "shmlock status".
type statusLine struct {
	index, pid, waiters int
	state, comm, flags  string
	heldMs              int64
	tag                 uint64
}

func parseStatus(t *testing.T, out string) []statusLine {
	t.Helper()
	var l []statusLine
	for _, s := range lines(out) {
		f := strings.Split(s, "\t")
		if len(f) != 8 {
			t.Fatalf("status line %q: %d fields; want 8", s, len(f))
		}
		var st statusLine
		var errs [5]error
		st.index, errs[0] = strconv.Atoi(f[0])
		st.state = f[1]
		st.pid, errs[1] = strconv.Atoi(f[2])
		st.comm = f[3]
		st.heldMs, errs[2] = strconv.ParseInt(f[4], 10, 64)
		st.waiters, errs[3] = strconv.Atoi(f[5])
		st.tag, errs[4] = strconv.ParseUint(f[6], 10, 64)
		st.flags = f[7]
		for _, err := range errs {
			if err != nil {
				t.Fatalf("status line %q: %v", s, err)
			}
		}
		l = append(l, st)
	}
	return l
}

// shmAllocIdx allocates the given indexes of segment name: lock refuses an
// unallocated one.
func shmAllocIdx(t *testing.T, dir, name string, idx ...int) {
	t.Helper()
	for _, i := range idx {
		shmRun(t, dir, 0, fmt.Sprintf("%d\n", i), "", "alloc", "--index", strconv.Itoa(i), name)
	}
}

// startHolder starts "shmlock lock NAME IDX sleeper" (with env added) and
// waits until the sleeper runs, so the lock is held.
func startHolder(t *testing.T, dir, name string, idx int, env ...string) *Proc {
	t.Helper()
	p := startIn(t, Opts{Env: env}, shmArgv(dir, "lock", name, strconv.Itoa(idx), "sleeper")...)
	p.WaitLine(t, "^ready$")
	return p
}

// killHolder SIGKILLs a holder started by startHolder and waits until it
// is reaped, when the kernel has walked its robust list. Its sleeper is
// left to the group's cleanup.
func killHolder(t *testing.T, p *Proc) {
	t.Helper()
	p.Signal(unix.SIGKILL)
	if r := p.Wait(t); r.Signal != unix.SIGKILL {
		t.Fatalf("holder %q ended %s; want killed by SIGKILL", p.Argv, r.Status())
	}
}

// TestShmlockCommands is acceptance test 29: create, alloc, open, grow,
// free, status, gc, unlink and inspect, their outputs, messages and exit
// codes.
func TestShmlockCommands(t *testing.T) {
	t.Parallel()
	dir := shmDir(t)

	shmRun(t, dir, 0, "", "", "create", "seg", "100")
	if _, err := os.Stat(filepath.Join(dir, "seg")); err != nil {
		t.Fatalf("create did not make %s/seg: %v", dir, err)
	}
	shmRun(t, dir, 1, "", "shmlock: fatal: unable to create /seg: File exists\n", "create", "/seg", "64")
	shmRun(t, dir, 100, "", "shmlock: usage: shmlock create [ -m MODE ] [ --max N ] NAME COUNT\n"+"shmlock: fatal: COUNT: 0 is out of range: a segment has 1 to 16777216 locks\n", "create", "zero", "0")
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%s holds %d files after a failed create; want only seg", dir, len(ents))
	}

	// open prints the summary; the count rounds to 128 either way.
	r := shmRun(t, dir, 0, anyOut, "", "open", "seg", "100")
	sum := map[string]string{}
	for _, l := range lines(r.Stdout) {
		k, v, _ := strings.Cut(l, " ")
		sum[k] = v
	}
	keys := "path version num_locks max_locks free held size created creator_pid recoveries forced_unlocks"
	var got []string
	for _, l := range lines(r.Stdout) {
		k, _, _ := strings.Cut(l, " ")
		got = append(got, k)
	}
	if strings.Join(got, " ") != keys {
		t.Errorf("open summary keys = %q; want %q", got, keys)
	}
	for k, want := range map[string]string{
		"path": filepath.Join(dir, "seg"), "version": "1", "num_locks": "128", "free": "128", "held": "0",
		"recoveries": "0", "forced_unlocks": "0",
	} {
		if sum[k] != want {
			t.Errorf("open summary %s = %q; want %q (summary %q)", k, sum[k], want, r.Stdout)
		}
	}
	shmRun(t, dir, 0, r.Stdout, "", "open", "seg", "128")
	shmRun(t, dir, 111, "", "shmlock: fatal: unable to open seg: Numerical result out of range\n", "open", "seg", "999")
	shmRun(t, dir, 111, "", "shmlock: fatal: unable to open nosuch: No such file or directory\n", "open", "nosuch")
	shmRun(t, dir, 100, "", "shmlock: usage: shmlock open NAME [ COUNT ]\n"+"shmlock: fatal: COUNT: 0 is out of range: a segment has 1 to 16777216 locks\n", "open", "seg", "0")
	missing := filepath.Join(dir, "nodir")
	argv := []string{"shmlock", "--dir", missing, "open", "seg"}
	if r := run(t, argv...); r.Code != 111 || !strings.Contains(r.Stderr, "--dir") || len(lines(r.Stderr)) != 1 {
		t.Errorf("run(%q) = %s, stderr %q; want exit 111 and one line with a hint about --dir", argv, r.Status(), r.Stderr)
	}

	// alloc hands out the lowest free index; free gives it back.
	for i := range 3 {
		shmRun(t, dir, 0, fmt.Sprintf("%d\n", i), "", "alloc", "seg")
	}
	shmRun(t, dir, 0, "", "", "free", "seg", "1")
	shmRun(t, dir, 1, "", "shmlock: fatal: unable to free seg[1]: No such file or directory\n", "free", "seg", "1")
	shmRun(t, dir, 0, "1\n", "", "alloc", "seg")
	shmRun(t, dir, 0, "10\n", "", "alloc", "--index", "10", "--tag", "0x10", "seg")
	shmRun(t, dir, 1, "", "shmlock: fatal: unable to allocate seg[10]: File exists\n", "alloc", "--index", "10", "seg")
	shmRun(t, dir, 100, "", "shmlock: usage: shmlock alloc [ --index I ] [ --tag T ] NAME\n"+"shmlock: fatal: IDX: 128 is out of range: seg has 128 locks (0 to 127)\n", "alloc", "--index", "128", "seg")
	shmRun(t, dir, 100, "", "shmlock: usage: shmlock free NAME IDX... | free --all NAME\n"+"shmlock: fatal: IDX: 500 is out of range: seg has 128 locks (0 to 127)\n", "free", "seg", "500")
	r = shmRun(t, dir, 0, anyOut, "", "open", "seg")
	if !strings.Contains(r.Stdout, "\nfree 124\n") {
		t.Errorf("open summary after 4 allocations = %q; want free 124", r.Stdout)
	}

	// status --all lists the allocated indexes; the tag shows in decimal.
	r = shmRun(t, dir, 0, anyOut, "", "status", "--all", "seg")
	st := parseStatus(t, r.Stdout)
	var idx []int
	for _, s := range st {
		idx = append(idx, s.index)
		if s.state != "free" || s.pid != 0 || s.heldMs != 0 || s.waiters != 0 || s.flags != "-" {
			t.Errorf("status --all line %+v; want a free, unheld index with flags -", s)
		}
		if want := map[bool]uint64{true: 16, false: 0}[s.index == 10]; s.tag != want {
			t.Errorf("status --all: index %d tag %d; want %d", s.index, s.tag, want)
		}
	}
	if fmt.Sprint(idx) != "[0 1 2 10]" {
		t.Errorf("status --all indexes = %v; want [0 1 2 10]", idx)
	}
	shmRun(t, dir, 0, "", "", "status", "seg")
	r = shmRun(t, dir, 0, anyOut, "", "status", "--json", "seg", "10")
	var js map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &js); err != nil || len(lines(r.Stdout)) != 1 {
		t.Fatalf("status --json = %q: %v; want one JSON object", r.Stdout, err)
	}
	if js["index"] != 10.0 || js["allocated"] != true || js["tag"] != 16.0 || js["locked"] != false {
		t.Errorf("status --json = %v; want index 10, allocated, tag 16, not locked", js)
	}

	// gc frees the tagged, unlocked indexes whose tag stdin does not list.
	shmRun(t, dir, 0, "3\n", "", "alloc", "--tag", "7", "seg")
	shmRun(t, dir, 0, "4\n", "", "alloc", "--tag", "8", "seg")
	gc := shmArgv(dir, "gc", "seg")
	expect(t, gc, runIn(t, Opts{Stdin: "8\n\n0x10\n"}, gc...), 0, "3\n", "")
	expect(t, gc, runIn(t, Opts{Stdin: "8\n"}, gc...), 0, "10\n", "")
	expect(t, gc, runIn(t, Opts{Stdin: "8\n"}, gc...), 0, "", "")
	expect(t, gc, runIn(t, Opts{Stdin: "x\n"}, gc...), 100, "", "shmlock: fatal: unable to read live tags: line 1: invalid tag \"x\"\n")
	shmRun(t, dir, 0, "", "", "free", "--all", "seg")
	shmRun(t, dir, 0, "0\n", "", "alloc", "seg")

	// grow: up only, within max_locks.
	shmRun(t, dir, 0, "", "", "grow", "seg", "1000")
	r = shmRun(t, dir, 0, anyOut, "", "open", "seg", "1024")
	if !strings.Contains(r.Stdout, "\nnum_locks 1024\n") {
		t.Errorf("open after grow = %q; want num_locks 1024", r.Stdout)
	}
	shmRun(t, dir, 100, "", "shmlock: usage: shmlock grow NAME COUNT\n"+"shmlock: fatal: COUNT: 64 is below seg's count, 1024: a segment never shrinks\n", "grow", "seg", "64")
	shmRun(t, dir, 0, "", "", "create", "--max", "128", "small", "64")
	shmRun(t, dir, 111, "", "shmlock: fatal: unable to grow small: File too large\n", "grow", "small", "192")

	// A full segment refuses with ENOSPC.
	for i := range 64 {
		shmRun(t, dir, 0, fmt.Sprintf("%d\n", i), "", "alloc", "small")
	}
	shmRun(t, dir, 1, "", "shmlock: fatal: unable to allocate in small: No space left on device\n", "alloc", "small")

	shmRun(t, dir, 111, "", "shmlock: fatal: unable to open seg: Bad file descriptor\n", "inspect", "--podman", "seg")
	r = shmRun(t, dir, 0, anyOut, "", "inspect", "seg")
	if !strings.HasPrefix(r.Stdout, "path "+filepath.Join(dir, "seg")+"\nversion 1\n") {
		t.Errorf("inspect = %q; want the summary", r.Stdout)
	}

	// unlink removes the name; a second one is ENOENT.
	shmRun(t, dir, 0, "", "", "unlink", "/seg")
	shmRun(t, dir, 111, "", "shmlock: fatal: unable to unlink seg: No such file or directory\n", "unlink", "seg")
	shmRun(t, dir, 0, "", "", "unlink", "small")
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%s holds %d files after unlink; want none", dir, len(ents))
	}

	// Bad numbers and names are usage errors: the command's synopsis,
	// then the bad word and why.
	usage := "shmlock: usage: shmlock [ --dir DIR ] [ --any-owner ] create|open|alloc|free|lock|unlock|status|grow|gc|unlink|inspect ...\n"
	notNum := func(cmd, word, s string) string {
		return "shmlock: usage: shmlock " + cmd + "\nshmlock: fatal: " + word + ": \"" + s + "\" is not a decimal number below 2^32\n"
	}
	const create, open, free, lock = "create [ -m MODE ] [ --max N ] NAME COUNT", "open NAME [ COUNT ]", "free NAME IDX... | free --all NAME", "lock [ -n | -t MS ] [ -k ] NAME IDX prog..."
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "x", "0x40"}, notNum(create, "COUNT", "0x40")},
		{[]string{"create", "x", "-1"}, usage},
		{[]string{"create", "x", "1e3"}, notNum(create, "COUNT", "1e3")},
		{[]string{"open", "x", "64k"}, notNum(open, "COUNT", "64k")},
		{[]string{"alloc", "--tag", "-1", "x"}, usage},
		{[]string{"alloc", "--tag", "0xg", "x"}, "shmlock: usage: shmlock alloc [ --index I ] [ --tag T ] NAME\nshmlock: fatal: --tag: \"0xg\" is not a decimal or 0x hex number below 2^64\n"},
		{[]string{"free", "x", "010x"}, notNum(free, "IDX", "010x")},
		{[]string{"lock", "x", "three", "true"}, notNum(lock, "IDX", "three")},
		{[]string{"lock", "-t", "0x10", "x", "1", "true"}, usage},
		{[]string{"unlock", "x", "+1"}, notNum("unlock NAME IDX", "IDX", "+1")},
		{[]string{"status", "x", "1.0"}, notNum("status [ --json ] [ --all ] NAME [ IDX... ]", "IDX", "1.0")},
		{[]string{"grow", "x", "4294967296"}, notNum("grow NAME COUNT", "COUNT", "4294967296")},
		{[]string{"create", "-m", "999", "x", "64"}, "shmlock: usage: shmlock " + create + "\nshmlock: fatal: -m: \"999\" is not an octal mode (0 to 7777)\n"},
		{[]string{"create", "a/b", "64"}, "shmlock: usage: shmlock " + create + "\nshmlock: fatal: NAME: \"a/b\" is not a segment name: one file name in DIR, \"/name\" or \"name\"\n"},
		{[]string{"nosuch", "x"}, usage},
		{[]string{}, usage},
	} {
		if tc.want != usage {
			shmRun(t, dir, 100, "", tc.want, tc.args...)
			continue
		}
		// kong's refusals: the applet's or the command's usage line,
		// then at most one line naming the bad word.
		argv := shmArgv(dir, tc.args...)
		if r := run(t, argv...); r.Code != 100 || r.Stdout != "" || !isUsageError(r.Stderr, "shmlock") {
			t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 100, a usage error", argv, r.Status(), r.Stdout, r.Stderr)
		}
	}
}

// TestShmlockLock is acceptance test 30: lock runs prog as its child while
// holding the lock, relays its status and signals, and releases the lock.
func TestShmlockLock(t *testing.T) {
	t.Parallel()
	dir := shmDir(t)
	shmRun(t, dir, 0, "", "", "create", "seg", "64")
	shmAllocIdx(t, dir, "seg", 3, 4, 5, 6, 7, 8)

	t.Run("exit codes", func(t *testing.T) {
		shmRun(t, dir, 7, "", "", "lock", "seg", "3", "sh", "-c", "exit 7")
		shmRun(t, dir, 0, "", "", "lock", "seg", "3", "exitwith", "0")
		shmRun(t, dir, 128, "", "", "lock", "seg", "3", "exitwith", "200")
		shmRun(t, dir, 143, "", "", "lock", "seg", "3", "killself", "TERM")
		shmRun(t, dir, 127, "", "shmlock: fatal: unable to spawn /nonexistent/prog: No such file or directory\n", "lock", "seg", "3", "/nonexistent/prog")
		noexec := filepath.Join(t.TempDir(), "noexec")
		if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		shmRun(t, dir, 126, "", "shmlock: fatal: unable to spawn "+noexec+": Permission denied\n", "lock", "seg", "3", noexec)
		// Each of them left the lock free.
		shmRun(t, dir, 0, "", "", "lock", "-n", "seg", "3", "true")
		shmRun(t, dir, 0, "", "", "status", "seg")
		shmRun(t, dir, 100, "", "shmlock: usage: shmlock lock [ -n | -t MS ] [ -k ] NAME IDX prog...\n"+"shmlock: fatal: IDX: 64 is out of range: seg has 64 locks (0 to 63)\n", "lock", "seg", "64", "true")
		// An index nobody allocated is refused, as the help says.
		shmRun(t, dir, 1, "", "shmlock: fatal: unable to lock seg[9]: not allocated (shmlock alloc allocates it)\n", "lock", "seg", "9", "true")
		shmRun(t, dir, 111, "", "shmlock: fatal: unable to open nosuch: No such file or directory\n", "lock", "nosuch", "1", "true")
	})

	t.Run("busy and timeout", func(t *testing.T) {
		h := startHolder(t, dir, "seg", 3)
		shmRun(t, dir, 1, "", "shmlock: fatal: unable to lock seg[3]: Device or resource busy\n", "lock", "-n", "seg", "3", "true")
		shmRun(t, dir, 1, "", "shmlock: fatal: unable to lock seg[3]: Device or resource busy\n", "lock", "-n", "-t", "5000", "seg", "3", "true")
		t0 := time.Now()
		shmRun(t, dir, 1, "", "shmlock: fatal: lock seg[3]: timed out\n", "lock", "-t", "200", "seg", "3", "true")
		if d := time.Since(t0); d < 200*time.Millisecond {
			t.Errorf("lock -t 200 gave up after %v; want at least 200ms", d)
		}
		// Another index is free; the holder shows in status.
		shmRun(t, dir, 0, "", "", "lock", "-n", "seg", "4", "true")
		r := shmRun(t, dir, 0, anyOut, "", "status", "seg")
		st := parseStatus(t, r.Stdout)
		// A race-instrumented (cgo) gotools runs without kernel coverage:
		// glibc owns its robust list (GOTOOLS_RACE=1).
		flags := map[bool]string{false: "-", true: "uncovered"}[os.Getenv("GOTOOLS_RACE") == "1"]
		if len(st) != 1 || st[0].index != 3 || st[0].state != "held" || st[0].pid != h.Pid || st[0].comm != "shmlock" || st[0].flags != flags {
			t.Errorf("status = %+v; want index 3 held by %d (shmlock), flags %s", st, h.Pid, flags)
		}
		r = shmRun(t, dir, 0, anyOut, "", "status", "--json", "seg", "3")
		var js map[string]any
		if err := json.Unmarshal([]byte(r.Stdout), &js); err != nil {
			t.Fatalf("status --json = %q: %v", r.Stdout, err)
		}
		if js["locked"] != true || js["pid"] != float64(h.Pid) || js["owner"] != "alive" || js["state"] != "held" {
			t.Errorf("status --json = %v; want locked by %d, alive", js, h.Pid)
		}
		// While still waiting, TERM ends lock with 143 and nothing held.
		w := start(t, shmArgv(dir, "lock", "seg", "3", "true")...)
		waitFor(t, "a waiter on seg[3]", func() bool {
			r := run(t, shmArgv(dir, "status", "seg", "3")...)
			st := parseStatus(t, r.Stdout)
			return len(st) == 1 && st[0].waiters > 0
		})
		w.Signal(unix.SIGTERM)
		if r := w.Wait(t); r.Code != 143 || r.Stderr != "" {
			t.Errorf("waiting lock killed by TERM = %s, stderr %q; want exit 143, no stderr", r.Status(), r.Stderr)
		}
		h.Signal(unix.SIGTERM) // forwarded: the sleeper dies of it
		if r := h.Wait(t); r.Code != 143 {
			t.Errorf("holder after TERM = %s; want exit 143", r.Status())
		}
		shmRun(t, dir, 0, "", "", "lock", "-n", "seg", "3", "true")
	})

	t.Run("signals forwarded", func(t *testing.T) {
		p := start(t, shmArgv(dir, "lock", "seg", "5", "trapsig", "-on", "TERM")...)
		p.WaitLine(t, "^ready$")
		for _, s := range []unix.Signal{unix.SIGUSR1, unix.SIGHUP, unix.SIGINT, unix.SIGWINCH} {
			p.Signal(s)
			p.WaitLine(t, "^"+strings.TrimPrefix(unix.SignalName(s), "SIG")+"$")
		}
		p.Signal(unix.SIGTERM)
		if r := p.Wait(t); r.Code != 143 || r.Stdout != "ready\nUSR1\nHUP\nINT\nWINCH\nTERM\n" {
			t.Errorf("lock of trapsig after USR1 HUP INT WINCH TERM = %s, stdout %q; want 143 and each signal", r.Status(), r.Stdout)
		}
		shmRun(t, dir, 0, "", "", "lock", "-n", "seg", "5", "true")
	})

	t.Run("no segment fd in prog", func(t *testing.T) {
		argv := shmArgv(dir, "lock", "seg", "6", "fdlist")
		r := run(t, argv...)
		var fds []string
		for _, l := range lines(r.Stdout) {
			n, _, _ := strings.Cut(l, " ")
			fds = append(fds, n)
		}
		if r.Code != 0 || strings.Join(fds, " ") != "0 1 2" {
			t.Errorf("run(%q) = %s, stdout %q; want exit 0 and only fds 0, 1 and 2", argv, r.Status(), r.Stdout)
		}
	})

	t.Run("dead owner", func(t *testing.T) {
		h := startHolder(t, dir, "seg", 7)
		killHolder(t, h)
		sh := `echo "died=$SHMLOCK_OWNER_DIED"`
		want := fmt.Sprintf("shmlock: warning: seg[7]: previous owner (pid %d) died holding the lock\n", h.Pid)
		shmRun(t, dir, 0, fmt.Sprintf("died=%d\n", h.Pid), want, "lock", "seg", "7", "sh", "-c", sh)
		// Only the first locker is told; an inherited variable is dropped.
		argv := shmArgv(dir, "lock", "seg", "7", "sh", "-c", sh)
		expect(t, argv, runIn(t, Opts{Env: []string{"SHMLOCK_OWNER_DIED=1"}}, argv...), 0, "died=\n", "")
		r := shmRun(t, dir, 0, anyOut, "", "inspect", "seg")
		if !strings.Contains(r.Stdout, "\nrecoveries 1\n") {
			t.Errorf("inspect after a recovery = %q; want recoveries 1", r.Stdout)
		}
	})

	t.Run("-k kills prog with shmlock", func(t *testing.T) {
		for _, k := range []bool{true, false} {
			args := []string{"lock", "seg", "8", "sleeper"}
			if k {
				args = []string{"lock", "-k", "seg", "8", "sleeper"}
			}
			p := start(t, shmArgv(dir, args...)...)
			p.WaitLine(t, "^ready$")
			kids := children(t, p.Pid)
			if len(kids) != 1 || kids[0].Comm != "sleeper" {
				t.Fatalf("children of %q = %v; want one sleeper", p.Argv, kids)
			}
			sleeper := kids[0].Pid
			killHolder(t, p)
			dead := func() bool {
				st, err := readStat(sleeper)
				return err != nil || st.State == 'Z'
			}
			if k {
				waitFor(t, "the sleeper to die with shmlock -k", dead)
			} else if dead() {
				// The negative control: without -k the sleeper outlives
				// shmlock (and the group's cleanup kills it).
				t.Errorf("sleeper %d died with shmlock without -k", sleeper)
			}
			p.KillGroup(t)
		}
	})
}

// TestShmlockUnlock is acceptance test 31: unlock releases a dead owner's
// lock, and refuses a live owner's, naming it.
func TestShmlockUnlock(t *testing.T) {
	t.Parallel()
	dir := shmDir(t)
	shmRun(t, dir, 0, "", "", "create", "seg", "64")
	shmAllocIdx(t, dir, "seg", 2)

	// A live owner's lock is never released.
	h := startHolder(t, dir, "seg", 2)
	shmRun(t, dir, 1, "", fmt.Sprintf("shmlock: fatal: unable to unlock seg[2]: Device or resource busy (held by live pid %d, shmlock)\n", h.Pid), "unlock", "seg", "2")
	shmRun(t, dir, 1, "", "shmlock: fatal: unable to unlock seg[3]: Operation not permitted\n", "unlock", "seg", "3")
	shmRun(t, dir, 100, "", "shmlock: usage: shmlock unlock NAME IDX\nshmlock: fatal: IDX: 64 is out of range: seg has 64 locks (0 to 63)\n", "unlock", "seg", "64")
	h.Signal(unix.SIGTERM)
	h.Wait(t)

	// A holder without kernel coverage (GOTOOLS_SHM_NO_ROBUST=1) dies: its
	// lock stays held by a dead pid until someone takes it over. A waiter
	// is stopped meanwhile, so that unlock, not the waiter's own liveness
	// check, is what frees it.
	h = startHolder(t, dir, "seg", 2, "GOTOOLS_SHM_NO_ROBUST=1")
	w := start(t, shmArgv(dir, "lock", "seg", "2", "sh", "-c", `echo "died=$SHMLOCK_OWNER_DIED"`)...)
	waitFor(t, "a waiter on seg[2]", func() bool {
		st := parseStatus(t, run(t, shmArgv(dir, "status", "seg", "2")...).Stdout)
		return len(st) == 1 && st[0].waiters > 0
	})
	w.Signal(unix.SIGSTOP)
	// kill(2) only queues the stop: a waiter thread still running on
	// another CPU could see the holder die and take the lock over.
	waitFor(t, "the waiter's threads to stop", func() bool { return allStopped(w.Pid) })
	killHolder(t, h)
	r := shmRun(t, dir, 0, anyOut, "", "status", "seg", "2")
	if st := parseStatus(t, r.Stdout); len(st) != 1 || st[0].state != "held-dead" || st[0].pid != h.Pid || !strings.Contains(st[0].flags, "uncovered") {
		t.Errorf("status of a dead uncovered holder's lock = %q; want held-dead by %d, uncovered", r.Stdout, h.Pid)
	}
	shmRun(t, dir, 0, "", "", "unlock", "seg", "2")
	r = shmRun(t, dir, 0, anyOut, "", "status", "seg", "2")
	if st := parseStatus(t, r.Stdout); len(st) != 1 || st[0].state != "owner-died" {
		t.Errorf("status after unlock = %q; want owner-died", r.Stdout)
	}
	shmRun(t, dir, 0, "", "", "unlock", "seg", "2") // marked OWNER_DIED: nothing to do
	w.Signal(unix.SIGCONT)
	if r := w.Wait(t); r.Code != 0 || r.Stdout != fmt.Sprintf("died=%d\n", h.Pid) || r.Stderr != fmt.Sprintf("shmlock: warning: seg[2]: previous owner (pid %d) died holding the lock\n", h.Pid) {
		t.Errorf("waiter after unlock = %s, stdout %q, stderr %q; want exit 0 and the owner-died warning for %d", r.Status(), r.Stdout, r.Stderr, h.Pid)
	}
	r = shmRun(t, dir, 0, anyOut, "", "inspect", "seg")
	if !strings.Contains(r.Stdout, "\nforced_unlocks 1\n") {
		t.Errorf("inspect after unlock = %q; want forced_unlocks 1", r.Stdout)
	}
	shmRun(t, dir, 0, "", "", "lock", "-n", "seg", "2", "true")
}

// podmanImage builds a podman segment in the x86_64 glibc layout from the
// spec's description alone (magic 0x87D1, counts at 48 and 52, 1288-byte
// groups at 56: a uint32 bitmap padded to 8, then 32 mutexes of 40 bytes
// whose first word is the futex word).
func podmanImage(groups uint32, alloc []int, words map[int]uint32) []byte {
	b := make([]byte, 56+int(groups)*1288)
	put := func(at int, v uint32) {
		b[at], b[at+1], b[at+2], b[at+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	b[0], b[1] = 0xD1, 0x87
	put(48, groups)
	put(52, groups*32)
	for _, i := range alloc {
		at := 56 + i/32*1288
		b[at+i%32/8] |= 1 << (i % 8)
	}
	for i, w := range words {
		put(56+i/32*1288+8+i%32*40, w)
	}
	return b
}

// TestShmlockInspectPodman is acceptance test 32 (synthetic part; the
// optional tests/podmanbench module checks a real podman segment):
// inspect --podman decodes podman's x86_64 layout, read-only.
func TestShmlockInspectPodman(t *testing.T) {
	t.Parallel()
	dir := shmDir(t)
	self := os.Getpid()
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", self))
	if err != nil {
		t.Fatal(err)
	}
	gone := 1 << 22 // above pid_max's default: no such thread
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n < 1<<29 {
			gone = n + 1
		}
	}
	img := podmanImage(3, []int{0, 1, 33, 95}, map[int]uint32{
		1:  uint32(self) | 0x80000000, // held by us, with waiters
		33: 0x40000000,                // its owner died
		40: uint32(gone),              // held by a thread that is gone, not allocated
	})
	path := filepath.Join(dir, "libpod_lock")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("path %s\nformat podman\nlayout x86_64-glibc\nnum_bitmaps 3\nnum_locks 96\nallocated 4\nheld 2\n", path) +
		"0\tfree\tyes\t0\t0\t-\t-\n" +
		fmt.Sprintf("1\theld\tyes\t%d\t%d\t%s\twaiters\n", self, self, strings.TrimSpace(string(comm))) +
		"33\towner-died\tyes\t0\t0\t-\towner-died\n" +
		fmt.Sprintf("40\theld\tno\t%d\t0\t-\tgone\n", gone) +
		"95\tfree\tyes\t0\t0\t-\t-\n"
	shmRun(t, dir, 0, want, "", "inspect", "--podman", "/libpod_lock")
	if b, err := os.ReadFile(path); err != nil || string(b) != string(img) {
		t.Errorf("inspect --podman changed %s (err %v)", path, err)
	}
	// Not gotools' format, and a truncated podman file is refused.
	shmRun(t, dir, 111, "", "shmlock: fatal: unable to open libpod_lock: Bad file descriptor\n", "inspect", "libpod_lock")
	if err := os.WriteFile(path, img[:len(img)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	shmRun(t, dir, 111, "", "shmlock: fatal: unable to open libpod_lock: Bad file descriptor\n", "inspect", "--podman", "libpod_lock")
	shmRun(t, dir, 111, "", "shmlock: fatal: unable to open nosuch: No such file or directory\n", "inspect", "--podman", "nosuch")
}

// TestShmlockForeignPIDNamespace is the applet's half of acceptance test
// 27: from another PID namespace a segment cannot be opened for locking
// (EXDEV: its PIDs would be ambiguous), while status works read-only and
// cannot tell whether an owner lives.
func TestShmlockForeignPIDNamespace(t *testing.T) {
	t.Parallel()
	dir := shmDir(t)
	shmRun(t, dir, 0, "", "", "create", "seg", "64")
	shmAllocIdx(t, dir, "seg", 3, 4)
	h := startHolder(t, dir, "seg", 3)
	argv := shmArgv(dir, "open", "seg")
	r := runIn(t, Opts{NewPIDNS: true}, argv...)
	expect(t, argv, r, 111, "", "shmlock: fatal: unable to open seg: Invalid cross-device link\n")
	argv = shmArgv(dir, "status", "seg")
	r = runIn(t, Opts{NewPIDNS: true}, argv...)
	want := fmt.Sprintf("3\theld-unknown\t%d\t", h.Pid)
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, want) || len(lines(r.Stdout)) != 1 || r.Stderr != "" {
		t.Errorf("run(%q) in a new PID namespace = %s, stdout %q, stderr %q; want exit 0 and one line starting %q", argv, r.Status(), r.Stdout, r.Stderr, want)
	}
	argv = shmArgv(dir, "lock", "-n", "seg", "4", "true")
	expect(t, argv, runIn(t, Opts{NewPIDNS: true}, argv...), 111, "", "shmlock: fatal: unable to open seg: Invalid cross-device link\n")
}

// allStopped reports whether every thread of pid is stopped (state T).
func allStopped(pid int) bool {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			return false
		}
		// The state follows the command's closing parenthesis.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return len(tasks) > 0
}
