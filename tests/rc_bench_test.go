package tests

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchTree is test 6's graph (diamondTree's dependencies) without the
// delays: oneshots run true, longruns notify readiness at once. It measures
// rc, not the services.
func benchTree() map[string]string {
	_, deps := diamondTree()
	files := map[string]string{}
	for n, ds := range deps {
		longrun := strings.Contains(" s01 s04 s06 s08 s09 s11 s13 s15 s17 s19 ", " "+n+" ")
		if longrun {
			files[n+"/type"] = "longrun\n"
			files[n+"/run"] = "#!/bin/sh\necho >&3\nexec sleep 100000\n"
			files[n+"/notification-fd"] = "3\n"
		} else {
			files[n+"/type"] = "oneshot\n"
			files[n+"/up"] = "true\n"
		}
		if len(ds) > 0 {
			files[n+"/dependencies"] = strings.Join(ds, "\n") + "\n"
		}
	}
	files["all/type"] = "bundle\n"
	files["all/contents"] = "s19\n"
	return files
}

// BenchmarkRcChangeUp20 times rc -u change of the 20-service diamond, from
// the exec of rc to its exit with all 20 up, and reports the CPU time of
// rc per service started (rc's user+system time, which includes the 10
// "true" oneshots it reaps). s6-rc is not packaged by Debian and is not
// built here: gotools' numbers are printed alone.
func BenchmarkRcChangeUp20(b *testing.B) {
	e := newRcEnv(b, benchTree())
	e.init()
	var cpu time.Duration
	n := 0
	for b.Loop() {
		cmd := exec.Command("rc", "-l", e.live, "-u", "change", "all")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("rc -u change all: %v (%s)", err, out)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		n++
		b.StopTimer()
		if r := e.rc("-da", "change"); r.Code != 0 {
			b.Fatalf("rc -da change = %s (%s)", r.Status(), r.Stderr)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(n*20), "cpu-us/service")
}

// BenchmarkRcCheck times a whole rc check run (exec included) of the
// s6-overlay-shaped tree (s6-rc-compile is not available to compare).
func BenchmarkRcCheck(b *testing.B) {
	for b.Loop() {
		out, err := exec.Command("rc", "check", "testdata/rc/overlay/base", "testdata/rc/overlay/s6-rc.d").CombinedOutput()
		if err != nil {
			b.Fatalf("rc check: %v (%s)", err, out)
		}
	}
}
