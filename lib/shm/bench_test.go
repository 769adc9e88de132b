//go:build linux

package shm

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Benchmarks of spec/shmlock.md "Benchmarks and targets". Multi-process
// cases re-execute the test binary as workers; latency cases report p50
// as a metric.

func benchSegment(b *testing.B, n uint32) (*Segment, string) {
	b.Helper()
	name := testName()
	s, err := Create(name, n)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		s.Close()
		Unlink(name)
	})
	return s, name
}

func BenchmarkLockUnlock(b *testing.B) {
	s, _ := benchSegment(b, 2048)
	for b.Loop() {
		s.Lock(1)
		s.Unlock(1)
	}
}

// BenchmarkLockUnlockVsFloor runs, in one benchmark, b.N bare CAS + atomic
// store pairs on a lock word of the same mapping (the floor: what a lock
// and an unlock cannot do without) and b.N Lock+Unlock pairs, and reports
// both and their ratio (goal: at most 2). The floor's word is slot 2's,
// the neighbour of the slot locked, at the same offset in a slot of the
// same size: same page, same alignment, only the locked instructions. Both
// loops are timed on this thread's CPU clock.
func BenchmarkLockUnlockVsFloor(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, _ := benchSegment(b, 2048)
	w := word64(s.m.slotPtr(2), slotWord)
	if err := s.Lock(1); err != nil { // link the node: the steady state
		b.Fatal(err)
	}
	s.Unlock(1)
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if atomic.CompareAndSwapUint64(w, 0, 1) {
			atomic.StoreUint64(w, 0)
		}
	}
	c1 := cpuTime()
	for i := 0; i < b.N; i++ {
		s.Lock(1)
		s.Unlock(1)
	}
	c2 := cpuTime()
	b.StopTimer()
	floor, pair := c1-c0, c2-c1
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(floor)/float64(b.N), "floor-cpu-ns/pair")
	b.ReportMetric(float64(pair)/float64(b.N), "lock+unlock-cpu-ns/pair")
	b.ReportMetric(float64(pair)/float64(floor), "ratio")
}

// cpuTime is the CPU time this thread has used, in ns: on a loaded machine
// it measures a loop where wall time measures the scheduler. The caller
// stays on its thread for the measurement.
func cpuTime() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

func init() {
	// pairs DIR NAME N: after a line on stdin, N times Lock(1), Unlock(1).
	workers["pairs"] = func(args []string) int {
		s := workerOpen(args)
		if s == nil {
			return 1
		}
		fmt.Println("ready")
		<-stdinLines()
		for n := atou(args[2]); n > 0; n-- {
			s.Lock(1)
			s.Unlock(1)
		}
		fmt.Println("done")
		return 0
	}
}

// BenchmarkLockUnlockContended2Proc: this process and a worker each do
// b.N Lock+Unlock pairs on one lock; ns/pair is the aggregate.
func BenchmarkLockUnlockContended2Proc(b *testing.B) {
	s, name := benchSegment(b, 2048)
	w := startWorker(b, nil, "pairs", DefaultDir, name, strconv.Itoa(b.N))
	w.expect("ready")
	b.ResetTimer()
	start := time.Now()
	w.send("go")
	for i := 0; i < b.N; i++ {
		s.Lock(1)
		s.Unlock(1)
	}
	w.expect("done")
	d := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(d.Nanoseconds())/float64(2*b.N), "ns/pair")
}

func BenchmarkAllocateDeallocate2048(b *testing.B) {
	s, _ := benchSegment(b, 2048)
	for b.Loop() {
		i, _ := s.Allocate()
		s.Deallocate(i)
	}
}

func benchAllocateFull(b *testing.B, n uint32) {
	s, _ := benchSegment(b, n)
	for i := uint32(0); i < n-1; i++ {
		s.Allocate()
	}
	for b.Loop() {
		i, _ := s.Allocate()
		s.Deallocate(i)
	}
}

func BenchmarkAllocateDeallocate2047of2048(b *testing.B)   { benchAllocateFull(b, 2048) }
func BenchmarkAllocateDeallocate65535of65536(b *testing.B) { benchAllocateFull(b, 65536) }

