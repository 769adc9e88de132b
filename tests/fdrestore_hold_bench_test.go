package tests

import (
	"fmt"
	"testing"
	"time"
)

// Benchmarks of `fdrestore hold` (spec/fdrestore.md section 13). They
// measure and report; the targets are in the spec and are not asserted.

// BenchmarkHoldRetrieveTrue times `fdrestore hold retrieve SOCK id --
// true` end to end against a gotools daemon, and, when s6 is installed,
// `s6-fdholder-retrieve SOCK id true` against s6-fdholder-daemon; each
// reports its median next to that of `true` alone.
func BenchmarkHoldRetrieveTrue(b *testing.B) {
	b.Run("gotools", func(b *testing.B) {
		h := startHold(b, holdSock(b))
		mustStore(b, nil, h.sock, "bench")
		benchRetrieve(b, "fdrestore", "hold", "retrieve", h.sock, "bench", "--", "true")
	})
	b.Run("s6", func(b *testing.B) {
		retrieve := requireS6(b, "s6-fdholder-retrieve")[0]
		h := startS6Hold(b, holdSock(b))
		mustStore(b, nil, h.sock, "bench")
		benchRetrieve(b, retrieve, h.sock, "bench", lookPath(b, "true"))
	})
}

func benchRetrieve(b *testing.B, argv ...string) {
	var ds []time.Duration
	for b.Loop() {
		ds = append(ds, timeCmd(b, nil, argv...))
	}
	ref := p50(timeRuns(b, refRuns, lookPath(b, "true"), "true"))
	b.ReportMetric(ms(p50(ds)), "p50-ms")
	b.ReportMetric(ms(ref), "true-p50-ms")
	b.ReportMetric(ms(p50(ds)-ref), "over-true-ms")
}

// BenchmarkHoldDaemonIdleRSS reports the memory of an idle gotools
// daemon holding 1,000 fds (RssAnon and VmRSS from /proc/PID/status, in
// KiB). It is a measurement, not a loop.
func BenchmarkHoldDaemonIdleRSS(b *testing.B) {
	const n = 1000
	h := startHold(b, holdSock(b), "-n", fmt.Sprint(n))
	for start := 0; start < n; start += 250 {
		argv := []string{"fdrestore", "restore"}
		var store []string
		for i := range 250 {
			argv = append(argv, "-f", fmt.Sprintf("%d=null", 3+i))
			store = append(store, "-f", fmt.Sprintf("%d=fd%04d", 3+i, start+i))
		}
		argv = append(append(append(argv, "--", "fdrestore", "hold", "store"), store...), h.sock)
		if r := run(b, argv...); r.Code != 0 || r.Stderr != "" {
			b.Fatalf("store of 250 fds = %s, stderr %q", r.Status(), r.Stderr)
		}
	}
	if ids := holdList(b, h.sock); len(ids) != n {
		b.Fatalf("the daemon holds %d fds; want %d", len(ids), n)
	}
	st := procStatus(b, h.p.Pid)
	for b.Loop() {
	}
	b.ReportMetric(float64(st["RssAnon"]), "RssAnon-KiB")
	b.ReportMetric(float64(st["VmRSS"]), "VmRSS-KiB")
	b.ReportMetric(float64(st["Threads"]), "threads")
}

// BenchmarkHoldRulesDirRetrieve times the real `s6-fdholder-retrieve SOCK
// id true` against gotools' s6-fdholder-daemon -i RULES and against the
// real one with the same rules directory (read at each connection by
// both), and reports gotools' median over s6's.
func BenchmarkHoldRulesDirRetrieve(b *testing.B) {
	retrieve := requireS6(b, "s6-fdholder-retrieve")[0]
	realDaemon := requireS6(b, "s6-fdholder-daemon")[0]
	rules := s6HoldRules(b)
	socks := map[string]string{}
	for _, d := range []struct{ name, daemon string }{{"gotools", "s6-fdholder-daemon"}, {"s6", realDaemon}} {
		socks[d.name] = holdSock(b)
		p := start(b, d.daemon, "-1", "-i", rules, socks[d.name])
		p.WaitLine(b, "^$")
		mustStore(b, nil, socks[d.name], "bench")
	}
	// Alternate, so that the machine's load weighs on both alike.
	runs := map[string][]time.Duration{}
	for range 200 {
		for _, name := range []string{"gotools", "s6"} {
			runs[name] = append(runs[name], timeCmd(b, nil, retrieve, socks[name], "bench", lookPath(b, "true")))
		}
	}
	medians := map[string]time.Duration{"gotools": p50(runs["gotools"]), "s6": p50(runs["s6"])}
	for b.Loop() {
	}
	b.ReportMetric(ms(medians["gotools"]), "gotools-p50-ms")
	b.ReportMetric(ms(medians["s6"]), "s6-p50-ms")
	b.ReportMetric(float64(medians["gotools"])/float64(medians["s6"]), "gotools/s6")
}
