//go:build linux

package shm

import (
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/sys"
)

// TestOtherSIGBUSReachesRuntime: with the handler installed, a SIGBUS at an
// address outside every segment still reaches the runtime's handler, which
// turns it into a panic under debug.SetPanicOnFault (else a fatal fault).
func TestOtherSIGBUSReachesRuntime(t *testing.T) {
	needBusPatch(t)
	newSegment(t, 64)
	// os/signal leaves SIGBUS's handler alone (it is not a notify
	// signal to the runtime), so a program that notifies every signal,
	// as lib/sig.NotifyAll does, keeps ours.
	c := make(chan os.Signal, 1)
	signal.Notify(c, unix.SIGBUS)
	signal.Stop(c)
	cur, err := sys.RtSigaction(unix.SIGBUS, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Handler != busTrampolineAddr() {
		t.Fatalf("SIGBUS handler %#x after signal.Notify; want ours, %#x", cur.Handler, busTrampolineAddr())
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(8192); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	var addr uintptr
	func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				if a, ok := r.(interface{ Addr() uintptr }); ok {
					addr = a.Addr()
					return
				}
				panic(r)
			}
		}()
		atomic.AddUint32((*uint32)(unsafe.Pointer(&mem[4096])), 1)
	}()
	if want := uintptr(unsafe.Pointer(&mem[4096])); addr != want {
		t.Fatalf("fault outside a segment: panic at %#x; want the runtime's panic at %#x", addr, want)
	}
}
