//go:build footprint

package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/servicedir"
)

// TestFootprint prints the footprint table of issue 16: each row measured
// for gotools and, where Debian's s6 is installed, for s6 in the same run,
// as the median of 3, with the ratio gotools / s6. It is a measurement, not
// a test: nothing is asserted about the numbers ("make footprint"). A
// row whose setup fails says so in the table and fails the run.
//
// FOOTPRINT_BIG=N sets the large tree's size (default 500 services),
// FOOTPRINT_LOCKS=N the number of locks lockd holds (default 1000).
func TestFootprint(t *testing.T) {
	big := 500
	if v, err := strconv.Atoi(os.Getenv("FOOTPRINT_BIG")); err == nil && v > 0 {
		big = v
	}
	empty := emptyGoProgram(t)
	rows := []fpRow{
		{"idle supervise, RssAnon kB (threads)", func(t *testing.T, s6 bool) (float64, string) { return fpIdleSupervise(t, s6) }},
		{"svscan + 10 services, sum of Pss kB", func(t *testing.T, s6 bool) (float64, string) { return fpTree(t, s6, 10, false, false) }},
		{fmt.Sprintf("svscan + %d services, sum of Pss kB", big), func(t *testing.T, s6 bool) (float64, string) { return fpTree(t, s6, big, false, false) }},
		{fmt.Sprintf("svscan + %d services, CPU ms to start all", big), func(t *testing.T, s6 bool) (float64, string) { return fpTree(t, s6, big, true, false) }},
		{"svscan --one-process + 10 services, sum of Pss kB", func(t *testing.T, s6 bool) (float64, string) { return fpTree(t, s6, 10, false, true) }},
		{fmt.Sprintf("svscan --one-process + %d services, sum of Pss kB", big), func(t *testing.T, s6 bool) (float64, string) { return fpTree(t, s6, big, false, true) }},
		{fmt.Sprintf("svscan --one-process + %d services, CPU ms to start all", big), func(t *testing.T, s6 bool) (float64, string) { return fpTree(t, s6, big, true, true) }},
		{fmt.Sprintf("lockd holding %d locks, RssAnon kB (lockd + helpers)", fpLocks()), func(t *testing.T, s6 bool) (float64, string) { return fpLockd(t, s6, false) }},
		{"lockd CPU ms per lock taken", func(t *testing.T, s6 bool) (float64, string) { return fpLockd(t, s6, true) }},
		{"setlock -s through lockd vs s6-setlock -t, wall ms", fpSetlock},
		{"svok DIR, whole process CPU ms", func(t *testing.T, s6 bool) (float64, string) { return fpClientCPU(t, s6, "svok") }},
		{"svstat DIR, whole process CPU ms", func(t *testing.T, s6 bool) (float64, string) { return fpClientCPU(t, s6, "svstat") }},
		{"svc DIR (probe), whole process CPU ms", func(t *testing.T, s6 bool) (float64, string) { return fpClientCPU(t, s6, "svc") }},
		{"one supervise's life (start, x), CPU ms", func(t *testing.T, s6 bool) (float64, string) { return fpLife(t, s6, false) }},
		{"one supervise's life (start, x), page faults", func(t *testing.T, s6 bool) (float64, string) { return fpLife(t, s6, true) }},
	}
	// The "s6" column of these rows is an empty static Go program.
	vsEmpty := []fpRow{
		{"svok DIR vs an empty static Go program, CPU ms", func(t *testing.T, ref bool) (float64, string) { return fpVsEmpty(t, ref, empty, "svok", false) }},
		{"svstat DIR vs an empty static Go program, CPU ms", func(t *testing.T, ref bool) (float64, string) { return fpVsEmpty(t, ref, empty, "svstat", false) }},
		{"svc DIR vs an empty static Go program, CPU ms", func(t *testing.T, ref bool) (float64, string) { return fpVsEmpty(t, ref, empty, "svc", false) }},
		{"svok DIR vs an empty static Go program, wall ms", func(t *testing.T, ref bool) (float64, string) { return fpVsEmpty(t, ref, empty, "svok", true) }},
		// The floors (BenchmarkClientStartup): svok's job with kong
		// linked, and the whole binary with nothing run.
		{"floor: svok's job + kong linked vs empty, CPU ms", func(t *testing.T, ref bool) (float64, string) { return fpFloor(t, ref, empty, "svokkong") }},
		{"floor: every applet linked, none run vs empty, CPU ms", func(t *testing.T, ref bool) (float64, string) { return fpFloor(t, ref, empty, "linked") }},
	}
	_, haveS6 := realLookPath("s6-supervise")
	var out strings.Builder
	fmt.Fprintf(&out, "\n%-58s %14s %14s %7s\n", "measure (median of 3)", "gotools", "s6", "ratio")
	line := func(r fpRow, hasRef bool) {
		g, gnote := fpMedian(t, r, false)
		col := func(v float64, note string) string {
			if note != "" && v < 0 {
				return note
			}
			s := strconv.FormatFloat(v, 'f', 2, 64)
			if note != "" {
				s += " " + note
			}
			return s
		}
		sv, ratio := "—", "—"
		if hasRef && g >= 0 {
			s, snote := fpMedian(t, r, true)
			sv = col(s, snote)
			if s > 0 {
				ratio = strconv.FormatFloat(g/s, 'f', 2, 64)
			}
		}
		fmt.Fprintf(&out, "%-58s %14s %14s %7s\n", r.name, col(g, gnote), sv, ratio)
	}
	for _, r := range rows {
		line(r, haveS6)
		fmt.Print(out.String())
		out.Reset()
	}
	fmt.Fprintf(&out, "\n%-58s %14s %14s %7s\n", "measure (median of 3)", "gotools", "empty Go", "ratio")
	for _, r := range vsEmpty {
		line(r, true)
	}
	fmt.Print(out.String())
}

