//go:build linux && !amd64

package proc

import (
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// cloneFlags: a plain fork (copy-on-write); only amd64 has the assembly
// that a vfork needs.
const cloneFlags = 0

// clone is clone(2) with flags and no new stack.
//
//go:nosplit
//go:norace
func clone(flags uintptr) (pid uintptr, errno uintptr) {
	a1, a2 := flags, uintptr(0)
	if runtime.GOARCH == "s390x" {
		a1, a2 = 0, flags // the stack comes first there
	}
	r, _, e := syscall.RawSyscall6(unix.SYS_CLONE, a1, a2, 0, 0, 0, 0)
	return r, uintptr(e)
}
