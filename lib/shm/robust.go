//go:build linux

package shm

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// robustHead is the kernel's struct robust_list_head (linux/futex.h): the
// list is circular through each entry's first word, and the futex word of
// an entry lies futexOffset bytes after it. Our entries are slots, whose
// futex word is at slotWord.
type robustHead struct {
	next        uintptr
	futexOffset int64
	pending     uintptr // list_op_pending
}

// robustLimit is ROBUST_LIST_LIMIT (kernel/futex/core.c): the kernel walks at
// most this many entries when a thread exits.
const robustLimit = 2048

var (
	// head never moves (a package variable), as set_robust_list(2) requires.
	head robustHead
	// registered reports that init registered head for the main thread.
	registered bool
	// listMu guards head, listTail, listLen and every linked slot's
	// next/prev words: one list serves all segments of the process.
	listMu   sync.Mutex
	listTail uintptr // the last entry, or &head when empty
	listLen  int
)

// init registers the process's robust futex list on the main thread: Go runs
// package initialisation on the main goroutine locked to the main OS thread,
// whose TID is the PID, and the kernel walks that thread's list when the
// process exits or execs (exit_robust_list, futex_exec_release), which is
// what makes a lock owned by the PID robust. If a list is registered already
// (a C library in the process, e.g. glibc under cgo or -race, owns it), it is
// left alone and locks fall back to the liveness check. It costs one or two
// system calls: every gotools applet links this package.
//
// GOTOOLS_SHM_TEST_FORCE_ROBUST=1 replaces a C library's list instead: this
// package's tests set it under -race (which links glibc), where no robust
// pthread mutex exists, so that the kernel-covered path is what they test.
func init() {
	if os.Getenv("GOTOOLS_SHM_NO_ROBUST") == "1" {
		return
	}
	var cur, size uintptr
	// get_robust_list(2) with pid 0: the calling thread.
	_, _, e := unix.RawSyscall(unix.SYS_GET_ROBUST_LIST, 0,
		uintptr(unsafe.Pointer(&cur)), uintptr(unsafe.Pointer(&size)))
	if e != 0 || cur != 0 && os.Getenv("GOTOOLS_SHM_TEST_FORCE_ROBUST") != "1" {
		return
	}
	h := uintptr(unsafe.Pointer(&head))
	head.next = h
	head.futexOffset = slotWord
	// set_robust_list(2)
	_, _, e = unix.RawSyscall(unix.SYS_SET_ROBUST_LIST, h, robustListSize, 0)
	if e != 0 {
		head.next = 0
		return
	}
	registered = true
	listTail = h
}

func headAddr() uintptr { return uintptr(unsafe.Pointer(&head)) }

// ptrAt turns an address held in a list word back into a pointer. Every such
// address is the head (a package variable) or a slot in an mmap'd segment,
// neither of which the garbage collector manages or moves.
func ptrAt(u uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&u)) }

func word64(p unsafe.Pointer, off uintptr) *uint64 { return (*uint64)(unsafe.Add(p, off)) }
func word32(p unsafe.Pointer, off uintptr) *uint32 { return (*uint32)(unsafe.Add(p, off)) }
func wordPtr(p unsafe.Pointer, off uintptr) *uintptr {
	return (*uintptr)(unsafe.Add(p, off))
}

// setNext stores next into the entry at e (the head or a slot).
func setNext(e, next uintptr) {
	if e == headAddr() {
		head.next = next
		return
	}
	*wordPtr(ptrAt(e), slotNext) = next
}

// linkTail appends slot p to the list; listMu must be held.
func linkTail(p unsafe.Pointer) {
	e := uintptr(p)
	*wordPtr(p, slotNext) = headAddr()
	*wordPtr(p, slotPrev) = listTail
	setNext(listTail, e)
	listTail = e
	listLen++
}

// unlink removes slot p from the list in O(1); listMu must be held.
func unlink(p unsafe.Pointer) {
	next := *wordPtr(p, slotNext)
	prev := *wordPtr(p, slotPrev)
	setNext(prev, next)
	if next == headAddr() {
		listTail = prev
	} else {
		*wordPtr(ptrAt(next), slotPrev) = prev
	}
	*wordPtr(p, slotNext) = 0
	*wordPtr(p, slotPrev) = 0
	listLen--
}

