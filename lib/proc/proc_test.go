//go:build linux

package proc

import (
	"bufio"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// statusField returns a field of /proc/PID/status, e.g. "SigBlk".
func statusField(t *testing.T, pid int, name string) string {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, pid)
	return ""
}

// waitDead reaps pid with a blocking wait4, the test being the owner.
func waitDead(t *testing.T, pid int) unix.WaitStatus {
	t.Helper()
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("wait4(%d): %v", pid, err)
		}
		return ws
	}
}

func sleepPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/bin/sleep", "/usr/bin/sleep"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("no sleep binary")
	return ""
}

func TestSpawnClearsInheritedSignalMask(t *testing.T) {
	sleep := sleepPath(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	set.Val[0] = 1 << (uint(unix.SIGUSR1) - 1)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
		t.Fatal(err)
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)

	// Negative control: a plain os.StartProcess on this thread hands
	// the blocked mask down, so the check below can fail.
	p, err := os.StartProcess(sleep, []string{"sleep", "60"}, &os.ProcAttr{Files: []*os.File{nil, nil, os.Stderr}})
	if err != nil {
		t.Fatal(err)
	}
	if got := statusField(t, p.Pid, "SigBlk"); got == "0000000000000000" {
		t.Errorf("control: os.StartProcess child SigBlk = %s; want SIGUSR1 blocked", got)
	}
	p.Kill()
	p.Wait()

	pid, err := Spawn([]string{sleep, "60"}, Attr{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { unix.Kill(pid, unix.SIGKILL); waitDead(t, pid) }()
	if got := statusField(t, pid, "SigBlk"); got != "0000000000000000" {
		t.Errorf("Spawn child SigBlk = %s; want 0000000000000000", got)
	}
}

func TestSpawnResetsHandledSignals(t *testing.T) {
	sleep := sleepPath(t)
	c := make(chan os.Signal, 1)
	signal.Notify(c, unix.SIGTERM, unix.SIGHUP)
	defer signal.Stop(c)
	pid, err := Spawn([]string{sleep, "60"}, Attr{})
	if err != nil {
		t.Fatal(err)
	}
	// The handled signals are back to SIG_DFL: neither caught nor ignored.
	// (Other bits of SigIgn may be inherited from whoever started this
	// test, and exec passes SIG_IGN on, as it should.)
	if got := statusField(t, pid, "SigCgt"); got != "0000000000000000" {
		t.Errorf("child SigCgt = %s; want none", got)
	}
	ign, err := strconv.ParseUint(statusField(t, pid, "SigIgn"), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []unix.Signal{unix.SIGTERM, unix.SIGHUP} {
		if ign&(1<<(uint(s)-1)) != 0 {
			t.Errorf("child ignores %v; want SIG_DFL", s)
		}
	}
	unix.Kill(pid, unix.SIGTERM)
	if ws := waitDead(t, pid); !ws.Signaled() || ws.Signal() != unix.SIGTERM {
		t.Errorf("child status = %v; want killed by SIGTERM", ws)
	}
}

func TestSpawnFailureCodes(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		argv []string
		code int
	}{
		{"missing path", []string{filepath.Join(dir, "nosuch")}, 127},
		{"missing in PATH", []string{"gotools-no-such-program"}, 127},
		{"not executable", []string{noexec}, 126},
		{"a directory", []string{dir}, 126},
		{"empty", []string{""}, 127},
	} {
		_, err := Spawn(tt.argv, Attr{})
		if err == nil {
			t.Errorf("%s: Spawn(%q) = nil error; want failure", tt.name, tt.argv)
			continue
		}
		if got := SpawnCode(err); got != tt.code {
			t.Errorf("%s: SpawnCode(%v) = %d; want %d", tt.name, err, got, tt.code)
		}
		var errno unix.Errno
		if !errors.As(err, &errno) {
			t.Errorf("%s: Spawn error %v carries no errno", tt.name, err)
		}
	}
}

func TestSpawnExactFiles(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The child gets only fds 0-2; its fd 1 is the pipe.
	pid, err := Spawn([]string{"/bin/sh", "-c", "ls /proc/self/fd"}, Attr{Files: []*os.File{nil, w, os.Stderr}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := bufio.NewReader(r).ReadString(0)
	waitDead(t, pid)
	// Allowed: 0-2, ls's own fd for the directory it lists, and what
	// this test process itself inherited without FD_CLOEXEC (exec passes
	// those on, as s6 does). The pipe's read end must not be there.
	inherited := map[string]bool{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		if fl, err := unix.FcntlInt(uintptr(n), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
			inherited[e.Name()] = true
		}
	}
	extra := 0
	for _, f := range strings.Fields(out) {
		if !inherited[f] && f != "0" && f != "1" && f != "2" {
			extra++
		}
	}
	if extra > 1 {
		t.Errorf("child fds = %q; want only 0-2, ls's own and %v", out, inherited)
	}
	if strings.Contains(" "+strings.Join(strings.Fields(out), " ")+" ", " "+strconv.Itoa(int(r.Fd()))+" ") {
		t.Errorf("child inherited the pipe's read end (fd %d): %q", r.Fd(), out)
	}
}

func TestReapCollectsEveryDeadChild(t *testing.T) {
	want := map[int]int{}
	for i := 0; i < 5; i++ {
		pid, err := Spawn([]string{"/bin/sh", "-c", "exit " + strconv.Itoa(i)}, Attr{})
		if err != nil {
			t.Fatal(err)
		}
		want[pid] = i
	}
	got := map[int]int{}
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		if err := Reap(func(pid int, ws unix.WaitStatus) { got[pid] = ws.ExitStatus() }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // polling the kernel state, bounded
	}
	for pid, c := range want {
		if got[pid] != c {
			t.Errorf("Reap: pid %d exit = %d (reaped %v); want %d", pid, got[pid], len(got), c)
		}
	}
	if err := Reap(func(int, unix.WaitStatus) { t.Error("reaped a child that was not dead") }); err != nil {
		t.Errorf("Reap with no children = %v; want nil", err)
	}
}

func TestSetSubreaper(t *testing.T) {
	get := func() int {
		var v int32
		if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafePointer(&v)), 0, 0, 0); err != nil {
			t.Fatal(err)
		}
		return int(v)
	}
	defer SetSubreaper(false)
	if err := SetSubreaper(true); err != nil {
		t.Fatal(err)
	}
	if get() != 1 {
		t.Errorf("after SetSubreaper(true): PR_GET_CHILD_SUBREAPER = %d; want 1", get())
	}
	if err := SetSubreaper(false); err != nil {
		t.Fatal(err)
	}
	if get() != 0 {
		t.Errorf("after SetSubreaper(false): PR_GET_CHILD_SUBREAPER = %d; want 0", get())
	}
}

func TestPidfdFollowsAProcess(t *testing.T) {
	sleep := sleepPath(t)
	pid, err := Spawn([]string{sleep, "60"}, Attr{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := OpenPidfd(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if ex, err := p.Exited(); ex || err != nil {
		t.Fatalf("Exited() = %v, %v on a live process; want false, nil", ex, err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	if err := p.Signal(unix.SIGTERM); err != nil {
		t.Fatalf("Signal(SIGTERM) = %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Wait() = %v", err)
	}
	if ex, err := p.Exited(); !ex || err != nil {
		t.Errorf("Exited() = %v, %v after death; want true, nil", ex, err)
	}
	if ws := waitDead(t, pid); !ws.Signaled() || ws.Signal() != unix.SIGTERM {
		t.Errorf("status = %v; want killed by SIGTERM", ws)
	}
	// The pid is reaped now: the pidfd still names the dead process and
	// signalling it fails with ESRCH instead of hitting a reused pid.
	if err := p.Signal(unix.SIGTERM); !errors.Is(err, unix.ESRCH) {
		t.Errorf("Signal after reap = %v; want ESRCH", err)
	}
	if _, err := OpenPidfd(pid); !errors.Is(err, unix.ESRCH) {
		t.Errorf("OpenPidfd(reaped pid) = %v; want ESRCH", err)
	}
}

func TestSpawnPathAndSetsid(t *testing.T) {
	sleep := sleepPath(t)
	// argv[0] is only a name: Path is what runs.
	pid, err := Spawn([]string{"not-a-program", "60"}, Attr{Path: sleep, Setsid: true})
	if err != nil {
		t.Fatalf("Spawn with Path = %v", err)
	}
	defer func() { unix.Kill(pid, unix.SIGKILL); waitDead(t, pid) }()
	sid, err := unix.Getsid(pid)
	if err != nil || sid != pid {
		t.Errorf("getsid(child) = %d, %v; want %d (a session leader)", sid, err, pid)
	}
	// The exec is done when Spawn returns, but the kernel closes the
	// CLOEXEC fds (which is how Go learns of it) before it lays out the
	// new argv: poll until cmdline is there.
	var b []byte
	for end := time.Now().Add(10 * time.Second); len(b) == 0 && time.Now().Before(end); time.Sleep(time.Millisecond) {
		b, err = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	}
	if err != nil || !strings.HasPrefix(string(b), "not-a-program\x00") {
		t.Errorf("child argv = %q, %v; want argv[0] not-a-program", b, err)
	}
}

func TestSpawnNewPIDNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("CLONE_NEWPID needs root")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pid, err := Spawn([]string{"/bin/sh", "-c", "echo $$"}, Attr{Files: []*os.File{nil, w, os.Stderr}, NewPIDNS: true})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := bufio.NewReader(r).ReadString('\n')
	waitDead(t, pid)
	if strings.TrimSpace(out) != "1" {
		t.Errorf("$$ in a new PID namespace = %q; want 1", out)
	}
}
