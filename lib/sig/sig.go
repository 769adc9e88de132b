//go:build linux

package sig

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/decimal"
)

// ErrUnknown is wrapped by every [Parse] failure.
var ErrUnknown = errors.New("unknown signal")

// The realtime range as a glibc program sees it. The kernel's realtime
// signals are 32..64 (signal(7)), but glibc reserves 32 and 33 for NPTL and
// defines SIGRTMIN as 34, so that "RTMIN" means 34 to util-linux kill(1)
// and to a C daemon built on glibc. musl reserves 34 too (SIGRTMIN is 35
// there); gotools follows glibc, the common case. skalibs itself has no
// realtime names.
const (
	rtMin unix.Signal = 34
	rtMax unix.Signal = 64
)

// names holds the standard Linux names of signals 1..31 without the SIG
// prefix, indexed by number. The numbering is the generic one of signal(7)
// (x86, arm, arm64, riscv64; not alpha, mips or sparc); a test checks it
// against x/sys/unix's per-arch constants.
var names = [...]string{
	1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS",
	8: "FPE", 9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE",
	14: "ALRM", 15: "TERM", 16: "STKFLT", 17: "CHLD", 18: "CONT", 19: "STOP",
	20: "TSTP", 21: "TTIN", 22: "TTOU", 23: "URG", 24: "XCPU", 25: "XFSZ",
	26: "VTALRM", 27: "PROF", 28: "WINCH", 29: "IO", 30: "PWR", 31: "SYS",
}

// alias reads the other names skalibs' sigtable accepts on Linux: SIGIOT,
// SIGCLD and SIGPOLL are the same numbers as ABRT, CHLD and IO (signal(7)).
// A switch, not a map: a package-level map is built at every process's
// start, and every applet links this package (issue 16 item 3).
func alias(u string) (unix.Signal, bool) {
	switch u {
	case "IOT":
		return unix.SIGABRT, true
	case "CLD":
		return unix.SIGCHLD, true
	case "POLL":
		return unix.SIGIO, true
	}
	return 0, false
}

// Parse reads a signal as s6 does (skalibs sig0_scan): a name from the
// standard Linux table, with or without "SIG", in any ASCII case ("TERM",
// "SIGTERM", "term"); or a decimal number 1..64 ("15", also "SIG15" and
// "015", as skalibs' uint_scan reads it), with no sign, base prefix or
// spaces. It also reads kill(1)'s realtime names "RTMIN", "RTMIN+n",
// "RTMAX-n" and "RTMAX" in glibc numbering (SIGRTMIN = 34). Anything else
// is an error wrapping [ErrUnknown].
func Parse(s string) (unix.Signal, error) {
	if n, ok := parse(s); ok {
		return n, nil
	}
	return 0, fmt.Errorf("%w %q", ErrUnknown, s)
}

func parse(s string) (unix.Signal, bool) {
	u, ok := upper(s)
	if !ok {
		return 0, false
	}
	if len(u) > 3 && u[:3] == "SIG" {
		u = u[3:]
	}
	if n, ok := number(u, 10); ok {
		return unix.Signal(n), n >= 1 && n <= int(rtMax)
	}
	for n, name := range names {
		if name != "" && name == u {
			return unix.Signal(n), true
		}
	}
	if n, ok := alias(u); ok {
		return n, true
	}
	return parseRT(u)
}

// parseRT reads "RTMIN", "RTMAX", "RTMIN+n" and "RTMAX-n" with n of one or
// two decimal digits, staying within 34..64.
func parseRT(u string) (unix.Signal, bool) {
	if len(u) < 5 {
		return 0, false
	}
	var base, sign int
	switch u[:5] {
	case "RTMIN":
		base, sign = int(rtMin), 1
	case "RTMAX":
		base, sign = int(rtMax), -1
	default:
		return 0, false
	}
	rest := u[5:]
	if rest == "" {
		return unix.Signal(base), true
	}
	if (sign > 0 && rest[0] != '+') || (sign < 0 && rest[0] != '-') {
		return 0, false
	}
	n, ok := number(rest[1:], 2)
	if !ok {
		return 0, false
	}
	v := base + sign*n
	return unix.Signal(v), v >= int(rtMin) && v <= int(rtMax)
}

// number reads 1..maxLen ASCII digits.
func number(s string, maxLen int) (int, bool) {
	n, ok := decimal.Parse(s, maxLen, math.MaxInt32)
	return int(n), ok
}

