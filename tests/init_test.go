package tests

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// End-to-end tests of init's simple mode (spec/init.md §2, §11 tests 1-9):
// tini's behaviours, each with the process that shows it.

// TestInitExitCodes is spec §11 test 1 on a sample of codes; the soak
// test TestSoakInitExitCodes runs every code 0-255.
func TestInitExitCodes(t *testing.T) {
	t.Parallel()
	checkInitExitCodes(t, []int{0, 1, 2, 3, 100, 111, 126, 127, 128, 129, 137, 143, 200, 254, 255}, []int{0, 3, 255})
}

// checkInitExitCodes checks that init exits with the CMD's code for each
// of codes, 0 for it with -e, and the code itself with -e for all 255
// others for each of allOthers.
func checkInitExitCodes(t *testing.T, codes, allOthers []int) {
	// Plain exec.Cmd runs, 4 at a time: harness runs each scan /proc for
	// their process group.
	code := func(argv ...string) (int, string) {
		cmd := exec.Command(argv[0], argv[1:]...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			return ee.ExitCode(), stderr.String()
		} else if err != nil {
			t.Errorf("%q: %v", argv, err)
		}
		return 0, stderr.String()
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, c := range codes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			exit := "exit " + strconv.Itoa(c)
			if got, stderr := code("init", "--", "sh", "-c", exit); got != c || stderr != "" {
				t.Errorf("init -- sh -c '%s' = exit %d, stderr %q; want exit %d, nothing", exit, got, stderr, c)
			}
			if got, _ := code("init", "-e", strconv.Itoa(c), "--", "sh", "-c", exit); got != 0 {
				t.Errorf("init -e %d -- sh -c '%s' = exit %d; want 0", c, exit, got)
			}
		}()
	}
	wg.Wait()
	for _, c := range allOthers {
		var all []string
		for o := 0; o < 256; o++ {
			if o != c {
				all = append(all, "-e", strconv.Itoa(o))
			}
		}
		argv := append(append([]string{"init"}, all...), "--", "sh", "-c", "exit "+strconv.Itoa(c))
		if got, _ := code(argv...); got != c {
			t.Errorf("init -e (all 255 others) -- exit %d = exit %d; want exit %d", c, got, c)
		}
	}
}

// TestInitUsageAndExecFailures is spec §11 test 9 and §1's usage rules.
func TestInitUsageAndExecFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		argv   []string
		code   int
		stderr string
	}{
		{"no CMD", []string{"init"}, 100, "^init: usage: init "},
		{"only --", []string{"init", "--"}, 100, "^init: usage: init "},
		{"runlevel not PID 1", []string{"init", "6"}, 100, "^init: fatal: this is a container init, not the host's$"},
		{"bad -e", []string{"init", "-e", "256", "--", "true"}, 100, `^init: fatal: -e: "256" is not an exit code`},
		{"bad -r", []string{"init", "-r", "TERM", "--", "true"}, 100, `^init: fatal: -r: "TERM" is not SIG:SIG`},
		{"bad -p", []string{"init", "-p", "NOSIG", "--", "true"}, 100, `^init: fatal: -p: "NOSIG" is not a signal`},
		{"pause with CMD", []string{"init", "--pause", "true"}, 100, "^init: usage: init "},
		{"CMD not found", []string{"init", "--", filepath.Join(dir, "nosuch")}, 127, "^init: fatal: unable to exec .*/nosuch: No such file or directory$"},
		{"CMD not in PATH", []string{"init", "gotools-no-such-cmd"}, 127, "^init: fatal: unable to exec gotools-no-such-cmd: No such file or directory$"},
		{"CMD not executable", []string{"init", "--", noexec}, 126, "^init: fatal: unable to exec .*/noexec: Permission denied$"},
		{"CMD a directory", []string{"init", "--", dir}, 126, "^init: fatal: unable to exec "},
	} {
		r := run(t, tt.argv...)
		ls := lines(r.Stderr)
		if r.Code != tt.code || len(ls) != 1 || !regexpMatch(tt.stderr, ls[0]) {
			t.Errorf("%s: %q = %s, stderr %q; want exit %d and one line matching %q", tt.name, tt.argv, r.Status(), r.Stderr, tt.code, tt.stderr)
		}
	}
	// Options stop at the first operand: CMD's own flags are its own.
	if r := run(t, "init", "sh", "-c", "echo $0 $1", "-g", "-x"); r.Code != 0 || r.Stdout != "-g -x\n" {
		t.Errorf("init sh -c ... -g -x = %s, stdout %q; want exit 0, %q", r.Status(), r.Stdout, "-g -x\n")
	}
	if r := run(t, "init", "-l"); r.Code != 0 || !strings.HasPrefix(r.Stdout, "ISC License") {
		t.Errorf("init -l = %s, stdout %.20q; want exit 0 and the ISC license", r.Status(), r.Stdout)
	}
	if r := run(t, "init", "--version"); r.Code != 0 || !regexpMatch(`^init \(gotools\) \S+\n$`, r.Stdout) {
		t.Errorf("init --version = %s, stdout %q; want exit 0 and one version line", r.Status(), r.Stdout)
	}
}

