package tests

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Result is how a process ended and what it wrote.
type Result struct {
	Code   int         // exit status; -1 if a signal killed the process
	Signal unix.Signal // the signal that killed the process; 0 if it exited
	Stdout string
	Stderr string
}

// Status describes how r ended, for failure messages: "exit 3" or
// "killed by SIGTERM".
func (r Result) Status() string {
	if r.Signal != 0 {
		return "killed by " + unix.SignalName(r.Signal)
	}
	return fmt.Sprintf("exit %d", r.Code)
}

// Opts are the optional settings of [runIn] and [startIn].
type Opts struct {
	Stdin      string     // the contents of stdin (a file); empty: /dev/null
	StdinFile  *os.File   // stdin itself (e.g. a pipe's read end), instead of Stdin
	Env        []string   // KEY=VALUE pairs added to the environment; later ones win
	ExtraFiles []*os.File // fds 3, 4, ... of the process; the caller closes its copies
	Dir        string     // the working directory; empty: the test's
	// NewPIDNS starts the process as PID 1 of a new PID namespace
	// (CLONE_NEWPID; the test is skipped unless it runs as root). Killing
	// it, as the cleanup does, makes the kernel kill the whole namespace.
	NewPIDNS bool
}

// run runs argv to completion and returns its Result. argv[0] is looked up
// in $PATH, which starts with the farm: applets, aliases and roles. The
// process leads its own process group; whatever it leaves in the group is
// killed and reaped before run returns (use [start] to keep it).
func run(t testing.TB, argv ...string) Result {
	t.Helper()
	return runIn(t, Opts{}, argv...)
}

// runIn is [run] with settings.
func runIn(t testing.TB, o Opts, argv ...string) Result {
	t.Helper()
	p := startIn(t, o, argv...)
	r := p.Wait(t)
	p.KillGroup(t)
	return r
}

// Proc is a process started by [start]: the leader of its own process group.
// Its stdout and stderr go to files, so they can be read at any time, from
// any goroutine, and a descendant that keeps them open cannot block a Wait.
type Proc struct {
	Pid  int
	Argv []string

	t       testing.TB
	cmd     *exec.Cmd
	outPath string
	errPath string
	done    chan struct{} // closed once the leader was reaped
	waitErr error         // cmd.Wait's error, other than an *exec.ExitError
	ws      unix.WaitStatus
}

// start starts argv (looked up as in [run]) in a new process group. When the
// test ends, every process still in the group is killed with SIGKILL and
// reaped, and the test fails if the leader or any of them could not be.
func start(t testing.TB, argv ...string) *Proc {
	t.Helper()
	return startIn(t, Opts{}, argv...)
}

// startIn is [start] with settings.
func startIn(t testing.TB, o Opts, argv ...string) *Proc {
	t.Helper()
	if len(argv) == 0 {
		t.Fatal("start: no argv")
	}
	path := lookPath(t, argv[0])
	dir := t.TempDir()
	p := &Proc{
		Argv:    argv,
		t:       t,
		outPath: filepath.Join(dir, "stdout"),
		errPath: filepath.Join(dir, "stderr"),
		done:    make(chan struct{}),
	}
	var stdio []*os.File
	defer func() {
		for _, f := range stdio {
			f.Close()
		}
	}()
	open := func(name string, flag int) *os.File {
		f, err := os.OpenFile(name, flag, 0o600)
		if err != nil {
			t.Fatalf("start(%q): %v", argv, err)
		}
		stdio = append(stdio, f)
		return f
	}
	stdin := o.StdinFile
	if stdin == nil {
		name := os.DevNull
		if o.Stdin != "" {
			name = filepath.Join(dir, "stdin")
			if err := os.WriteFile(name, []byte(o.Stdin), 0o600); err != nil {
				t.Fatalf("start(%q): %v", argv, err)
			}
		}
		stdin = open(name, os.O_RDONLY)
	}
	wo := os.O_WRONLY | os.O_CREATE | os.O_EXCL | os.O_APPEND
	p.cmd = &exec.Cmd{
		Path:        path,
		Args:        argv,
		Env:         append(os.Environ(), o.Env...),
		Dir:         o.Dir,
		Stdin:       stdin,
		Stdout:      open(p.outPath, wo),
		Stderr:      open(p.errPath, wo),
		ExtraFiles:  o.ExtraFiles,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if o.NewPIDNS {
		if os.Geteuid() != 0 {
			t.Skip("CLONE_NEWPID needs root")
		}
		p.cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start(%q): %v", argv, err)
	}
	p.Pid = p.cmd.Process.Pid
	go func() {
		err := p.cmd.Wait()
		if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
			p.waitErr = err
		}
		if ps := p.cmd.ProcessState; ps != nil {
			p.ws = unix.WaitStatus(ps.Sys().(syscall.WaitStatus))
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.KillGroup(t)
		select {
		case <-p.done:
		default:
			t.Errorf("%q (pid %d) was not reaped", argv, p.Pid)
		}
	})
	return p
}