// self holds what a locker needs about its own process, read at the first
// lock rather than at init.
var self struct {
	once  sync.Once
	pid   uint32
	start uint32 // start time mod 2^31, 0 if unknown
	t0    time.Time
	mono0 int64 // CLOCK_MONOTONIC at t0
}

func selfInit() {
	self.once.Do(func() {
		self.pid = uint32(os.Getpid())
		if st, _, ok := procStat(int(self.pid)); ok {
			self.start = uint32(st & tagStartMask)
		}
		var ts unix.Timespec
		self.t0 = time.Now()
		if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil {
			self.mono0 = ts.Nano()
		}
	})
}

// monoNow is CLOCK_MONOTONIC in nanoseconds, derived from the runtime's
// monotonic clock (vDSO) to keep a system call off the lock path.
func monoNow() int64 { return self.mono0 + int64(time.Since(self.t0)) }

// procStat reads /proc/PID/stat: the start time (field 22, clock ticks
// since boot) and the state letter (field 3).
func procStat(pid int) (start uint64, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, false
	}
	st, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return st, f[0][0], true
}

// pidNS identifies this process's PID namespace: st_ino and st_dev of
// /proc/self/ns/pid, zeros if unknown.
var pidNS = sync.OnceValue(func() [2]uint64 {
	var st unix.Stat_t
	if unix.Stat("/proc/self/ns/pid", &st) != nil {
		return [2]uint64{}
	}
	return [2]uint64{st.Ino, st.Dev}
})

// Liveness is what a liveness check says about a lock's owner.
type Liveness int

const (
	// Unknown: not checked, or the segment belongs to another PID namespace.
	Unknown Liveness = iota
	// Alive: the owner's PID exists with the recorded start time.
	Alive
	// Dead: no such process (kill(2) gives ESRCH), or a zombie.
	Dead
	// Reused: the PID exists but its start time differs from the owner's.
	Reused
)

func (l Liveness) String() string {
	switch l {
	case Alive:
		return "alive"
	case Dead:
		return "dead"
	case Reused:
		return "reused"
	}
	return "unknown"
}

// MarshalText makes a Liveness read as its name in JSON ("alive").
func (l Liveness) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// liveness checks owner pid with start-time tag start (0 = unknown): dead if
// kill(pid, 0) fails with ESRCH or the process is a zombie, reused if its
// start time differs; EPERM from kill means it exists.
func liveness(pid int, start uint32) Liveness {
	if pid <= 0 {
		return Unknown
	}
	if err := unix.Kill(pid, 0); err == unix.ESRCH {
		return Dead
	}
	st, state, ok := procStat(pid)
	if !ok {
		return Alive
	}
	if state == 'Z' || state == 'X' {
		return Dead
	}
	if start != 0 && uint32(st&tagStartMask) != start {
		return Reused
	}
	return Alive
}

// Futex operations (futex(2), linux/futex.h). No FUTEX_PRIVATE_FLAG: the
// words live in a shared file mapping and are keyed by inode and offset,
// so waiters in different processes meet, and the kernel's robust-list
// wake-up (shared) reaches them.
const (
	futexWake       = 1
	futexWaitBitset = 9
	futexBitsetAny  = 0xffffffff
)

// futexWaitUntil sleeps while *addr == val, until woken or until the
// absolute CLOCK_MONOTONIC time deadline (ns; 0 = none). FUTEX_WAIT_BITSET
// takes an absolute CLOCK_MONOTONIC timeout (futex(2)).
func futexWaitUntil(addr *uint32, val uint32, deadline int64) unix.Errno {
	var tp uintptr
	var ts unix.Timespec
	if deadline > 0 {
		ts = unix.NsecToTimespec(deadline)
		tp = uintptr(unsafe.Pointer(&ts))
	}
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitBitset,
		uintptr(val), tp, 0, futexBitsetAny)
	return e
}

// futexWakeN wakes up to n waiters on addr.
func futexWakeN(addr *uint32, n int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(n), 0, 0, 0)
}
