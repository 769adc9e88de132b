//go:build linux

package shm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// busPatch reports that this architecture has the SIGBUS handler.
const busPatch = true

// busOld is the handler busTrampoline chains to (the runtime's).
//
//lint:ignore U1000 read by sigbus_amd64.s
var busOld uintptr

// busTrampoline is the SIGBUS handler (sigbus_amd64.s); the kernel calls it,
// never Go code.
//
//lint:ignore U1000 called by the kernel; its address is busTrampolineAddr's
func busTrampoline()

// busTrampolineAddr returns busTrampoline's ABI0 address, the one the
// kernel must call.
func busTrampolineAddr() uintptr

// installBus puts the handler in front of the runtime's, which it keeps
// (flags, mask, restorer) and chains to; false if there is no runtime
// handler to chain to (then nothing changes).
func installBus() bool {
	var old rtSigaction
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGBUS), 0,
		uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
		return false
	}
	if old.handler < 2 || old.flags&saSiginfo == 0 || old.flags&saRestorer == 0 {
		return false
	}
	busOld = old.handler
	nw := old
	nw.handler = busTrampolineAddr()
	nw.flags |= saOnstack
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGBUS),
		uintptr(unsafe.Pointer(&nw)), 0, 8, 0, 0)
	return e == 0
}

// rtSigaction is the kernel's struct sigaction (x86_64 layout).
type rtSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const (
	saSiginfo  = 0x4
	saOnstack  = 0x08000000
	saRestorer = 0x04000000
)
