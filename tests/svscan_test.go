package tests

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/servicedir"
)

// The svscan tests run svscan as PID 1 of a new PID namespace, as in a
// container: the kernel then kills every process of the tree when svscan
// dies, which is how each test's cleanup reaches the supervisors' runs
// (each in a session of its own) and the orphans svscan adopted.

// scanDir makes a scan directory holding files, named by their paths in
// it ("a/run", "a/log/run", ".s6-svscan/finish"); parents are created, and
// files named run, finish, crash or SIG* are made executable.
func scanDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "scan")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		writeScanFile(t, dir, name, content)
	}
	return dir
}

func writeScanFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(0o644)
	switch base := filepath.Base(name); {
	case base == "run", base == "finish", base == "crash", strings.HasPrefix(base, "SIG"):
		mode = 0o755
	}
	if err := writeExecutable(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// startNS is [startIn] for a process that is PID 1 of a new PID namespace
// and leads its own process group (Opts.NewPIDNS).
func startNS(t *testing.T, o Opts, argv ...string) *Proc {
	t.Helper()
	o.NewPIDNS = true
	return startIn(t, o, argv...)
}

// startSvscan starts "svscan -d 3 ARGS... DIR" as PID 1 of a new PID
// namespace and returns once it wrote its readiness newline: its signals
// and control FIFO are set up, and its first scan is under way.
func startSvscan(t *testing.T, dir string, args ...string) *Proc {
	t.Helper()
	r, w := pipe(t)
	argv := append(append([]string{"svscan", "-d", "3"}, args...), dir)
	p := startNS(t, Opts{ExtraFiles: []*os.File{w}}, argv...)
	w.Close()
	if got := readToEOF(t, r); got != "\n" {
		t.Fatalf("svscan -d 3 wrote %q; want %q (stderr %q)", got, "\n", p.Stderr())
	}
	return p
}

// readStatus reads DIR/supervise/status, if it is there and well formed.
func readStatus(dir string) (servicedir.Status, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "supervise", "status"))
	if err != nil {
		return servicedir.Status{}, false
	}
	st, err := servicedir.UnmarshalStatus(b)
	return st, err == nil
}

// waitFile waits until the file name holds want, and fails the test with
// what it holds otherwise.
func waitFile(t *testing.T, name, want string) {
	t.Helper()
	var got []byte
	if !poll(deadline(t), func() bool { got, _ = os.ReadFile(name); return string(got) == want }) {
		t.Fatalf("%s holds %q; want %q", name, got, want)
	}
}

// startTicks returns the start time of pid, in clock ticks since boot
// (field 22 of /proc/PID/stat, proc(5)).
func startTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	v, err := strconv.ParseInt(f[19], 10, 64) // f[0] is field 3
	if err != nil {
		t.Fatalf("/proc/%d/stat: %v", pid, err)
	}
	return v
}

// nsPid returns pid's pid in its innermost PID namespace (the last NSpid
// of /proc/PID/status), or 0.
func nsPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f, ok := strings.CutPrefix(l, "NSpid:"); ok {
			ids := strings.Fields(f)
			n, _ := strconv.Atoi(ids[len(ids)-1])
			return n
		}
	}
	return 0
}

func TestSvscanUsage(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	ctlFile := scanDir(t, map[string]string{".s6-svscan": ""})
	ctlNotFIFO := scanDir(t, map[string]string{".s6-svscan/control": ""})
	usage := "svscan: usage: svscan [ -C max ] [ -L namemax ] [ -t ms ] [ -d fd ] [ --supervisor=PROG ] [ SCANDIR ]\n"
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{name: "two scandirs", args: []string{base, base}, code: 100, stderr: usage},
		{name: "bad option", args: []string{"-Z", base}, code: 100, stderr: usage},
		{name: "-C not a number", args: []string{"-C", "x", base}, code: 100, stderr: usage},
		{name: "-c not a number", args: []string{"-c", "x", base}, code: 100, stderr: usage},
		{name: "-t hexadecimal", args: []string{"-t", "0x10", base}, code: 100, stderr: usage},
		{name: "-d 1", args: []string{"-d", "1", base}, code: 100, stderr: usage},
		{name: "-d not open", args: []string{"-d", "99", base}, code: 100, stderr: usage},
		{name: "-X", args: []string{"-X", "3", base}, code: 100, stderr: "svscan: fatal: -X is not supported yet\n"},
		{name: "missing scandir", args: []string{base + "/nosuch"}, code: 111,
			stderr: "svscan: fatal: unable to chdir to " + base + "/nosuch: No such file or directory\n"},
		{name: ".s6-svscan a file", args: []string{ctlFile}, code: 100,
			stderr: "svscan: fatal: .s6-svscan exists and is not a directory\n"},
		{name: "control not a FIFO", args: []string{ctlNotFIFO}, code: 100,
			stderr: "svscan: fatal: .s6-svscan/control exists and is not a FIFO\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, name := range []string{"svscan", "s6-svscan"} {
				argv := append([]string{name}, tt.args...)
				want := "s6-" + tt.stderr
				if name == "svscan" {
					want = tt.stderr
				}
				r := run(t, argv...)
				ok := r.Stderr == want
				if tt.stderr == usage { // s6's synopsis under its name; then the bad word
					want = usageLine(name, svscanApplet(t))
					ok = isUsageLine(r.Stderr, want, name)
				}
				if r.Code != tt.code || !ok || r.Stdout != "" {
					t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit %d, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, tt.code, want)
				}
			}
		})
	}
}