// fpRow is a row of the table: measure returns the value for gotools, or
// for the reference (s6) when ref; a note (threads, "not available") may
// come with it. A negative value with a note prints the note alone.
type fpRow struct {
	name    string
	measure func(t *testing.T, ref bool) (float64, string)
}

// fpMedian runs r 3 times and returns the median and the last note.
func fpMedian(t *testing.T, r fpRow, ref bool) (float64, string) {
	var vs []float64
	var note string
	for range 3 {
		v, n := r.measure(t, ref)
		if v < 0 {
			return v, n
		}
		vs, note = append(vs, v), n
	}
	slices.Sort(vs)
	return vs[1], note
}

// notAvailable is a row that cannot be measured (an s6 counterpart that
// does not exist, a gotools option not built yet).
func notAvailable(why string) (float64, string) { return -1, why }

// fpServiceDir makes a service whose run execs sleep.
func fpServiceDir(t *testing.T, parent, name string) string {
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeExecutable(filepath.Join(dir, "run"), []byte("#!/bin/sh\nexec sleep 100000\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fpUp reports whether dir's status says up.
func fpUp(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "supervise", "status"))
	if err != nil {
		return false
	}
	st, err := servicedir.UnmarshalStatus(b)
	return err == nil && st.PID != 0 && st.Flags&servicedir.FlagFinishing == 0
}

// fpSupervisor returns the path of the s6 program, or gotools' name.
func fpProg(t *testing.T, s6 bool, gotools, upstream string) (string, bool) {
	if !s6 {
		return gotools, true
	}
	p, ok := realLookPath(upstream)
	return p, ok
}

// fpIdleSupervise: RssAnon of a supervise whose service is up, settled.
func fpIdleSupervise(t *testing.T, s6 bool) (float64, string) {
	prog, ok := fpProg(t, s6, "supervise", "s6-supervise")
	if !ok {
		return notAvailable("no s6-supervise")
	}
	dir := fpServiceDir(t, t.TempDir(), "svc")
	p := start(t, prog, dir)
	defer fpStop(t, p, dir)
	waitFor(t, "the service up", func() bool { return fpUp(dir) })
	time.Sleep(500 * time.Millisecond) // settle: a measurement, not a synchronisation
	st := procStatus(t, p.Pid)
	return float64(st["RssAnon"]), fmt.Sprintf("(%d thr)", st["Threads"])
}

// fpStop makes a supervisor exit (svc -dx) and kills what is left.
func fpStop(t *testing.T, p *Proc, dirs ...string) {
	for _, d := range dirs {
		writeControl(d, "dx")
	}
	// The services lead their own sessions (supervise setsid()s run);
	// only those are killed by session, never the test's own.
	self, _ := unix.Getsid(0)
	all := procStats()
	tree := map[int]bool{p.Pid: true}
	for changed := true; changed; {
		changed = false
		for _, st := range all {
			if tree[st.PPid] && !tree[st.Pid] {
				tree[st.Pid], changed = true, true
			}
		}
	}
	for _, st := range all {
		if tree[st.Pid] && st.Pid != p.Pid && st.Session == st.Pid && st.Session != self {
			unix.Kill(-st.Session, unix.SIGKILL)
		}
	}
	p.KillGroup(t)
}

// fpRollup reads one field of /proc/PID/smaps_rollup, in kB.
func fpRollup(pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			v, _ := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			return v
		}
	}
	return -1
}

