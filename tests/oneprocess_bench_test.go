package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Benchmarks of the supervision tree's footprint (issue 16): svscan and
// its supervisors (not the services' own processes), with a supervise
// process per service, with --one-process, and real s6-svscan with real
// s6-supervise, in the same run. The ratios are gotools / s6.

// svTreeCost is what a supervision tree costs: the sum of Pss (KiB) and
// of CPU time (ms, user + system, as /proc/PID/stat counts it) of svscan
// and of its supervisor children (their threads' time on a CPU, from
// schedstat), and their number.
type svTreeCost struct {
	pssKiB, cpuMs float64
	procs         int
}

// footprint measures svscan p and its children whose argv[0] names a
// supervisor.
func footprint(b *testing.B, p *Proc) svTreeCost {
	b.Helper()
	pids := []int{p.Pid}
	for _, st := range children(b, p.Pid) {
		if args := procArgv(st.Pid); len(args) > 0 && strings.Contains(filepath.Base(args[0]), "supervise") {
			pids = append(pids, st.Pid)
		}
	}
	var f svTreeCost
	for _, pid := range pids {
		f.pssKiB += float64(smapsRollup(b, pid)["Pss"])
		// schedstat's first field: nanoseconds on a CPU, every thread.
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
		for _, task := range tasks {
			if data, err := os.ReadFile(task); err == nil {
				if ns, err := strconv.ParseInt(strings.Fields(string(data))[0], 10, 64); err == nil {
					f.cpuMs += float64(ns) / 1e6
				}
			}
		}
	}
	f.procs = len(pids)
	return f
}

// smapsRollup reads /proc/PID/smaps_rollup's sizes in KiB.
func smapsRollup(t testing.TB, pid int) map[string]int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return nil
	}
	m := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB")); err == nil {
			m[k] = n
		}
	}
	return m
}

// BenchmarkTreeFootprint reports, for 10 and 500 idle services, the sum
// of Pss of svscan and its supervisors, the CPU they used to start every
// service (up to every u), the time to all u, and idle wake-ups of the
// tree's scanner, for gotools with a supervise process per service, for
// gotools --one-process, and for real s6 (issue 16 goals for the
// one-process tree at 500 services: <= 16 MB Pss, <= 1 s CPU, 0 wake-ups).
func BenchmarkTreeFootprint(b *testing.B) {
	type kind struct {
		name string
		argv []string
	}
	var kinds []kind
	if s6, ok := realLookPath("s6-svscan"); ok {
		kinds = append(kinds, kind{"s6", []string{s6}}) // first: the others' ratios
	}
	kinds = append(kinds, kind{"processes", []string{"svscan"}}, kind{"one-process", []string{"svscan", "--one-process"}})
	// The scan directory on the test's temporary directory and, where
	// /dev/shm is a tmpfs, on a tmpfs too, where s6 trees live (/run):
	// creating a service's files costs little there, while on an ext4
	// without a journal every inode deleted in the last 30 s (other test
	// runs' files) slows each creation, which dominates the start's CPU.
	type place struct{ suffix, root string }
	places := []place{{"", ""}}
	if tmpfs("/dev/shm") {
		places = append(places, place{"-tmpfs", "/dev/shm"})
	}
	for _, n := range []int{10, 500} {
		for _, pl := range places {
			s6 := map[string]float64{}
			for _, k := range kinds {
				b.Run(fmt.Sprintf("%s/%d%s", k.name, n, pl.suffix), func(b *testing.B) {
					root := b.TempDir()
					if pl.root != "" {
						var err error
						if root, err = os.MkdirTemp(pl.root, "gotools-bench-"); err != nil {
							b.Fatal(err)
						}
						b.Cleanup(func() { os.RemoveAll(root) })
					}
					p, up := benchScanArgv(b, k.argv, n, root)
					started := footprint(b, p)
					time.Sleep(time.Second) // settling, part of the measurement
					before := schedRuns(b, p.Pid)
					time.Sleep(2 * time.Second) // the idle window
					wake := schedRuns(b, p.Pid) - before
					idle := footprint(b, p)
					for b.Loop() {
					}
					b.ReportMetric(idle.pssKiB/1024, "Pss-MiB")
					b.ReportMetric(started.cpuMs, "start-cpu-ms")
					b.ReportMetric(float64(up.Milliseconds()), "all-up-ms")
					b.ReportMetric(float64(wake), "wakeups/2s")
					b.ReportMetric(float64(idle.procs), "procs")
					if k.name == "s6" {
						s6["pss"], s6["cpu"] = idle.pssKiB, started.cpuMs
					} else if s6["pss"] > 0 && s6["cpu"] > 0 {
						b.ReportMetric(idle.pssKiB/s6["pss"], "Pss/s6")
						b.ReportMetric(started.cpuMs/s6["cpu"], "start-cpu/s6")
					}
				})
			}
		}
	}
}

// tmpfs reports whether dir is on a tmpfs.
func tmpfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.TMPFS_MAGIC
}