// TestSvscanS6Parity: s6-svscan 2.11's -c MAX is accepted as -C (a limit
// of 4 leaves the fifth service out, with the warning), svscan with no
// directory scans ".", and run as s6-svscan its children are
// "s6-supervise NAME" in ps (issue 14 items 1, 2, 4).
func TestSvscanS6Parity(t *testing.T) {
	t.Parallel()
	files := map[string]string{}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		files[n+"/run"] = "#!/bin/sh\nexec sleep 1000\n"
	}
	dir := scanDir(t, files)
	r, w := pipe(t)
	p := startNS(t, Opts{ExtraFiles: []*os.File{w}, Dir: dir}, "s6-svscan", "-c", "4", "-d", "3")
	w.Close()
	if got := readToEOF(t, r); got != "\n" {
		t.Fatalf("s6-svscan -d 3 wrote %q; want %q (stderr %q)", got, "\n", p.Stderr())
	}
	p.WaitStderrLine(t, "unable to supervise more than 4 services")
	// Which four is up to readdir's order.
	var sups map[string]int
	waitFor(t, "four s6-supervise children", func() bool {
		sups = supervisorsNamed(t, p.Pid, "s6-supervise")
		return len(sups) == 4
	})
	for name, pid := range sups {
		if args := procArgv(pid); len(args) != 2 || args[0] != "s6-supervise" || args[1] != name {
			t.Errorf("supervisor of %s has argv %q; want [s6-supervise %s]", name, args, name)
		}
	}
}

// TestSvscanSecondInstance: -d 3 writes exactly "\n"; a second svscan on
// the same directory exits 100 and changes nothing.
func TestSvscanSecondInstance(t *testing.T) {
	t.Parallel()
	dir := scanDir(t, map[string]string{"a/run": "#!/bin/sh\nexec sleep 1000\n"})
	p := startSvscan(t, dir)
	sups := waitSupervisors(t, p, dir, "a")
	r := run(t, "svscan", dir)
	want := "svscan: fatal: another instance of svscan is already running on the same directory\n"
	if r.Code != 100 || r.Stderr != want {
		t.Errorf("second svscan = %s, stderr %q; want exit 100, %q", r.Status(), r.Stderr, want)
	}
	if got := supervisorsOf(t, p.Pid); !maps.Equal(got, sups) {
		t.Errorf("supervisors after a second svscan = %v; want %v", got, sups)
	}
	if !p.Running() || p.Stderr() != "" {
		t.Errorf("first svscan running %v, stderr %q; want running, no stderr", p.Running(), p.Stderr())
	}
}