// TestInitForwardsSignals is spec §11 test 3: each signal reaches the CMD,
// whose default disposition kills it, and init exits 128+n. SIGWINCH is
// forwarded too, and its default is to be ignored: the CMD lives on.
func TestInitForwardsSignals(t *testing.T) {
	t.Parallel()
	for _, s := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGQUIT} {
		t.Run(unix.SignalName(s), func(t *testing.T) {
			t.Parallel()
			p := start(t, "init", "--", "sleeper")
			p.WaitLine(t, "^ready$")
			p.Signal(s)
			if r := p.Wait(t); r.Code != 128+int(s) {
				t.Errorf("init -- sleeper, sent %s: %s, stderr %q; want exit %d", unix.SignalName(s), r.Status(), r.Stderr, 128+int(s))
			}
		})
	}
	t.Run("recorded", func(t *testing.T) {
		t.Parallel()
		// trapsig names each signal it gets: the forwarded ones, in order,
		// and SIGWINCH among them; SIGCHLD is init's own.
		p := start(t, "init", "--", "trapsig", "-on", "TERM")
		p.WaitLine(t, "^ready$")
		sent := []unix.Signal{unix.SIGWINCH, unix.SIGHUP, unix.SIGUSR1, unix.SIGCHLD, unix.SIGINT, unix.SIGTERM}
		for _, s := range sent {
			p.Signal(s)
			if s != unix.SIGCHLD {
				p.WaitLine(t, "^"+sigName(s)+"$")
			}
		}
		if got, want := lines(p.Stdout()), []string{"ready", "WINCH", "HUP", "USR1", "INT", "TERM"}; !slices.Equal(got, want) {
			t.Errorf("trapsig under init got %q; want %q", got, want)
		}
		if r := p.Wait(t); r.Code != 128+int(unix.SIGTERM) {
			t.Errorf("init = %s; want exit 143", r.Status())
		}
	})
}

// TestInitRewritesSignals checks -r: SIGTERM sent as SIGQUIT, or dropped.
func TestInitRewritesSignals(t *testing.T) {
	t.Parallel()
	p := start(t, "init", "-r", "15:3", "-r", "USR1:0", "--", "sleeper")
	p.WaitLine(t, "^ready$")
	p.Signal(unix.SIGUSR1) // dropped: sleeper would die of it
	p.Signal(unix.SIGTERM)
	if r := p.Wait(t); r.Code != 128+int(unix.SIGQUIT) {
		t.Errorf("init -r 15:3 -r USR1:0, sent USR1 then TERM: %s; want exit %d (SIGQUIT)", r.Status(), 128+int(unix.SIGQUIT))
	}
}

