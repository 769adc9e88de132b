//go:build linux

package proc

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestAdopt(t *testing.T) {
	sleep := sleepPath(t)
	pid, err := Spawn([]string{sleep, "60"}, Attr{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Adopt(pid)
	if err != nil {
		t.Fatalf("Adopt(own child %d) = %v; want a pidfd", pid, err)
	}
	p.Close()
	// Not descendants: init, and ourselves.
	for _, other := range []int{1, os.Getpid()} {
		if _, err := Adopt(other); !errors.Is(err, ErrNotDescendant) {
			t.Errorf("Adopt(%d) = %v; want ErrNotDescendant", other, err)
		}
	}
	unix.Kill(pid, unix.SIGKILL)
	// A dead, unreaped child: still ours to reap.
	for {
		_, err := Adopt(pid)
		if errors.Is(err, ErrExited) {
			break
		}
		if err != nil {
			t.Fatalf("Adopt(dying child) = %v; want ErrExited", err)
		}
	}
	waitDead(t, pid)
	if _, err := Adopt(pid); !errors.Is(err, ErrNotDescendant) || !errors.Is(err, unix.ESRCH) {
		t.Errorf("Adopt(reaped pid) = %v; want ErrNotDescendant wrapping ESRCH", err)
	}
}