// TestSvscanScan: dot entries, files and over-long names are ignored, a
// symlink to a directory is a service, a dangling symlink is removed; a
// log/ subdirectory gets the service's output through a pipe, which
// survives a restart of the service.
func TestSvscanScan(t *testing.T) {
	t.Parallel()
	outside := svcDir(t, map[string]string{"run": "#!/bin/sh\nexec sleep 1000\n"})
	dir := scanDir(t, map[string]string{
		"a/run":                       "#!/bin/sh\necho \"start $$\"\nexec sleep 1000\n",
		"a/log/run":                   "#!/bin/sh\nexec cat >> out\n",
		"b/run":                       "#!/bin/sh\nexec sleep 1000\n",
		".hidden/run":                 "#!/bin/sh\nexec sleep 1000\n",
		"file":                        "not a service\n",
		"verylongname_is_ignored/run": "#!/bin/sh\nexec sleep 1000\n",
	})
	for name, target := range map[string]string{"lnk": outside, "dangling": filepath.Join(dir, "nosuch")} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	p := startSvscan(t, dir, "-L", "11")
	sups := waitSupervisors(t, p, dir, "a", "a/log", "b", "lnk")
	for _, name := range []string{"dangling"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Lstat(%s) = %v; want the dangling symlink removed", name, err)
		}
	}
	for _, name := range []string{".hidden", "verylongname_is_ignored"} {
		if _, err := os.Stat(filepath.Join(dir, name, "supervise")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s/supervise: %v; want no supervisor", name, err)
		}
	}

	out := filepath.Join(dir, "a", "log", "out")
	st, _ := readStatus(filepath.Join(dir, "a"))
	// supervise and run are in the namespace: the status holds the pid
	// that run's $$ expands to.
	first := fmt.Sprintf("start %d\n", st.PID)
	log, _ := readStatus(filepath.Join(dir, "a", "log"))
	waitFile(t, out, first)

	// Kill the service: its supervisor restarts it (a second later), and
	// the new run writes to the same logger through the same pipe.
	if r := run(t, "svc", "-k", filepath.Join(dir, "a")); r.Code != 0 {
		t.Fatalf("svc -k = %s, stderr %q", r.Status(), r.Stderr)
	}
	var again servicedir.Status
	waitFor(t, "a restart of a/run", func() bool {
		again, _ = readStatus(filepath.Join(dir, "a"))
		return again.Up() && again.PID != st.PID
	})
	waitFile(t, out, first+fmt.Sprintf("start %d\n", again.PID))
	if log2, _ := readStatus(filepath.Join(dir, "a", "log")); log2.PID != log.PID {
		t.Errorf("logger pid %d after the service restarted; want the same %d", log2.PID, log.PID)
	}
	if got := supervisorsOf(t, p.Pid); !maps.Equal(got, sups) {
		t.Errorf("supervisors = %v; want the same %v", got, sups)
	}
	if e := p.Stderr(); e != "" {
		t.Errorf("svscan stderr %q; want none", e)
	}
}

// TestSvscanLoggerDown: the pipe also survives its reader. With the
// logger down, the service's output waits in the pipe svscan keeps open
// (no SIGPIPE for the service), and the next logger gets it.
func TestSvscanLoggerDown(t *testing.T) {
	t.Parallel()
	dir := scanDir(t, map[string]string{
		"a/run":     "#!/bin/sh\ntrap 'echo hup' HUP\necho start\nwhile :; do sleep 1 & wait $!; done\n",
		"a/log/run": "#!/bin/sh\nexec cat >> out\n",
	})
	p := startSvscan(t, dir)
	waitSupervisors(t, p, dir, "a", "a/log")
	out := filepath.Join(dir, "a", "log", "out")
	waitFile(t, out, "start\n")
	svc, logDir := filepath.Join(dir, "a"), filepath.Join(dir, "a", "log")
	if r := run(t, "svc", "-d", logDir); r.Code != 0 {
		t.Fatalf("svc -d a/log = %s, stderr %q", r.Status(), r.Stderr)
	}
	waitFor(t, "the logger to be down", func() bool {
		st, ok := readStatus(logDir)
		return ok && !st.Up()
	})
	before, _ := readStatus(svc)
	if r := run(t, "svc", "-h", svc); r.Code != 0 {
		t.Fatalf("svc -h a = %s, stderr %q", r.Status(), r.Stderr)
	}
	if r := run(t, "svc", "-u", logDir); r.Code != 0 {
		t.Fatalf("svc -u a/log = %s, stderr %q", r.Status(), r.Stderr)
	}
	waitFile(t, out, "start\nhup\n")
	if after, _ := readStatus(svc); after.PID != before.PID || !after.Up() {
		t.Errorf("service status %+v after writing with no logger; want the same run (pid %d) up", after, before.PID)
	}
}

// TestSvscanReapsOrphansAsPID1: orphans of a service are re-parented to
// svscan, PID 1 of the namespace, which reaps them when they die.
func TestSvscanReapsOrphansAsPID1(t *testing.T) {
	t.Parallel()
	dir := scanDir(t, map[string]string{"o/run": "#!/bin/sh\norphans 3 > pids\nexec sleep 1000\n"})
	p := startSvscan(t, dir)
	waitSupervisors(t, p, dir, "o")
	var want []int
	waitFor(t, "3 orphan pids", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "o", "pids"))
		l := lines(string(b))
		if len(l) < 3 {
			return false
		}
		want = nil
		for _, s := range l {
			n, _ := strconv.Atoi(s)
			want = append(want, n)
		}
		return true
	})
	slices.Sort(want)
	var orphans []int
	waitFor(t, "the orphans to be svscan's children", func() bool {
		orphans = nil
		var ns []int
		for _, st := range children(t, p.Pid) {
			if n := nsPid(st.Pid); slices.Contains(want, n) {
				orphans = append(orphans, st.Pid)
				ns = append(ns, n)
			}
		}
		slices.Sort(ns)
		return slices.Equal(ns, want)
	})
	for _, pid := range orphans {
		if err := unix.Kill(pid, unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the orphans to be reaped", func() bool {
		for _, pid := range orphans {
			if _, err := readStat(pid); err == nil {
				return false
			}
		}
		return len(zombiesUnder(t, p.Pid)) == 0
	})
	if z := zombiesUnder(t, p.Pid); len(z) != 0 {
		t.Errorf("zombies under svscan: %v", z)
	}
}