// TestInitProcessGroup is tini's process-group test (spec §11 test 4): the
// CMD ignores SIGUSR1, its child does not. With -g (or
// TINI_KILL_PROCESS_GROUP) SIGUSR1 kills the child, so the CMD's wait ends
// with 138 and init exits with that. A recording child shows the other
// side: without -g it never hears of the SIGUSR1 sent before a SIGTERM.
func TestInitProcessGroup(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		flags []string
		env   []string
		group bool
	}{
		{"-g", []string{"-g"}, nil, true},
		{"TINI_KILL_PROCESS_GROUP", nil, []string{"TINI_KILL_PROCESS_GROUP=1"}, true},
		{"no -g", nil, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.group {
				p := startIn(t, Opts{Env: tt.env}, append(append([]string{"init"}, tt.flags...), "--", "sh", "-c", `trap '' USR1; sleeper & wait $!`)...)
				p.WaitLine(t, "^ready$")
				p.Signal(unix.SIGUSR1)
				if r := p.Wait(t); r.Code != 128+int(unix.SIGUSR1) {
					t.Errorf("init %q, USR1: %s, stderr %q; want exit %d", tt.flags, r.Status(), r.Stderr, 128+int(unix.SIGUSR1))
				}
			}
			p := startIn(t, Opts{Env: tt.env}, append(append([]string{"init", "-k", "100"}, tt.flags...), "--", "sh", "-c", `trap '' USR1; trapsig & wait $!`)...)
			p.WaitLine(t, "^ready$")
			p.Signal(unix.SIGUSR1)
			// With -g, SIGTERM only once USR1 was handled: sent at once,
			// the two can reach init's signal pipe in either order, from
			// two of its threads, and a USR1 read after the CMD was
			// reaped is not forwarded. Without -g no wait is needed: a
			// USR1 forwarded late or not at all never reaches the child.
			if tt.group {
				p.WaitLine(t, "^USR1$")
			}
			p.Signal(unix.SIGTERM)
			if r := p.Wait(t); r.Code != 128+int(unix.SIGTERM) {
				t.Errorf("init %q, USR1 then TERM: %s, stderr %q; want exit 143", tt.flags, r.Status(), r.Stderr)
			}
			if got := slices.Contains(lines(p.Stdout()), "USR1"); got != tt.group {
				t.Errorf("init %q: the CMD's child got SIGUSR1: %v; want %v (stdout %q)", tt.flags, got, tt.group, p.Stdout())
			}
		})
	}
}

// unreaped waits until each of pids has died (a zombie, or gone), then up
// to within for parent to reap them, and returns those still zombies under
// parent after it.
func unreaped(t *testing.T, parent int, pids []int, within time.Duration) []int {
	t.Helper()
	waitFor(t, fmt.Sprintf("%v to die", pids), func() bool {
		for _, pid := range pids {
			if st, err := readStat(pid); err == nil && st.State != 'Z' {
				return false
			}
		}
		return true
	})
	var z []int
	poll(time.Now().Add(within), func() bool {
		z = zombiesUnder(t, parent)
		return len(z) == 0
	})
	return z
}

// childrenNamed returns the pids of parent's live children whose argv[0]
// is name (roles all run the test binary: their comm is its name).
func childrenNamed(t *testing.T, parent int, name string) []int {
	t.Helper()
	var l []int
	for _, st := range children(t, parent) {
		if argv := procArgv(st.Pid); len(argv) > 0 && argv[0] == name && st.State != 'Z' {
			l = append(l, st.Pid)
		}
	}
	return l
}

