//go:build linux

package shm

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// robustHead is the kernel's struct robust_list_head (linux/futex.h): the
// list is circular through each entry's first word, and the futex word of
// an entry lies futexOffset bytes after it.
type robustHead struct {
	next        uintptr
	futexOffset int64
	pending     uintptr // list_op_pending
}

// robustLimit is ROBUST_LIST_LIMIT (kernel/futex/core.c): the kernel walks at
// most this many entries when a thread exits.
const robustLimit = 2048

// shadowBelow is the address space every read-write mapping reserves below
// its segment for the slots' robust-list nodes, in memory private to this
// process (the kernel takes one futex offset for the whole list). It
// exceeds the largest reservation (2^24 slots of 64 bytes and the bitmap).
const shadowBelow = 1 << 31

// shadowSkew keeps a node off its slot's 4 KiB alias: were the distance a
// multiple of the page size, the fast path's load of the node word would
// share address bits 0-11 with the CAS on the slot's lock word, and the
// CPU's memory disambiguation treats such a load as possibly depending on
// the earlier locked store (4K aliasing: measured on AMD EPYC, a lock+unlock
// pair took 10-12 ns instead of 5). Half a page apart they never alias.
const shadowSkew = 2048

// shadowDist is how far below a slot's futex word its robust-list node
// lies: the list's futex offset.
const shadowDist = shadowBelow - shadowSkew

// shadowLen is the length of the private, read-write part of a mapping's
// shadow reservation for a segment reservation of reserved bytes.
func shadowLen(reserved uint64) uint64 { return roundup(reserved+shadowSkew, pageSize) }

// A node is 24 bytes of the shadow of a slot, at the slot's futex word
// address minus shadowDist: the kernel's next pointer; the whole lock word
// the fast paths write, when the node is among the first robustLimit of the
// list (covered); the tag of this process's words; whether it is linked. A node is
// linked at its slot's first lock by this process and stays linked until
// the segment is unmapped: the kernel ignores an entry whose futex word
// does not name the dying thread, so unlock need not unlink, and lock is a
// single CAS.
const (
	nodeNext = 0
	nodeWord = 8  // the lock word the fast paths CAS in: id | (pid|KCOVERED)<<32; 0 if uncovered
	nodeTag  = 16 // u32: the tag this process's words carry; bit 0 of nodeLinked set once linked
	nodeLink = 20 // u32: 1 once linked
)

var (
	// head never moves (a package variable), as set_robust_list(2) requires.
	head robustHead
	// registered reports that the robust list is registered: locks taken
	// by this process are recovered by the kernel when it dies or execs.
	registered bool
	// listMu guards head, listTail, listLen and every node's next word.
	listMu   sync.Mutex
	listTail uintptr // the last entry, or &head when empty
	listLen  int
)

// self is what a locker needs about its own process, set up by setup when
// the process first opens or creates a segment (never at init: every
// gotools applet links this package).
var self struct {
	once  sync.Once // setup
	basic sync.Once // selfInit
	pid   uint32    // the process
	id    uint32    // the owner id in lock words: the keeper thread's TID, or pid
	start uint32    // id's start time mod 2^31, 0 if unknown
	word  uint64    // the lock word of a covered holding: id | (pid|KCOVERED)<<32
	t0    time.Time
	mono0 int64 // CLOCK_MONOTONIC at t0
}

// setup registers the robust futex list, once per process, on a thread of
// its own (the keeper): a goroutine locked to its OS thread for the life of
// the process, blocked. Lock words name the keeper's TID, so the kernel
// releases them when that thread ends, which happens only when the process
// exits, is killed, or execs (de_thread ends every other thread, and each
// ending thread's list is walked: exit_robust_list). This needs no work at
// init and no particular thread: the robust list belongs to the keeper,
// which runs nothing else. Under cgo, glibc has registered a list of its own
// for every thread; the keeper replaces it for its own thread only when it
// is empty (the thread holds no robust pthread mutex, and as the keeper it
// never runs C code again). Otherwise, or with GOTOOLS_SHM_NO_ROBUST=1,
// lock words name the PID and a dead holder is found by the liveness check.
func setup() {
	selfInit()
	self.once.Do(func() {
		if os.Getenv("GOTOOLS_SHM_NO_ROBUST") != "1" {
			ok := make(chan uint32)
			go keeper(ok)
			if tid := <-ok; tid != 0 {
				self.id, registered = tid, true
				self.word = uint64(tid) | uint64(self.pid|tagKCovered)<<32
			}
		}
		if st, _, ok := procStat(int(self.id)); ok {
			self.start = uint32(st & tagStartMask)
		}
	})
}

// peek32 loads *p, or reports false if its page is gone: a segment file
// truncated by someone else under its mapping faults (SIGBUS), which
// debug.SetPanicOnFault turns into a panic recovered here.
func peek32(p *uint32) (v uint32, ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			v, ok = 0, false
		}
	}()
	return atomic.LoadUint32(p), true
}

// selfInit sets self's pid and clock, once; the lock words' owner id is
// the pid until setup runs.
func selfInit() {
	self.basic.Do(func() {
		self.pid = uint32(os.Getpid())
		self.id = self.pid
		self.word = ^uint64(0)
		var ts unix.Timespec
		self.t0 = time.Now()
		if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil {
			self.mono0 = ts.Nano()
		}
	})
}

