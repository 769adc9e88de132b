package supervisor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcDebt is how a [Loop] keeps its memory at the idle figure with the
// garbage collector off (an enabled collector is forced every two minutes
// by the runtime, a wake-up of an idle process): before each sleep
// without a deadline, if more than gcThreshold bytes were allocated since
// the last collection, it collects and returns the freed pages to the
// kernel (debug.FreeOSMemory). A death and restart allocate nothing, so a
// restart storm never gets here (each collection leaves runtime metadata
// behind for life: issue 20 item 7); rarer garbage (control commands,
// warnings) is collected at an idle moment.
type gcDebt struct {
	sample []metrics.Sample
	last   uint64
}

// gcThreshold is the garbage worth a collection: a collection of
// supervise's small heap costs well under a millisecond.
const gcThreshold = 256 << 10

// allocated is the heap allocated since the process started.
func (g *gcDebt) allocated() uint64 {
	if g.sample == nil {
		g.sample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	}
	metrics.Read(g.sample)
	if g.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return g.sample[0].Value.Uint64()
}

// idle is called before a sleep with no deadline.
func (g *gcDebt) idle() {
	if g.allocated()-g.last < gcThreshold {
		return
	}
	debug.FreeOSMemory()
	g.last = g.allocated()
}

// QuietRuntime sets the Go runtime up for a long-lived supervisor that
// must not wake up while idle: no collector (the runtime forces one every
// two minutes otherwise; [Loop] collects before idle sleeps instead), a
// soft memory limit in case garbage piles up between idle moments, and no
// heap profile, whose sampled call stacks are kept for life off the heap.
func QuietRuntime(limit int64) {
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(limit)
	runtime.MemProfileRate = 0
}
