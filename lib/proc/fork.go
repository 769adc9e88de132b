//go:build linux

package proc

import (
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The runtime's fork hooks, as package syscall uses them: BeforeFork
// blocks every signal on the thread and makes any stack growth fatal,
// AfterFork undoes that in the parent, AfterForkInChild resets the
// handled signals to SIG_DFL and restores the thread's mask in the child.
// The runtime keeps them for packages outside the standard library too
// (go.dev/issue/67401).

//go:linkname runtimeBeforeFork syscall.runtime_BeforeFork
func runtimeBeforeFork()

//go:linkname runtimeAfterFork syscall.runtime_AfterFork
func runtimeAfterFork()

//go:linkname runtimeAfterForkInChild syscall.runtime_AfterForkInChild
func runtimeAfterForkInChild()

// cstrings is a list of strings as execve(2) takes it: NUL-terminated
// bytes in one buffer and a nil-terminated array of pointers into it.
type cstrings struct {
	src  []string
	buf  []byte
	ptrs []*byte
}

// set makes c hold ss, reusing its buffers. It reports false if a string
// holds a NUL byte.
func (c *cstrings) set(ss []string) bool {
	n := 0
	for _, s := range ss {
		if containsNUL(s) {
			return false
		}
		n += len(s) + 1
	}
	c.src = append(c.src[:0], ss...)
	if cap(c.buf) < n {
		c.buf = make([]byte, 0, n)
	}
	c.buf = c.buf[:0]
	c.ptrs = c.ptrs[:0]
	for _, s := range ss {
		c.buf = append(c.buf, s...)
		c.buf = append(c.buf, 0)
	}
	off := 0
	for _, s := range ss {
		c.ptrs = append(c.ptrs, &c.buf[off])
		off += len(s) + 1
	}
	c.ptrs = append(c.ptrs, nil)
	return true
}

// same reports whether c holds ss already.
func (c *cstrings) same(ss []string) bool {
	if c.ptrs == nil || len(ss) != len(c.src) {
		return false
	}
	for i, s := range ss {
		if s != c.src[i] {
			return false
		}
	}
	return true
}

// cstring is one NUL-terminated string; a nil pointer for "".
type cstring struct {
	src string
	buf []byte
	ok  bool
}

func (c *cstring) set(s string) bool {
	if containsNUL(s) {
		return false
	}
	c.src, c.ok = s, true
	c.buf = append(append(c.buf[:0], s...), 0)
	return true
}

func (c *cstring) same(s string) bool { return c.ok && c.src == s }

// ptr is the string's address, nil when it is empty.
func (c *cstring) ptr() *byte {
	if c.src == "" {
		return nil
	}
	return &c.buf[0]
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// forkAttr is everything the child needs, prepared by the parent so that
// the child only makes raw system calls.
type forkAttr struct {
	path, dir *byte
	argv      **byte
	envv      **byte
	fds       []int // the child's fd table: fds[i] becomes fd i, -1 closes it
	nextfd    int   // above every fd in fds and the error pipe
	flags     uintptr
	setsid    bool
	setpgid   bool
	pgid      int
	setctty   bool
	pdeathsig uintptr
	ppid      uintptr
	nofile    *unix.Rlimit // the soft limit to restore, or nil
	raised    uint64       // the soft limit the runtime set at start-up
}

// emptySet is the child's signal mask (the kernel reads 8 bytes of it).
var emptySet unix.Sigset_t

// forkExec forks, and in the child applies a and execs; the child reports
// a failure before exec as an errno on the close-on-exec pipe. It returns
// the child's pid and an errno of the parent's side.
func forkExec(a *forkAttr, pipe int) (int, syscall.Errno) {
	syscall.ForkLock.Lock()
	pid, errno := forkChild(a, pipe)
	syscall.ForkLock.Unlock()
	return int(pid), errno
}

// forkChild is the fork itself. It must not grow the stack between
// runtimeBeforeFork and the return in the parent, nor anywhere in the
// child: it is nosplit and calls only nosplit functions. The child never
// returns from it: on amd64 it shares the parent's memory until it execs
// (vfork), so it writes only its own locals and *a (scratch, rebuilt at
// every spawn) and the parent reads none of them after the clone.
//
//go:nosplit
//go:norace
//go:nocheckptr
func forkChild(a *forkAttr, pipe int) (uintptr, syscall.Errno) {
	var (
		pid, r1 uintptr
		errno   syscall.Errno
		fd      int
		i       int
		lim     unix.Rlimit
	)
	runtimeBeforeFork()
	pid, r1 = clone(a.flags | cloneFlags | uintptr(unix.SIGCHLD))
	if errno = syscall.Errno(r1); errno != 0 || pid != 0 {
		runtimeAfterFork()
		return pid, errno
	}

	// The child.
	runtimeAfterForkInChild()
	if _, _, errno = syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&emptySet)), 0, 8, 0, 0); errno != 0 {
		goto fail
	}
	if a.setsid {
		if _, _, errno = syscall.RawSyscall(unix.SYS_SETSID, 0, 0, 0); errno != 0 {
			goto fail
		}
	}
	if a.setpgid {
		if _, _, errno = syscall.RawSyscall(unix.SYS_SETPGID, 0, uintptr(a.pgid), 0); errno != 0 {
			goto fail
		}
	}
	if a.pdeathsig != 0 {
		if _, _, errno = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, a.pdeathsig, 0, 0, 0, 0); errno != 0 {
			goto fail
		}
		// The parent may have died before the prctl.
		if r1, _, _ = syscall.RawSyscall(unix.SYS_GETPPID, 0, 0, 0); r1 != a.ppid {
			r1, _, _ = syscall.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
			syscall.RawSyscall(unix.SYS_KILL, r1, a.pdeathsig, 0)
		}
	}
	// The fd table: first move every source that a lower target would
	// overwrite (and the error pipe) above all of them, then put each in
	// place.
	if pipe < a.nextfd {
		if _, _, errno = syscall.RawSyscall(unix.SYS_DUP3, uintptr(pipe), uintptr(a.nextfd), unix.O_CLOEXEC); errno != 0 {
			goto fail
		}
		pipe = a.nextfd
		a.nextfd++
	}
	for i = 0; i < len(a.fds); i++ {
		if fd = a.fds[i]; fd >= 0 && fd < i {
			if _, _, errno = syscall.RawSyscall(unix.SYS_DUP3, uintptr(fd), uintptr(a.nextfd), unix.O_CLOEXEC); errno != 0 {
				goto fail
			}
			a.fds[i] = a.nextfd
			a.nextfd++
		}
	}
	for i = 0; i < len(a.fds); i++ {
		switch fd = a.fds[i]; {
		case fd < 0:
			syscall.RawSyscall(unix.SYS_CLOSE, uintptr(i), 0, 0)
		case fd == i:
			if _, _, errno = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(i), unix.F_SETFD, 0); errno != 0 {
				goto fail
			}
		default:
			if _, _, errno = syscall.RawSyscall(unix.SYS_DUP3, uintptr(fd), uintptr(i), 0); errno != 0 {
				goto fail
			}
		}
	}
	if a.setctty {
		if _, _, errno = syscall.RawSyscall(unix.SYS_IOCTL, 0, unix.TIOCSCTTY, 1); errno != 0 {
			goto fail
		}
	}
	if a.dir != nil {
		if _, _, errno = syscall.RawSyscall(unix.SYS_CHDIR, uintptr(unsafe.Pointer(a.dir)), 0, 0); errno != 0 {
			goto fail
		}
	}
	// The soft RLIMIT_NOFILE the process started with, unless someone
	// changed ours since the runtime raised it (as package syscall does).
	if a.nofile != nil {
		if _, _, errno = syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, 0, uintptr(unsafe.Pointer(&lim)), 0, 0); errno == 0 && lim.Cur == a.raised {
			syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, uintptr(unsafe.Pointer(a.nofile)), 0, 0, 0)
		}
	}
	_, _, errno = syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(a.path)), uintptr(unsafe.Pointer(a.argv)), uintptr(unsafe.Pointer(a.envv)))