// TestInitReapsOrphans is tini's reaping test (spec §11 test 2): the CMD
// leaves 20 orphans, which init adopts (as PID 1, or as a subreaper when it
// is not), and once they are killed none stays a zombie. The negative
// control is a parent that never reaps: the same check flags its children.
func TestInitReapsOrphans(t *testing.T) {
	t.Parallel()
	const n = 20
	for _, tt := range []struct {
		name  string
		flags []string
		env   []string
		pidns bool
	}{
		{"PID 1", nil, nil, true},
		{"subreaper", nil, nil, false},
		{"-s", []string{"-s"}, nil, false},
		{"TINI_SUBREAPER", nil, []string{"TINI_SUBREAPER="}, false},
		{"-w", []string{"-w"}, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			argv := append(append([]string{"init"}, tt.flags...), "--", "sh", "-c", "orphans "+strconv.Itoa(n)+" >/dev/null; exec trapsig -on TERM")
			p := startIn(t, Opts{Env: tt.env, NewPIDNS: tt.pidns}, argv...)
			p.WaitLine(t, "^ready$")
			orphans := childrenNamed(t, p.Pid, "sleeper")
			if len(orphans) != n {
				t.Fatalf("%s: init has %d sleeper children %v; want the %d orphans", tt.name, len(orphans), orphans, n)
			}
			for _, pid := range orphans {
				unix.Kill(pid, unix.SIGTERM)
			}
			if z := unreaped(t, p.Pid, orphans, 10*time.Second); len(z) != 0 {
				t.Errorf("%s: zombies left under init: %v", tt.name, z)
			}
			waitFor(t, "the orphans to be gone", func() bool { return len(childrenNamed(t, p.Pid, "sleeper")) == 0 })
			if slices.Contains(tt.flags, "-w") {
				waitFor(t, "a -w line for each orphan", func() bool {
					return strings.Count(p.Stderr(), "init: warning: reaped orphan ") == n
				})
			} else if p.Stderr() != "" {
				t.Errorf("%s: stderr %q; want nothing", tt.name, p.Stderr())
			}
			p.Signal(unix.SIGTERM)
			if r := p.Wait(t); r.Code != 143 {
				t.Errorf("%s: init = %s; want exit 143", tt.name, r.Status())
			}
		})
	}
	t.Run("control", func(t *testing.T) {
		t.Parallel()
		p := start(t, "noreap", "5")
		p.WaitLine(t, "^ready$")
		var kids []int
		for _, st := range children(t, p.Pid) {
			kids = append(kids, st.Pid)
		}
		if z := unreaped(t, p.Pid, kids, time.Second); len(kids) != 5 || len(z) != 5 {
			t.Errorf("noreap 5: unreaped found %v; want 5 zombies (the detector is blind)", z)
		}
	})
	t.Run("--no-subreaper", func(t *testing.T) {
		t.Parallel()
		// Not PID 1 and not a subreaper, init cannot adopt: the orphans go
		// to the nearest subreaper above it (the test process), as under a
		// tini without -s.
		p := start(t, "init", "--no-subreaper", "--", "sh", "-c", "orphans 3; exec trapsig -on TERM")
		p.WaitLine(t, "^ready$")
		if got := childrenNamed(t, p.Pid, "sleeper"); len(got) != 0 {
			t.Errorf("init --no-subreaper adopted orphans %v", got)
		}
		if want := "init: warning: not PID 1 and not a subreaper: zombie reaping will not work\n"; p.Stderr() != want {
			t.Errorf("stderr %q; want %q", p.Stderr(), want)
		}
		for _, l := range lines(p.Stdout()) {
			if pid, err := strconv.Atoi(l); err == nil {
				unix.Kill(pid, unix.SIGKILL)
				reapOrphan(t, pid)
			}
		}
		p.Signal(unix.SIGTERM)
		p.Wait(t)
	})
}

