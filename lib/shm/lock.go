//go:build linux

package shm

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Acquired is the result of [Segment.Acquire].
type Acquired struct {
	// Locked reports that the caller now holds the lock (false only for a
	// try that found it held).
	Locked bool
	// OwnerDied reports that the lock was taken over from an owner that
	// died (or exec'd) holding it; what it protected may be inconsistent.
	OwnerDied bool
	// PrevOwner is the dead owner's PID when OwnerDied, if known.
	PrevOwner int
}

// Lock takes lock i, blocking while another process (or another goroutine
// of this one) holds it; a second Lock by the holding process blocks for
// ever, as in podman. Locking never checks allocation. A lock whose owner
// died is taken over and Lock returns nil (as podman); [Segment.Acquire]
// reports the takeover. podman: LockSemaphore.
func (s *Segment) Lock(i uint32) error {
	// the fast path of acquire, small enough to be inlined
	if p := s.fast(i); p != nil {
		// a node word is 0 unless linked and covered (so registered)
		if w := atomic.LoadUint64(word64(node(p), nodeWord)); w != 0 &&
			atomic.CompareAndSwapUint64(word64(p, slotWord), 0, w) {
			return nil
		}
	}
	return s.lockSlow(i)
}

func (s *Segment) lockSlow(i uint32) error {
	_, err := s.acquire("lock", context.Background(), i, false, 0)
	return err
}

// TryLock takes lock i if it is free and returns true, or returns false,
// nil at once when it is held.
func (s *Segment) TryLock(i uint32) (bool, error) {
	a, err := s.acquire("lock", context.Background(), i, true, 0)
	return a.Locked, err
}

// LockTimeout is [Segment.Lock] giving up with ETIMEDOUT after d.
func (s *Segment) LockTimeout(i uint32, d time.Duration) error {
	if d <= 0 {
		d = 1
	}
	_, err := s.acquire("lock", context.Background(), i, false, d)
	return err
}

// LockContext is [Segment.Lock] giving up when ctx is done: the error then
// satisfies errors.Is(err, ctx.Err()) (ECANCELED or ETIMEDOUT).
func (s *Segment) LockContext(ctx context.Context, i uint32) error {
	_, err := s.acquire("lock", ctx, i, false, 0)
	return err
}

// Acquire is the general form of the lock operations: it takes lock i,
// waiting until ctx is done unless try, and reports whether it holds the
// lock and whether it took it from a dead owner.
func (s *Segment) Acquire(ctx context.Context, i uint32, try bool) (Acquired, error) {
	return s.acquire("lock", ctx, i, try, 0)
}

// waitState lets a context cancellation reach a goroutine sleeping in
// FUTEX_WAIT: the cancel callback wakes every waiter on the word for as long
// as this goroutine is marked as about to sleep or sleeping, which closes
// the window between its last check of ctx and its entry into the kernel.
type waitState struct {
	state atomic.Int32 // 1 while about to sleep or sleeping, 2 when done
}

func (s *Segment) acquire(op string, ctx context.Context, i uint32, try bool, timeout time.Duration) (Acquired, error) {
	p, err := s.slot(op, i, true)
	if err != nil {
		return Acquired{}, err
	}
	// Fast path: a free, unmarked lock whose robust-list node this process
	// linked before, covered: one CAS, no clock, no mutex, no allocation,
	// no other store (a plain store before the next locked instruction
	// costs as much as the CAS). The word's tag carries the owner's pid; a
	// waiter records when it first saw the holding (see acquireSlow).
	if registered {
		if w := atomic.LoadUint64(word64(node(p), nodeWord)); w != 0 &&
			atomic.CompareAndSwapUint64(word64(p, slotWord), 0, w) {
			return Acquired{Locked: true}, nil
		}
	}
	return s.acquireSlow(op, ctx, p, i, try, timeout)
}

// fast returns slot i's address for Lock and Unlock's fast paths, or nil
// when the slow path must decide (a closed or read-only handle, an index
// beyond this process's mapping).
func (s *Segment) fast(i uint32) unsafe.Pointer {
	if i >= s.seen.Load() {
		return nil
	}
	return unsafe.Add(s.slots, uintptr(i)*slotSize)
}

