//go:build linux

package sys

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// start runs argv as a child that this test reaps itself with [Wait4]: the
// os.Process is released at once (STYLE.md rule 9), and the child is
// killed and reaped at cleanup if the test has not done so.
func start(t *testing.T, argv ...string) int {
	t.Helper()
	p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{Files: []*os.File{nil, nil, os.Stderr}})
	if err != nil {
		t.Fatal(err)
	}
	pid := p.Pid
	p.Release()
	t.Cleanup(func() {
		if unix.Kill(pid, unix.SIGKILL) == nil {
			var ws unix.WaitStatus
			Wait4(pid, &ws, 0)
		}
	})
	return pid
}

func pipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Close(p[0])
		unix.Close(p[1])
	})
	return p[0], p[1]
}

// unusedPID returns a pid that no process has: pids go up to pid_max-1
// (proc(5) /proc/sys/kernel/pid_max).
func unusedPID(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWait4Exit(t *testing.T) {
	pid := start(t, "/bin/sh", "-c", "exit 7")
	var ws unix.WaitStatus
	wpid, err := Wait4(pid, &ws, 0)
	if err != nil || wpid != pid {
		t.Fatalf("Wait4(%d) = %d, %v; want %d, nil", pid, wpid, err, pid)
	}
	if !ws.Exited() || ws.ExitStatus() != 7 {
		t.Errorf("Wait4(%d) status %#x; want exit 7", pid, uint32(ws))
	}
}

func TestWait4Signal(t *testing.T) {
	pid := start(t, "/bin/sleep", "1000")
	var ws unix.WaitStatus
	if wpid, err := Wait4(pid, &ws, unix.WNOHANG); err != nil || wpid != 0 {
		t.Fatalf("Wait4(%d, WNOHANG) on a live child = %d, %v; want 0, nil", pid, wpid, err)
	}
	if err := Kill(pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wpid, err := Wait4(pid, &ws, 0)
	if err != nil || wpid != pid {
		t.Fatalf("Wait4(%d) = %d, %v; want %d, nil", pid, wpid, err, pid)
	}
	if !ws.Signaled() || ws.Signal() != unix.SIGTERM {
		t.Errorf("Wait4(%d) status %#x; want killed by SIGTERM", pid, uint32(ws))
	}
}

func TestWait4NotAChild(t *testing.T) {
	var ws unix.WaitStatus
	_, err := Wait4(1, &ws, unix.WNOHANG)
	if !errors.Is(err, unix.ECHILD) {
		t.Errorf("Wait4(1) = %v; want ECHILD", err)
	}
	var se *os.SyscallError
	if !errors.As(err, &se) || se.Syscall != "wait4" {
		t.Errorf("Wait4(1) error %#v is not an *os.SyscallError for wait4", err)
	}
}

func TestReadWritePipe(t *testing.T) {
	r, w := pipe(t)
	if n, err := Write(w, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write(pipe, hello) = %d, %v; want 5, nil", n, err)
	}
	b := make([]byte, 16)
	n, err := Read(r, b)
	if err != nil || string(b[:n]) != "hello" {
		t.Errorf("Read(pipe) = %q, %v; want \"hello\"", b[:n], err)
	}
	unix.Close(w)
	if n, err := Read(r, b); n != 0 || err != nil {
		t.Errorf("Read(pipe) after the writer closed = %d, %v; want 0, nil (EOF)", n, err)
	}
}

// A write larger than the pipe's capacity (64 KiB by default, pipe(7))
// returns short unless Write loops; the reader must see every byte.
func TestWriteLargeBufferThroughPipe(t *testing.T) {
	r, w := pipe(t)
	want := make([]byte, 4<<20+12345)
	for i := range want {
		want[i] = byte(i*7 + i>>13)
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		var got bytes.Buffer
		b := make([]byte, 3000) // odd size: many short reads
		for {
			n, err := Read(r, b)
			if err != nil || n == 0 {
				done <- result{got.Bytes(), err}
				return
			}
			got.Write(b[:n])
		}
	}()
	n, err := Write(w, want)
	if n != len(want) || err != nil {
		t.Errorf("Write(pipe, %d bytes) = %d, %v", len(want), n, err)
	}
	unix.Close(w)
	res := <-done
	if res.err != nil || !bytes.Equal(res.b, want) {
		t.Errorf("reader got %d bytes, %v; want the %d bytes written", len(res.b), res.err, len(want))
	}
}

func TestWriteToClosedPipe(t *testing.T) {
	r, w := pipe(t)
	unix.Close(r)
	// Go ignores SIGPIPE for fds other than 1 and 2 (os/signal), so the
	// write fails with EPIPE instead of killing the test.
	_, err := Write(w, []byte("x"))
	if !errors.Is(err, unix.EPIPE) {
		t.Errorf("Write to a pipe without readers = %v; want EPIPE", err)
	}
}

func cloexec(t *testing.T, fd int) bool {
	t.Helper()
	v, err := Fcntl(fd, unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	return v&unix.FD_CLOEXEC != 0
}

func TestOpenAddsCloexec(t *testing.T) {
	fd, err := Open("/dev/null", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if !cloexec(t, fd) {
		t.Errorf("Open(/dev/null, O_RDONLY) gave an fd without FD_CLOEXEC")
	}
	// Negative control: the check does see a missing flag.
	raw, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(raw)
	if cloexec(t, raw) {
		t.Errorf("unix.Open without O_CLOEXEC gave an fd with FD_CLOEXEC: the check proves nothing")
	}
}

func TestOpenMissing(t *testing.T) {
	p := t.TempDir() + "/none"
	_, err := Open(p, unix.O_RDONLY, 0)
	if !errors.Is(err, unix.ENOENT) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(%q) = %v; want ENOENT, fs.ErrNotExist", p, err)
	}
	if want := "open: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("Open(%q) error = %q; want %q", p, err, want)
	}
}

func TestFcntl(t *testing.T) {
	_, w := pipe(t)
	fl, err := Fcntl(w, unix.F_GETFL, 0)
	if err != nil || fl&unix.O_ACCMODE != unix.O_WRONLY {
		t.Errorf("Fcntl(pipe write end, F_GETFL) = %#x, %v; want O_WRONLY", fl, err)
	}
	if _, err := Fcntl(-1, unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Errorf("Fcntl(-1) = %v; want EBADF", err)
	}
}

func TestPoll(t *testing.T) {
	r, w := pipe(t)
	fds := []unix.PollFd{{Fd: int32(r), Events: unix.POLLIN}}
	if n, err := Poll(fds, 0); n != 0 || err != nil {
		t.Errorf("Poll(empty pipe, 0) = %d, %v; want 0, nil", n, err)
	}
	if _, err := Write(w, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, err := Poll(fds, -1); n != 1 || err != nil || fds[0].Revents&unix.POLLIN == 0 {
		t.Errorf("Poll(readable pipe) = %d, %v, revents %#x; want 1, nil, POLLIN", n, err, fds[0].Revents)
	}
}

// pollInterrupted blocks poll in a goroutine on its own thread, waits until
// /proc says that thread sleeps in ppoll (x/sys's Poll is ppoll(2)), sends
// it a signal with tgkill(2), then makes the pipe readable, and returns
// what poll returned. signal(7): ppoll is never restarted after a signal
// handler runs, whatever SA_RESTART says, so an unwrapped poll sees EINTR.
func pollInterrupted(t *testing.T, poll func([]unix.PollFd, int) (int, error)) (int, error) {
	t.Helper()
	r, w := pipe(t)
	type result struct {
		n   int
		err error
	}
	tids := make(chan int, 1)
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // the thread exits with the goroutine
		tids <- unix.Gettid()
		n, err := poll([]unix.PollFd{{Fd: int32(r), Events: unix.POLLIN}}, -1)
		done <- result{n, err}
	}()
	tid := <-tids
	path := fmt.Sprintf("/proc/self/task/%d/syscall", tid)
	want := strconv.Itoa(unix.SYS_PPOLL) + " "
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Skipf("cannot see the blocked syscall: %v", err)
		}
		if strings.HasPrefix(string(b), want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d never blocked in ppoll: %s says %q", tid, path, b)
		}
		runtime.Gosched()
	}
	// SIGURG: the Go runtime handles it (preemption) and it is harmless.
	if err := unix.Tgkill(os.Getpid(), tid, unix.SIGURG); err != nil {
		t.Fatal(err)
	}
	// Make the pipe readable only once the signal was taken: ppoll checks
	// its fds before it checks for signals, so an early write would win.
	waitTaken(t, tid, unix.SIGURG, deadline)
	if _, err := Write(w, []byte("x")); err != nil {
		t.Fatal(err)
	}
	res := <-done
	return res.n, res.err
}

