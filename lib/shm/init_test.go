//go:build linux

package shm

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	// noinit: reports what this package did before its first use: the
	// main thread's robust list head, whether one is registered, and the
	// process's thread count.
	workers["noinit"] = func([]string) int {
		var cur, size uintptr
		_, _, e := unix.RawSyscall(unix.SYS_GET_ROBUST_LIST, uintptr(os.Getpid()),
			uintptr(unsafe.Pointer(&cur)), uintptr(unsafe.Pointer(&size)))
		if e != 0 {
			fmt.Println("get_robust_list:", e)
			return 1
		}
		fmt.Printf("ours=%v registered=%v pid=%d\n", cur == headAddr(), registered, self.pid)
		return 0
	}
}

// TestNoInitWork (issue 16 item 3): a process that links this package but
// opens no segment has no robust list of ours, no keeper and no process
// state: every gotools applet links the package.
func TestNoInitWork(t *testing.T) {
	w := startWorker(t, nil, "noinit")
	got := strings.TrimSpace(w.line())
	w.wait()
	if got != "ours=false registered=false pid=0" {
		t.Errorf("before any use: %s; want no robust list of ours, nothing registered, no state", got)
	}
}