// acquireSlow is the locking protocol's loop (spec/shmlock.md "Lock").
func (s *Segment) acquireSlow(op string, ctx context.Context, p unsafe.Pointer, i uint32, try bool, timeout time.Duration) (Acquired, error) {
	me := self.id
	word := word64(p, slotWord)
	fword := word32(p, slotWord)
	slept := false
	var deadline int64 // absolute CLOCK_MONOTONIC ns, 0 = none
	ctxDeadline := false
	if timeout > 0 {
		deadline = monoNow() + int64(timeout)
	}
	if d, ok := ctx.Deadline(); ok {
		if dl := monoNow() + int64(time.Until(d)); deadline == 0 || dl < deadline {
			deadline, ctxDeadline = dl, true
		}
	}
	// A kernel-covered owner is trusted to be released by the kernel
	// when it dies, but a word can claim coverage falsely (a corrupted
	// or restored segment, an owner whose list was damaged): after a
	// sleep that timed out with the word unchanged, its liveness is
	// checked, at growing intervals (1 s, 2 s, ... 64 s) so that a long
	// wait costs next to nothing. checkCovered is the word to check.
	var checkCovered uint64
	coveredWait := int64(time.Second)
	var lastWord uint64
	var ws *waitState
	var stop func() bool
	var watch *pidWatch // the uncovered owner's pidfd, in the runtime poller
	defer func() {
		if ws != nil {
			ws.state.Store(2)
			stop()
		}
		watch.close()
	}()
	for {
		old := atomic.LoadUint64(word)
		if s.m.faulted() {
			return Acquired{}, s.err(op, int(i), unix.EBADF)
		}
		f := uint32(old)
		owner := f & futexPIDMask
		if owner == 0 {
			if ok, a := s.take(p, old, me, slept, 0); ok {
				return a, nil
			}
			continue
		}
		tag := uint32(old >> 32)
		if old&^futexWaiters != lastWord&^futexWaiters {
			lastWord, coveredWait = old, int64(time.Second)
		}
		if !s.m.foreign && s.ownerDead(owner, tag, old == checkCovered) {
			if ok, a := s.take(p, old, me, slept, owner); ok {
				return a, nil
			}
			continue
		}
		checkCovered = 0
		if slept && f&futexWaiters == 0 {
			// We were woken, perhaps by an Unlock's single wake-up, and
			// the lock was taken meanwhile without WAITERS: set it before
			// we may give up, or other sleepers would never be woken (as
			// glibc's lll_timedlock, which always locks with 2 after
			// sleeping).
			if !atomic.CompareAndSwapUint64(word, old, old|futexWaiters) {
				continue
			}
			old |= futexWaiters
			f |= futexWaiters
		}
		if try {
			return Acquired{}, nil
		}
		if err := ctx.Err(); err != nil {
			return Acquired{}, s.ctxErr(op, i, err)
		}
		if f&futexWaiters == 0 {
			if !atomic.CompareAndSwapUint64(word, old, old|futexWaiters) {
				continue
			}
			f |= futexWaiters
		}
		until := deadline
		recheck := int64(time.Second) // the kernel will not tell us if this owner dies
		if tag&tagKCovered != 0 {
			recheck = coveredWait
		} else if !s.m.foreign && (watch == nil || watch.owner != owner) {
			// nor will the kernel wake us: watch the owner's pidfd, which
			// wakes every waiter on the word when the owner's process
			// exits; the 1 s re-check stays as the fallback
			watch.close()
			watch = watchOwner(p, owner, fword)
		}
		if re := monoNow() + recheck; until == 0 || re < until {
			until = re
		}
		if deadline != 0 && monoNow() >= deadline {
			if ctxDeadline {
				<-ctx.Done() // due now: make ctx.Err() agree with our clock
			}
			return Acquired{}, s.err(op, int(i), unix.ETIMEDOUT)
		}
		if ws == nil && ctx.Done() != nil {
			ws = &waitState{}
			stop = context.AfterFunc(ctx, func() {
				for ws.state.Load() == 1 {
					futexWakeN(fword, 1<<30)
					time.Sleep(time.Millisecond)
				}
			})
		}
		if ws != nil {
			ws.state.Store(1)
			if err := ctx.Err(); err != nil {
				ws.state.Store(0)
				return Acquired{}, s.ctxErr(op, i, err)
			}
		}
		if d := atomic.LoadUint32(word32(p, slotDiag)); d&futexPIDMask != owner {
			// a fast-path holder stamps no time: record when it was
			// first seen holding (WAITERS is set, so its Unlock takes
			// the slow path and clears the record)
			atomic.StoreUint64(word64(p, slotAcquired), uint64(monoNow()))
			atomic.CompareAndSwapUint32(word32(p, slotDiag), d, owner|diagObserved)
		}
		if watch != nil {
			// Dekker with the watch's goroutine: either we see that the
			// owner exited, or it sees us about to sleep and wakes us
			// until we are past the wait (its one wake-up may come
			// before we sleep, and the word it wakes does not change).
			watch.sleeping.Store(true)
			if watch.exited.Swap(false) {
				watch.sleeping.Store(false)
				if ws != nil {
					ws.state.Store(0)
				}
				continue // the next turn finds the owner dead
			}
		}
		atomic.AddUint32(word32(p, slotWaiters), 1)
		e := futexWaitUntil(fword, f, until)
		atomic.AddUint32(word32(p, slotWaiters), ^uint32(0))
		if watch != nil {
			watch.sleeping.Store(false)
		}
		if e == unix.ETIMEDOUT && tag&tagKCovered != 0 && (deadline == 0 || until < deadline) {
			checkCovered = old | uint64(futexWaiters)
			if coveredWait < 64*int64(time.Second) {
				coveredWait *= 2
			}
		}
		if ws != nil {
			ws.state.Store(0)
		}
		slept = true
	}
}