// fpTreeCPU sums the time on CPU of every thread of the supervisors
// (/proc/PID/task/TID/schedstat, in ns: clock ticks are too coarse for a
// process that used a few ms), in ms.
func fpTreeCPU(supervisors map[int]bool) float64 {
	var ns float64
	for p := range supervisors {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", p, task.Name()))
			if err != nil {
				continue
			}
			if f := strings.Fields(string(b)); len(f) > 0 {
				v, _ := strconv.ParseFloat(f[0], 64)
				ns += v
			}
		}
	}
	return ns / 1e6
}

// fpTree starts svscan (or s6-svscan, or svscan --one-process) on n
// services and returns the Pss of svscan and its supervisors (the
// services' own processes, the same for both, are left out) or, with cpu,
// the CPU they used until every service was up. The --one-process rows
// compare with s6's tree of supervise processes, the one it replaces.
func fpTree(t *testing.T, s6 bool, n int, cpu, oneProcess bool) (float64, string) {
	if s6 {
		oneProcess = false
	}
	prog, ok := fpProg(t, s6, "svscan", "s6-svscan")
	if !ok {
		return notAvailable("no s6-svscan")
	}
	argv := []string{prog}
	if oneProcess {
		if h := run(t, "svscan", "--help"); !strings.Contains(h.Stdout, "--one-process") {
			return notAvailable("not available")
		}
		argv = append(argv, "--one-process")
	}
	scan := t.TempDir()
	var dirs []string
	for i := range n {
		dirs = append(dirs, fpServiceDir(t, scan, fmt.Sprintf("s%04d", i)))
	}
	p := start(t, append(argv, scan)...)
	defer func() {
		unix.Kill(p.Pid, unix.SIGTERM)
		fpStop(t, p, dirs...)
	}()
	waitFor(t, fmt.Sprintf("%d services up", n), func() bool {
		for _, d := range dirs {
			if !fpUp(d) {
				return false
			}
		}
		return true
	})
	sup := map[int]bool{p.Pid: true}
	for _, st := range procStats() {
		// With --one-process, svscan's children are the services.
		if st.PPid == p.Pid && !oneProcess {
			sup[st.Pid] = true
		}
	}
	if cpu {
		return fpTreeCPU(sup), ""
	}
	time.Sleep(300 * time.Millisecond) // settle
	var pss float64
	for pid := range sup {
		if v := fpRollup(pid, "Pss:"); v > 0 {
			pss += v
		}
	}
	return pss, fmt.Sprintf("(%d procs)", len(sup))
}