// Signal sends sig to the leader (through its pidfd, so never to a reused
// pid). The test fails if the leader was already reaped.
func (p *Proc) Signal(sig unix.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s to %q (pid %d): %v", unix.SignalName(sig), p.Argv, p.Pid, err)
	}
}

// Running reports whether the leader has not been reaped yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stdout returns everything written to the process's stdout so far (by the
// leader and by whatever shares its stdout).
func (p *Proc) Stdout() string { return p.read(p.outPath) }

// Stderr returns everything written to the process's stderr so far.
func (p *Proc) Stderr() string { return p.read(p.errPath) }

func (p *Proc) read(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		p.t.Errorf("%q: %v", p.Argv, err)
	}
	return string(b)
}

// WaitLine waits until a complete stdout line matches the regexp pattern and
// returns the first such line. It fails the test early if the process group
// is gone without printing it.
func (p *Proc) WaitLine(t testing.TB, pattern string) string {
	t.Helper()
	return p.waitLine(t, "stdout", p.outPath, pattern)
}

// WaitStderrLine is [Proc.WaitLine] for stderr.
func (p *Proc) WaitStderrLine(t testing.TB, pattern string) string {
	t.Helper()
	return p.waitLine(t, "stderr", p.errPath, pattern)
}

func (p *Proc) waitLine(t testing.TB, stream, name, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	var line string
	found, gone := false, false
	poll(deadline(t), func() bool {
		// Look at the group before the output: a line written just before
		// the last process exits is then still seen.
		gone = !p.Running() && len(groupMembers(p.Pid)) == 0
		for _, l := range lines(p.read(name)) {
			if re.MatchString(l) {
				line, found = l, true
				return true
			}
		}
		return gone
	})
	if !found {
		how := "timed out"
		if gone {
			how = "exited (" + p.result().Status() + ")"
		}
		t.Fatalf("%q %s without a %s line matching %q; stdout %q, stderr %q",
			p.Argv, how, stream, pattern, p.Stdout(), p.Stderr())
	}
	return line
}

// Wait waits for the leader to exit and returns its Result, with what its
// stdout and stderr held at that moment. It fails the test, rather than
// hang, if the leader is still running a few seconds before the test's
// deadline. Other processes of the group are left alone (see KillGroup).
func (p *Proc) Wait(t testing.TB) Result {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline(t)))
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		t.Fatalf("%q (pid %d) did not exit; stdout %q, stderr %q", p.Argv, p.Pid, p.Stdout(), p.Stderr())
	}
	if p.waitErr != nil {
		t.Fatalf("wait for %q: %v", p.Argv, p.waitErr)
	}
	return p.result()
}

func (p *Proc) result() Result {
	r := Result{Code: -1, Stdout: p.Stdout(), Stderr: p.Stderr()}
	switch {
	case p.Running():
	case p.ws.Signaled():
		r.Signal = p.ws.Signal()
	case p.ws.Exited():
		r.Code = p.ws.ExitStatus()
	}
	return r
}