// ownerDead reports whether a lock word's owner is gone: an owner the kernel
// does not cover, or a covered one when checkCovered, is checked with
// [liveness]; a word naming this process with another start time is an
// earlier process's that had our PID.
func (s *Segment) ownerDead(owner, tag uint32, checkCovered bool) bool {
	covered := tag&tagKCovered != 0
	if owner == self.id {
		if covered {
			return tag&futexPIDMask != self.pid
		}
		start := tag & tagStartMask
		return start != 0 && self.start != 0 && start != self.start
	}
	if covered && !checkCovered {
		return false
	}
	l := ownerLiveness(owner, tag)
	return l == Dead || l == Reused
}

func (s *Segment) ctxErr(op string, i uint32, err error) error {
	if err == context.DeadlineExceeded {
		return s.err(op, int(i), unix.ETIMEDOUT)
	}
	return s.err(op, int(i), unix.ECANCELED)
}

// take tries to move the lock word from old (free, or held by the dead
// prevDead) to this process. With the robust list, the slot's node is
// linked first, so the kernel recovers the lock whenever this process dies
// after the CAS.
func (s *Segment) take(p unsafe.Pointer, old uint64, me uint32, slept bool, prevDead uint32) (bool, Acquired) {
	f := uint32(old)
	dead := f&futexOwnerDied != 0 || prevDead != 0
	nf := me | f&futexWaiters
	if slept || dead {
		// after a takeover too, so that Unlock takes the slow path and
		// clears the diagnostic stamp (a spurious wake-up at worst)
		nf |= futexWaiters
	}
	tag := self.start
	if registered {
		tag = link(p)
	}
	if !atomic.CompareAndSwapUint64(word64(p, slotWord), old, uint64(nf)|uint64(tag)<<32) {
		return false, Acquired{}
	}
	a := Acquired{Locked: true}
	if nf&futexWaiters == 0 && tag&tagKCovered != 0 {
		return true, a // as the fast path: an Unlock that may be fast follows
	}
	if dead {
		prev := prevDead
		if otag := uint32(old >> 32); otag&tagKCovered != 0 && otag&futexPIDMask != 0 {
			prev = otag & futexPIDMask // the pid of a covered owner
		} else if prev == 0 || atomic.LoadUint32(word32(p, slotDiag))&futexPIDMask == prev {
			// the uncovered owner stamped its pid
			prev = atomic.LoadUint32(word32(p, slotOwnerPID))
		}
		a.OwnerDied, a.PrevOwner = true, int(prev)
		atomic.StoreUint32(word32(p, slotPrevOwner), prev)
		atomic.StoreUint32(word32(p, slotFlags), flagRecovered)
		atomic.AddUint64(word64(s.m.base, offRecoveries), 1)
	} else {
		atomic.StoreUint32(word32(p, slotFlags), 0)
		atomic.StoreUint32(word32(p, slotPrevOwner), 0)
	}
	// owner-only diagnostic fields (readers load them atomically and check
	// the id against the lock word)
	atomic.StoreUint64(word64(p, slotAcquired), uint64(monoNow()))
	atomic.StoreUint32(word32(p, slotOwnerPID), self.pid)
	atomic.StoreUint32(word32(p, slotDiag), me|diagStamped)
	return true, a
}

// pidWatch wakes the waiters on a lock word when its uncovered owner's
// process exits: its pidfd, in the runtime poller, becomes readable.
type pidWatch struct {
	owner    uint32
	f        *os.File
	exited   atomic.Bool // set by the goroutine once the owner's process exited
	sleeping atomic.Bool // set by the waiter around its futex wait
}

// watchOwner watches the process of owner, which holds the lock at p (the
// pid it stamped in the slot, or owner itself), or returns nil where
// pidfd_open(2) fails (before Linux 5.10, or the owner is gone already:
// the waiter's next check sees that).
func watchOwner(p unsafe.Pointer, owner uint32, fword *uint32) *pidWatch {
	pid := owner
	if atomic.LoadUint32(word32(p, slotDiag))&futexPIDMask == owner {
		if v := atomic.LoadUint32(word32(p, slotOwnerPID)); v != 0 {
			pid = v
		}
	}
	fd, err := unix.PidfdOpen(int(pid), unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil
	}
	w := &pidWatch{owner: owner, f: os.NewFile(uintptr(fd), "pidfd")}
	rc, err := w.f.SyscallConn()
	if err != nil {
		w.f.Close()
		return nil
	}
	go func() {
		exited := false
		err := rc.Read(func(fd uintptr) bool {
			n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
			exited = n > 0
			return exited
		})
		if err == nil && exited {
			w.exited.Store(true)
			futexWakeN(fword, 1<<30)
			for w.sleeping.Load() { // a waiter may not have slept yet
				time.Sleep(time.Millisecond)
				futexWakeN(fword, 1<<30)
			}
		}
	}()
	return w
}