// upper upper-cases ASCII letters and refuses any other byte above 0x7e:
// strings.ToUpper would turn "ſigterm" (long s) into "SIGTERM".
func upper(s string) (string, bool) {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c > '~':
			return "", false
		}
	}
	return string(b), true
}

// Name returns the canonical name of s: "SIGTERM" for the standard signals
// 1..31, "SIGRTMIN", "SIGRTMIN+n" and "SIGRTMAX" for 34..64 (glibc
// numbering, as [Parse] reads them), and "signal N" for anything else,
// including 32 and 33, which glibc keeps for itself and which have no name.
// [Parse] reads back every name Name returns.
func Name(s unix.Signal) string {
	switch {
	case s >= 1 && int(s) < len(names):
		return "SIG" + names[s]
	case s == rtMin:
		return "SIGRTMIN"
	case s == rtMax:
		return "SIGRTMAX"
	case s > rtMin && s < rtMax:
		return "SIGRTMIN+" + strconv.Itoa(int(s-rtMin))
	}
	return "signal " + strconv.Itoa(int(s))
}

// Catchable returns, in increasing order, every signal that os/signal can
// deliver to a channel in a static (CGO_ENABLED=0) Go program on Linux and
// that gotools wants to handle. It leaves out:
//   - SIGKILL and SIGSTOP, which signal(7) says cannot be caught;
//   - SIGURG, the Go runtime's preemption signal (runtime/preempt.go), sent
//     to our own threads all the time and indistinguishable from a SIGURG
//     someone else sent;
//   - SIGPROF, which the runtime's handler always consumes for the profiler
//     (runtime.sighandler returns before sigsend, and sigenable ignores it);
//   - 32, 33 and 34, which runtime/sigtab_linux_generic.go marks as libc's
//     (glibc SIGCANCEL and SIGSETXID, musl SIGSYNCCALL) without _SigNotify:
//     signal.Notify is a no-op for them. 33 is the runtime's own
//     per-thread-syscall signal and is silently consumed; 32 and 34 get no
//     handler at all, so one sent to a gotools process kills it.
//
// The slice is fresh on each call.
func Catchable() []os.Signal {
	var l []os.Signal
	for s := unix.Signal(1); s <= rtMax; s++ {
		switch s {
		case unix.SIGKILL, unix.SIGSTOP, unix.SIGURG, unix.SIGPROF, 32, 33, 34:
			continue
		}
		l = append(l, s)
	}
	return l
}

// NotifyAll relays every signal in [Catchable] to c, as
// signal.Notify(c, Catchable()...) does. Call it before spawning any child,
// so that a signal sent between the spawn and the first receive is queued
// rather than acted on by its default disposition (SIGTERM would kill us).
// os/signal drops a signal when c is full, so size c for bursts: 64 is
// enough for one of each signal.
//
// It also resets to SIG_DFL signals 32 and 34 if they were inherited
// ignored (GNU make, for one, starts its commands so): os/signal cannot
// catch them (see [Catchable]), so an ignore would otherwise pass through
// every exec to the children of a supervisor or an init, whose promise is
// that they start with default dispositions.
func NotifyAll(c chan<- os.Signal) {
	resetIgnored(32, 34)
	signal.Notify(c, Catchable()...)
}

// SelfPipe catches every [Catchable] signal and writes its number, one
// byte per delivery, to a non-blocking close-on-exec pipe whose read end
// it returns, so that an event loop built on poll(2) sees signals as
// readable bytes. One goroutine relays os/signal's channel into the pipe.
// A full pipe drops a byte; a reader that acts on SIGCHLD by reaping until
// nothing is left loses nothing by it. Like [NotifyAll], it resets
// inherited ignores of signals 32 and 34.
func SelfPipe() (int, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return -1, fmt.Errorf("unable to create the signal pipe: %w", err)
	}
	c := make(chan os.Signal, 64)
	NotifyAll(c)
	go func() {
		for v := range c {
			_, _ = unix.Write(p[1], []byte{byte(v.(unix.Signal))})
		}
	}()
	return p[0], nil
}

// resetIgnored sets the signals that are SIG_IGN back to SIG_DFL, with raw
// rt_sigaction(2) calls (os/signal has no say over them). The kernel's
// struct sigaction starts with the handler on every architecture (SIG_IGN
// is 1); 8 words hold any layout; all zeros is SIG_DFL, no flags, empty
// mask.
func resetIgnored(sigs ...unix.Signal) {
	for _, s := range sigs {
		var old, act [8]uint64
		_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(s), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0)
		if e == 0 && old[0] == 1 {
			_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(s), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
		}
	}
}