// waitTaken waits until signal s is no longer pending for thread tid
// (proc(5) /proc/PID/task/TID/status SigPnd, a hex mask of bit s-1).
func waitTaken(t *testing.T, tid int, s unix.Signal, deadline time.Time) {
	t.Helper()
	path := fmt.Sprintf("/proc/self/task/%d/status", tid)
	for {
		b, err := os.ReadFile(path)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return // poll returned and the locked thread exited
		}
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(string(b), "\nSigPnd:\t")
		if !ok {
			t.Fatalf("%s has no SigPnd line", path)
		}
		mask, err := strconv.ParseUint(rest[:16], 16, 64)
		if err != nil {
			t.Fatalf("%s: bad SigPnd: %v", path, err)
		}
		if mask&(1<<(s-1)) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v never left thread %d's pending set", s, tid)
		}
		runtime.Gosched()
	}
}

func TestPollRetriesEINTR(t *testing.T) {
	if n, err := pollInterrupted(t, Poll); n != 1 || err != nil {
		t.Errorf("Poll interrupted by a signal = %d, %v; want 1, nil", n, err)
	}
}

// Negative control for TestPollRetriesEINTR: the raw call does see EINTR,
// so the test above really interrupted a poll.
func TestRawPollSeesEINTR(t *testing.T) {
	if _, err := pollInterrupted(t, unix.Poll); !errors.Is(err, unix.EINTR) {
		t.Errorf("unix.Poll interrupted by a signal = %v; want EINTR", err)
	}
}

