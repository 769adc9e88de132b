//go:build linux && amd64

package sig

import (
	"fmt"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/sys"
)

// sigtramp is the raw handler (raw_amd64.s): it writes the signal number,
// one byte, to rawPipeW, and returns. sigreturn is its restorer.
//
//lint:ignore U1000 called by the kernel, through addrs
func sigtramp()

//lint:ignore U1000 called by the kernel, through addrs
func sigreturn()

// addrs returns the ABI0 addresses of sigtramp and sigreturn.
func addrs() (tramp, ret uintptr)

// rawPipeW is the write end the handler writes to; -1 until RawPipe.
//
//lint:ignore U1000 read by sigtramp
var rawPipeW int32 = -1

// RawPipe is [SelfPipe] without os/signal: each signal of [Catchable]
// but the synchronous faults (SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV,
// which stay the Go runtime's) and 32-34 get a small handler of our own
// that writes its number, one byte per delivery, to a non-blocking
// close-on-exec pipe whose read end it returns. os/signal costs a process
// three threads for life (its signal-mask thread, the template thread its
// LockOSThread starts, and the one its receiving goroutine blocks); an
// idle supervisor has none of them. Children get every handled signal at
// its default disposition, as exec resets handlers. A full pipe drops a
// byte, as SelfPipe does. Call it once per process.
//
// A write of ours to a stdout or stderr whose reader is gone fails with
// EPIPE instead of killing us (the runtime kills a program that writes to
// a broken fd 1 or 2 unless SIGPIPE is ignored or notified: it is marked
// ignored for the runtime, then handled here).
func RawPipe() (int, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return -1, fmt.Errorf("unable to create the signal pipe: %w", err)
	}
	rawPipeW = int32(p[1])
	signal.Ignore(unix.SIGPIPE)
	tramp, ret := addrs()
	for _, s := range Catchable() {
		switch s {
		case unix.SIGILL, unix.SIGTRAP, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV:
			continue
		}
		sa := sys.Sigaction{Handler: tramp, Flags: sys.SaOnstack | sys.SaRestart | sys.SaRestorer, Restorer: ret, Mask: ^uint64(0)}
		if _, err := sys.RtSigaction(s.(unix.Signal), &sa); err != nil {
			return -1, fmt.Errorf("unable to catch %s: %w", Name(s.(unix.Signal)), sys.Errno(err))
		}
	}
	resetIgnored(32, 34)
	return p[0], nil
}