// fpLockd takes 1000 locks through lockd with setlock -s, each held by a
// sleep, and returns the RssAnon of lockd and its helpers or, with cpu,
// lockd's CPU per lock. s6 has no working lockd (s6lockd 2.11 never grants
// a lock: README).
func fpLockd(t *testing.T, s6 bool, cpu bool) (float64, string) {
	if s6 {
		return notAvailable("— (s6lockd)")
	}
	n := fpLocks()
	dir := t.TempDir()
	locks := filepath.Join(dir, "locks")
	if err := os.Mkdir(locks, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	d := start(t, "lockd", "-s", sock, "-c", "2000", locks)
	defer d.KillGroup(t)
	waitFor(t, "lockd's socket", func() bool { _, err := os.Stat(sock); return err == nil })
	before := fpTreeCPU(map[int]bool{d.Pid: true})
	var holders []*Proc
	defer func() {
		// Every group first: KillGroup scans /proc, which a thousand
		// live holders would make quadratic.
		for _, h := range holders {
			unix.Kill(-h.Pid, unix.SIGKILL)
		}
		for _, h := range holders {
			h.KillGroup(t)
		}
	}()
	for i := range n {
		holders = append(holders, start(t, "setlock", "-s", sock, fmt.Sprintf("l%04d", i), "sleep", "100000"))
	}
	held := 0
	if !poll(time.Now().Add(60*time.Second), func() bool {
		held = 0
		for _, h := range holders {
			if sleeping(h.Pid) {
				held++
			}
		}
		return held == n
	}) {
		t.Errorf("lockd: %d of %d setlock -s holders got their lock in 60 s", held, n)
		return notAvailable(fmt.Sprintf("failed: %d/%d held", held, n))
	}
	if cpu {
		return (fpTreeCPU(map[int]bool{d.Pid: true}) - before) / float64(n), ""
	}
	total := float64(procStatus(t, d.Pid)["RssAnon"])
	helpers := 0
	for _, st := range procStats() {
		if st.PPid == d.Pid {
			total += float64(procStatus(t, st.Pid)["RssAnon"])
			helpers++
		}
	}
	return total, fmt.Sprintf("(%d helpers)", helpers)
}

// fpLocks is how many locks the lockd rows take.
func fpLocks() int {
	if v, err := strconv.Atoi(os.Getenv("FOOTPRINT_LOCKS")); err == nil && v > 0 {
		return v
	}
	return 1000
}

// fpSetlock times "setlock -s SOCK NAME true" through lockd, or for s6,
// "s6-setlock -t 1000 FILE true", mean of 20 runs, in ms.
func fpSetlock(t *testing.T, s6 bool) (float64, string) {
	dir := t.TempDir()
	if s6 {
		p, ok := realLookPath("s6-setlock")
		if !ok {
			return notAvailable("no s6-setlock")
		}
		_, wall, _ := meanRun(t, 20, p, "-t", "1000", filepath.Join(dir, "lock"), "true")
		return wall, ""
	}
	locks := filepath.Join(dir, "locks")
	if err := os.Mkdir(locks, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	d := start(t, "lockd", "-s", sock, locks)
	defer d.KillGroup(t)
	waitFor(t, "lockd's socket", func() bool { _, err := os.Stat(sock); return err == nil })
	_, wall, _ := meanRun(t, 20, "setlock", "-s", sock, "name", "true")
	return wall, ""
}

// fpClientDir is a service directory under a running supervise, for the
// client rows; the caller stops it.
func fpClientDir(t *testing.T) (string, *Proc) {
	dir := fpServiceDir(t, t.TempDir(), "svc")
	p := start(t, "supervise", dir)
	waitFor(t, "the service up", func() bool { return fpUp(dir) })
	return dir, p
}

// fpClientCPU is the whole-process CPU of one client run (mean of 50).
func fpClientCPU(t *testing.T, s6 bool, client string) (float64, string) {
	prog, ok := fpProg(t, s6, client, "s6-"+client)
	if !ok {
		return notAvailable("no s6-" + client)
	}
	dir, p := fpClientDir(t)
	defer fpStop(t, p, dir)
	cpu, _, _ := meanRun(t, 50, prog, dir)
	return cpu, ""
}

// fpVsEmpty is fpClientCPU (or its wall time) against an empty static Go
// program.
func fpVsEmpty(t *testing.T, ref bool, empty, client string, wall bool) (float64, string) {
	dir, p := fpClientDir(t)
	defer fpStop(t, p, dir)
	argv := []string{client, dir}
	if ref {
		argv = []string{empty}
	}
	cpu, w, _ := meanRun(t, 50, argv...)
	if wall {
		return w, ""
	}
	return cpu, ""
}

// fpFloor is the CPU of one run of tests/testdata/floor/NAME on a
// supervised directory (mean of 50), or of the empty program when ref.
func fpFloor(t *testing.T, ref bool, empty, name string) (float64, string) {
	argv := []string{empty}
	if !ref {
		dir, p := fpClientDir(t)
		defer fpStop(t, p, dir)
		argv = []string{floorProgram(t, name), dir}
	}
	cpu, _, _ := meanRun(t, 50, argv...)
	return cpu, ""
}

// fpLife starts a supervisor on a service, waits until it is up, sends
// "x" and "d", and returns the supervisor's CPU (ms) or its minor page
// faults, from its rusage.
func fpLife(t *testing.T, s6 bool, faults bool) (float64, string) {
	prog, ok := fpProg(t, s6, "supervise", "s6-supervise")
	if !ok {
		return notAvailable("no s6-supervise")
	}
	path := lookPath(t, prog)
	dir := fpServiceDir(t, t.TempDir(), "svc")
	cmd := exec.Command(path, dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the service up", func() bool { return fpUp(dir) })
	if err := writeControl(dir, "xd"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Errorf("%s did not exit after xd", prog)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if faults {
		return float64(ru.Minflt), ""
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6, ""
}