fail:
	r1 = uintptr(errno)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(pipe), uintptr(unsafe.Pointer(&r1)), unsafe.Sizeof(r1))
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 253, 0, 0)
	}
}

// start runs a prepared child and waits until it has exec'd or failed.
// On a failure before exec, the child is reaped and its errno returned.
func start(a *forkAttr) (int, error) {
	var p [2]int32
	if _, _, e := syscall.RawSyscall(unix.SYS_PIPE2, uintptr(unsafe.Pointer(&p)), unix.O_CLOEXEC, 0); e != 0 {
		return 0, e
	}
	rd, wr := int(p[0]), int(p[1])
	a.nextfd = max(a.nextfd, wr+1, rd+1)
	if a.pdeathsig != 0 {
		a.ppid = uintptr(unix.Getpid())
	}
	a.nofile, a.raised = startNofile()
	pid, errno := forkExec(a, wr)
	unix.Close(wr)
	if errno != 0 {
		unix.Close(rd)
		return 0, errno
	}
	var code uintptr
	n, rerr := readFull(rd, unsafe.Pointer(&code), unsafe.Sizeof(code))
	unix.Close(rd)
	if n == 0 && rerr == 0 {
		return pid, nil // exec'd: the pipe closed
	}
	// The child failed before exec and exits 253: reap it.
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			break
		}
	}
	if n == int(unsafe.Sizeof(code)) {
		return 0, syscall.Errno(code)
	}
	if rerr != 0 {
		return 0, rerr
	}
	return 0, unix.EPIPE
}

// readFull reads up to n bytes at p, retrying EINTR, until EOF.
func readFull(fd int, p unsafe.Pointer, n uintptr) (int, syscall.Errno) {
	got := uintptr(0)
	for got < n {
		r, _, e := syscall.Syscall(unix.SYS_READ, uintptr(fd), uintptr(p)+got, n-got)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return int(got), e
		}
		if r == 0 {
			break
		}
		got += r
	}
	return int(got), 0
}

// nofile is the soft RLIMIT_NOFILE the process started with, which the Go
// runtime raises to the hard limit minus one at start-up and package
// syscall restores in every child. It keeps that value to itself, so it
// is read once from a child of os.StartProcess (see probeNofile).
var nofile struct {
	once   sync.Once
	orig   *unix.Rlimit
	raised uint64
}

// startNofile returns the limit a child must get back and the soft limit
// the runtime set, or nil when the runtime raised nothing.
func startNofile() (*unix.Rlimit, uint64) {
	nofile.once.Do(func() {
		var cur unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &cur) != nil || cur.Max == 0 || cur.Cur != cur.Max-1 {
			return // not the runtime's value: nothing to restore
		}
		if orig := probeNofile(); orig != nil && orig.Cur != cur.Cur {
			nofile.orig, nofile.raised = orig, cur.Cur
		}
	})
	return nofile.orig, nofile.raised
}