// TestSvscanReapsOrphansNegativeControl is the zombie detector's negative
// control for the test above: a PID 1 that does not reap (the noreap
// role) is flagged with exactly its dead children, seen from outside the
// namespace.
func TestSvscanReapsOrphansNegativeControl(t *testing.T) {
	t.Parallel()
	p := startNS(t, Opts{}, "noreap", "3")
	p.WaitLine(t, "^ready$")
	waitFor(t, "3 zombies under a non-reaping PID 1", func() bool { return len(zombiesUnder(t, p.Pid)) >= 3 })
	if z := zombiesUnder(t, p.Pid); len(z) != 3 {
		t.Errorf("zombiesUnder(noreap as PID 1) = %v; want 3", z)
	}
}

// TestSvscanSIGTERM: every service gets SIGTERM, the logger drains the
// pipe, then .s6-svscan/finish runs as PID 1 and its exit code is
// svscan's; without finish, svscan exits 0.
func TestSvscanSIGTERM(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		finish string
		code   int
	}{
		{name: "finish exits 7", finish: "#!/bin/sh\necho \"finish $$\" > finished\nexit 7\n", code: 7},
		{name: "no finish", code: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{
				"a/run":     "#!/bin/sh\nexec trapsig -on TERM -code 0\n",
				"a/log/run": "#!/bin/sh\nexec cat > out\n",
				"b/run":     "#!/bin/sh\nexec trapsig -on TERM -code 0 > sigs\n",
			}
			if tt.finish != "" {
				files[".s6-svscan/finish"] = tt.finish
			}
			dir := scanDir(t, files)
			p := startSvscan(t, dir)
			waitSupervisors(t, p, dir, "a", "a/log", "b")
			waitFile(t, filepath.Join(dir, "a", "log", "out"), "ready\n")
			waitFile(t, filepath.Join(dir, "b", "sigs"), "ready\n")
			p.Signal(unix.SIGTERM)
			r := p.Wait(t)
			if r.Code != tt.code || r.Stderr != "" {
				t.Errorf("svscan after SIGTERM = %s, stderr %q; want exit %d", r.Status(), r.Stderr, tt.code)
			}
			// supervise sends SIGTERM then SIGCONT; trapsig may see CONT
			// first, and ends on TERM.
			for _, f := range []string{"a/log/out", "b/sigs"} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				if got := string(b); got != "ready\nTERM\n" && got != "ready\nCONT\nTERM\n" {
					t.Errorf("%s = %q; want %q (a CONT line may come before TERM)", f, got, "ready\nTERM\n")
				}
			}
			if tt.finish != "" {
				if b, _ := os.ReadFile(filepath.Join(dir, "finished")); string(b) != "finish 1\n" {
					t.Errorf("finished = %q; want finish run as pid 1", b)
				}
			}
		})
	}
}

// TestSvscanSIGHUP: SIGHUP (h) scans, so a new directory gets a
// supervisor, and stops the supervisor of a removed one.
func TestSvscanSIGHUP(t *testing.T) {
	t.Parallel()
	dir := scanDir(t, map[string]string{"a/run": "#!/bin/sh\nexec sleep 1000\n"})
	p := startSvscan(t, dir)
	waitSupervisors(t, p, dir, "a")
	writeScanFile(t, dir, "c/run", "#!/bin/sh\nexec sleep 1000\n")
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(filepath.Dir(dir), "a-removed")); err != nil {
		t.Fatal(err)
	}
	p.Signal(unix.SIGHUP)
	waitSupervisors(t, p, dir, "c")
	// a's supervisor got SIGTERM: its service went down before it exited.
	if st, ok := readStatus(filepath.Join(filepath.Dir(dir), "a-removed")); !ok || st.PID != 0 {
		t.Errorf("removed a: status %+v, %v; want down", st, ok)
	}
}

