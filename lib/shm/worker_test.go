//go:build linux

package shm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A worker is this test binary re-executed in a role (see workers). Roles
// talk line by line: they print "ready" or a result on stdout and wait for
// commands or EOF on stdin.
type worker struct {
	t    testing.TB
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  chan string
	done chan struct{}
	err  error // the Wait result, valid after done
}

// startWorker starts role with args; the worker is killed and reaped at
// cleanup if still running.
func startWorker(t testing.TB, env []string, role string, args ...string) *worker {
	t.Helper()
	w := startWorkerCmd(t, env, role, args...)
	w.start()
	return w
}

// startWorkerCmd prepares a worker; start runs it.
func startWorkerCmd(t testing.TB, env []string, role string, args ...string) *worker {
	t.Helper()
	useRole(role)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "GOTOOLS_SHM_WORKER="+role), env...)
	cmd.Stderr = os.Stderr
	return &worker{t: t, cmd: cmd, out: make(chan string, 100), done: make(chan struct{})}
}

func (w *worker) start() {
	t := w.t
	t.Helper()
	in, err := w.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	w.in = in
	outR, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			w.out <- sc.Text()
		}
		close(w.out)
		w.err = w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		w.cmd.Process.Kill()
		<-w.done
	})
}

func (w *worker) pid() int { return w.cmd.Process.Pid }

// line returns the worker's next stdout line, failing after 20 s.
func (w *worker) line() string {
	w.t.Helper()
	select {
	case l, ok := <-w.out:
		if !ok {
			<-w.done
			w.t.Fatalf("worker %d ended (%v) without a line", w.pid(), w.err)
		}
		return l
	case <-time.After(20 * time.Second):
		w.t.Fatalf("worker %d: no line within 20s", w.pid())
	}
	return ""
}

// expect reads a line and fails unless it equals want.
func (w *worker) expect(want string) {
	w.t.Helper()
	if got := w.line(); got != want {
		w.t.Fatalf("worker %d said %q; want %q", w.pid(), got, want)
	}
}

func (w *worker) send(s string) {
	w.t.Helper()
	if _, err := io.WriteString(w.in, s+"\n"); err != nil {
		w.t.Fatal(err)
	}
}

// wait waits for the worker's end and returns its wait status.
func (w *worker) wait() syscall.WaitStatus {
	w.t.Helper()
	w.in.Close()
	select {
	case <-w.done:
	case <-time.After(60 * time.Second):
		w.t.Fatalf("worker %d did not exit within 60s", w.pid())
	}
	return w.cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// runWorker runs role to completion and returns its stdout lines, failing
// unless it exited 0.
func runWorker(t testing.TB, env []string, role string, args ...string) []string {
	t.Helper()
	w := startWorker(t, env, role, args...)
	var lines []string
	for l := range w.out {
		lines = append(lines, l)
	}
	if ws := w.wait(); !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("worker %s %v: %v, output %q", role, args, w.err, lines)
	}
	return lines
}

// errName prints an error as the errno's name, "ok" for nil.
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e)
	}
	return err.Error()
}

func atou(s string) uint32 {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		panic(err)
	}
	return uint32(n)
}

// workerOpen opens args[0] in args[1] (a directory) and returns the handle,
// or prints the errno and returns nil.
func workerOpen(args []string) *Segment {
	s, err := OpenExisting(args[1], WithDir(args[0]))
	if err != nil {
		fmt.Println(errName(err))
		return nil
	}
	return s
}

// stdinLines delivers stdin's lines, closed at EOF.
func stdinLines() <-chan string {
	c := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			c <- sc.Text()
		}
		close(c)
	}()
	return c
}

func init() {
	// open DIR NAME [COUNT]: print Open's result and the status of a
	// read-only open.
	workers["open"] = func(args []string) int {
		var n uint32
		var s *Segment
		var err error
		if len(args) > 2 {
			n = atou(args[2])
			s, err = Open(args[1], n, WithDir(args[0]))
		} else {
			s, err = OpenExisting(args[1], WithDir(args[0]))
		}
		fmt.Println(errName(err))
		if s != nil {
			s.Close()
		}
		return 0
	}
	// hold DIR NAME I...: lock each I, say "locked", then obey stdin:
	// "unlock I", "lock I"; exits at EOF without unlocking.
	workers["hold"] = func(args []string) int {
		s := workerOpen(args)
		if s == nil {
			return 1
		}
		for _, a := range args[2:] {
			if strings.Contains(a, "-") {
				lo, hi, _ := strings.Cut(a, "-")
				for i := atou(lo); i <= atou(hi); i++ {
					if err := s.Lock(i); err != nil {
						fmt.Println(errName(err))
						return 1
					}
				}
				continue
			}
			if err := s.Lock(atou(a)); err != nil {
				fmt.Println(errName(err))
				return 1
			}
		}
		fmt.Println("locked")
		for l := range stdinLines() {
			cmd, arg, _ := strings.Cut(l, " ")
			switch cmd {
			case "unlock":
				fmt.Println(errName(s.Unlock(atou(arg))))
			case "lock":
				fmt.Println(errName(s.Lock(atou(arg))))
			case "exec":
				// the kernel treats an exec as the holder's death
				var env []string
				for _, e := range os.Environ() {
					if !strings.HasPrefix(e, "GOTOOLS_SHM_WORKER=") {
						env = append(env, e)
					}
				}
				env = append(env, "GOTOOLS_SHM_WORKER=sleep")
				err := unix.Exec(os.Args[0], []string{os.Args[0]}, env)
				fmt.Println(errName(err))
			}
		}
		return 0
	}
	// sleep: wait for stdin EOF.
	workers["sleep"] = func([]string) int {
		fmt.Println("sleeping")
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
	// acquire DIR NAME I [TIMEOUT_MS]: say "waiting", Acquire I, print the
	// result, unlock, exit.
	workers["acquire"] = func(args []string) int {
		s := workerOpen(args)
		if s == nil {
			return 1
		}
		ctx := context.Background()
		if len(args) > 3 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(atou(args[3]))*time.Millisecond)
			defer cancel()
		}
		i := atou(args[2])
		fmt.Println("waiting")
		a, err := s.Acquire(ctx, i, false)
		if err != nil {
			fmt.Println(errName(err))
			return 0
		}
		st, _ := s.Owner(i)
		fmt.Printf("died=%v prev=%d recovered=%v\n", a.OwnerDied, a.PrevOwner, st.Recovered)
		if err := s.Unlock(i); err != nil {
			fmt.Println(errName(err))
		}
		return 0
	}
	// tryunlock DIR NAME I: print Unlock's and ForceUnlock's errnos.
	workers["tryunlock"] = func(args []string) int {
		s := workerOpen(args)
		if s == nil {
			return 1
		}
		i := atou(args[2])
		fmt.Println(errName(s.Unlock(i)), errName(s.ForceUnlock(i)))
		return 0
	}
}
