//go:build linux

package shm

import (
	"math/bits"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Allocate marks the lowest free index allocated and returns it, so a freed
// index is handed out again at once (as podman). It is lock-free: a CAS on
// one bitmap word, which a crash cannot leave half-done. A full segment
// gives ENOSPC. podman: AllocateSemaphore.
func (s *Segment) Allocate() (uint32, error) {
	return s.allocate("allocate", 0)
}

// AllocateTagged is [Segment.Allocate] that also records tag (0 = untagged)
// for [Segment.GC]. The tag is written after the bit is won, so a fresh
// allocation briefly shows tag 0.
func (s *Segment) AllocateTagged(tag uint64) (uint32, error) {
	return s.allocate("allocate", tag)
}

func (s *Segment) allocate(op string, tag uint64) (uint32, error) {
	n, err := s.count(op, true)
	if err != nil {
		return 0, err
	}
	m := s.m
	for w := uint32(0); w < n/64; w++ {
		p := m.bitmapWord(w)
		for {
			old := atomic.LoadUint64(p)
			if old == ^uint64(0) {
				break
			}
			b := uint32(bits.TrailingZeros64(^old))
			if atomic.CompareAndSwapUint64(p, old, old|1<<b) {
				i := w*64 + b
				if tag != 0 {
					atomic.StoreUint64(word64(m.slotPtr(i), slotTag), tag)
				}
				return i, s.done(op, int(i), nil)
			}
		}
	}
	return 0, s.done(op, 0, s.err(op, 0, unix.ENOSPC))
}

// AllocateGiven marks index i allocated: EINVAL if i is out of range, EEXIST
// if it is allocated already. podman: AllocateGivenSemaphore.
func (s *Segment) AllocateGiven(i uint32) error {
	return s.allocateGiven(i, 0)
}

// AllocateGivenTagged is [Segment.AllocateGiven] recording tag.
func (s *Segment) AllocateGivenTagged(i uint32, tag uint64) error {
	return s.allocateGiven(i, tag)
}

func (s *Segment) allocateGiven(i uint32, tag uint64) error {
	p, err := s.slot("allocate", i, true)
	if err != nil {
		return err
	}
	old := atomic.OrUint64(s.m.bitmapWord(i/64), 1<<(i%64))
	if old&(1<<(i%64)) != 0 {
		return s.done("allocate", int(i), s.err("allocate", int(i), unix.EEXIST))
	}
	if tag != 0 {
		atomic.StoreUint64(word64(p, slotTag), tag)
	}
	return s.done("allocate", int(i), nil)
}

// Deallocate frees index i: EINVAL if out of range, ENOENT if it is not
// allocated. The tag is cleared before the bit. A held lock may be
// deallocated (as podman); its lock state is untouched.
// podman: DeallocateSemaphore.
func (s *Segment) Deallocate(i uint32) error {
	p, err := s.slot("deallocate", i, true)
	if err != nil {
		return err
	}
	bw := s.m.bitmapWord(i / 64)
	bit := uint64(1) << (i % 64)
	if atomic.LoadUint64(bw)&bit == 0 {
		return s.done("deallocate", int(i), s.err("deallocate", int(i), unix.ENOENT))
	}
	atomic.StoreUint64(word64(p, slotTag), 0)
	if atomic.AndUint64(bw, ^bit)&bit == 0 {
		return s.done("deallocate", int(i), s.err("deallocate", int(i), unix.ENOENT))
	}
	return s.done("deallocate", int(i), nil)
}

// DeallocateAll frees every index: it zeroes every allocated index's tag,
// then every bitmap word. Held locks stay held. podman:
// DeallocateAllSemaphores.
func (s *Segment) DeallocateAll() error {
	n, err := s.count("deallocate", true)
	if err != nil {
		return err
	}
	m := s.m
	for w := uint32(0); w < n/64; w++ {
		for v := atomic.LoadUint64(m.bitmapWord(w)); v != 0; v &= v - 1 {
			atomic.StoreUint64(word64(m.slotPtr(w*64+uint32(bits.TrailingZeros64(v))), slotTag), 0)
		}
	}
	for w := uint32(0); w < n/64; w++ {
		atomic.StoreUint64(m.bitmapWord(w), 0)
	}
	return s.done("deallocate", -1, nil)
}

// FreeLocks returns the number of unallocated indexes. podman: GetFreeLocks.
func (s *Segment) FreeLocks() (uint32, error) {
	n, err := s.count("free", false)
	if err != nil {
		return 0, err
	}
	used := 0
	for w := uint32(0); w < n/64; w++ {
		used += bits.OnesCount64(atomic.LoadUint64(s.m.bitmapWord(w)))
	}
	return n - uint32(used), s.done("free", -1, nil)
}

// TakenLocks returns the indexes whose lock is held: a non-zero owner PID
// and no OWNER_DIED mark (a lock whose owner died is free for the next
// locker, as podman counts it), and, as podman, not a lock whose holder is
// dead though the kernel did not release it (an uncovered holder: its
// liveness is checked). It only reads lock words (and /proc for uncovered
// holders); podman try-locked every lock, repairing such a lock as it went.
// podman: GetTakenLocks.
func (s *Segment) TakenLocks() ([]uint32, error) {
	n, err := s.count("taken", false)
	if err != nil {
		return nil, err
	}
	var out []uint32
	m := s.m
	for i := uint32(0); i < n; i++ {
		w := atomic.LoadUint64(word64(m.slotPtr(i), slotWord))
		f, tag := uint32(w), uint32(w>>32)
		if f&futexPIDMask == 0 || f&futexOwnerDied != 0 {
			continue
		}
		if tag&tagKCovered == 0 && !m.foreign {
			if l := ownerLiveness(f&futexPIDMask, tag); l == Dead || l == Reused {
				continue // free for the next locker, as podman counts it
			}
		}
		out = append(out, i)
	}
	if err := s.done("taken", -1, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// GC frees leaked allocations: for each allocated, unlocked index whose tag
// t is not 0 and for which isLive(t) is false, it swaps the tag from t to 0
// and, only if that succeeds, clears the bit. Untagged and held indexes are
// never freed, nor one whose tag changed while isLive ran. isLive must say
// true for objects still being created (allocated but not yet recorded). It
// returns the freed indexes.
func (s *Segment) GC(isLive func(tag uint64) bool) ([]uint32, error) {
	n, err := s.count("gc", true)
	if err != nil {
		return nil, err
	}
	m := s.m
	var freed []uint32
	for w := uint32(0); w < n/64; w++ {
		for v := atomic.LoadUint64(m.bitmapWord(w)); v != 0; v &= v - 1 {
			i := w*64 + uint32(bits.TrailingZeros64(v))
			p := m.slotPtr(i)
			t := atomic.LoadUint64(word64(p, slotTag))
			if t == 0 || atomic.LoadUint32(word32(p, slotWord))&futexPIDMask != 0 || isLive(t) {
				continue
			}
			if atomic.LoadUint32(word32(p, slotWord))&futexPIDMask != 0 {
				continue
			}
			if atomic.CompareAndSwapUint64(word64(p, slotTag), t, 0) {
				atomic.AndUint64(m.bitmapWord(w), ^(uint64(1) << (i % 64)))
				freed = append(freed, i)
			}
		}
	}
	return freed, s.done("gc", -1, nil)
}