// TestSvscanRestartsKilledSupervisor: a supervisor killed with SIGKILL is
// started again, no sooner than 1 s after its previous start.
func TestSvscanRestartsKilledSupervisor(t *testing.T) {
	t.Parallel()
	dir := scanDir(t, map[string]string{"a/run": "#!/bin/sh\nexec sleep 1000\n"})
	p := startSvscan(t, dir)
	// Killed only once its service is up: a supervise killed while it
	// spawns run leaves run's vfork child, still showing supervise's argv
	// until it execs, to svscan, where it would pass for the restart.
	var old int
	waitFor(t, "a's supervisor, its service up", func() bool {
		old = supervisorsOf(t, p.Pid)["a"]
		st, ok := readStatus(filepath.Join(dir, "a"))
		return old != 0 && ok && st.PID != 0
	})
	was := startTicks(t, old)
	if err := unix.Kill(old, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var now int
	waitFor(t, "a new supervisor for a", func() bool {
		now = supervisorsOf(t, p.Pid)["a"]
		return now != 0 && now != old
	})
	// Clock ticks are 10 ms (CLK_TCK 100): allow one of rounding.
	if d := startTicks(t, now) - was; d < 99 {
		t.Errorf("supervisor restarted %d ticks after its previous start; want at least 1 s", d)
	}
	waitSupervisors(t, p, dir, "a")
}

// TestSvscanControl drives svscan through its control FIFO, with
// svscanctl and with raw bytes.
func TestSvscanControl(t *testing.T) {
	t.Parallel()
	raw := func(t *testing.T, dir, b string) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(dir, ".s6-svscan", "control"), os.O_WRONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(b); err != nil {
			t.Fatal(err)
		}
	}
	ctl := func(t *testing.T, args ...string) {
		t.Helper()
		if r := run(t, append([]string{"svscanctl"}, args...)...); r.Code != 0 || r.Stderr != "" {
			t.Fatalf("svscanctl %q = %s, stderr %q; want exit 0", args, r.Status(), r.Stderr)
		}
	}
	const sleepRun = "#!/bin/sh\nexec sleep 1000\n"
	const catLog = "#!/bin/sh\nexec cat > out\n"

	t.Run("a scans, z reaps, unknown bytes warn", func(t *testing.T) {
		t.Parallel()
		dir := scanDir(t, map[string]string{"a/run": sleepRun})
		p := startSvscan(t, dir)
		waitSupervisors(t, p, dir, "a")
		writeScanFile(t, dir, "b/run", sleepRun)
		ctl(t, "-a", dir)
		waitSupervisors(t, p, dir, "a", "b")
		writeScanFile(t, dir, "c/run", sleepRun)
		raw(t, dir, "za")
		waitSupervisors(t, p, dir, "a", "b", "c")
		raw(t, dir, "Y")
		if got, want := p.WaitStderrLine(t, "unknown"), "svscan: warning: unknown control command: Y"; got != want {
			t.Errorf("stderr line %q; want %q", got, want)
		}
		if e := p.Stderr(); len(lines(e)) != 1 {
			t.Errorf("svscan stderr %q; want one line", e)
		}
	})

	// n and N stop the supervisors of vanished services; the logger's
	// supervisor gets SIGHUP (it waits for cat to drain the pipe: exit 0)
	// or SIGTERM (cat is killed).
	for _, tt := range []struct {
		name  string
		send  func(t *testing.T, dir string)
		wstat uint16
	}{
		{name: "svscanctl -an", send: func(t *testing.T, dir string) { ctl(t, "-an", dir) }, wstat: 0},
		{name: "raw aN", send: func(t *testing.T, dir string) { raw(t, dir, "aN") }, wstat: uint16(unix.SIGTERM)},
		{name: "svscanctl -h", send: func(t *testing.T, dir string) { ctl(t, "-h", dir) }, wstat: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := scanDir(t, map[string]string{"a/run": sleepRun, "a/log/run": catLog, "b/run": sleepRun})
			p := startSvscan(t, dir)
			waitSupervisors(t, p, dir, "a", "a/log", "b")
			gone := filepath.Join(filepath.Dir(dir), "a-removed")
			if err := os.Rename(filepath.Join(dir, "a"), gone); err != nil {
				t.Fatal(err)
			}
			tt.send(t, dir)
			waitSupervisors(t, p, dir, "b")
			if st, ok := readStatus(filepath.Join(gone, "log")); !ok || st.PID != 0 || st.WStat != tt.wstat {
				t.Errorf("a/log status %+v, %v; want down with wstat %#04x", st, ok, tt.wstat)
			}
		})
	}

	// t and q end svscan; with t the logger drains the pipe (cat exits 0),
	// with q it gets SIGTERM.
	for _, tt := range []struct {
		name  string
		send  func(t *testing.T, dir string)
		wstat uint16
	}{
		{name: "svscanctl -t", send: func(t *testing.T, dir string) { ctl(t, "-t", dir) }, wstat: 0},
		{name: "raw i", send: func(t *testing.T, dir string) { raw(t, dir, "i") }, wstat: 0},
		{name: "raw q", send: func(t *testing.T, dir string) { raw(t, dir, "q") }, wstat: uint16(unix.SIGTERM)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := scanDir(t, map[string]string{"a/run": sleepRun, "a/log/run": catLog})
			p := startSvscan(t, dir)
			waitSupervisors(t, p, dir, "a", "a/log")
			tt.send(t, dir)
			if r := p.Wait(t); r.Code != 0 || r.Stderr != "" {
				t.Errorf("svscan = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
			}
			if st, ok := readStatus(filepath.Join(dir, "a", "log")); !ok || st.PID != 0 || st.WStat != tt.wstat {
				t.Errorf("a/log status %+v, %v; want down with wstat %#04x", st, ok, tt.wstat)
			}
		})
	}
}

