//go:build linux

package shm

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Multi-process tests (spec/shmlock.md "Acceptance tests" 18, 20-28): the
// test binary re-executes itself as workers (worker_test.go).

// validFile returns the bytes of a fresh segment file of n locks, capacity n.
func validFile(t testing.TB, n uint32) []byte {
	t.Helper()
	dir := t.TempDir()
	s, err := Create("seg", n, WithDir(dir), WithMaxLocks(n))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, err := os.ReadFile(filepath.Join(dir, "seg"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenCorruptFilesInChild(t *testing.T) { // 18
	good := validFile(t, 128)
	bitmapEnd := 4096 + 4096
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	recrc := func(b []byte) {
		binary.LittleEndian.PutUint32(b[crcEnd:], crc32c(b[:crcEnd]))
	}
	tests := []struct {
		name string
		data []byte
		want []string
	}{
		{"empty", nil, []string{"EBADF"}},
		{"one byte", good[:1], []string{"EBADF"}},
		{"4095 bytes", good[:4095], []string{"EBADF"}},
		{"header only", good[:4096], []string{"EBADF"}},
		{"header and bitmap", good[:bitmapEnd], []string{"EBADF"}},
		{"half the slots", good[:bitmapEnd+64*64], []string{"EBADF"}},
		{"bad magic", mod(func(b []byte) { b[0] = 'X' }), []string{"EBADF"}},
		{"crc byte flipped", mod(func(b []byte) { b[crcEnd+1] ^= 0xff }), []string{"EBADF"}},
		{"field changed", mod(func(b []byte) { b[24]++ }), []string{"EBADF"}},
		{"version 2", mod(func(b []byte) { b[8] = 2; recrc(b) }), []string{"EPROTONOSUPPORT"}},
		{"version 2, old crc", mod(func(b []byte) { b[8] = 2 }), []string{"EPROTONOSUPPORT", "EBADF"}},
		{"unknown flag", mod(func(b []byte) { b[20] = 1; recrc(b) }), []string{"EPROTONOSUPPORT"}},
		{"unknown flag, old crc", mod(func(b []byte) { b[23] = 0x80 }), []string{"EPROTONOSUPPORT", "EBADF"}},
		{"num_locks 65", mod(func(b []byte) { b[offNumLocks] = 65 }), []string{"EBADF"}},
		{"num_locks above max", mod(func(b []byte) { binary.LittleEndian.PutUint32(b[offNumLocks:], 192) }), []string{"EBADF"}},
		{"num_locks 0", mod(func(b []byte) { binary.LittleEndian.PutUint32(b[offNumLocks:], 0) }), []string{"EBADF"}},
		{"podman magic", mod(func(b []byte) { b[0], b[1] = 0xd1, 0x87 }), []string{"EBADF"}},
		{"valid (control)", good, []string{"ok"}},
	}
	// one child opens every file in turn and prints each result: a crash
	// ends its output early and names the file at fault
	dir := t.TempDir()
	args := []string{dir}
	for k, tt := range tests {
		name := "c" + strconv.Itoa(k)
		if err := os.WriteFile(filepath.Join(dir, name), tt.data, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, name)
	}
	w := startWorker(t, nil, "openall", args...)
	for _, tt := range tests {
		l, ok := <-w.out
		if !ok {
			st := w.wait()
			t.Fatalf("child opening %s died: %v", tt.name, st)
		}
		if !slices.Contains(tt.want, l) {
			t.Errorf("Open of %s in a child = %q; want one of %v", tt.name, l, tt.want)
		}
	}
	if st := w.wait(); !st.Exited() || st.ExitStatus() != 0 {
		t.Errorf("child: %v", st)
	}
	// not a regular file
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := OpenExisting("d", WithDir(dir))
	wantErrno(t, "Open(directory)", err, unix.EBADF)
}

func init() {
	// openall DIR NAME...: print OpenExisting's errno for each NAME.
	workers["openall"] = func(args []string) int {
		for _, name := range args[1:] {
			s, err := OpenExisting(name, WithDir(args[0]))
			fmt.Println(errName(err))
			if err == nil {
				s.Close()
			}
		}
		return 0
	}
	// count DIR NAME COUNTERFILE N: N times Lock(3), a non-atomic increment
	// of the counter, Unlock(3).
	workers["count"] = func(args []string) int {
		s := workerOpen(args)
		if s == nil {
			return 1
		}
		f, err := os.OpenFile(args[2], os.O_RDWR, 0)
		if err != nil {
			fmt.Println(err)
			return 1
		}
		mem, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			fmt.Println(err)
			return 1
		}
		ctr := (*uint64)(unsafe.Pointer(&mem[0]))
		fmt.Println("ready")
		<-stdinLines()
		for n := atou(args[3]); n > 0; n-- {
			if err := s.Lock(3); err != nil {
				fmt.Println(errName(err))
				return 1
			}
			v := *ctr
			runtime.KeepAlive(v)
			*ctr = v + 1
			if err := s.Unlock(3); err != nil {
				fmt.Println(errName(err))
				return 1
			}
		}
		fmt.Println("done")
		return 0
	}
}

func TestExclusionAcrossProcesses(t *testing.T) { // 20
	iters := 250000
	if testing.Short() {
		iters = 20000
	}
	_, name := newSegment(t, 64)
	ctrPath := filepath.Join(t.TempDir(), "counter")
	if err := os.WriteFile(ctrPath, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	var ws []*worker
	for k := 0; k < 4; k++ {
		w := startWorker(t, nil, "count", DefaultDir, name, ctrPath, strconv.Itoa(iters))
		w.expect("ready")
		ws = append(ws, w)
	}
	for _, w := range ws {
		w.send("go")
	}
	for _, w := range ws {
		w.expect("done")
		if st := w.wait(); st.ExitStatus() != 0 {
			t.Fatalf("worker exit %v", st)
		}
	}
	b, err := os.ReadFile(ctrPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint64(b); got != uint64(4*iters) {
		t.Errorf("counter = %d; want %d", got, 4*iters)
	}
}

func TestUnlockFromOtherProcess(t *testing.T) { // 21
	_, name := newSegment(t, 64)
	h := startWorker(t, nil, "hold", DefaultDir, name, "9")
	h.expect("locked")
	lines := runWorker(t, nil, "tryunlock", DefaultDir, name, "9")
	if len(lines) != 1 || lines[0] != "EPERM EBUSY" {
		t.Errorf("Unlock, ForceUnlock of a live owner's lock = %q; want EPERM EBUSY", lines)
	}
	h.send("unlock 9")
	h.expect("ok")
}

// testRecovery locks index 5 in a holder started with env, starts a waiter
// blocked in Acquire, ends the holder with end, and checks the takeover.
func testRecovery(t *testing.T, env []string, end func(h *worker)) {
	s, name := newSegment(t, 64)
	h := startWorker(t, env, "hold", DefaultDir, name, "5")
	h.expect("locked")
	before := s.Info().Recoveries
	w := startWorker(t, nil, "acquire", DefaultDir, name, "5")
	w.expect("waiting")
	waitUntil(t, "the waiter to sleep", func() bool {
		st, _ := s.Owner(5)
		return st.Waiters > 0
	})
	end(h)
	if got, want := w.line(), fmt.Sprintf("died=true prev=%d recovered=true", h.pid()); got != want {
		t.Errorf("waiter after the holder's end: %q; want %q", got, want)
	}
	if st := w.wait(); st.ExitStatus() != 0 {
		t.Errorf("waiter exit %v", st)
	}
	if got := s.Info().Recoveries; got != before+1 {
		t.Errorf("recoveries = %d; want %d", got, before+1)
	}
	if ok, err := s.TryLock(5); !ok || err != nil {
		t.Errorf("TryLock(5) after recovery = %v, %v", ok, err)
	} else {
		s.Unlock(5)
	}
}

func TestRecoveryAfterSIGKILL(t *testing.T) { // 22
	testRecovery(t, nil, func(h *worker) { h.cmd.Process.Signal(syscall.SIGKILL) })
}

func TestRecoveryAfterExec(t *testing.T) { // 22
	if !registered {
		t.Skip("robust list owned by the C library (cgo or -race): an exec keeps the PID alive and is not detected")
	}
	testRecovery(t, nil, func(h *worker) {
		h.send("exec")
		h.expect("sleeping")
		useRole("sleep")
	})
}

func TestRecoveryWithoutRobustList(t *testing.T) { // 23
	testRecovery(t, []string{"GOTOOLS_SHM_NO_ROBUST=1"}, func(h *worker) { h.cmd.Process.Signal(syscall.SIGKILL) })
}

func TestRecoveryOf2100Locks(t *testing.T) { // 23
	s, name := newSegment(t, 2112)
	h := startWorker(t, nil, "hold", DefaultDir, name, "0-2099")
	h.expect("locked")
	st, err := s.Status()
	if err != nil || len(st) != 2100 {
		t.Fatalf("Status() = %d entries, %v; want 2100", len(st), err)
	}
	covered := 0
	for _, e := range st {
		if e.KernelCovered {
			covered++
		}
	}
	t.Logf("%d of 2100 kernel-covered", covered)
	if want := 2048; registered && covered != want {
		t.Errorf("%d kernel-covered entries; want %d", covered, want)
	}
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.wait()
	for i := uint32(0); i < 2100; i++ {
		a, err := s.Acquire(t.Context(), i, true)
		if err != nil || !a.Locked || !a.OwnerDied || a.PrevOwner != h.pid() {
			t.Fatalf("Acquire(%d) after the holder's death = %+v, %v", i, a, err)
		}
	}
	for i := uint32(0); i < 2100; i++ {
		if err := s.Unlock(i); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStoppedHolder(t *testing.T) { // 24
	s, name := newSegment(t, 64)
	h := startWorker(t, nil, "hold", DefaultDir, name, "7")
	h.expect("locked")
	h.cmd.Process.Signal(syscall.SIGSTOP)
	defer h.cmd.Process.Signal(syscall.SIGCONT)
	var wg sync.WaitGroup
	var terr error
	var took time.Duration
	wg.Go(func() {
		start := time.Now()
		terr = s.LockTimeout(7, 300*time.Millisecond)
		took = time.Since(start)
	})
	waitUntil(t, "a waiter", func() bool {
		st, _ := s.Owner(7)
		return st.Waiters > 0
	})
	st, err := s.Owner(7)
	if err != nil || !st.Locked || st.PID != h.pid() || st.Owner != Alive || st.Comm == "" || st.Waiters < 1 {
		t.Errorf("Owner(7) = %+v, %v", st, err)
	}
	wantErrno(t, "ForceUnlock of a stopped owner", s.ForceUnlock(7), unix.EBUSY)
	wg.Wait()
	wantErrno(t, "LockTimeout(7, 300ms)", terr, unix.ETIMEDOUT)
	if took < 300*time.Millisecond {
		t.Errorf("LockTimeout gave up after %v", took)
	}
	got := make(chan error, 1)
	go func() { got <- s.Lock(7) }()
	waitUntil(t, "a waiter", func() bool {
		st, _ := s.Owner(7)
		return st.Waiters > 0
	})
	h.cmd.Process.Signal(syscall.SIGCONT)
	h.send("unlock 7")
	h.expect("ok")
	if err := <-got; err != nil {
		t.Fatalf("Lock(7) after the holder unlocked = %v", err)
	}
	if err := s.Unlock(7); err != nil {
		t.Fatal(err)
	}
}

func init() {
	// create DIR PREFIX N: say ready, wait for a line, then CreateOrOpen
	// PREFIX0..PREFIX(N-1) and print "created I" for each created.
	workers["create"] = func(args []string) int {
		forceNamedTemp = os.Getenv("GOTOOLS_SHM_TEST_NAMED_TEMP") == "1"
		fmt.Println("ready")
		<-stdinLines()
		for k := 0; k < int(atou(args[2])); k++ {
			s, created, err := CreateOrOpen(args[1]+strconv.Itoa(k), 100, WithDir(args[0]))
			if err != nil {
				fmt.Println(errName(err))
				return 1
			}
			if created {
				fmt.Println("created", k)
			}
			s.Close()
		}
		fmt.Println("done")
		return 0
	}
}

func TestCreateRace(t *testing.T) { // 25
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("namedtemp=%v", named), func(t *testing.T) {
			dir := t.TempDir()
			env := []string{}
			if named {
				env = append(env, "GOTOOLS_SHM_TEST_NAMED_TEMP=1")
			}
			procs, names := 8, 100
			if named {
				procs, names = 4, 50 // the fallback's own check, kept short
			}
			var ws []*worker
			for k := 0; k < procs; k++ {
				w := startWorker(t, env, "create", dir, "r", strconv.Itoa(names))
				w.expect("ready")
				ws = append(ws, w)
			}
			for _, w := range ws {
				w.send("go")
			}
			creators := map[string]int{}
			for _, w := range ws {
				for l := w.line(); l != "done"; l = w.line() {
					if !strings.HasPrefix(l, "created ") {
						t.Fatalf("worker: %q", l)
					}
					creators[l]++
				}
				w.wait()
			}
			for k := 0; k < names; k++ {
				if n := creators["created "+strconv.Itoa(k)]; n != 1 {
					t.Errorf("name r%d created %d times", k, n)
				}
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != names {
				var files []string
				for _, e := range ents {
					files = append(files, e.Name())
				}
				t.Errorf("directory holds %d files; want %d: %v", len(ents), names, files)
			}
		})
	}
}

func TestGrowWhileHeld(t *testing.T) { // 26
	_, name := newSegment(t, 64, WithMaxLocks(2048))
	a := startWorker(t, nil, "hold", DefaultDir, name, "3", "63")
	a.expect("locked")
	b, err := Open(name, 64)
	if err != nil {
		t.Fatal(err)
	}
	// b shares the creator's mapping in this process: use a second process
	// for the growth as the spec's B, and this one as B's observer.
	if err := b.Grow(1024); err != nil {
		t.Fatalf("Grow(1024) = %v", err)
	}
	if b.MaxLocks() != 1024 {
		t.Errorf("MaxLocks() after Grow = %d", b.MaxLocks())
	}
	if ok, err := b.TryLock(3); ok || err != nil {
		t.Errorf("TryLock(3) after Grow = %v, %v; want false", ok, err)
	}
	a.send("lock 1000")
	a.expect("ok")
	a.send("unlock 1000")
	a.expect("ok")
	if lines := runWorker(t, nil, "open", DefaultDir, name, "64"); len(lines) != 1 || lines[0] != "ERANGE" {
		t.Errorf("Open(64) after growth = %q; want ERANGE", lines)
	}
	if lines := runWorker(t, nil, "open", DefaultDir, name, "1024"); len(lines) != 1 || lines[0] != "ok" {
		t.Errorf("Open(1024) after growth = %q; want ok", lines)
	}
	wantErrno(t, "Grow(512)", b.Grow(512), unix.EINVAL)
	wantErrno(t, "Grow(4096)", b.Grow(4096), unix.EFBIG)
	if ok, err := b.TryLock(1000); !ok || err != nil {
		t.Errorf("TryLock(1000) = %v, %v", ok, err)
	}
	b.Unlock(1000)
	a.send("unlock 3")
	a.expect("ok")
	a.send("unlock 63")
	a.expect("ok")
	b.Close()
}

func init() {
	// grow DIR NAME N: Grow to N from another process.
	workers["grow"] = func(args []string) int {
		s := workerOpen(args)
		if s == nil {
			return 1
		}
		fmt.Println(errName(s.Grow(atou(args[2]))))
		return 0
	}
}

func TestGrowSeenByOtherProcess(t *testing.T) {
	s, name := newSegment(t, 64, WithMaxLocks(4096))
	if lines := runWorker(t, nil, "grow", DefaultDir, name, "4096"); len(lines) != 1 || lines[0] != "ok" {
		t.Fatalf("grow worker: %q", lines)
	}
	if s.MaxLocks() != 4096 {
		t.Errorf("MaxLocks() = %d; want 4096", s.MaxLocks())
	}
	if err := s.Lock(4095); err != nil {
		t.Fatalf("Lock(4095) after another process grew = %v", err)
	}
	if err := s.Unlock(4095); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "Lock(4096)", s.Lock(4096), unix.EINVAL)
}

func TestPIDNamespace(t *testing.T) { // 27
	if os.Getuid() != 0 {
		t.Skip("needs root for CLONE_NEWPID")
	}
	s, name := newSegment(t, 64)
	if err := s.Lock(2); err != nil {
		t.Fatal(err)
	}
	defer s.Unlock(2)
	cmd := []string{os.Args[0]}
	w := startWorkerAttr(t, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}, "nsopen", cmd, DefaultDir, name)
	if got := w.line(); got != "EXDEV unknown" {
		t.Errorf("in a new PID namespace: %q; want EXDEV unknown", got)
	}
	w.wait()
}

func init() {
	// nsopen DIR NAME: print Open's errno and index 2's liveness through a
	// read-only handle.
	workers["nsopen"] = func(args []string) int {
		_, err := OpenExisting(args[1], WithDir(args[0]))
		r, rerr := OpenReadOnly(args[1], WithDir(args[0]))
		if rerr != nil {
			fmt.Println(errName(err), errName(rerr))
			return 0
		}
		st, _ := r.Owner(2)
		fmt.Println(errName(err), st.Owner)
		return 0
	}
}

// startWorkerAttr is startWorker with SysProcAttr (namespaces).
func startWorkerAttr(t testing.TB, attr *syscall.SysProcAttr, role string, _ []string, args ...string) *worker {
	t.Helper()
	w := startWorkerCmd(t, nil, role, args...)
	w.cmd.SysProcAttr = attr
	w.start()
	return w
}

func TestNoLeaks(t *testing.T) { // 28
	s, name := newSegment(t, 64)
	o, err := Open(name, 64)
	if err != nil {
		t.Fatal(err)
	}
	path := s.m.path
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	ino := strconv.FormatUint(st.Ino, 10)
	mapped := func() bool {
		b, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 6 && f[4] == ino {
				if f[5] != path {
					t.Errorf("mapping named %q; want %q", f[5], path)
				}
				return true
			}
		}
		return false
	}
	fdOpen := func() bool {
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			var fst unix.Stat_t
			if unix.Stat("/proc/self/fd/"+e.Name(), &fst) == nil && fst.Ino == st.Ino && fst.Dev == st.Dev {
				return true
			}
		}
		return false
	}
	if !mapped() || !fdOpen() {
		t.Fatalf("negative control: mapped %v, fd %v while open", mapped(), fdOpen())
	}
	s.Close()
	if !mapped() {
		t.Errorf("the first of two Closes unmapped the shared mapping")
	}
	o.Close()
	if mapped() || fdOpen() {
		t.Errorf("after Close: mapped %v, fd open %v", mapped(), fdOpen())
	}
	r, err := OpenReadOnly(name)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if mapped() || fdOpen() {
		t.Errorf("after read-only Close: mapped %v, fd open %v", mapped(), fdOpen())
	}
}

// TestUncoveredOwnerWatched (issue 19 item 2): a waiter on a lock whose
// holder the kernel does not cover (here GOTOOLS_SHM_NO_ROBUST=1, as a holder
// past the kernel's 2048 entries or one whose C library kept its list)
// watches the holder's pidfd and takes the lock over as soon as it dies,
// not at its next 1 s liveness check. The bound has 50 times the slack of
// the few milliseconds it takes.
func TestUncoveredOwnerWatched(t *testing.T) {
	s, name := newSegment(t, 64)
	h := startWorker(t, []string{"GOTOOLS_SHM_NO_ROBUST=1"}, "hold", DefaultDir, name, "11")
	h.expect("locked")
	type res struct {
		a   Acquired
		err error
		at  time.Time
	}
	got := make(chan res, 1)
	pidfds := pidfdsOn(h.pid()) // os.Process keeps one of its own
	go func() {
		a, err := s.Acquire(t.Context(), 11, false)
		got <- res{a, err, time.Now()}
	}()
	waitUntil(t, "the waiter to sleep", func() bool {
		st, _ := s.Owner(11)
		return st.Waiters > 0
	})
	waitUntil(t, "the waiter to watch the holder's pidfd", func() bool { return pidfdsOn(h.pid()) > pidfds })
	t0 := time.Now()
	h.cmd.Process.Signal(syscall.SIGKILL)
	r := <-got
	h.wait()
	if r.err != nil || !r.a.OwnerDied || r.a.PrevOwner != h.pid() {
		t.Fatalf("Acquire after the uncovered holder's death = %+v, %v", r.a, r.err)
	}
	d := r.at.Sub(t0)
	t.Logf("recovered %v after the SIGKILL", d)
	if d > 500*time.Millisecond {
		t.Errorf("recovered %v after the SIGKILL; want well under the 1 s liveness poll", d)
	}
	s.Unlock(11)
}

// TestTakenLocksDeadUncoveredHolder (issue 19 item 3): as podman's, which
// try-locks and so repairs such a lock, TakenLocks omits a lock whose
// holder died uncovered by the kernel, before anyone locks it.
func TestTakenLocksDeadUncoveredHolder(t *testing.T) {
	s, name := newSegment(t, 64)
	h := startWorker(t, []string{"GOTOOLS_SHM_NO_ROBUST=1"}, "hold", DefaultDir, name, "9")
	h.expect("locked")
	if taken, err := s.TakenLocks(); err != nil || len(taken) != 1 || taken[0] != 9 {
		t.Fatalf("TakenLocks() with a live holder of 9 = %v, %v", taken, err)
	}
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.wait()
	if taken, err := s.TakenLocks(); err != nil || len(taken) != 0 {
		t.Errorf("TakenLocks() after the uncovered holder's death = %v, %v; want none", taken, err)
	}
	if st, _ := s.Owner(9); st.State() != "held-dead" {
		t.Errorf("Owner(9) = %s; want held-dead (TakenLocks changes nothing)", st.State())
	}
}

func TestForceUnlockDeadOwner(t *testing.T) {
	s, name := newSegment(t, 64)
	wantErrno(t, "ForceUnlock of a free lock", s.ForceUnlock(6), unix.EPERM)
	h := startWorker(t, []string{"GOTOOLS_SHM_NO_ROBUST=1"}, "hold", DefaultDir, name, "6")
	h.expect("locked")
	if st, _ := s.Owner(6); st.KernelCovered || st.Owner != Alive {
		t.Fatalf("Owner(6) of a fallback holder = %+v", st)
	}
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.wait()
	if st, _ := s.Owner(6); st.State() != "held-dead" {
		t.Fatalf("Owner(6) after SIGKILL = %+v; want held-dead", st)
	}
	if err := s.ForceUnlock(6); err != nil {
		t.Fatalf("ForceUnlock of a dead owner's lock = %v", err)
	}
	if st, _ := s.Owner(6); st.State() != "owner-died" {
		t.Errorf("Owner(6) after ForceUnlock = %+v; want owner-died", st)
	}
	if err := s.ForceUnlock(6); err != nil {
		t.Errorf("second ForceUnlock = %v; want nil", err)
	}
	if in := s.Info(); in.Forced != 1 {
		t.Errorf("forced unlocks = %d; want 1", in.Forced)
	}
	a, err := s.Acquire(t.Context(), 6, true)
	if err != nil || !a.Locked || !a.OwnerDied || a.PrevOwner != h.pid() {
		t.Errorf("Acquire after ForceUnlock = %+v, %v; want OwnerDied from %d", a, err, h.pid())
	}
	if st, _ := s.Owner(6); !st.Recovered || st.PrevOwner != h.pid() {
		t.Errorf("Owner(6) = %+v; want recovered from %d", st, h.pid())
	}
	s.Unlock(6)
}

// pidfdsOn counts this process's pidfds on pid (pidfd fdinfo carries
// "Pid:\tN", proc(5)).
func pidfdsOn(pid int) int {
	n := 0
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if link, _ := os.Readlink("/proc/self/fd/" + e.Name()); link != "anon_inode:[pidfd]" {
			continue
		}
		b, _ := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Pid:"); ok && strings.TrimSpace(v) == strconv.Itoa(pid) {
				n++
			}
		}
	}
	return n
}
