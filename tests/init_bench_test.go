package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Benchmarks of init (spec/init.md §12), each beside its upstream anchor
// in the same run: tini for simple mode, Debian's s6-svscan with one
// s6-supervise per service for overlay mode's supervision tree.

// bootToFirstWrite starts argv with a pipe as stdout and returns the time
// from the start to the first byte read, then waits for it.
func bootToFirstWrite(b *testing.B, argv ...string) time.Duration {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = w
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w.Close()
	var buf [1]byte
	if _, err := r.Read(buf[:]); err != nil {
		b.Fatalf("%q: %v", argv, err)
	}
	d := time.Since(t0)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("%q: %v", argv, err)
	}
	return d
}

// BenchmarkInitBootToCMD times the exec of init to the CMD's first write
// to a pipe, the CMD a static program (busybox echo), beside tini 0.19 on
// the same CMD, alternating runs (spec §12: p50 <= 1.2x tini's). Both run
// as subreapers (not PID 1): tini with -s, init on its own. It also times
// "gotools --version" to its first write: the Go runtime's start and the
// whole binary's package initialisation, a floor no applet goes below.
func BenchmarkInitBootToCMD(b *testing.B) {
	tini, ok := realLookPath("tini")
	if !ok {
		b.Skip("no tini")
	}
	echo := []string{"/bin/busybox", "echo", "x"}
	if _, err := os.Stat(echo[0]); err != nil {
		echo = []string{"/bin/echo", "x"}
	}
	initBin := lookPath(b, "init")
	gotools, err := filepath.EvalSymlinks(initBin)
	if err != nil {
		b.Fatal(err)
	}
	var ours, theirs, floor []time.Duration
	for b.Loop() {
		ours = append(ours, bootToFirstWrite(b, append([]string{initBin, "--"}, echo...)...))
		theirs = append(theirs, bootToFirstWrite(b, append([]string{tini, "-s", "--"}, echo...)...))
		floor = append(floor, bootToFirstWrite(b, gotools, "--version"))
	}
	p50, t50, f50 := percentile(ours, 50), percentile(theirs, 50), percentile(floor, 50)
	b.ReportMetric(float64(p50.Microseconds())/1000, "init-p50-ms")
	b.ReportMetric(float64(t50.Microseconds())/1000, "tini-p50-ms")
	b.ReportMetric(float64(p50)/float64(t50), "init/tini")
	b.ReportMetric(float64(f50.Microseconds())/1000, "version-p50-ms")
	b.ReportMetric(float64(f50)/float64(t50), "version/tini")
}

// pss returns the Pss of pid in KiB (/proc/PID/smaps_rollup).
func pss(t testing.TB, pid int) int {
	t.Helper()
	m := smapsRollup(t, pid)
	if m == nil {
		t.Fatalf("no smaps_rollup for pid %d", pid)
	}
	return m["Pss"]
}

// treeOf returns pid and its descendants, except the processes whose
// argv[0] is one of skip (the services themselves).
func treeOf(pid int, skip ...string) []int {
	all := procStats()
	in := map[int]bool{pid: true}
	for changed := true; changed; {
		changed = false
		for _, st := range all {
			if !in[st.Pid] && in[st.PPid] {
				in[st.Pid], changed = true, true
			}
		}
	}
	var l []int
	for p := range in {
		argv := procArgv(p)
		if len(argv) > 0 {
			base := filepath.Base(argv[0])
			if strings.HasPrefix(argv[0], "/") || len(skip) > 0 {
				skipped := false
				for _, s := range skip {
					skipped = skipped || base == s
				}
				if skipped {
					continue
				}
			}
		}
		l = append(l, p)
	}
	return l
}

// treeFootprint sums Pss over pids and counts their scheduler runs over a
// 2 s window after a 2 s settling.
func treeFootprint(b *testing.B, root int, skip ...string) (pssKiB int, wakeups int64, procs int) {
	pssKiB, _, wakeups, procs = treeFootprintAnon(b, root, skip...)
	return pssKiB, wakeups, procs
}

// treeFootprintAnon is [treeFootprint] with the sum of RssAnon (private
// memory) too.
func treeFootprintAnon(b *testing.B, root int, skip ...string) (pssKiB, anonKiB int, wakeups int64, procs int) {
	time.Sleep(2 * time.Second) // settling: part of the measurement
	pids := treeOf(root, skip...)
	var before int64
	for _, p := range pids {
		before += schedRuns(b, p)
	}
	time.Sleep(2 * time.Second) // the idle window
	var after int64
	for _, p := range pids {
		after += schedRuns(b, p)
		pssKiB += pss(b, p)
		anonKiB += procStatus(b, p)["RssAnon"]
	}
	return pssKiB, anonKiB, after - before, len(pids)
}