// TestSvscanSignalPrograms: .s6-svscan/SIGUSR1 runs on each SIGUSR1 (and
// is reaped); SIGABRT (b) executes finish at once, supervisors running.
func TestSvscanSignalPrograms(t *testing.T) {
	t.Parallel()
	dir := scanDir(t, map[string]string{
		"a/run":              "#!/bin/sh\nexec sleep 1000\n",
		".s6-svscan/SIGUSR1": "#!/bin/sh\necho usr1 >> usr1.log\n",
		".s6-svscan/finish":  "#!/bin/sh\nexit 42\n",
	})
	p := startSvscan(t, dir)
	waitSupervisors(t, p, dir, "a")
	p.Signal(unix.SIGUSR1)
	waitFile(t, filepath.Join(dir, "usr1.log"), "usr1\n")
	p.Signal(unix.SIGUSR1)
	waitFile(t, filepath.Join(dir, "usr1.log"), "usr1\nusr1\n")
	waitFor(t, "the SIGUSR1 programs to be reaped", func() bool { return len(zombiesUnder(t, p.Pid)) == 0 })
	if !p.Running() {
		t.Fatalf("svscan exited after SIGUSR1: %s", p.Wait(t).Status())
	}
	p.Signal(unix.SIGABRT)
	if r := p.Wait(t); r.Code != 42 || r.Stderr != "" {
		t.Errorf("svscan after SIGABRT = %s, stderr %q; want exit 42 (finish)", r.Status(), r.Stderr)
	}
}

// TestSvscanInteropS6Svscanctl: real s6-svscanctl drives gotools svscan.
func TestSvscanInteropS6Svscanctl(t *testing.T) {
	t.Parallel()
	ctl := requireS6(t, "s6-svscanctl")[0]
	dir := scanDir(t, map[string]string{"a/run": "#!/bin/sh\nexec sleep 1000\n", "b/run": "#!/bin/sh\nexec sleep 1000\n"})
	p := startSvscan(t, dir)
	waitSupervisors(t, p, dir, "a", "b")
	writeScanFile(t, dir, "c/run", "#!/bin/sh\nexec sleep 1000\n")
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(filepath.Dir(dir), "a-removed")); err != nil {
		t.Fatal(err)
	}
	if r := run(t, ctl, "-an", dir); r.Code != 0 {
		t.Fatalf("s6-svscanctl -an = %s, stderr %q", r.Status(), r.Stderr)
	}
	waitSupervisors(t, p, dir, "b", "c")
	if r := run(t, ctl, "-t", dir); r.Code != 0 {
		t.Fatalf("s6-svscanctl -t = %s, stderr %q", r.Status(), r.Stderr)
	}
	if r := p.Wait(t); r.Code != 0 || r.Stderr != "" {
		t.Errorf("svscan after s6-svscanctl -t = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	for _, n := range []string{"b", "c"} {
		if st, ok := readStatus(filepath.Join(dir, n)); !ok || st.PID != 0 {
			t.Errorf("%s status %+v, %v; want down", n, st, ok)
		}
	}
}

// TestSvscanIdleNoTimer: an idle svscan without -t sleeps in poll(2)
// with no timeout (x/sys/unix.Poll is ppoll(2) with a NULL timeout, or
// poll(2) with -1).
func TestSvscanIdleNoTimer(t *testing.T) {
	t.Parallel()
	dir := scanDir(t, map[string]string{"a/run": "#!/bin/sh\nexec sleep 1000\n"})
	p := startSvscan(t, dir)
	waitSupervisors(t, p, dir, "a")
	waitFor(t, "svscan in poll(2) with no timeout", func() bool {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", p.Pid))
		for _, task := range tasks {
			b, _ := os.ReadFile(task)
			f := strings.Fields(string(b))
			if len(f) < 4 {
				continue
			}
			switch f[0] {
			case strconv.Itoa(unix.SYS_PPOLL):
				if f[3] == "0x0" {
					return true
				}
			case strconv.Itoa(unix.SYS_POLL):
				if f[3] == "0xffffffffffffffff" {
					return true
				}
			}
		}
		return false
	})
}