// KillGroup kills (SIGKILL) the leader and every process left in its process
// group, reaps those that were re-parented to the test process (TestMain
// makes it a child subreaper), and waits until the group is empty and the
// leader reaped; the test fails if that does not happen before the deadline.
// run and the cleanup of start call it.
func (p *Proc) KillGroup(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(unix.SIGKILL) // ErrProcessDone is fine
	until := deadline(t)
	if min := time.Now().Add(10 * time.Second); until.Before(min) {
		until = min // cleanups may run after a test used all its time
	}
	self := os.Getpid()
	var left []procStat
	ok := poll(until, func() bool {
		left = groupMembers(p.Pid)
		if len(left) == 0 {
			return !p.Running()
		}
		// The members hold the pgid, so the number cannot have been reused
		// for another group while they are listed (pids are not reused while
		// a process group holds them).
		unix.Kill(-p.Pid, unix.SIGKILL)
		for _, st := range left {
			// The leader is os/exec's to reap: its Wait goroutine holds it.
			if st.Pid != p.Pid && st.PPid == self && st.State == 'Z' {
				var ws unix.WaitStatus
				unix.Wait4(st.Pid, &ws, unix.WNOHANG, nil)
			}
		}
		return false
	})
	if !ok {
		t.Errorf("process group %d of %q still holds %v (leader running: %v)", p.Pid, p.Argv, left, p.Running())
	}
}

// lines returns the complete lines of s: a last line without its newline
// is not finished yet.
func lines(s string) []string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// deadline is when waits give up: 5 s before the test's deadline (the slack
// lets it report and clean up), or 30 s from now without one.
func deadline(t testing.TB) time.Time {
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := dt.Deadline(); ok {
			return d.Add(-5 * time.Second)
		}
	}
	return time.Now().Add(30 * time.Second)
}

// poll calls cond every 10 ms until it returns true (poll returns true) or
// until has passed (poll returns false after one last try).
func poll(until time.Time, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		if time.Now().After(until) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond every 10 ms until it holds, and fails the test with
// "timed out waiting for WHAT" if it still does not hold at the deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !poll(deadline(t), cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// lookPath resolves argv[0] as exec would: a name with a slash as is, else
// through $PATH, which starts with the farm.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	if strings.ContainsRune(name, '/') {
		return name
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s: not in the farm %s nor in $PATH: %v", name, binDir, err)
	}
	return p
}

// realLookPath looks name up in the $PATH the tests started with, without
// the farm (whose s6-* aliases are gotools), and never returns a link to a
// binary called gotools.
func realLookPath(name string) (string, bool) {
	for _, dir := range filepath.SplitList(realPath) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			continue
		}
		if r, err := filepath.EvalSymlinks(p); err == nil && filepath.Base(r) == "gotools" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		return abs, true
	}
	return "", false
}

// requireS6 returns the absolute paths of upstream tools (s6-supervise,
// s6-svwait, ...) found in the real $PATH. A missing tool skips the test, or
// fails it when GOTOOLS_REQUIRE_S6=1 (CI).
func requireS6(t testing.TB, tools ...string) []string {
	t.Helper()
	paths := make([]string, len(tools))
	for i, tool := range tools {
		p, ok := realLookPath(tool)
		if !ok {
			if os.Getenv("GOTOOLS_REQUIRE_S6") == "1" {
				t.Fatalf("%s not found in %s, and GOTOOLS_REQUIRE_S6=1", tool, realPath)
			}
			t.Skipf("%s not found in %s (GOTOOLS_REQUIRE_S6=1 makes this a failure)", tool, realPath)
		}
		paths[i] = p
	}
	return paths
}

// procArgv returns the argv of pid (/proc/PID/cmdline); nil if it is gone
// or a zombie.
func procArgv(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// procStat is what the harness reads of /proc/PID/stat.
type procStat struct {
	Pid, PPid, PGrp, Session int
	State                    byte // R, S, D, Z, T, ...
	Comm                     string
}

func (s procStat) String() string {
	return fmt.Sprintf("%d(%s %c ppid %d)", s.Pid, s.Comm, s.State, s.PPid)
}

// readStat parses /proc/PID/stat. The command name may hold spaces and
// parentheses, so the fields are read after the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	f := strings.Fields(s[end+1:])
	if open < 0 || end < open || len(f) < 4 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: cannot parse %q", pid, s)
	}
	st := procStat{Pid: pid, State: f[0][0], Comm: s[open+1 : end]}
	for i, dst := range []*int{&st.PPid, &st.PGrp, &st.Session} {
		if *dst, err = strconv.Atoi(f[i+1]); err != nil {
			return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return st, nil
}

// procStats reads the stat of every process; those that vanish while we
// look are left out.
func procStats() []procStat {
	ents, _ := os.ReadDir("/proc")
	var all []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			all = append(all, st)
		}
	}
	return all
}

