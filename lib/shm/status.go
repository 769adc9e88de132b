//go:build linux

package shm

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SlotStatus describes one index of a segment.
type SlotStatus struct {
	Index     uint32
	Allocated bool   // the allocation bit is set
	Tag       uint64 // allocation tag, 0 if untagged
	Locked    bool   // the futex word names an owner
	PID       int    // the owner, when Locked
	Comm      string // the owner's /proc/PID/comm, when known
	HeldFor   time.Duration
	Waiters   uint32   // goroutines of any process sleeping on the lock
	Owner     Liveness // Alive, Dead, Reused, or Unknown (not locked, foreign namespace)
	// OwnerDiedMark: the lock is free and marked OWNER_DIED, so the next
	// locker is told its previous owner died.
	OwnerDiedMark bool
	// Recovered: the current owner took the lock from a dead owner,
	// PrevOwner.
	Recovered bool
	// KernelCovered: the kernel will release the lock if its owner dies;
	// otherwise waiters recover it through the liveness check.
	KernelCovered bool
	PrevOwner     int
}

// State names the slot's state as shmlock's status prints it: "held",
// "held-dead", "held-reused", "owner-died" (free, marked) or "free".
func (st SlotStatus) State() string {
	switch {
	case st.Locked && st.Owner == Dead:
		return "held-dead"
	case st.Locked && st.Owner == Reused:
		return "held-reused"
	case st.Locked:
		return "held"
	case st.OwnerDiedMark:
		return "owner-died"
	}
	return "free"
}

// ownerInfo is a liveness check's result and the owner's comm.
type ownerInfo struct {
	l    Liveness
	comm string
}

// slotStatus reads slot i; p is its address. cache, if not nil, memoises
// owner checks by PID and tag within one Status call.
func (s *Segment) slotStatus(i uint32, p unsafe.Pointer, cache map[uint64]ownerInfo) SlotStatus {
	m := s.m
	w := atomic.LoadUint64(word64(p, slotWord))
	f, tag := uint32(w), uint32(w>>32)
	st := SlotStatus{
		Index:     i,
		Allocated: atomic.LoadUint64(m.bitmapWord(i/64))&(1<<(i%64)) != 0,
		Tag:       atomic.LoadUint64(word64(p, slotTag)),
		Waiters:   atomic.LoadUint32(word32(p, slotWaiters)),
	}
	owner := int(f & futexPIDMask)
	if owner == 0 {
		st.OwnerDiedMark = f&futexOwnerDied != 0
		return st
	}
	st.Locked, st.PID, st.KernelCovered = true, owner, tag&tagKCovered != 0
	d := atomic.LoadUint32(word32(p, slotDiag))
	mine := d&futexPIDMask == uint32(owner) // the diagnostic fields are this holding's
	switch {
	case st.KernelCovered:
		// the word names the owner's keeper thread, the tag its pid
		st.PID = int(tag & futexPIDMask)
	case mine:
		st.PID = int(atomic.LoadUint32(word32(p, slotOwnerPID)))
	}
	if mine && d&(diagStamped|diagObserved) != 0 {
		if at := int64(atomic.LoadUint64(word64(p, slotAcquired))); at > 0 {
			selfInit()
			if d := monoNow() - at; d > 0 {
				st.HeldFor = time.Duration(d)
			}
		}
	}
	if mine && d&diagStamped != 0 && atomic.LoadUint32(word32(p, slotFlags))&flagRecovered != 0 {
		st.Recovered = true
		st.PrevOwner = int(atomic.LoadUint32(word32(p, slotPrevOwner)))
	}
	if !m.foreign {
		key := uint64(owner)<<32 | uint64(tag&tagStartMask)
		oi, ok := cache[key]
		if !ok {
			oi.l = ownerLiveness(uint32(owner), tag)
			if oi.l == Alive || oi.l == Reused {
				if b, err := os.ReadFile("/proc/" + strconv.Itoa(owner) + "/comm"); err == nil {
					oi.comm = strings.TrimSuffix(string(b), "\n")
				}
			}
			if cache != nil {
				cache[key] = oi
			}
		}
		st.Owner, st.Comm = oi.l, oi.comm
	}
	return st
}

