// Command staticbench runs one of podmanbench's sequences on gotools'
// lib/shm in a pure-Go process, as the static gotools binary runs it.
//
// A process that links cgo (podmanbench itself, for podman's package) has a
// robust-futex list that glibc registered first, so lib/shm leaves it alone
// and runs without kernel coverage there (spec/shmlock.md, "Process
// set-up"). podmanbench builds this command with CGO_ENABLED=0 and runs it
// for the "gotools-static" results.
//
//	staticbench OP
//
// OP is lock-unlock, alloc-dealloc, taken, free or contended. It repeats
// the operation, doubling the count until a run lasts a second, and prints
// "N NS_PER_OP BYTES_PER_OP ALLOCS_PER_OP" for that run (contended: the
// time per pair, two processes together; the memory of this process's
// pairs).
// "staticbench worker NAME N" is contended's second process.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/gotools-dev/gotools/lib/shm"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "staticbench: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 3 && args[0] == "worker" {
		return worker(args[1], args[2])
	}
	if len(args) != 1 {
		return fmt.Errorf("usage: staticbench lock-unlock|alloc-dealloc|taken|free|contended")
	}
	name := fmt.Sprintf("/gotools-podmanbench-static-%d", os.Getpid())
	s, err := shm.Create(name, 2048)
	if err != nil {
		return err
	}
	defer shm.Unlink(name)
	defer s.Close()
	op, perOp, err := operation(args[0], s, name)
	if err != nil {
		return err
	}
	for n := 1; ; n *= 2 {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		d, err := op(n)
		if err != nil {
			return err
		}
		runtime.ReadMemStats(&m1)
		if d >= time.Second || n >= 1<<30 {
			fmt.Printf("%d %.2f %d %d\n", n, float64(d.Nanoseconds())/float64(n*perOp),
				(m1.TotalAlloc-m0.TotalAlloc)/uint64(n), (m1.Mallocs-m0.Mallocs)/uint64(n))
			return nil
		}
	}
}

// operation returns the timed loop of op (n iterations) and the number of
// operations each iteration counts for.
func operation(op string, s *shm.Segment, name string) (func(n int) (time.Duration, error), int, error) {
	timed := func(f func() error) func(n int) (time.Duration, error) {
		return func(n int) (time.Duration, error) {
			t0 := time.Now()
			for range n {
				if err := f(); err != nil {
					return 0, err
				}
			}
			return time.Since(t0), nil
		}
	}
	switch op {
	case "lock-unlock":
		return timed(func() error { return pair(s) }), 1, nil
	case "alloc-dealloc":
		return timed(func() error {
			i, err := s.Allocate()
			if err == nil {
				err = s.Deallocate(i)
			}
			return err
		}), 1, nil
	case "taken":
		if err := s.Lock(7); err != nil {
			return nil, 0, err
		}
		return timed(func() error { _, err := s.TakenLocks(); return err }), 1, nil
	case "free":
		return timed(func() error { _, err := s.FreeLocks(); return err }), 1, nil
	case "contended":
		return func(n int) (time.Duration, error) { return contended(s, name, n) }, 2, nil
	}
	return nil, 0, fmt.Errorf("unknown operation %q", op)
}

func pair(s *shm.Segment) error {
	if err := s.Lock(0); err != nil {
		return err
	}
	return s.Unlock(0)
}

// contended runs n pairs here and n in a worker process at once.
func contended(s *shm.Segment, name string, n int) (time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(self, "worker", name, strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		cmd.Wait()
		return 0, fmt.Errorf("worker said %q, %v", line, err)
	}
	t0 := time.Now()
	if _, err := stdin.Write([]byte{1}); err != nil {
		return 0, err
	}
	for range n {
		if err := pair(s); err != nil {
			return 0, err
		}
	}
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("worker: %w", err)
	}
	return time.Since(t0), nil
}

func worker(name, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil {
		return err
	}
	s, err := shm.Open(name, 2048)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Println("ready")
	if _, err := os.Stdin.Read(make([]byte, 1)); err != nil {
		return err
	}
	for range n {
		if err := pair(s); err != nil {
			return err
		}
	}
	return nil
}
