package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Benchmarks of fdrestore (spec/fdrestore.md section 13). Each reports its
// median in milliseconds next to the reference measured in the same run
// (`true` alone, or the in-place path); the targets are in the spec and are
// not asserted here.

// restoreArgs returns n -f flags of kind "null" (each its own /dev/null)
// or "pipe" (the ends of n/2 pipes, read then write; one read end for n=1).
func restoreArgs(kind string, n int) []string {
	var args []string
	for i := range n {
		src := "null"
		if kind == "pipe" {
			src = fmt.Sprintf("pipe:p%d:%s", i/2, []string{"r", "w"}[i%2])
		}
		args = append(args, "-f", src)
	}
	return args
}

// nonblockDevNull returns /dev/null opened O_NONBLOCK, to give as stdin:
// fdrestore's Go runtime then holds fds 3 and 4, so that placing there
// takes the re-exec path.
func nonblockDevNull(b testing.TB) *os.File {
	b.Helper()
	fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), os.DevNull)
	b.Cleanup(func() { f.Close() })
	return f
}

// timeCmd runs argv (argv[0] resolved in the farm) with stdin, straight
// through os/exec as timeRun does, and returns how long it took; the
// benchmark fails unless it exits 0.
func timeCmd(b *testing.B, stdin *os.File, argv ...string) time.Duration {
	b.Helper()
	cmd := &exec.Cmd{Path: lookPath(b, argv[0]), Args: argv, Stdin: stdin}
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		b.Fatalf("%q: %v, output %.200q", argv[:min(len(argv), 6)], err, out)
	}
	return d
}

// benchRestore times `fdrestore restore [-v] FLAGS -- true` and reports its
// median, the median of `true` alone and the difference.
func benchRestore(b *testing.B, n int, reexec bool) {
	truePath := lookPath(b, "true")
	for _, kind := range []string{"null", "pipe"} {
		b.Run(kind, func(b *testing.B) {
			var stdin *os.File
			if reexec {
				stdin = nonblockDevNull(b)
			}
			argv := append(append([]string{"fdrestore", "restore"}, restoreArgs(kind, n)...), "--", "true")
			// One checked run: the path taken is the one benchmarked.
			vargv := append([]string{"fdrestore", "restore", "-v"}, argv[2:]...)
			out, err := (&exec.Cmd{Path: lookPath(b, "fdrestore"), Args: vargv, Stdin: stdin}).CombinedOutput()
			want := "fdrestore: info: placement path: in place"
			if reexec {
				want = "fdrestore: info: placement path: re-exec"
			}
			if err != nil || !slices.ContainsFunc(lines(string(out)), func(l string) bool { return l == want || len(l) > len(want) && l[:len(want)+1] == want+" " }) {
				b.Fatalf("%q: %v, stderr %.300q; want a line %q", vargv[:6], err, out, want)
			}
			var ds []time.Duration
			for b.Loop() {
				ds = append(ds, timeCmd(b, stdin, argv...))
			}
			ref := p50(timeRuns(b, refRuns, truePath, "true"))
			b.ReportMetric(ms(p50(ds)), "p50-ms")
			b.ReportMetric(ms(ref), "true-p50-ms")
			b.ReportMetric(ms(p50(ds)-ref), "over-true-ms")
		})
	}
}

func BenchmarkFdrestoreRestore1(b *testing.B)          { benchRestore(b, 1, false) }
func BenchmarkFdrestoreRestore100(b *testing.B)        { benchRestore(b, 100, false) }
func BenchmarkFdrestoreRestore1000(b *testing.B)       { benchRestore(b, 1000, false) }
func BenchmarkFdrestoreRestoreReexec100(b *testing.B)  { benchRestore(b, 100, true) }
func BenchmarkFdrestoreRestoreReexec1000(b *testing.B) { benchRestore(b, 1000, true) }

// BenchmarkFdrestoreTrue is the reference: `true` alone, spawned the same way.
func BenchmarkFdrestoreTrue(b *testing.B) {
	var ds []time.Duration
	for b.Loop() {
		ds = append(ds, timeCmd(b, nil, "true"))
	}
	b.ReportMetric(ms(p50(ds)), "p50-ms")
}