// guard turns a SIGBUS or SIGSEGV from a segment truncated by someone else
// while mapped into EBADF (debug.SetPanicOnFault).
func (s *Segment) guard(op string, err *error) {
	if r := recover(); r != nil {
		if _, ok := r.(interface{ Addr() uintptr }); !ok {
			panic(r)
		}
		*err = s.err(op, -1, unix.EBADF)
	}
	if *err == nil {
		*err = s.done(op, -1, nil)
	}
}

// NoFault runs f, which uses s, and turns a memory fault into EBADF: a
// segment file truncated by someone else under its mapping makes any access
// to the lost pages fault (SIGBUS), which is otherwise fatal to a Go
// program. On amd64 every method already returns EBADF then (the SIGBUS
// handler of watchFaults); elsewhere Lock and Unlock do not guard
// themselves, since debug.SetPanicOnFault and a recover would cost four
// times the pair, and a caller that cannot trust the segment's other users
// wraps them (shmlock lock does). Status, Owner and Close guard themselves.
func (s *Segment) NoFault(op string, f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.guard(op, &err)
	return f()
}

// Owner describes lock i: its allocation, owner, liveness and waiters.
func (s *Segment) Owner(i uint32) (st SlotStatus, err error) {
	p, err := s.slot("status", i, false)
	if err != nil {
		return SlotStatus{}, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.guard("status", &err)
	return s.slotStatus(i, p, nil), nil
}

// Status describes every index that is locked or marked OWNER_DIED, in
// index order. It reads the segment and changes nothing; a segment
// truncated under it gives EBADF rather than a crash.
func (s *Segment) Status() (out []SlotStatus, err error) {
	n, err := s.count("status", false)
	if err != nil {
		return nil, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.guard("status", &err)
	cache := map[uint64]ownerInfo{}
	for i := uint32(0); i < n; i++ {
		p := s.m.slotPtr(i)
		if atomic.LoadUint32(word32(p, slotWord))&(futexPIDMask|futexOwnerDied) != 0 {
			out = append(out, s.slotStatus(i, p, cache))
		}
	}
	return out, nil
}

// Info is a segment's header and counters.
type Info struct {
	Path         string    // the file, DIR/name
	Version      uint32    // format version (1)
	NumLocks     uint32    // current lock count (MaxLocks)
	MaxLocks     uint32    // capacity for Grow (the header's max_locks)
	InitialLocks uint32    // count at creation
	Size         uint64    // file size for NumLocks: SlotsOff + 64 × NumLocks
	BitmapOff    uint64    // offset of the allocation bitmap
	SlotsOff     uint64    // offset of slot 0
	Created      time.Time // creation time
	CreatorPID   int       // creator's PID, in its namespace
	PIDNSInode   uint64    // creator's PID namespace, st_ino of /proc/PID/ns/pid (0 = unknown)
	PIDNSDev     uint64    // and its st_dev
	Foreign      bool      // the segment belongs to another PID namespace (read-only handle)
	Free         uint32    // unallocated indexes (FreeLocks)
	Held         uint32    // held locks (len(TakenLocks))
	Recoveries   uint64    // locks taken over from a dead owner, ever
	Forced       uint64    // ForceUnlock releases, ever
}

// Info returns the header fields and counters; a closed handle gives the
// zero Info.
func (s *Segment) Info() (in Info) {
	if s.closed.Load() {
		return Info{}
	}
	m := s.m
	h := m.hdr
	in = Info{Path: m.path, Version: h.version, MaxLocks: h.maxLocks, InitialLocks: h.initLocks,
		BitmapOff: h.bitmapOff, SlotsOff: h.slotsOff, Created: time.Unix(0, h.created),
		CreatorPID: int(h.creatorPID), PIDNSInode: h.nsIno, PIDNSDev: h.nsDev, Foreign: m.foreign}
	in.Recoveries = atomic.LoadUint64(word64(m.base, offRecoveries))
	in.Forced = atomic.LoadUint64(word64(m.base, offForced))
	if free, err := s.FreeLocks(); err == nil {
		in.Free = free
	}
	if held, err := s.TakenLocks(); err == nil {
		in.Held = uint32(len(held))
	}
	in.NumLocks = m.mapped.Load()
	in.Size = h.slotsOff + uint64(in.NumLocks)*slotSize
	return in
}