// keeper registers the robust list on its thread and sends the thread's
// TID on ok (0 if it could not), then blocks for ever with its thread.
func keeper(ok chan<- uint32) {
	runtime.LockOSThread()
	var cur, size uintptr
	// get_robust_list(2) with pid 0: the calling thread.
	if _, _, e := unix.RawSyscall(unix.SYS_GET_ROBUST_LIST, 0,
		uintptr(unsafe.Pointer(&cur)), uintptr(unsafe.Pointer(&size))); e != 0 {
		ok <- 0
		return // the thread ends with the goroutine: it is locked
	}
	if cur != 0 {
		// A C library's list: it may be replaced only while empty.
		h := (*robustHead)(ptrAt(cur))
		if atomic.LoadUintptr(&h.next) != cur || atomic.LoadUintptr(&h.pending) != 0 {
			ok <- 0
			return
		}
	}
	h := uintptr(unsafe.Pointer(&head))
	listMu.Lock()
	head.next = h
	head.futexOffset = shadowDist
	listTail = h
	listMu.Unlock()
	// set_robust_list(2)
	if _, _, e := unix.RawSyscall(unix.SYS_SET_ROBUST_LIST, h, robustListSize, 0); e != 0 {
		ok <- 0
		return
	}
	ok <- uint32(unix.Gettid())
	select {}
}

func headAddr() uintptr { return uintptr(unsafe.Pointer(&head)) }

// ptrAt turns an address held in a list word back into a pointer. Every such
// address is the head (a package variable) or a node in a mapping's shadow,
// neither of which the garbage collector manages or moves.
func ptrAt(u uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&u)) }

func word64(p unsafe.Pointer, off uintptr) *uint64 { return (*uint64)(unsafe.Add(p, off)) }
func word32(p unsafe.Pointer, off uintptr) *uint32 { return (*uint32)(unsafe.Add(p, off)) }
func wordPtr(p unsafe.Pointer, off uintptr) *uintptr {
	return (*uintptr)(unsafe.Add(p, off))
}

// node returns the robust-list node of the slot at p.
func node(p unsafe.Pointer) unsafe.Pointer { return unsafe.Add(p, slotWord-shadowDist) }

// setNext stores next into the entry at e (the head or a node).
func setNext(e, next uintptr) {
	if e == headAddr() {
		head.next = next
		return
	}
	atomic.StoreUintptr(wordPtr(ptrAt(e), nodeNext), next)
}

// link appends the node of the slot at p to the list, if it is not linked,
// and returns the tag this process's lock words on the slot carry. Only
// with registered.
func link(p unsafe.Pointer) uint32 {
	n := node(p)
	if atomic.LoadUint32(word32(n, nodeLink)) != 0 {
		return atomic.LoadUint32(word32(n, nodeTag))
	}
	listMu.Lock()
	defer listMu.Unlock()
	if atomic.LoadUint32(word32(n, nodeLink)) == 0 {
		tag := self.start
		if listLen < robustLimit {
			tag = self.pid | tagKCovered
		}
		atomic.StoreUintptr(wordPtr(n, nodeNext), headAddr())
		setNext(listTail, uintptr(n))
		listTail = uintptr(n)
		listLen++
		atomic.StoreUint32(word32(n, nodeTag), tag)
		atomic.StoreUint32(word32(n, nodeLink), 1)
		if tag&tagKCovered != 0 {
			// last: the fast paths need a linked node
			atomic.StoreUint64(word64(n, nodeWord), self.word)
		}
	}
	return atomic.LoadUint32(word32(n, nodeTag))
}

// unlinkRange removes every node in [lo, hi) from the list (a mapping's
// shadow, before it is unmapped) and reports whether one of their futex
// words names this process: then nothing is removed.
func unlinkRange(lo, hi uintptr) (held bool) {
	listMu.Lock()
	defer listMu.Unlock()
	for e := head.next; e != headAddr(); e = *wordPtr(ptrAt(e), nodeNext) {
		if e >= lo && e < hi {
			if f, ok := peek32((*uint32)(ptrAt(e + shadowDist))); ok && f&futexPIDMask == self.id {
				return true
			}
		}
	}
	prev := headAddr()
	for e := head.next; e != headAddr(); {
		next := *wordPtr(ptrAt(e), nodeNext)
		if e >= lo && e < hi {
			setNext(prev, next)
			if e == listTail {
				listTail = prev
			}
			listLen--
		} else {
			prev = e
		}
		e = next
	}
	return false
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

// ownerLiveness is [liveness] of the owner of a lock word with futex id
// owner and tag tag: a covered tag carries the owner's pid instead of a
// start time, and the id (the owner's keeper thread) must belong to it.
func ownerLiveness(owner, tag uint32) Liveness {
	if tag&tagKCovered == 0 {
		return liveness(int(owner), tag&tagStartMask)
	}
	l := liveness(int(owner), 0)
	if l == Alive {
		if tg, ok := tgidOf(int(owner)); ok && uint32(tg) != tag&futexPIDMask {
			return Reused
		}
	}
	return l
}

// tgidOf reads the thread group (process) of thread tid from
// /proc/TID/status.
func tgidOf(tid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return 0, false
	}
	_, rest, ok := bytes.Cut(b, []byte("\nTgid:"))
	if !ok {
		return 0, false
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	n, err := strconv.Atoi(string(bytes.TrimSpace(line)))
	return n, err == nil
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
