//go:build linux

package shm

import (
	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/sys"
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
	old, err := sys.RtSigaction(unix.SIGBUS, nil)
	if err != nil || old.Handler < 2 || old.Flags&sys.SaSiginfo == 0 || old.Flags&sys.SaRestorer == 0 {
		return false
	}
	busOld = old.Handler
	nw := old
	nw.Handler = busTrampolineAddr()
	nw.Flags |= sys.SaOnstack
	_, err = sys.RtSigaction(unix.SIGBUS, &nw)
	return err == nil
}
