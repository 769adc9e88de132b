//go:build linux

package shm

import (
	"sync"
	"sync/atomic"
)

// A segment file truncated by someone else under its mapping makes every
// access to the lost pages fault with SIGBUS, which the Go runtime turns into
// a fatal error unless the goroutine asked for a panic
// (debug.SetPanicOnFault), and asking costs more than a whole lock+unlock
// pair. So where the architecture has one (busPatch), a SIGBUS handler of
// ours, installed in front of the runtime's at the first mapping, patches
// the faulting page of a segment mapping with private memory filled with
// ones and marks the mapping faulted; the access is then retried and
// succeeds. All ones is no lock word a fast path accepts (Lock wants 0,
// Unlock this process's word), so both fall to their slow paths, which see
// the mark and return EBADF, as does every other method. Any other SIGBUS
// goes on to the runtime's handler unchanged.

// busRange is a mapping's range [lo, hi) as the handler reads it; hit is
// set to 1 by the handler when it patched a page in it.
type busRange struct {
	lo, hi uintptr
	hit    uint32
	_      uint32
}

// busSlots is the number of segment mappings a process can have watched at
// once; a mapping beyond it faults as before.
const busSlots = 128

var (
	// busRanges is read by the handler, without locks: a range is
	// published by storing hi, then lo, and withdrawn by storing lo = 0
	// first, before its pages are unmapped.
	busRanges [busSlots]busRange
	busMu     sync.Mutex // guards the assignment of busRanges
	busOnce   sync.Once
	busOn     bool // the handler is installed
)

// watchFaults registers m's segment range with the SIGBUS handler,
// installing the handler at the first call.
func (m *mapping) watchFaults() {
	m.hit = &noHit
	busOnce.Do(func() { busOn = installBus() })
	if !busOn {
		return
	}
	lo := uintptr(m.base)
	busMu.Lock()
	defer busMu.Unlock()
	for k := range busRanges {
		r := &busRanges[k]
		if atomic.LoadUintptr(&r.lo) == 0 {
			atomic.StoreUint32(&r.hit, 0)
			atomic.StoreUintptr(&r.hi, lo+uintptr(m.reserved))
			atomic.StoreUintptr(&r.lo, lo)
			m.bus = k + 1
			m.hit = &r.hit
			return
		}
	}
}

// unwatchFaults withdraws m's range, before its pages are unmapped.
func (m *mapping) unwatchFaults() {
	if m.bus == 0 {
		return
	}
	busMu.Lock()
	defer busMu.Unlock()
	r := &busRanges[m.bus-1]
	atomic.StoreUintptr(&r.lo, 0)
	atomic.StoreUintptr(&r.hi, 0)
	m.bus = 0 // m.hit stays: a racing call on a closed handle reads it
}

// faulted reports that a page of m was lost (the file was truncated) and
// patched: the segment is unusable and every operation gives EBADF.
func (m *mapping) faulted() bool { return atomic.LoadUint32(m.hit) != 0 }

// noHit is the hit word of a mapping the handler does not watch.
var noHit uint32