// BenchmarkFdrestoreGrab times `fdrestore grab PID 3 -- true`, one fd taken
// from a sleeping holder.
func BenchmarkFdrestoreGrab(b *testing.B) {
	f, err := os.CreateTemp(b.TempDir(), "held")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	holder := holdFiles(b, f)
	pid := strconv.Itoa(holder.Pid)
	var ds []time.Duration
	for b.Loop() {
		ds = append(ds, timeCmd(b, nil, "fdrestore", "grab", pid, "3", "--", "true"))
	}
	ref := p50(timeRuns(b, refRuns, lookPath(b, "true"), "true"))
	b.ReportMetric(ms(p50(ds)), "p50-ms")
	b.ReportMetric(ms(ref), "true-p50-ms")
	b.ReportMetric(ms(p50(ds)-ref), "over-true-ms")
}

// handoverConns is the number of connections of each handover's client loop.
const handoverConns = 400

// BenchmarkGrabHandover replaces a lineserver under a client loop, each
// iteration a fresh server and loop: (grab) by `fdrestore grab PID 3 --
// lineserver`, then SIGKILL of the original; (rebind) by SIGKILL of the
// original, then a fresh `restore -f 3=listen:tcp:SAME-ADDR -- lineserver`.
// It reports the refused connections per handover, the p99 connect latency
// over all connections, and for rebind the time from the kill to the first
// answer of the new server.
func BenchmarkGrabHandover(b *testing.B) {
	for _, mode := range []string{"grab", "rebind"} {
		b.Run(mode, func(b *testing.B) {
			var refused, failures, iters int
			var connect, firstAnswer []time.Duration
			for b.Loop() {
				iters++
				orig, addr := startLineserver(b, "127.0.0.1:0")
				c := newClientLoop(addr, handoverConns)
				ctx, cancel := context.WithCancel(context.Background())
				go c.run(ctx)
				for c.done.Load() < handoverConns/4 {
					time.Sleep(time.Millisecond)
				}
				var next *Proc
				if mode == "grab" {
					next = start(b, "fdrestore", "grab", strconv.Itoa(orig.Pid), "3", "--", "lineserver")
					next.WaitLine(b, "^ready ")
					c.gate.Lock()
					orig.KillGroup(b)
					c.gate.Unlock()
					close(c.proceed)
				} else {
					c.gate.Lock()
					orig.KillGroup(b)
					killed := time.Now()
					c.gate.Unlock()
					close(c.proceed) // the loop meets a closed port meanwhile
					next, _ = startLineserver(b, addr)
					waitFor(b, "an answer from the new server", func() bool { return c.answeredBy(next.Pid) > 0 })
					c.mu.Lock()
					firstAnswer = append(firstAnswer, c.firstBy(next.Pid).Sub(killed))
					c.mu.Unlock()
				}
				<-c.finished
				cancel()
				next.KillGroup(b)
				c.mu.Lock()
				refused += c.refused
				failures += len(c.failures)
				connect = append(connect, c.connect...)
				c.mu.Unlock()
			}
			b.ReportMetric(float64(refused)/float64(iters), "refused/handover")
			b.ReportMetric(float64(failures)/float64(iters), "failed/handover")
			b.ReportMetric(ms(percentile(connect, 99)), "connect-p99-ms")
			if mode == "rebind" {
				b.ReportMetric(ms(p50(firstAnswer)), "kill-to-first-answer-p50-ms")
			}
		})
	}
}

// percentile is the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, (len(s)*p+99)/100-1)]
}

// BenchmarkFdrestoreImage4x250 restores an image of four processes with
// 250 memfds each (spawned stage path, two SCM_RIGHTS batches per stage),
// every process running `true` (spec target: <= 25 ms).
func BenchmarkFdrestoreImage4x250(b *testing.B) {
	var procs, files []string
	for k := range 4 {
		var fds []string
		for i := range 250 {
			id := fmt.Sprintf("f%d_%d", k, i)
			fds = append(fds, fmt.Sprintf(`{"fd": %d, "file": %q}`, 3+i, id))
			files = append(files, fmt.Sprintf(`%q: {"type": "memfd", "mname": %q}`, id, id))
		}
		procs = append(procs, fmt.Sprintf(`{"id": "p%d", "exec": ["true"], "fds": [%s]}`, k, strings.Join(fds, ", ")))
	}
	path := b.TempDir() + "/image.json"
	if err := os.WriteFile(path, []byte(imageOf(strings.Join(procs, ", "), strings.Join(files, ", "))), 0o600); err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	for b.Loop() {
		ds = append(ds, timeCmd(b, nil, "fdrestore", "restore", path))
	}
	ref := p50(timeRuns(b, refRuns, lookPath(b, "true"), "true"))
	b.ReportMetric(ms(p50(ds)), "p50-ms")
	b.ReportMetric(ms(ref), "true-p50-ms")
}