func BenchmarkTakenLocks2048(b *testing.B)  { benchTaken(b, 2048) }
func BenchmarkTakenLocks65536(b *testing.B) { benchTaken(b, 65536) }

func benchTaken(b *testing.B, n uint32) {
	s, _ := benchSegment(b, n)
	for b.Loop() {
		s.TakenLocks()
	}
}

func BenchmarkFreeLocks2048(b *testing.B)  { benchFree(b, 2048) }
func BenchmarkFreeLocks65536(b *testing.B) { benchFree(b, 65536) }

func benchFree(b *testing.B, n uint32) {
	s, _ := benchSegment(b, n)
	for b.Loop() {
		s.FreeLocks()
	}
}

func BenchmarkDeallocateAll2048(b *testing.B) {
	s, _ := benchSegment(b, 2048)
	for b.Loop() {
		s.DeallocateAll()
	}
}

func BenchmarkOpenClose2048(b *testing.B) {
	name := testName()
	s, err := Create(name, 2048)
	if err != nil {
		b.Fatal(err)
	}
	s.Close() // else every Open would share its mapping
	defer Unlink(name)
	for b.Loop() {
		o, err := Open(name, 2048)
		if err != nil {
			b.Fatal(err)
		}
		o.Close()
	}
}

func BenchmarkCreateCloseUnlink2048(b *testing.B) {
	name := testName()
	for b.Loop() {
		s, err := Create(name, 2048)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
		Unlink(name)
	}
}

func reportP50(b *testing.B, samples []time.Duration) {
	slices.Sort(samples)
	if len(samples) > 0 {
		b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(samples[len(samples)*99/100].Nanoseconds()), "p99-ns")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRecoverySIGKILL: a holder process is SIGKILLed while a goroutine
// here is blocked in Lock; the time from kill(2) to the waiter holding the
// lock.
func BenchmarkRecoverySIGKILL(b *testing.B) {
	s, name := benchSegment(b, 64)
	var samples []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h := startWorker(b, nil, "hold", DefaultDir, name, "1")
		h.expect("locked")
		got := make(chan time.Time, 1)
		go func() {
			s.Lock(1)
			got <- time.Now()
		}()
		for st, _ := s.Owner(1); st.Waiters == 0; st, _ = s.Owner(1) {
			time.Sleep(100 * time.Microsecond)
		}
		b.StartTimer()
		t0 := time.Now()
		h.cmd.Process.Signal(syscall.SIGKILL)
		t1 := <-got
		b.StopTimer()
		samples = append(samples, t1.Sub(t0))
		s.Unlock(1)
		h.wait()
	}
	reportP50(b, samples)
}

func init() {
	// handoff DIR NAME: per line on stdin, Lock(1), print CLOCK_MONOTONIC
	// ns, Unlock(1).
	workers["handoff"] = func(args []string) int {
		s := workerOpen(args)
		if s == nil {
			return 1
		}
		selfInit()
		fmt.Println("ready")
		for range stdinLines() {
			s.Lock(1)
			at := monoNow()
			s.Unlock(1)
			fmt.Println(at)
		}
		return 0
	}
}

// BenchmarkHandoffToSleeper: Unlock with a waiter asleep in another
// process; the time until that waiter holds the lock.
func BenchmarkHandoffToSleeper(b *testing.B) {
	s, name := benchSegment(b, 64)
	selfInit()
	w := startWorker(b, nil, "handoff", DefaultDir, name)
	w.expect("ready")
	var samples []time.Duration
	for i := 0; i < b.N; i++ {
		s.Lock(1)
		w.send("go")
		for st, _ := s.Owner(1); st.Waiters == 0; st, _ = s.Owner(1) {
			time.Sleep(50 * time.Microsecond)
		}
		time.Sleep(time.Millisecond) // let its CPU go idle, as in the baseline
		t0 := monoNow()
		s.Unlock(1)
		at, err := strconv.ParseInt(w.line(), 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Duration(at-t0))
	}
	reportP50(b, samples)
}

var sinkNs int64

// BenchmarkMonoNow calibrates: the CLOCK_MONOTONIC read each Lock makes
// for acquired-at (vDSO; slow with kvm-clock, fast with TSC).
func BenchmarkMonoNow(b *testing.B) {
	selfInit()
	for b.Loop() {
		sinkNs += monoNow()
	}
}
