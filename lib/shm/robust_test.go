//go:build linux

package shm

import (
	"sync/atomic"
	"testing"
)

// TestNodeNotAliasedWithSlot: the fast path loads a slot's node word and
// then CASes the slot's lock word. Were they the same offset within a page
// (4K aliasing), the load would wait on the previous pair's locked store
// and the uncontended pair would cost twice the floor. This checks the
// layout for the first, a middle and the last slot of a segment, with
// each node linked (so its shadow page is writable).
func TestNodeNotAliasedWithSlot(t *testing.T) {
	s, _ := newSegment(t, 4096)
	if !registered {
		t.Skip("no robust list in this process (GOTOOLS_SHM_NO_ROBUST or a C library's list)")
	}
	for _, i := range []uint32{0, 1, 2047, 4095} {
		if err := s.Lock(i); err != nil {
			t.Fatalf("Lock(%d) = %v", i, err)
		}
		p := s.m.slotPtr(i)
		w := uintptr(p) + slotWord
		n := uintptr(node(p))
		if got := atomic.LoadUint64(word64(node(p), nodeWord)); got != self.word {
			t.Errorf("slot %d: node word %#x after Lock; want %#x (linked, covered)", i, got, self.word)
		}
		for _, off := range []uintptr{nodeNext, nodeWord, nodeTag} {
			d := (n + off - w) % pageSize
			if d < 64 || d > pageSize-64 {
				t.Errorf("slot %d: node field %d is %d bytes from the lock word modulo a page; want at least a cache line either way", i, off, d)
			}
		}
		if err := s.Unlock(i); err != nil {
			t.Fatalf("Unlock(%d) = %v", i, err)
		}
	}
}