func TestPidfd(t *testing.T) {
	pid := start(t, "/bin/sleep", "1000")
	pidfd, err := PidfdOpen(pid)
	if errors.Is(err, unix.ENOSYS) {
		t.Skip("pidfd_open(2) needs Linux 5.3")
	}
	if err != nil {
		t.Fatalf("PidfdOpen(%d) = %v", pid, err)
	}
	defer unix.Close(pidfd)
	if !cloexec(t, pidfd) {
		t.Errorf("PidfdOpen(%d) gave an fd without FD_CLOEXEC", pid)
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	if n, err := Poll(fds, 0); n != 0 || err != nil {
		t.Errorf("Poll(pidfd of a live child, 0) = %d, %v; want 0, nil", n, err)
	}
	if err := PidfdSendSignal(pidfd, unix.SIGUSR1); err != nil {
		t.Fatalf("PidfdSendSignal(%d, SIGUSR1) = %v", pidfd, err)
	}
	// pidfd_open(2): the pidfd becomes readable when the process dies.
	if n, err := Poll(fds, -1); n != 1 || err != nil {
		t.Errorf("Poll(pidfd of a dying child) = %d, %v; want 1, nil", n, err)
	}
	var ws unix.WaitStatus
	if wpid, err := Wait4(pid, &ws, 0); err != nil || wpid != pid || !ws.Signaled() || ws.Signal() != unix.SIGUSR1 {
		t.Errorf("Wait4(%d) = %d, %v, status %#x; want killed by SIGUSR1", pid, wpid, err, uint32(ws))
	}
	// The pidfd still names the reaped process, not whoever reuses pid.
	err = PidfdSendSignal(pidfd, unix.SIGUSR1)
	if !errors.Is(err, unix.ESRCH) {
		t.Errorf("PidfdSendSignal to a reaped process = %v; want ESRCH", err)
	}
	var se *os.SyscallError
	if !errors.As(err, &se) || se.Syscall != "pidfd_send_signal" {
		t.Errorf("PidfdSendSignal error %#v is not an *os.SyscallError for pidfd_send_signal", err)
	}
}

func TestPidfdOpenNoProcess(t *testing.T) {
	pid := unusedPID(t)
	if _, err := PidfdOpen(pid); !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOSYS) {
		t.Errorf("PidfdOpen(%d) = %v; want ESRCH", pid, err)
	}
}

func TestKill(t *testing.T) {
	if err := Kill(os.Getpid(), 0); err != nil {
		t.Errorf("Kill(self, 0) = %v; want nil", err)
	}
	pid := unusedPID(t)
	if err := Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("Kill(%d, 0) = %v; want ESRCH", pid, err)
	}
}

func TestPrctl(t *testing.T) {
	if err := Prctl(-1, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("Prctl(-1) = %v; want EINVAL", err)
	}
	// PR_SET_DUMPABLE to its current value changes nothing.
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := Prctl(unix.PR_SET_DUMPABLE, uintptr(v)); err != nil {
		t.Errorf("Prctl(PR_SET_DUMPABLE, %d) = %v; want nil", v, err)
	}
}
