//go:build linux

// Package shm keeps N exclusive inter-process locks, numbered 0..N-1, in one
// file on a tmpfs (/dev/shm by default), usable by any process that maps it
// (spec/shmlock.md). It follows podman's lock manager (libpod/lock/shm):
// the same operations, errors and allocation order, so code written against
// podman's SHMLocks ports mechanically:
//
//	podman SHMLocks                 gotools *Segment
//	CreateSHMLock(path, n)          Create(name, n, opts...)
//	OpenSHMLock(path, n)            Open(name, n, opts...)
//	GetMaxLocks()                   MaxLocks()
//	AllocateSemaphore()             Allocate()
//	AllocateGivenSemaphore(i)       AllocateGiven(i)
//	DeallocateSemaphore(i)          Deallocate(i)
//	DeallocateAllSemaphores()       DeallocateAll()
//	LockSemaphore(i)                Lock(i)
//	UnlockSemaphore(i)              Unlock(i)
//	GetFreeLocks()                  FreeLocks()
//	GetTakenLocks()                 TakenLocks()
//	Close()                         Close()
//
// # Model
//
// Each index has two independent properties: allocated (a bit in a bitmap,
// with an optional 64-bit tag) and locked (a futex word). Locking never
// checks allocation, as in podman. The owner of a lock is the process, not
// the thread: any goroutine of the owner may unlock it, no
// runtime.LockOSThread is needed, and two goroutines of one process still
// exclude each other. Locks are robust: when a holder dies or execs, the
// next locker takes the lock over and is told so ([Acquired.OwnerDied]).
//
// Robustness comes from the kernel's robust futex list (set_robust_list(2)).
// Nothing happens at init: when the process first opens or creates a
// segment, a keeper thread (a goroutine locked to its OS thread, blocked for
// the life of the process) registers the list, and lock words name the
// keeper's TID. The kernel walks that list when the keeper ends, which is
// when the process exits, is killed or execs, and marks every lock the
// process held OWNER_DIED and wakes a waiter. Each slot this process locks
// gets a node in private memory at a fixed distance below the segment,
// linked at its first lock and left linked (the kernel ignores a node whose
// word names another thread), so Lock is one CAS and Unlock one CAS, with no
// clock and no mutex. The kernel walks at most 2048 nodes: slots linked
// later are uncovered. Under cgo, glibc's list for the keeper's thread is
// replaced while it is empty, so cgo programs are covered too. Where it
// cannot be (GOTOOLS_SHM_NO_ROBUST=1, or a non-empty C list), or past 2048
// nodes, locks are recovered by a liveness check of the owner id and start
// time instead: waiters re-check it every second. A covered word whose owner
// is nevertheless dead (a corrupted or restored segment) is found by a
// waiter after a sleep of 1 s, then of 2 s, 4 s ... up to 64 s.
//
// # Differences from podman
//
// An own, architecture-independent file format (version 1; podman embeds
// glibc's pthread_mutex_t); counts are multiples of [BitmapSize] = 64 (podman
// 32); per-process ownership (podman: per thread); [Segment.MaxLocks] comes
// from the header (podman's opener keeps the count it asked for); ENOSPC is
// a wrapped errno and unlocking an unlocked lock is EPERM (podman's doc says
// EBUSY, its code returns EPERM); Open checks the file before mapping it and
// Create publishes a complete file atomically (O_TMPFILE + linkat), so
// neither SIGBUS nor a half-made segment is possible; [Segment.TakenLocks]
// reads lock words and never try-locks; and there are tags, [Segment.GC],
// [Segment.Grow], [Segment.TryLock], timeouts, owner queries and
// [Segment.ForceUnlock]. It is pure Go (no cgo): it works in a static
// binary, where podman's package compiles to stubs that lock nothing.
//
// # Errors
//
// Every error is an [*Error] whose Unwrap gives a [syscall.Errno], so
// errors.Is works: EINVAL (bad count, name or index, closed handle),
// EEXIST, ENOENT, ERANGE (count mismatch on Open), ENOSPC, EPERM (unlock of
// a lock this process does not hold), EBUSY (Close while holding,
// ForceUnlock of a live owner), EBADF (not a valid segment, a write on a
// read-only handle, or, on amd64, any call once the file was truncated
// under the mapping: a SIGBUS handler patches the lost page so that the
// access does not kill the process), EPROTONOSUPPORT, EXDEV (another PID namespace), EFBIG,
// ETIMEDOUT (also matches context.DeadlineExceeded) and ECANCELED (also
// matches context.Canceled).
package shm