func (w *pidWatch) close() {
	if w != nil {
		w.f.Close()
	}
}

// pendMu serialises the use of head.pending by Unlock.
var pendMu sync.Mutex

// Unlock releases lock i, held by this process (any goroutine of it); EPERM
// if this process does not hold it (unlocked, marked OWNER_DIED, or another
// process's), podman's real behaviour. podman: UnlockSemaphore.
func (s *Segment) Unlock(i uint32) error {
	// Fast path, small enough to be inlined: the word is what this
	// process's fast Lock writes (covered, no waiter): one CAS. The node
	// stays linked. self.word is ^0, no word's value, unless registered.
	if p := s.fast(i); p != nil && atomic.CompareAndSwapUint64(word64(p, slotWord), self.word, 0) {
		return nil
	}
	return s.unlockSlow(nil, i)
}

func (s *Segment) unlockSlow(p unsafe.Pointer, i uint32) error {
	if p == nil {
		var err error
		if p, err = s.slot("unlock", i, true); err != nil {
			return err
		}
	}
	word := word64(p, slotWord)
	for {
		old := atomic.LoadUint64(word)
		if s.m.faulted() {
			return s.err("unlock", int(i), unix.EBADF)
		}
		if uint32(old)&futexPIDMask != self.id {
			return s.err("unlock", int(i), unix.EPERM)
		}
		if uint32(old)&futexWaiters != 0 {
			if !unlockWake(p, word) {
				continue // released meanwhile by another goroutine
			}
			return nil
		}
		// no waiter (an uncovered slot, or a lost race with the fast
		// path's expectations); the node stays linked
		atomic.StoreUint32(word32(p, slotDiag), 0)
		if atomic.CompareAndSwapUint64(word, old, 0) {
			return nil
		}
	}
}

// unlockWake releases a lock with waiters, held by this process, and wakes
// one. With the robust list the node is announced in list_op_pending
// meanwhile: if this process dies between the release and the wake-up, the
// kernel wakes a waiter for it.
func unlockWake(p unsafe.Pointer, word *uint64) bool {
	if registered {
		pendMu.Lock()
		defer pendMu.Unlock()
		head.pending = uintptr(node(p))
		defer func() { head.pending = 0 }()
	}
	for {
		old := atomic.LoadUint64(word)
		if uint32(old)&futexPIDMask != self.id {
			return false
		}
		atomic.StoreUint32(word32(p, slotDiag), 0)
		if atomic.CompareAndSwapUint64(word, old, 0) {
			if uint32(old)&futexWaiters != 0 {
				futexWakeN(word32(p, slotWord), 1)
			}
			return true
		}
	}
}

// ForceUnlock releases lock i held by a dead process: it leaves what the
// kernel would have (OWNER_DIED, PID 0, WAITERS kept) and wakes a waiter,
// who then takes the lock over. An unlocked lock gives EPERM (nil if it is
// already marked OWNER_DIED); a live owner, the caller included, gives
// EBUSY: releasing a live owner's lock would corrupt its robust list, so
// kill the owner ([Segment.Owner] names it) instead.
func (s *Segment) ForceUnlock(i uint32) error {
	p, err := s.slot("unlock", i, true)
	if err != nil {
		return err
	}
	selfInit()
	word := word64(p, slotWord)
	for {
		old := atomic.LoadUint64(word)
		if s.m.faulted() {
			return s.err("unlock", int(i), unix.EBADF)
		}
		f := uint32(old)
		owner := f & futexPIDMask
		if owner == 0 {
			if f&futexOwnerDied != 0 {
				return nil
			}
			return s.err("unlock", int(i), unix.EPERM)
		}
		if s.m.foreign {
			return s.err("unlock", int(i), unix.EXDEV)
		}
		tag := uint32(old >> 32)
		if owner == self.id {
			return s.err("unlock", int(i), unix.EBUSY)
		}
		if l := ownerLiveness(owner, tag); l != Dead && l != Reused {
			return s.err("unlock", int(i), unix.EBUSY)
		}
		nw := uint64(f&futexWaiters|futexOwnerDied) | uint64(tag)<<32
		if atomic.CompareAndSwapUint64(word, old, nw) {
			futexWakeN(word32(p, slotWord), 1)
			atomic.AddUint64(word64(s.m.base, offForced), 1)
			return nil
		}
	}
}