// TestSvscanRescanTimer: with -t, a new directory is picked up without
// any signal or control byte.
func TestSvscanRescanTimer(t *testing.T) {
	t.Parallel()
	dir := scanDir(t, map[string]string{"a/run": "#!/bin/sh\nexec sleep 1000\n"})
	p := startSvscan(t, dir, "-t", "100")
	waitSupervisors(t, p, dir, "a")
	writeScanFile(t, dir, "b/run", "#!/bin/sh\nexec sleep 1000\n")
	waitSupervisors(t, p, dir, "a", "b")
}

// supervisorsOf returns gotools supervisors among pid's children, by the
// directory each supervises: "a", "a/log".
func supervisorsOf(t *testing.T, pid int) map[string]int {
	t.Helper()
	return supervisorsNamed(t, pid, "supervise")
}

// supervisorsNamed returns the live children of pid whose argv is
// "PROG NAME" with PROG's base name base, by NAME ("a", "a/log").
func supervisorsNamed(t *testing.T, pid int, base string) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, st := range children(t, pid) {
		args := procArgv(st.Pid)
		if st.State != 'Z' && len(args) == 2 && filepath.Base(args[0]) == base {
			m[args[1]] = st.Pid
		}
	}
	return m
}

// waitSupervisors waits until svscan p runs exactly the gotools
// supervisors of names, each with its service up, and returns their pids.
func waitSupervisors(t *testing.T, p *Proc, dir string, names ...string) map[string]int {
	t.Helper()
	return waitSupervisorsNamed(t, p, dir, "supervise", names...)
}

// waitSupervisorsNamed waits until the supervisors of p are exactly those of names, each with
// its service up, and returns their pids.
func waitSupervisorsNamed(t *testing.T, p *Proc, dir, base string, names ...string) map[string]int {
	t.Helper()
	slices.Sort(names)
	var got map[string]int
	poll(deadline(t), func() bool {
		got = supervisorsNamed(t, p.Pid, base)
		if !slices.Equal(slices.Sorted(maps.Keys(got)), names) {
			return false
		}
		for _, n := range names {
			if st, ok := readStatus(filepath.Join(dir, n)); !ok || !st.Up() {
				return false
			}
		}
		return true
	})
	if !slices.Equal(slices.Sorted(maps.Keys(got)), names) {
		t.Fatalf("%s children of %q = %v; want %q (stderr %q)", base, p.Argv, got, names, p.Stderr())
	}
	return got
}

// benchScan starts scanner (gotools svscan, or real s6-svscan) as PID 1
// of a new PID namespace on n services that each exec sleep, and returns
// it once every service has emitted u, with the time that took from just
// before the start (§11: 20 services up within 200 ms).
func benchScan(b *testing.B, scanner string, n int) (*Proc, time.Duration) {
	return benchScanArgv(b, []string{scanner}, n, b.TempDir())
}

