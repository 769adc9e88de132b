//go:build linux

package shm

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// workers are the roles this test binary plays when re-executed with
// GOTOOLS_SHM_WORKER=NAME (filled by init functions of the test files). A
// worker gets os.Args[1:] and its result becomes the exit status.
var workers = map[string]func(args []string) int{}

// sharedName is the segment TestMain creates for the podman port.
var sharedName string

const numLocks = 4 * BitmapSize // the podman tests' count

var nameSeq atomic.Int64

// testName returns a segment name unique to this process and call.
func testName() string {
	return fmt.Sprintf("/gotools-shmtest-%d-%d", os.Getpid(), nameSeq.Add(1))
}

func TestMain(m *testing.M) {
	if w := os.Getenv("GOTOOLS_SHM_WORKER"); w != "" {
		f := workers[w]
		if f == nil {
			fmt.Fprintf(os.Stderr, "shm test: unknown worker %q\n", w)
			os.Exit(2)
		}
		os.Exit(f(os.Args[1:]))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	sharedName = testName()
	if err := Unlink(sharedName); err != nil && !errors.Is(err, unix.ENOENT) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := Create(sharedName, numLocks)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		code = checkRoles()
	}
	if err := Unlink(sharedName); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

// usedRoles records the worker roles started (os/exec's rule: a helper
// role no test uses is a failure, since its test was lost).
var (
	rolesMu   sync.Mutex
	usedRoles = map[string]bool{}
)

// benchRoles are used only by benchmarks.
var benchRoles = map[string]bool{"pairs": true, "handoff": true}

func useRole(role string) {
	rolesMu.Lock()
	usedRoles[role] = true
	rolesMu.Unlock()
}

// checkRoles fails a complete test run (no -run, -bench, -fuzz or -short)
// that left a role unused.
func checkRoles() int {
	for _, f := range []string{"test.run", "test.bench", "test.fuzz", "test.skip"} {
		if fl := flag.Lookup(f); fl != nil && fl.Value.String() != "" {
			return 0
		}
	}
	if testing.Short() {
		return 0
	}
	code := 0
	for role := range workers {
		if role == "sleep" && !registered {
			continue // its test needs the kernel-covered path
		}
		if !usedRoles[role] && !benchRoles[role] {
			fmt.Fprintf(os.Stderr, "shm test: worker role %q is never used\n", role)
			code = 1
		}
	}
	return code
}

// openShared opens the shared segment and, at cleanup, checks that
// DeallocateAll and Close both succeed (the podman tests' harness).
func openShared(t *testing.T) *Segment {
	t.Helper()
	s, err := Open(sharedName, numLocks)
	if err != nil {
		t.Fatalf("Open(%q, %d) = %v", sharedName, numLocks, err)
	}
	t.Cleanup(func() {
		if err := s.DeallocateAll(); err != nil {
			t.Errorf("DeallocateAll() = %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return s
}

// newSegment creates a fresh segment of n locks, unlinked and closed at
// cleanup.
func newSegment(t *testing.T, n uint32, opts ...Option) (*Segment, string) {
	t.Helper()
	name := testName()
	s, err := Create(name, n, opts...)
	if err != nil {
		t.Fatalf("Create(%q, %d) = %v", name, n, err)
	}
	t.Cleanup(func() {
		s.Close()
		if err := Unlink(name, opts...); err != nil && !errors.Is(err, unix.ENOENT) {
			t.Errorf("Unlink(%q) = %v", name, err)
		}
	})
	return s, name
}

func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v; want %v", what, err, want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s = %T, not *shm.Error", what, err)
	}
}
