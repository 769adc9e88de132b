//go:build linux && amd64

package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sigaction is the kernel's struct sigaction on amd64, for installing a
// handler of our own (an assembly trampoline) where os/signal cannot.
type Sigaction struct {
	Handler  uintptr
	Flags    uint64
	Restorer uintptr
	Mask     uint64
}

// The sa_flags bits those handlers use.
const (
	SaSiginfo  = 0x4
	SaRestorer = 0x04000000
	SaOnstack  = 0x08000000
	SaRestart  = 0x10000000
)

// RtSigaction wraps rt_sigaction(2): it installs act for sig unless act is
// nil, and returns the action that was in place.
func RtSigaction(sig unix.Signal, act *Sigaction) (old Sigaction, err error) {
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(&old)), 8, 0, 0)
	if e != 0 {
		return old, wrap("rt_sigaction", e)
	}
	return old, nil
}