// TestInitAsPID1Unshare boots init as PID 1 the way a container runtime
// does, with unshare(1): init is PID 1 (the CMD's pid is not 2: Go's
// threads take pids too), init makes no subreaper of itself,
// the orphans the CMD leaves are reaped (a zombie keeps its /proc entry, so
// the script waits for the entries to vanish), and the exit code is the
// CMD's.
func TestInitAsPID1Unshare(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("unshare --pid needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	script := `[ "$(cat /proc/1/comm)" = init ] || exit 90
orphans 5 >pids
kill $(cat pids)
for i in $(seq 500); do
	left=0
	for p in $(cat pids); do [ -e /proc/$p ] && left=1; done
	[ $left = 0 ] && exit 7
	sleep 0.01
done
exit 91`
	dir := t.TempDir()
	r := runIn(t, Opts{Dir: dir}, "unshare", "--pid", "--fork", "--mount-proc", "init", "--", "sh", "-c", script)
	if r.Code != 7 || r.Stderr != "" {
		t.Errorf("unshare ... init -- (orphans, wait for them reaped) = %s, stderr %q; want exit 7 (90: init not PID 1, 91: zombies left)", r.Status(), r.Stderr)
	}
}

// TestInitEndsLeftovers is spec §11 test 8: after the CMD exits 4, a
// leftover that exits on SIGTERM ends init at once; one that ignores it
// is SIGKILLed after -k; -k 0 kills at once. Nothing is left either way.
func TestInitEndsLeftovers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		flags   []string
		daemon  []string
		min     time.Duration
		signals []string
	}{
		{"exits on TERM", nil, nil, 0, []string{"TERM"}},
		{"ignores TERM", []string{"-k", "1000"}, []string{"-on", "none"}, time.Second, []string{"TERM", "CONT"}},
		{"-k 0", []string{"-k", "0"}, []string{"-on", "none"}, 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			pidfile, rec := filepath.Join(dir, "pid"), filepath.Join(dir, "rec")
			argv := append(append([]string{"init"}, tt.flags...), "--", "daemonize", pidfile, "4")
			argv = append(append(argv, "-record", rec), tt.daemon...)
			begin := time.Now()
			r := run(t, argv...)
			took := time.Since(begin)
			if r.Code != 4 {
				t.Errorf("%q = %s, stderr %q; want exit 4", argv, r.Status(), r.Stderr)
			}
			if took < tt.min {
				t.Errorf("%q took %v; want at least %v", argv, took, tt.min)
			}
			pid := readPidfile(t, pidfile)
			if err := unix.Kill(pid, 0); err == nil {
				t.Errorf("the leftover daemon %d still exists", pid)
			}
			b, _ := os.ReadFile(rec)
			got := lines(string(b))
			if !slices.Equal(got, tt.signals) {
				t.Errorf("leftover got %q; want %q", got, tt.signals)
			}
		})
	}
	t.Run("second TERM", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		// The CMD leaves a daemon that ignores SIGTERM and exits, so init
		// is in its 60 s grace; a second SIGTERM ends it at once.
		p := start(t, "init", "-k", "60000", "--", "sh", "-c", "daemonize "+dir+"/pid 0 -on none -record "+dir+"/rec; echo ready; exit 5")
		p.WaitLine(t, "^ready$")
		waitFor(t, "the leftover to get SIGTERM", func() bool {
			b, _ := os.ReadFile(dir + "/rec")
			return strings.Contains(string(b), "TERM\n")
		})
		p.Signal(unix.SIGTERM)
		if r := p.Wait(t); r.Code != 5 {
			t.Errorf("init = %s; want exit 5", r.Status())
		}
		if err := unix.Kill(readPidfile(t, dir+"/pid"), 0); err == nil {
			t.Error("the leftover daemon still exists")
		}
	})
}

// TestInitPause is spec §11 test 9's pause mode: no CMD, orphans reaped,
// exit 0 on SIGTERM.
func TestInitPause(t *testing.T) {
	t.Parallel()
	p := startIn(t, Opts{NewPIDNS: true}, "init", "-v", "--pause")
	p.WaitStderrLine(t, "^init: info: pausing$")
	p.Signal(unix.SIGTERM)
	if r := p.Wait(t); r.Code != 0 || r.Stderr != "init: info: pausing\n" {
		t.Errorf("init --pause, SIGTERM: %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
}

// TestInitChildState is spec §11 test 5: the CMD starts with no signal
// blocked, ignored or caught even when init was started with signals
// blocked and ignored, with fds 0-2 only, and in the working directory
// init was started in.
func TestInitChildState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	extra, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	// The shell ignores HUP, USR2 and 34 (glibc's SIGRTMIN, which
	// os/signal cannot catch) before exec'ing init with fd 3 open. cat
	// shows its own state (GNU grep catches SIGSEGV itself).
	script := `trap '' HUP USR2 34; exec init -- sh -c 'cat /proc/self/status; ls /proc/self/fd; pwd'`
	r := runIn(t, Opts{Dir: dir, ExtraFiles: []*os.File{extra}}, "sh", "-c", script)
	if r.Code != 0 {
		t.Fatalf("init = %s, stderr %q", r.Status(), r.Stderr)
	}
	var ls, sigs []string
	for _, l := range lines(r.Stdout) {
		if strings.HasPrefix(l, "SigBlk:") || strings.HasPrefix(l, "SigIgn:") || strings.HasPrefix(l, "SigCgt:") {
			sigs = append(sigs, l)
		} else if !strings.Contains(l, ":") {
			ls = append(ls, l)
		}
	}
	if len(sigs) != 3 || len(ls) < 4 {
		t.Fatalf("stdout %q", r.Stdout)
	}
	for _, l := range sigs {
		if f := strings.Fields(l); len(f) != 2 || f[1] != "0000000000000000" {
			t.Errorf("CMD %q; want all zeros", l)
		}
	}
	// ls lists 0-2 and its own fd for /proc/self/fd.
	fds := ls[:len(ls)-1]
	if len(fds) != 4 || fds[0] != "0" || fds[1] != "1" || fds[2] != "2" {
		t.Errorf("CMD's fds %q; want 0 1 2 (and ls's own)", fds)
	}
	if ls[len(ls)-1] != dir {
		t.Errorf("CMD's cwd %q; want %q", ls[len(ls)-1], dir)
	}
}

// regexpMatch reports whether s matches the regexp pattern.
func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// openPty returns a new pseudo-terminal's master and slave.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		t.Fatal(errno)
	}
	master, slave = os.NewFile(uintptr(m), "ptmx"), os.NewFile(s, "pts")
	t.Cleanup(func() { master.Close(); slave.Close() })
	return master, slave
}

// TestInitTerminal is spec §11 test 7's default mode: under a pty (init's
// controlling terminal, init's group in the foreground, as docker run -it
// starts it), the CMD's group is made the foreground group, so that 0x03
// (^C) interrupts the CMD alone; init exits 130.
func TestInitTerminal(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid(1)")
	}
	master, slave := openPty(t)
	out := filepath.Join(t.TempDir(), "pgrps")
	// setsid -c: a new session with stdin, the pty, as its controlling
	// terminal; init is its leader and foreground group (-w: setsid,
	// a group leader, forks, and waits).
	p := startIn(t, Opts{StdinFile: slave}, "setsid", "-c", "-w", "init", "--",
		"sh", "-c", `ps -o tpgid= -o pgid= -p $$ > `+out+`.new && mv `+out+`.new `+out+`; exec sleep 1000`)
	var f []string
	waitFor(t, "the CMD's process groups", func() bool {
		b, _ := os.ReadFile(out)
		f = strings.Fields(string(b))
		return len(f) == 2 || !p.Running()
	})
	if len(f) != 2 || f[0] != f[1] {
		t.Errorf("CMD's terminal foreground group and own group %q; want the same (the CMD in the foreground)", f)
	}
	if _, err := master.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	if r := p.Wait(t); r.Code != 128+int(unix.SIGINT) {
		t.Errorf("init = %s after ^C, stderr %q; want 130 (the CMD interrupted)", r.Status(), r.Stderr)
	}
}

// TestInitSetsidTerminal is spec §11 test 7's --setsid half: init gives
// up its controlling terminal, the CMD leads a session of its own with
// that terminal as its controlling terminal and its group in the
// foreground, the SIGHUP that giving it up sends init's group is not
// forwarded, and ^C interrupts the CMD.
func TestInitSetsidTerminal(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid(1)")
	}
	master, slave := openPty(t)
	out := filepath.Join(t.TempDir(), "session")
	p := startIn(t, Opts{StdinFile: slave}, "setsid", "-c", "-w", "init", "--setsid", "--",
		"sh", "-c", `echo $$ $(ps -o sid= -o tpgid= -o tty= -p $$) > `+out+`.new && mv `+out+`.new `+out+`; exec sleep 1000`)
	var f []string
	waitFor(t, "the CMD's session", func() bool {
		b, _ := os.ReadFile(out)
		f = strings.Fields(string(b))
		return len(f) == 4 || !p.Running()
	})
	if len(f) != 4 || f[1] != f[0] || f[2] != f[0] || f[3] == "?" {
		t.Fatalf("CMD's pid, session, terminal foreground group, terminal = %q; want a session leader (sid = pid) whose group owns a controlling terminal", f)
	}
	if _, err := master.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	if r := p.Wait(t); r.Code != 128+int(unix.SIGINT) {
		t.Errorf("init --setsid = %s after ^C, stderr %q; want 130 (the CMD interrupted, not hung up)", r.Status(), r.Stderr)
	}
}

// TestInitIgnoresFaultSignals is spec §2.3's list: SIGSEGV, SIGBUS,
// SIGFPE, SIGILL, SIGTRAP sent to init are neither forwarded nor fatal to
// it (the Go runtime would die of them); init then stops on SIGTERM as
// usual.
func TestInitIgnoresFaultSignals(t *testing.T) {
	t.Parallel()
	p := start(t, "init", "--", "sh", "-c", "echo ready; exec sleep 1000")
	p.WaitLine(t, "^ready$")
	for _, s := range []unix.Signal{unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP} {
		p.Signal(s)
	}
	p.Signal(unix.SIGTERM)
	if r := p.Wait(t); r.Code != 128+int(unix.SIGTERM) || r.Stderr != "" {
		t.Errorf("init after the fault signals, then SIGTERM = %s, stderr %.200q; want 143 (the CMD's death by SIGTERM)", r.Status(), r.Stderr)
	}
}