// groupMembers returns the processes, zombies included, of process group pgid.
func groupMembers(pgid int) []procStat {
	var m []procStat
	for _, st := range procStats() {
		if st.PGrp == pgid {
			m = append(m, st)
		}
	}
	return m
}

// children returns the children of pid, zombies included. The kernel's
// /proc/PID/task/TID/children lists need CONFIG_PROC_CHILDREN, which not
// every kernel has (this one does not), so the parent links of every
// process are read instead. The test fails if pid does not exist.
func children(t testing.TB, pid int) []procStat {
	t.Helper()
	if _, err := readStat(pid); err != nil {
		t.Fatalf("children(%d): %v", pid, err)
	}
	var kids []procStat
	for _, st := range procStats() {
		if st.PPid == pid {
			kids = append(kids, st)
		}
	}
	return kids
}

// zombiesUnder returns the pids of pid's children that are zombies: dead
// and not reaped (state Z). The test fails if pid does not exist.
func zombiesUnder(t testing.TB, pid int) []int {
	t.Helper()
	var z []int
	for _, st := range children(t, pid) {
		if st.State == 'Z' {
			z = append(z, st.Pid)
		}
	}
	slices.Sort(z)
	return z
}

// openFDs returns the open fds of pid and what each refers to (readlink of
// /proc/PID/fd/N: a path, "pipe:[INODE]", "anon_inode:[eventpoll]"...).
// The test fails if the table cannot be read, so a dead process never looks
// leak-free.
func openFDs(t testing.TB, pid int) map[int]string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("openFDs(%d): %v", pid, err)
	}
	fds := make(map[int]string, len(ents))
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // closed while we looked
		}
		if err != nil {
			t.Fatalf("openFDs(%d): %v", pid, err)
		}
		fds[n] = target
	}
	return fds
}

// beyondStdio returns fds without 0, 1 and 2.
func beyondStdio(fds map[int]string) map[int]string {
	m := make(map[int]string, len(fds))
	for n, target := range fds {
		if n > 2 {
			m[n] = target
		}
	}
	return m
}

// goRuntimeFDs are the fds a Go program opens for itself: the netpoller's
// epoll instance and its wake-up eventfd (older runtimes used a pipe; see
// withoutGoRuntime).
var goRuntimeFDs = []string{"anon_inode:[eventpoll]", "anon_inode:[eventfd]"}

// withoutGoRuntime returns fds without the Go runtime's own: for a Go
// program such as a role, what is left is what it inherited or leaked.
// To check what a program inherits, prefer a non-Go program (/bin/sleep)
// or the fdlist role, which need no allow-list.
func withoutGoRuntime(fds map[int]string) map[int]string {
	m := make(map[int]string, len(fds))
	for n, target := range fds {
		if !slices.Contains(goRuntimeFDs, target) {
			m[n] = target
		}
	}
	return m
}

// sleeping reports whether pid is blocked in nanosleep(2) or
// clock_nanosleep(2) (/proc/PID/syscall): a sleep(1) that got there is done
// with its startup, dynamic loader included.
func sleeping(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/syscall", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return false
	}
	n, err := strconv.Atoi(f[0])
	return err == nil && (n == unix.SYS_NANOSLEEP || n == unix.SYS_CLOCK_NANOSLEEP)
}

// reapOrphan waits until pid, a process re-parented to the test process
// (its launcher died and TestMain made us a subreaper), has exited, reaps
// it and returns its wait status. The test fails if pid is not our child.
func reapOrphan(t testing.TB, pid int) unix.WaitStatus {
	t.Helper()
	var ws unix.WaitStatus
	waitFor(t, fmt.Sprintf("orphan %d to exit", pid), func() bool {
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatalf("wait4(%d): %v", pid, err)
		}
		return got == pid
	})
	return ws
}

// readPidfile reads a pid file that must hold a positive decimal pid and
// one newline, and returns the pid.
func readPidfile(t testing.TB, name string) int {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("readPidfile: %v", err)
	}
	s, ok := strings.CutSuffix(string(b), "\n")
	pid, err := strconv.Atoi(s)
	if !ok || err != nil || pid <= 0 || strings.TrimLeft(s, "0123456789") != "" {
		t.Fatalf("readPidfile(%q) = %q; want a pid and a newline", name, b)
	}
	return pid
}

