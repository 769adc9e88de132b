package tests

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/tai"
)

// craftedService makes a service directory with DIR/supervise/status
// holding st and, if supervised, an OFD lock on DIR/supervise/lock held by
// the test process until the test ends: to svstat and svok (and to
// s6-svstat and s6-svok, whose POSIX F_GETLK sees OFD locks) it is a
// running supervisor. down creates DIR/down.
func craftedService(t testing.TB, st servicedir.Status, supervised, down bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "svc")
	if err := os.MkdirAll(filepath.Join(dir, "supervise"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "supervise", "status"), st.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	if down {
		if err := os.WriteFile(filepath.Join(dir, "down"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := lock.OpenExclusive(filepath.Join(dir, "supervise", "lock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if supervised {
		if err := lock.TryLock(f, lock.Exclusive); err != nil {
			t.Fatalf("lock %s: %v", dir, err)
		}
	}
	return dir
}

// ago returns the stamp of d before now.
func ago(d time.Duration) tai.Stamp { return tai.FromTime(time.Now().Add(-d)) }

// secondsRE turns want, a line with "%d" for each count of seconds, into a
// regexp that accepts each count up to late more: the counts are the ages
// of stamps when they were written, and svstat read the clock later (see
// [lateness]).
func secondsRE(want string, late int, counts ...int) *regexp.Regexp {
	parts := strings.Split(regexp.QuoteMeta(want), "%d")
	var b strings.Builder
	b.WriteString("^")
	for i, p := range parts {
		b.WriteString(p)
		if i < len(counts) {
			b.WriteString(secondsAlt(counts[i], late))
		}
	}
	b.WriteString("\n$")
	return regexp.MustCompile(b.String())
}

// secondsAlt is a regexp that matches the decimal numbers n to n+late.
func secondsAlt(n, late int) string {
	alt := make([]string, late+1)
	for i := range alt {
		alt[i] = strconv.Itoa(n + i)
	}
	return "(?:" + strings.Join(alt, "|") + ")"
}

// lateness is how many seconds more than a stamp's age when written (at or
// after since) a client that has exited by now may count: the whole seconds
// since then, plus one for the boundary the fraction may cross. Under load
// a client can take over a second to start.
func lateness(since time.Time) int {
	return 1 + int(time.Since(since)/time.Second)
}

// TestSvstatCraftedStatus checks svstat's legacy line and fields on status
// files written by the test, with a lock held by the test: exact bytes,
// exit 0, nothing on stderr.
func TestSvstatCraftedStatus(t *testing.T) {
	t.Parallel()
	const (
		paused, finishing = servicedir.FlagPaused, servicedir.FlagFinishing
		wantUp, ready     = servicedir.FlagWantUp, servicedir.FlagReady
	)
	// The up services' pid is a process that is not the service's (its
	// working directory is not DIR, and it started now, not when the
	// status says), so svstat prints no pgid. TestSvstatScanDir has a
	// real one.
	self := notServicePID(t)
	upFor, readyFor := 100*time.Second+200*time.Millisecond, 40*time.Second+200*time.Millisecond
	for _, tt := range []struct {
		name   string
		st     servicedir.Status
		down   bool
		args   []string
		want   string // with %d for 100 (updown) then 40 (ready) seconds
		counts []int
	}{
		{name: "up ready", st: servicedir.Status{PID: uint64(self), Flags: wantUp | ready},
			want: fmt.Sprintf("up (pid %d) %%d seconds, ready %%d seconds", self), counts: []int{100, 40}},
		{name: "up paused normally down", st: servicedir.Status{PID: uint64(self), Flags: wantUp | paused}, down: true,
			want: fmt.Sprintf("up (pid %d) %%d seconds, normally down, paused", self), counts: []int{100}},
		{name: "down exitcode", st: servicedir.Status{WStat: 3 << 8, Flags: ready},
			want: "down (exitcode 3) %d seconds, normally up, ready %d seconds", counts: []int{100, 40}},
		{name: "down signal", st: servicedir.Status{WStat: 15, Flags: wantUp},
			want: "down (signal SIGTERM) %d seconds, normally up, want up", counts: []int{100}},
		{name: "down signal numeric", st: servicedir.Status{WStat: 15, Flags: wantUp}, args: []string{"-n"},
			want: "down (signal 15) %d seconds, normally up, want up", counts: []int{100}},
		{name: "normally down want up", st: servicedir.Status{WStat: 0, Flags: wantUp}, down: true,
			want: "down (exitcode 0) %d seconds, want up", counts: []int{100}},
		{name: "finishing", st: servicedir.Status{PID: uint64(self), WStat: 1 << 8, Flags: finishing | wantUp},
			want: "down (exitcode 1) %d seconds, normally up, want up", counts: []int{100}},
		{name: "not started yet", st: servicedir.Status{Flags: paused | ready}, down: true,
			want: "down (not started yet) "},
		{name: "fields down and ready", st: servicedir.Status{WStat: 2 << 8, Flags: ready}, args: []string{"-o", "up,ready"},
			want: "false true"},
		{name: "fields pid pgid up", st: servicedir.Status{PID: uint64(self), Flags: wantUp}, args: []string{"-o", "pid,pgid", "-u"},
			want: fmt.Sprintf("%d -1 true", self)},
		{name: "letters and fields in order", st: servicedir.Status{WStat: 9}, down: true, args: []string{"-es", "-o", "signum,normallyup,updownfor", "-wt"},
			want: "-1 SIGKILL 9 false %d false %d", counts: []int{100, 100}},
		{name: "stamp in the future", st: servicedir.Status{WStat: 0}, args: []string{"-o", "updownfor"},
			want: "0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := tt.st
			written := time.Now()
			st.Stamp, st.ReadyStamp = ago(upFor), ago(readyFor)
			if tt.name == "stamp in the future" {
				st.Stamp = ago(-time.Hour)
			}
			dir := craftedService(t, st, true, tt.down)
			argv := append(append([]string{"svstat"}, tt.args...), dir)
			r := run(t, argv...)
			re := secondsRE(tt.want, lateness(written), tt.counts...)
			if r.Code != 0 || r.Stderr != "" || !re.MatchString(r.Stdout) {
				t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 0, stdout matching %q", argv, r.Status(), r.Stdout, r.Stderr, re)
			}
		})
	}
}

// TestSvstatSvokFailures checks the exit codes and messages of svstat and
// svok for directories that are not (or cannot be seen to be) supervised,
// and for bad command lines.
func TestSvstatSvokFailures(t *testing.T) {
	t.Parallel()
	good := servicedir.Status{Stamp: ago(time.Second), ReadyStamp: ago(time.Second), Flags: servicedir.FlagWantUp}
	supervised := craftedService(t, good, true, false)
	unsupervised := craftedService(t, good, false, false)
	missing := filepath.Join(t.TempDir(), "nosuch")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	malformed := craftedService(t, good, true, false)
	if err := os.WriteFile(filepath.Join(malformed, "supervise", "status"), append(good.Marshal(), 0), 0o644); err != nil {
		t.Fatal(err)
	}
	badNsec := craftedService(t, good, true, false)
	b := good.Marshal()
	binary.BigEndian.PutUint32(b[20:], 1000000000)
	if err := os.WriteFile(filepath.Join(badNsec, "supervise", "status"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	noStatus := craftedService(t, good, true, false)
	if err := os.Remove(filepath.Join(noStatus, "supervise", "status")); err != nil {
		t.Fatal(err)
	}
	seventeen := strings.TrimSuffix(strings.Repeat("up,", 17), ",")
	svstatUsage := "svstat: usage: svstat [ -uwNrpgest | -o FIELD,... ] [ -n ] [ --json ] DIR...\n"
	for _, tt := range []struct {
		name   string
		argv   []string
		code   int
		stderr string
		stdout string
	}{
		{name: "svok supervised", argv: []string{"svok", supervised}, code: 0},
		{name: "svok alias", argv: []string{"s6-svok", supervised}, code: 0},
		{name: "svok unsupervised", argv: []string{"svok", unsupervised}, code: 1},
		{name: "svok missing dir", argv: []string{"svok", missing}, code: 1},
		{name: "svok not a directory", argv: []string{"svok", file}, code: 111,
			stderr: "svok: fatal: unable to check " + file + ": Not a directory\n"},
		{name: "svok two operands", argv: []string{"svok", supervised, supervised}, code: 100, stderr: "svok: usage: svok DIR\nsvok: fatal: unexpected argument " + supervised + "\n"},
		{name: "svok dash-dash", argv: []string{"svok", "--", supervised}, code: 0},
		{name: "svstat unsupervised", argv: []string{"svstat", unsupervised}, code: 1,
			stderr: "svstat: fatal: unable to read status for " + unsupervised + ": supervise not running\n"},
		{name: "s6-svstat unsupervised", argv: []string{"s6-svstat", unsupervised}, code: 1,
			stderr: "s6-svstat: fatal: unable to read status for " + unsupervised + ": s6-supervise not running\n"},
		{name: "svstat missing dir", argv: []string{"svstat", missing}, code: 1,
			stderr: "svstat: fatal: unable to read status for " + missing + ": supervise not running\n"},
		{name: "svstat not a directory", argv: []string{"svstat", file}, code: 111,
			stderr: "svstat: fatal: unable to read status for " + file + ": Not a directory\n"},
		{name: "svstat malformed", argv: []string{"svstat", malformed}, code: 111,
			stderr: "svstat: fatal: unable to read status for " + malformed + ": malformed status file: 36 bytes, want 35 (or 43)\n"},
		{name: "svstat nanoseconds out of range", argv: []string{"svstat", badNsec}, code: 111,
			stderr: "svstat: fatal: unable to read status for " + badNsec + ": malformed status file: nanoseconds of the ready stamp are 1000000000, out of range (at most 999999999)\n"},
		{name: "svstat no status file", argv: []string{"svstat", noStatus}, code: 111,
			stderr: "svstat: fatal: unable to read status for " + noStatus + ": No such file or directory\n"},
		{name: "svstat 16 fields", argv: []string{"svstat", "-o", strings.Repeat("up,", 16), supervised}, code: 0,
			stdout: strings.TrimSuffix(strings.Repeat("false ", 16), " ") + "\n"},
		{name: "svstat 17 fields", argv: []string{"svstat", "-o", seventeen, supervised}, code: 100,
			stderr: "svstat: fatal: too many option fields\n"},
		{name: "svstat bogus field", argv: []string{"svstat", "-o", "up,bogus", supervised}, code: 100,
			stderr: "svstat: fatal: invalid option field: bogus\n"},
		{name: "svstat null field", argv: []string{"s6-svstat", "--fields=,up", supervised}, code: 100,
			stderr: "s6-svstat: fatal: invalid null option field\n"},
		// Operands end the options: "-u" is a second DIR.
		{name: "svstat option after DIR", argv: []string{"svstat", "-o", "up", supervised, "-u"}, code: 1,
			stdout: supervised + "  false\n-u" + strings.Repeat(" ", len(supervised)) + "supervise not running\n"},
		{name: "svstat unknown letter", argv: []string{"svstat", "-x", supervised}, code: 100, stderr: svstatUsage + "svstat: fatal: unknown option -x\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tt.argv...)
			if r.Code != tt.code || r.Stderr != tt.stderr || r.Stdout != tt.stdout {
				t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q",
					tt.argv, r.Status(), r.Stdout, r.Stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestSvstatSvokInteropS6 runs a real s6-supervise (2.11 in CI) on a
// service whose run is "exec sleep 1000", and checks that gotools svok and
// svstat read it as real s6-svok and s6-svstat do, but for the documented
// differences (spec/supervise.md §9): our line shows the pgid, and our
// ready field is the ready flag. It also has real s6-svstat read status
// files written by gotools' servicedir.Status.Marshal.
func TestSvstatSvokInteropS6(t *testing.T) {
	t.Parallel()
	tools := requireS6(t, "s6-supervise", "s6-svc", "s6-svstat", "s6-svok")
	supervise, svc6, svstat6, svok6 := tools[0], tools[1], tools[2], tools[3]
	dir := filepath.Join(t.TempDir(), "svc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeExecutable(filepath.Join(dir, "run"), []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sup := start(t, supervise, dir)
	t.Cleanup(func() { sweepSessions(t, sup) }) // before start's own cleanup

	// gotools svok about a real supervisor.
	waitFor(t, "svok to see s6-supervise on "+dir, func() bool {
		if r := run(t, "svok", dir); r.Code != 1 {
			return r.Code == 0
		}
		return false
	})
	var pid int
	waitFor(t, "the service to be up", func() bool {
		r := run(t, "svstat", "-o", "up,pid", dir)
		up, p, _ := strings.Cut(strings.TrimSpace(r.Stdout), " ")
		pid, _ = strconv.Atoi(p)
		return r.Code == 0 && up == "true"
	})
	if st, err := readStat(pid); err != nil || st.Session != pid || st.PPid != sup.Pid {
		t.Fatalf("run pid %d: readStat = %v, %v; want a session leader, child of s6-supervise %d", pid, st, err, sup.Pid)
	}

	legacy := regexp.MustCompile(`^up \(pid (\d+) pgid (\d+)\) \d+ seconds\n$`)
	r := run(t, "svstat", dir)
	m := legacy.FindStringSubmatch(r.Stdout)
	if r.Code != 0 || m == nil || m[1] != strconv.Itoa(pid) || m[2] != strconv.Itoa(pid) {
		t.Errorf("svstat = %s, %q, stderr %q; want exit 0, up with pid and pgid %d", r.Status(), r.Stdout, r.Stderr, pid)
	}
	pgid := regexp.MustCompile(` pgid \d+\)`)
	same := func(what string, ours, real []string, fix func(string) string) {
		t.Helper()
		var o, s, after Result
		// The lines count seconds, and under load a run can take more than
		// a second: run ours between two real runs, and compare only when
		// those agree, i.e. no second boundary passed while ours ran.
		ok := poll(deadline(t), func() bool {
			s, o, after = run(t, real...), run(t, ours...), run(t, real...)
			return s.Stdout == after.Stdout
		})
		if !ok || o.Code != 0 || s.Code != 0 || fix(o.Stdout) != s.Stdout || o.Stderr != "" || s.Stderr != "" {
			t.Errorf("%s: %q = %s, %q, stderr %q; %q = %s, %q, stderr %q; want the same line",
				what, ours, o.Status(), o.Stdout, o.Stderr, real, s.Status(), s.Stdout, s.Stderr)
		}
	}
	noPgid := func(s string) string { return pgid.ReplaceAllString(s, ")") }
	same6 := func(s string) string { return s }
	fields := "up,wantedup,normallyup,pid,exitcode,signal"
	same("up, legacy", []string{"svstat", dir}, []string{svstat6, dir}, noPgid)
	same("up, fields", []string{"svstat", "-o", fields, dir}, []string{svstat6, "-o", fields, dir}, same6)

	if r := run(t, svc6, "-d", dir); r.Code != 0 {
		t.Fatalf("s6-svc -d = %s, stderr %q", r.Status(), r.Stderr)
	}
	waitFor(t, "the service to be down", func() bool {
		return run(t, "svstat", "-o", "up,ready", dir).Stdout == "false true\n"
	})
	r = run(t, "svstat", dir)
	if want := regexp.MustCompile(`^down \(signal SIGTERM\) \d+ seconds, normally up, ready \d+ seconds\n$`); r.Code != 0 || !want.MatchString(r.Stdout) {
		t.Errorf("svstat after s6-svc -d = %s, %q, stderr %q; want exit 0, matching %q", r.Status(), r.Stdout, r.Stderr, want)
	}
	same("down, legacy", []string{"svstat", dir}, []string{svstat6, dir}, same6)
	same("down, legacy -n", []string{"svstat", "-n", dir}, []string{svstat6, "-n", dir}, same6)
	same("down, fields", []string{"svstat", "-o", fields, dir}, []string{svstat6, "-o", fields, dir}, same6)
	if r := run(t, "svstat", "-o", "up,wantedup,pid,exitcode,signal,signum", dir); r.Stdout != "false false -1 -1 SIGTERM 15\n" {
		t.Errorf("svstat -o up,wantedup,pid,exitcode,signal,signum = %s, %q; want %q", r.Status(), r.Stdout, "false false -1 -1 SIGTERM 15\n")
	}

	// gotools status files read by real s6-svstat.
	self := uint64(notServicePID(t))
	for _, st := range []servicedir.Status{
		{PID: self, Flags: servicedir.FlagWantUp | servicedir.FlagReady},
		{PID: self, Flags: servicedir.FlagPaused},
		{WStat: 3 << 8, Flags: servicedir.FlagReady},
		{WStat: 9, Flags: servicedir.FlagWantUp},
	} {
		st.Stamp, st.ReadyStamp = ago(100*time.Second), ago(40*time.Second)
		for _, down := range []bool{false, true} {
			d := craftedService(t, st, true, down)
			what := fmt.Sprintf("crafted %+v, down file %v", st, down)
			same(what+", legacy", []string{"svstat", d}, []string{svstat6, d}, noPgid)
			same(what+", fields", []string{"svstat", "-o", fields, d}, []string{svstat6, "-o", fields, d}, same6)
		}
	}

	if r := run(t, svc6, "-x", dir); r.Code != 0 {
		t.Fatalf("s6-svc -x = %s, stderr %q", r.Status(), r.Stderr)
	}
	if r := sup.Wait(t); r.Code != 0 {
		t.Errorf("s6-supervise after s6-svc -x = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	for _, argv := range [][]string{{"svok", dir}, {svok6, dir}} {
		if r := run(t, argv...); r.Code != 1 || r.Stderr != "" {
			t.Errorf("run(%q) after s6-supervise exited = %s, stderr %q; want exit 1, no stderr", argv, r.Status(), r.Stderr)
		}
	}
	want := "svstat: fatal: unable to read status for " + dir + ": supervise not running\n"
	if r := run(t, "svstat", dir); r.Code != 1 || r.Stderr != want || r.Stdout != "" {
		t.Errorf("svstat after s6-supervise exited = %s, %q, stderr %q; want exit 1, stderr %q", r.Status(), r.Stdout, r.Stderr, want)
	}
}

// sweepSessions kills s6-supervise (sup) and every process of the sessions
// its children lead: s6-supervise runs ./run in a new session, out of
// reach of the harness's process group kill. Zombies re-parented to the
// test process (a subreaper) are reaped.
func sweepSessions(t testing.TB, sup *Proc) {
	sessions := map[int]bool{}
	for _, st := range procStats() {
		if st.PPid == sup.Pid && st.Session == st.Pid {
			sessions[st.Session] = true
		}
	}
	sup.KillGroup(t)
	self := os.Getpid()
	var left []procStat
	ok := poll(time.Now().Add(10*time.Second), func() bool {
		left = left[:0]
		for _, st := range procStats() {
			if !sessions[st.Session] {
				continue
			}
			left = append(left, st)
			unix.Kill(st.Pid, unix.SIGKILL)
			if st.State == 'Z' && st.PPid == self {
				var ws unix.WaitStatus
				unix.Wait4(st.Pid, &ws, unix.WNOHANG, nil)
			}
		}
		return len(left) == 0
	})
	if !ok {
		t.Errorf("sessions %v of s6-supervise's children still hold %v", sessions, left)
	}
}

// benchSpawn times spawn-to-exit of argv, which must exit 0.
func benchSpawn(b *testing.B, argv ...string) {
	path := lookPath(b, argv[0])
	for b.Loop() {
		cmd := exec.Command(path, argv[1:]...)
		cmd.Args[0] = argv[0]
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%q: %v, %q", argv, err, out)
		}
	}
}

// notServicePID starts a process that lives as long as the test and
// returns its pid: one that started now, in the test's directory, so
// svstat can tell it is not the service of a crafted status stamped 100 s
// ago. The test process itself would do only by chance: when the suite
// had run for 100 s, it started just when such a status says.
func notServicePID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(lookPath(t, "sleeper"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd.Process.Pid
}

// benchDir is a crafted supervised service directory, up.
func benchDir(b *testing.B) string {
	st := servicedir.Status{Stamp: ago(time.Second), ReadyStamp: ago(time.Second), PID: uint64(os.Getpid()), Flags: servicedir.FlagWantUp | servicedir.FlagReady}
	return craftedService(b, st, true, false)
}

// BenchmarkSvstat times "svstat DIR" through its symlink on a supervised
// directory (spec/supervise.md §11: median ≤ 3 ms).
func BenchmarkSvstat(b *testing.B) { benchSpawn(b, "svstat", benchDir(b)) }

// BenchmarkS6Svstat is BenchmarkSvstat for the real s6-svstat.
func BenchmarkS6Svstat(b *testing.B) {
	benchSpawn(b, requireS6(b, "s6-svstat")[0], benchDir(b))
}

// TestSvstatScanDir lists a scan directory: one line per service (each
// subdirectory not starting with '.', sorted, then its log/), labels
// aligned, s6-svstat's words; a service without a supervisor says so on
// its line and makes the exit code 1. --json gives one object per line.
func TestSvstatScanDir(t *testing.T) {
	t.Parallel()
	scan := t.TempDir()
	put := func(name string, st servicedir.Status, supervised, down bool) string {
		t.Helper()
		dst := filepath.Join(scan, name)
		if err := os.Rename(craftedService(t, st, supervised, down), dst); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	written := time.Now()
	old := servicedir.Status{Stamp: ago(100 * time.Second), ReadyStamp: ago(100 * time.Second)}
	exited := old
	exited.WStat = 3 << 8
	put("alpha", exited, true, false)
	killed := old
	killed.WStat = 9
	killed.Flags = servicedir.FlagWantUp
	put("alpha/log", killed, true, true)
	put("gamma", old, false, false)
	up := old
	sleeper := startIn(t, Opts{Dir: put("beta-long", up, true, true)}, "sleep", "1000")
	up.PID = uint64(sleeper.Pid)
	up.Flags = servicedir.FlagWantUp
	if err := os.WriteFile(filepath.Join(scan, "beta-long", "supervise", "status"), up.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(scan, ".s6-svscan"), 0o755); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(sleeper.Pid)
	r := run(t, "svstat", scan)
	age := secondsAlt(100, lateness(written))
	want := regexp.MustCompile(`^` +
		`alpha      down \(exitcode 3\) ` + age + ` seconds, normally up\n` +
		`alpha/log  down \(signal SIGKILL\) ` + age + ` seconds, want up\n` +
		`beta-long  up \(pid ` + pid + ` pgid ` + pid + `\) ` + age + ` seconds, normally down\n` +
		`gamma      supervise not running\n$`)
	if r.Code != 1 || r.Stderr != "" || !want.MatchString(r.Stdout) {
		t.Errorf("svstat SCANDIR = %s, stdout %q, stderr %q; want exit 1, stdout matching %q", r.Status(), r.Stdout, r.Stderr, want)
	}
	r = run(t, "s6-svstat", "-o", "up,pid", scan)
	wantFields := "alpha      false -1\nalpha/log  false -1\nbeta-long  true " + pid + "\ngamma      s6-supervise not running\n"
	if r.Code != 1 || r.Stdout != wantFields {
		t.Errorf("s6-svstat -o up,pid SCANDIR = %s, stdout %q; want exit 1, %q", r.Status(), r.Stdout, wantFields)
	}
	// Several service directories: labelled by their paths.
	a, b := filepath.Join(scan, "alpha"), filepath.Join(scan, "beta-long")
	r = run(t, "svstat", "-o", "up", a, b)
	if want := a + "      false\n" + b + "  true\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("svstat -o up A B = %s, stdout %q; want exit 0, %q", r.Status(), r.Stdout, want)
	}

	r = run(t, "svstat", "--json", scan)
	var objs []map[string]any
	for _, l := range lines(r.Stdout) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("svstat --json line %q: %v", l, err)
		}
		objs = append(objs, m)
	}
	if r.Code != 1 || len(objs) != 4 {
		t.Fatalf("svstat --json SCANDIR = %s, stdout %q; want exit 1, 4 objects", r.Status(), r.Stdout)
	}
	for i, w := range []map[string]any{
		{"dir": "alpha", "up": false, "exitcode": 3.0, "signal": nil, "pid": nil, "normallyup": true},
		{"dir": "alpha/log", "up": false, "exitcode": nil, "signal": "SIGKILL", "signum": 9.0, "wantedup": true},
		{"dir": "beta-long", "up": true, "pid": float64(sleeper.Pid), "pgid": float64(sleeper.Pid), "normallyup": false},
		{"dir": "gamma", "error": "supervise not running"},
	} {
		for k, v := range w {
			if got, ok := objs[i][k]; !ok || got != v {
				t.Errorf("svstat --json object %d: %q = %v (present %v); want %v", i, k, got, ok, v)
			}
		}
	}
	if len(objs[0]) != 15 {
		t.Errorf("svstat --json object 0 has %d keys; want dir and the 14 fields: %v", len(objs[0]), objs[0])
	}
}

// TestSvstatOtherPIDNamespace runs supervise as PID 1 of a new pid
// namespace and svstat from outside it: the pid in the status file is the
// namespace's, and the host's process of that number is not the service,
// so svstat must not print its process group (issue 14 item 6).
func TestSvstatOtherPIDNamespace(t *testing.T) {
	t.Parallel()
	dir := svcDir(t, map[string]string{"run": "#!/bin/sh\nexec sleep 1000\n"})
	s := startSupervisorIn(t, Opts{NewPIDNS: true}, "supervise", dir)
	s.expect("su")
	st := s.status()
	if st.PID == 0 {
		t.Fatal("status has no pid while up")
	}
	r := run(t, "svstat", dir)
	want := regexp.MustCompile(`^up \(pid ` + strconv.FormatUint(st.PID, 10) + `\) \d+ seconds\n$`)
	if r.Code != 0 || !want.MatchString(r.Stdout) {
		t.Errorf("svstat DIR from outside the namespace = %s, %q, stderr %q; want exit 0, matching %q", r.Status(), r.Stdout, r.Stderr, want)
	}
	if r := run(t, "svstat", "-o", "pid,pgid", dir); r.Code != 0 || r.Stdout != strconv.FormatUint(st.PID, 10)+" -1\n" {
		t.Errorf("svstat -o pid,pgid = %s, %q; want %d -1", r.Status(), r.Stdout, st.PID)
	}
}
