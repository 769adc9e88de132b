package tests

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkBackgroundWatchCycle times a whole background-watch life: exec
// and dispatch, spawn of a shell launcher that forks a daemon, the wait,
// the pid file read and check, and the daemon's exit relayed as ours.
func BenchmarkBackgroundWatchCycle(b *testing.B) {
	pf := filepath.Join(b.TempDir(), "pid")
	for b.Loop() {
		// The daemon exits 3 a millisecond after it is ready: before or
		// after its launcher, as it happens; both paths must give 3.
		r := run(b, "background-watch", pf, "daemonize", pf, "0", "-after", "1", "-code", "3")
		if r.Code != 3 {
			b.Fatalf("background-watch = %s (%q); want exit 3", r.Status(), r.Stderr)
		}
	}
}

// BenchmarkBackgroundWatchIdleMemory reports the memory of one idle
// background-watch in its watch phase: a long-lived process, one per
// backgrounding service (spec README, product decision 7). It is a
// measurement, not a loop: the metrics are what count.
func BenchmarkBackgroundWatchIdleMemory(b *testing.B) {
	pf := filepath.Join(b.TempDir(), "pid")
	bw := start(b, "background-watch", pf, "daemonize", pf, "0")
	waitFor(b, "the daemon's pid file", func() bool {
		_, err := os.Stat(pf)
		return err == nil
	})
	bw.WaitLine(b, "^ready$")
	// Phase 2 has begun once the launcher is reaped: only the daemon is
	// left as a child.
	waitFor(b, "the launcher to be reaped", func() bool { return len(children(b, bw.Pid)) == 1 })
	st := procStatus(b, bw.Pid)
	for b.Loop() {
	}
	b.ReportMetric(float64(st["RssAnon"]), "RssAnon-KiB")
	b.ReportMetric(float64(st["VmRSS"]), "VmRSS-KiB")
	b.ReportMetric(float64(st["Threads"]), "threads")
}

// procStatus reads the numeric fields of /proc/PID/status (sizes in KiB).
func procStatus(t testing.TB, pid int) map[string]int {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB")); err == nil {
			m[k] = n
		}
	}
	return m
}

// BenchmarkClientStartup is issue 16 item 3's goal for the short-lived
// clients: the whole-process CPU (user + system, from rusage) of "svok
// DIR", "svstat DIR" and "svc DIR" (a probe) as a ratio to an empty static
// Go program (goal ≤ 1.25). Beside them it measures three floors, to show
// where the rest goes:
//
//   - floor-svok: svok's job (lib/lock on DIR/supervise/lock) in a static
//     program that links nothing else (tests/testdata/floor/svok);
//   - floor-svok+kong: the same with kong linked and unused: kong's
//     package inits and those of what it imports (net/netip, regexp,
//     go/doc, encoding/json, os/user) run in every process that links it;
//   - linked: every applet linked, none run: the runtime's start on the
//     whole binary plus every package init, gotools' floor.
//
// All run interleaved, per rounds of perRound runs each, and each figure
// is the median of the rounds' means, so that a load change on the machine
// hits them all alike. A measurement, not a loop: the metrics count
// (ms per run, and x-empty, the ratio to the empty program).
func BenchmarkClientStartup(b *testing.B) {
	const rounds, perRound = 7, 30
	dir := benchDir(b)
	empty := emptyGoProgram(b)
	floor := func(name string) string { return floorProgram(b, name) }
	cases := []struct {
		name string
		argv []string
	}{
		{"empty", []string{empty}},
		{"floor-svok", []string{floor("svok"), dir}},
		{"floor-svok+kong", []string{floor("svokkong"), dir}},
		{"linked", []string{floor("linked")}},
		{"svok", []string{"svok", dir}},
		{"svstat", []string{"svstat", dir}},
		{"svc", []string{"svc", dir}},
	}
	means := make([][]float64, len(cases))
	for range rounds {
		for i, c := range cases {
			cpu, _, _ := meanRun(b, perRound, c.argv...)
			means[i] = append(means[i], cpu)
		}
	}
	med := make([]float64, len(cases))
	for i := range cases {
		slices.Sort(means[i])
		med[i] = means[i][len(means[i])/2]
	}
	for b.Loop() {
	}
	for i, c := range cases {
		b.ReportMetric(med[i], c.name+"-ms")
		if i > 0 {
			b.ReportMetric(med[i]/med[0], c.name+"-x-empty")
		}
	}
}

// meanRun runs argv n times, each to its end, and returns the mean CPU
// (user + system) and wall time of one run, in ms, and its mean minor page
// faults. argv[0] is looked up in the farm; exit codes do not matter (svok
// of a dead dir exits 1): the cost is what counts.
func meanRun(t testing.TB, n int, argv ...string) (cpu, wall, faults float64) {
	path := lookPath(t, argv[0])
	for range n {
		cmd := exec.Command(path, argv[1:]...)
		cmd.Args = argv
		t0 := time.Now()
		if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
			t.Fatalf("%q: %v", argv, err)
		}
		wall += float64(time.Since(t0)) / 1e6
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu += float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
		faults += float64(ru.Minflt)
	}
	return cpu / float64(n), wall / float64(n), faults / float64(n)
}

// floorProgram builds a reference program of BenchmarkClientStartup (in
// this module) as a static, stripped binary: tests/testdata/floor/NAME, or
// for "svokkong", floor/svok with the floorkong tag (kong linked).
func floorProgram(t testing.TB, name string) string {
	out := filepath.Join(t.TempDir(), name)
	dir, tags := name, ""
	if name == "svokkong" {
		dir, tags = "svok", "floorkong"
	}
	cmd := exec.Command("go", "build", "-trimpath", "-tags", tags, "-ldflags", "-s -w", "-o", out, "./tests/testdata/floor/"+dir)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build floor %s: %v\n%s", name, err, msg)
	}
	return out
}

// emptyGoProgram builds "func main() {}" as a static binary: the
// reference of issue 16's start-up goals.
func emptyGoProgram(t testing.TB) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module empty\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", "empty", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build empty: %v\n%s", err, out)
	}
	return filepath.Join(dir, "empty")
}