// pipe returns a pipe whose ends are closed when the test ends (closing one
// earlier is fine: a second Close only returns an error).
func pipe(t testing.TB) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("pipe: %v", err)
	}
	t.Cleanup(func() {
		r.Close()
		w.Close()
	})
	return r, w
}

// readToEOF reads r until EOF and returns what it read. It fails the test
// at the deadline: close every copy of the write end (the test's own after
// start) or the EOF never comes.
func readToEOF(t testing.TB, r *os.File) string {
	t.Helper()
	if err := r.SetReadDeadline(deadline(t)); err != nil {
		t.Fatalf("readToEOF: %v", err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("readToEOF: read %q, then %v", b, err)
	}
	return string(b)
}

// TestHarnessRunIn checks the plumbing of runIn and start that the other
// tests rely on: stdin, environment, working directory, stderr lines, and
// the difference between "exit 143" and "killed by SIGTERM".
func TestHarnessRunIn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	t.Run("stdin env dir", func(t *testing.T) {
		t.Parallel()
		o := Opts{Stdin: "in\n", Env: []string{"GOTOOLS_TEST_X=1", "GOTOOLS_TEST_X=2"}, Dir: dir}
		want := "in\n2\n" + dir + "\n"
		if r := runIn(t, o, "sh", "-c", `cat; echo "$GOTOOLS_TEST_X"; pwd`); r.Code != 0 || r.Stdout != want {
			t.Errorf("runIn(sh) = %s, stdout %q; want exit 0, %q", r.Status(), r.Stdout, want)
		}
	})
	t.Run("stdin file", func(t *testing.T) {
		t.Parallel()
		r, w := pipe(t)
		p := startIn(t, Opts{StdinFile: r}, "sh", "-c", `echo ready; read l; echo "got $l" >&2`)
		p.WaitLine(t, "^ready$")
		w.WriteString("x\n")
		if got := p.WaitStderrLine(t, "^got "); got != "got x" {
			t.Errorf("stderr line %q; want %q", got, "got x")
		}
		if res := p.Wait(t); res.Code != 0 {
			t.Errorf("sh = %s; want exit 0", res.Status())
		}
	})
	for _, tt := range []struct {
		name string
		cmd  string
		want Result
	}{
		{name: "exit 143", cmd: "exit 143", want: Result{Code: 143}},
		{name: "killed by TERM", cmd: "kill -TERM $$", want: Result{Code: -1, Signal: unix.SIGTERM}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if r := run(t, "sh", "-c", tt.cmd); r.Code != tt.want.Code || r.Signal != tt.want.Signal {
				t.Errorf("run(sh -c %q) = %s; want %s", tt.cmd, r.Status(), tt.want.Status())
			}
		})
	}
}

// TestHarnessRealLookPath checks that upstream tools are never looked up in
// the farm, whose s6-* aliases are gotools.
func TestHarnessRealLookPath(t *testing.T) {
	t.Parallel()
	for _, l := range listed {
		for _, name := range strings.Split(l, "\t") {
			if p, ok := realLookPath(name); ok && filepath.Dir(p) == binDir {
				t.Errorf("realLookPath(%q) = %q, in the farm", name, p)
			}
		}
	}
	paths := requireS6(t, "s6-supervise")
	if r, err := filepath.EvalSymlinks(paths[0]); err != nil || filepath.Base(r) == "gotools" || !filepath.IsAbs(paths[0]) {
		t.Errorf("requireS6(s6-supervise) = %q (%q, %v); want the upstream program", paths, r, err)
	}
}

// writeExecutable is [os.WriteFile] for a file that a process will exec. It
// holds [syscall.ForkLock] for reading from open(2) to close(2), so that no
// child this test process forks meanwhile (parallel tests start processes
// all the time) inherits the file open for writing: O_CLOEXEC closes that
// fd only at the child's own exec, and until then an execve(2) of name fails
// with ETXTBSY, "Text file busy" (golang/go#22315). The longer the write
// (a copy of gotools is 6 MB), the likelier under load.
func writeExecutable(name string, data []byte, perm os.FileMode) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	return os.WriteFile(name, data, perm)
}