// BenchmarkInitSimpleIdle reports the idle footprint of simple mode
// (init -- sleep, the sleep excluded) beside tini's.
func BenchmarkInitSimpleIdle(b *testing.B) {
	tini, ok := realLookPath("tini")
	if !ok {
		b.Skip("no tini")
	}
	for _, a := range []struct {
		name string
		argv []string
	}{{"init", []string{"init", "--", "sleep", "1000"}}, {"tini", []string{tini, "-s", "--", "sleep", "1000"}}} {
		b.Run(a.name, func(b *testing.B) {
			p := start(b, a.argv...)
			waitFor(b, "the CMD", func() bool { return len(children(b, p.Pid)) == 1 })
			kb, wake, _ := treeFootprint(b, p.Pid, "sleep")
			st := procStatus(b, p.Pid)
			p.Signal(unix.SIGTERM)
			p.Wait(b)
			for b.Loop() {
			}
			b.ReportMetric(float64(kb), "Pss-KiB")
			b.ReportMetric(float64(st["RssAnon"]), "RssAnon-KiB")
			b.ReportMetric(float64(wake), "wakeups/2s")
		})
	}
}

// servicesTree writes n services.d services running sleep under root (for
// init) and the same n servicedirs in scan (for s6-svscan).
func servicesTree(b *testing.B, n int) (root, scan string) {
	root, scan = b.TempDir(), b.TempDir()
	for i := 0; i < n; i++ {
		for _, d := range []string{filepath.Join(root, "etc/services.d", fmt.Sprintf("s%03d", i)), filepath.Join(scan, fmt.Sprintf("s%03d", i))} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
			if err := writeExecutable(filepath.Join(d, "run"), []byte("#!/bin/sh\nexec sleep 100000\n"), 0o755); err != nil {
				b.Fatal(err)
			}
		}
	}
	return root, scan
}

// BenchmarkInitOverlayIdle reports, for 1, 10 and 50 services, the total
// Pss and the wake-ups of overlay mode's supervision tree (init and the
// processes it runs for supervision; the services' own processes
// excluded) beside an s6 tree (s6-svscan and one s6-supervise per service)
// with the same services (spec §12: below s6's from 10 services up; 0
// wake-ups), and the boot time to the CMD beside tini's.
func BenchmarkInitOverlayIdle(b *testing.B) {
	paths := requireS6(b, "s6-svscan")
	for _, n := range []int{1, 10, 50} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			root, scan := servicesTree(b, n)
			// init, not PID 1 (a subreaper), with the test hook root.
			t0 := time.Now()
			p := startIn(b, Opts{Env: []string{"GOTOOLS_INIT_ROOT=" + root, "S6_VERBOSITY=0"}}, "init", "--overlay", "sh", "-c", "echo ready; exec sleep 100000")
			p.WaitLine(b, "^ready$")
			boot := time.Since(t0)
			kb, anon, wake, procs := treeFootprintAnon(b, p.Pid, "sleep")
			p.Signal(unix.SIGTERM)
			p.Wait(b)

			s6 := start(b, paths[0], scan)
			waitFor(b, "the s6 services", func() bool { return len(treeOf(s6.Pid)) >= 2*n+1 })
			s6kb, s6anon, s6wake, s6procs := treeFootprintAnon(b, s6.Pid, "sleep")
			s6.Signal(unix.SIGTERM)
			s6.Wait(b)

			for b.Loop() {
			}
			b.ReportMetric(float64(boot.Microseconds())/1000, "init-boot-to-CMD-ms")
			b.ReportMetric(float64(kb), "init-Pss-KiB")
			b.ReportMetric(float64(procs), "init-procs")
			b.ReportMetric(float64(wake), "init-wakeups/2s")
			b.ReportMetric(float64(s6kb), "s6-Pss-KiB")
			b.ReportMetric(float64(s6procs), "s6-procs")
			b.ReportMetric(float64(s6wake), "s6-wakeups/2s")
			b.ReportMetric(float64(kb)/float64(s6kb), "init/s6-Pss")
			b.ReportMetric(float64(anon), "init-RssAnon-KiB")
			b.ReportMetric(float64(s6anon), "s6-RssAnon-KiB")
		})
	}
}