// benchScanArgv is benchScan with the scanner's argv before SCANDIR, and
// SCANDIR made in root.
func benchScanArgv(b *testing.B, argv []string, n int, root string) (*Proc, time.Duration) {
	b.Helper()
	dir := filepath.Join(root, "scan")
	var ls []*ftrig.Listener
	for i := range n {
		svc := filepath.Join(dir, fmt.Sprintf("s%03d", i))
		if err := os.MkdirAll(svc, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := writeExecutable(filepath.Join(svc, "run"), []byte(sleepRun), 0o755); err != nil {
			b.Fatal(err)
		}
		if _, err := ftrig.MkFifodir(filepath.Join(svc, "event")); err != nil {
			b.Fatal(err)
		}
		l, err := ftrig.Subscribe(filepath.Join(svc, "event"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		ls = append(ls, l)
	}
	t0 := time.Now()
	p := startIn(b, Opts{NewPIDNS: true}, append(argv, dir)...)
	buf := make([]byte, 16)
	for _, l := range ls {
		var got []byte
		for !bytes.Contains(got, []byte("u")) {
			n, err := l.Read(buf, deadline(b))
			if err != nil {
				b.Fatalf("events %q, then %v; want u", got, err)
			}
			got = append(got, buf[:n]...)
		}
	}
	return p, time.Since(t0)
}

// BenchmarkSvscanFootprint reports, for 20 idle services, svscan's
// private memory after 2 s and the time from its start to all 20 u (§11:
// <= 3 MiB, <= 200 ms), next to real s6-svscan (with real s6-supervise)
// when installed.
func BenchmarkSvscanFootprint(b *testing.B) {
	bench := func(b *testing.B, scanner string) {
		p, up := benchScan(b, scanner, 20)
		time.Sleep(2 * time.Second) // idle time being measured, not synchronisation
		st := procStatus(b, p.Pid)
		for b.Loop() {
		}
		b.ReportMetric(float64(up.Microseconds())/1000, "all-up-ms")
		b.ReportMetric(float64(st["RssAnon"]), "RssAnon-KiB")
		b.ReportMetric(float64(st["Threads"]), "threads")
	}
	b.Run("svscan", func(b *testing.B) { bench(b, "svscan") })
	if s6, ok := realLookPath("s6-svscan"); ok {
		b.Run("s6-svscan", func(b *testing.B) { bench(b, s6) })
	}
}

// BenchmarkSvscanIdleWakeups reports how often svscan, without -t and
// with 20 idle services, is scheduled in a 2 s window after 1 s of
// settling (§11: 0).
func BenchmarkSvscanIdleWakeups(b *testing.B) {
	bench := func(b *testing.B, scanner string) {
		p, _ := benchScan(b, scanner, 20)
		time.Sleep(time.Second) // settling, part of the measurement
		before := schedRuns(b, p.Pid)
		time.Sleep(2 * time.Second) // the window
		after := schedRuns(b, p.Pid)
		for b.Loop() {
		}
		b.ReportMetric(float64(after-before), "wakeups/window")
	}
	b.Run("svscan", func(b *testing.B) { bench(b, "svscan") })
	if s6, ok := realLookPath("s6-svscan"); ok {
		b.Run("s6-svscan", func(b *testing.B) { bench(b, s6) })
	}
}

// TestSvscanEMFILE runs svscan (with supervise processes, and
// --one-process) short of fds (issue 20 item 4): once it runs, the test
// lowers its soft RLIMIT_NOFILE (prlimit(2) on the running svscan; the
// hard limit stays, since raising one needs CAP_SYS_RESOURCE) and adds 20
// services, half of them with a log/, then asks for a scan. Every service
// without log/ needs no pipe and starts; once the test raises the soft
// limit again, the rest start too, retried without any command.
func TestSvscanEMFILE(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name  string
		args  []string
		limit uint64 // enough for the services without log/, not for all
	}{{"processes", nil, 20}, {"one-process", []string{"--one-process"}, 64}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dir := scanDir(t, nil)
			p := startSvscan(t, dir, mode.args...)
			// svscan is ready before its first scan: under load, that scan
			// could see half of the services below and start their
			// loggers, leaving no fds for the rest. A service s00 proves
			// the first scan over before the limit is lowered.
			writeScanFile(t, dir, "s00/run", "#!/bin/sh\nexec sleep 1000\n")
			if r := run(t, "svscanctl", "-a", dir); r.Code != 0 {
				t.Fatalf("svscanctl -a = %s", r.Status())
			}
			waitFor(t, "s00 supervised", func() bool {
				held, err := lock.Held(filepath.Join(dir, "s00", "supervise", "lock"))
				return err == nil && held
			})
			var lim unix.Rlimit
			if err := unix.Prlimit(p.Pid, unix.RLIMIT_NOFILE, nil, &lim); err != nil {
				t.Fatal(err)
			}
			if err := unix.Prlimit(p.Pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: mode.limit, Max: lim.Max}, nil); err != nil {
				t.Fatal(err)
			}
			var plain, all []string
			for i := 1; i <= 20; i++ {
				name := fmt.Sprintf("s%02d", i)
				writeScanFile(t, dir, name+"/run", "#!/bin/sh\nexec sleep 1000\n")
				all = append(all, name)
				if i%2 == 0 {
					writeScanFile(t, dir, name+"/log/run", "#!/bin/sh\nexec cat >/dev/null\n")
					all = append(all, name+"/log")
				} else {
					plain = append(plain, name)
				}
			}
			if r := run(t, "svscanctl", "-a", dir); r.Code != 0 {
				t.Fatalf("svscanctl -a = %s", r.Status())
			}
			p.WaitStderrLine(t, "Too many open files")
			supervised := func(names []string) bool {
				got := supervisorsOf(t, p.Pid)
				for _, n := range names {
					if mode.args == nil && got[n] == 0 {
						return false
					}
					if held, err := lock.Held(filepath.Join(dir, n, "supervise", "lock")); err != nil || !held {
						return false
					}
				}
				return true
			}
			if !poll(deadline(t), func() bool { return supervised(plain) }) {
				t.Fatalf("not every service without log/ is supervised: %v; stderr:\n%s", supervisorsOf(t, p.Pid), p.Stderr())
			}
			if supervised(all) {
				t.Fatalf("every service started short of fds: the test proves nothing (stderr %q)", p.Stderr())
			}
			// The fds come back: the others start without a command.
			if err := unix.Prlimit(p.Pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a supervisor for every service and logger once fds came back", func() bool { return supervised(all) })
		})
	}
}
