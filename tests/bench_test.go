package tests

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
