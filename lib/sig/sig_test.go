//go:build linux

package sig

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Helper roles of the test binary (STYLE.md rule 14), chosen by
// $GOTOOLS_SIG_ROLE. Every role must be used by some test.
var roles = map[string]func(args []string) int{
	// raise N: NotifyAll plus signal.Notify(N), send N and then the
	// sentinel to self, and report on stdout whether N reached the channel.
	"raise": roleRaise,
}

var rolesUsed = map[string]bool{}

func TestMain(m *testing.M) {
	if r := os.Getenv("GOTOOLS_SIG_ROLE"); r != "" {
		f, ok := roles[r]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown role %q\n", r)
			os.Exit(2)
		}
		os.Exit(f(os.Args[1:]))
	}
	code := m.Run()
	if code == 0 && !isFiltered() {
		for r := range roles {
			if !rolesUsed[r] {
				fmt.Fprintf(os.Stderr, "helper role %q is never used\n", r)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// isFiltered reports whether -test.run or -test.skip selected a subset of
// tests, in which case an unused role is expected.
func isFiltered() bool {
	for _, a := range os.Args[1:] {
		for _, p := range []string{"-test.run=", "-test.skip=", "-test.fuzz="} {
			if strings.HasPrefix(a, p) {
				return true
			}
		}
	}
	return false
}

func runRole(t *testing.T, role string, args ...string) *exec.Cmd {
	t.Helper()
	rolesUsed[role] = true
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GOTOOLS_SIG_ROLE="+role)
	return cmd
}

func roleRaise(args []string) int {
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return 2
	}
	s := unix.Signal(n)
	c := make(chan os.Signal, 64)
	NotifyAll(c)
	signal.Notify(c, s)
	caught, err := sawBefore(c, s, 5*time.Second)
	switch {
	case err != nil:
		fmt.Println(err)
		return 2
	case caught:
		fmt.Println("caught")
	default:
		fmt.Println("missed")
	}
	return 0
}

// sentinel is sent after the signal under test, and must be numbered above
// it: see sawBefore.
const sentinel = unix.Signal(64)

// sawBefore raises s and then [sentinel] in this thread, reads c until the
// sentinel arrives, and reports whether s arrived first. c must be notified
// for the sentinel.
//
// The order is certain only this way. A signal a thread sends to itself
// with tgkill(2) is handled before the call returns (signal(7)), so s is
// handed to the runtime before the sentinel is even sent; the runtime's
// signal loop then passes a batch of pending signals on in increasing
// number order (runtime.signal_recv), hence a sentinel numbered above s.
// With kill(2) instead, the two may land on different threads and race.
func sawBefore(c <-chan os.Signal, s unix.Signal, wait time.Duration) (bool, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, tid := os.Getpid(), unix.Gettid()
	if err := unix.Tgkill(pid, tid, s); err != nil {
		return false, err
	}
	if err := unix.Tgkill(pid, tid, sentinel); err != nil {
		return false, err
	}
	deadline := time.After(wait)
	seen := false
	for {
		select {
		case got := <-c:
			switch got {
			case s:
				seen = true
			case sentinel:
				return seen, nil
			}
		case <-deadline:
			return false, fmt.Errorf("%s sent to self never arrived", Name(sentinel))
		}
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want unix.Signal
	}{
		{"bare name", "TERM", unix.SIGTERM},
		{"SIG prefix", "SIGTERM", unix.SIGTERM},
		{"lower case", "term", unix.SIGTERM},
		{"lower case with prefix", "sigterm", unix.SIGTERM},
		{"mixed case", "SiGhUp", unix.SIGHUP},
		{"number", "15", unix.SIGTERM},
		{"number 1", "1", unix.SIGHUP},
		{"number 64", "64", 64},
		{"number 32 has no name but a number", "32", 32},
		{"leading zero as skalibs uint_scan", "015", unix.SIGTERM},
		{"SIG and number as skalibs sig_scan", "SIG9", unix.SIGKILL},
		{"two-letter-plus name", "VTALRM", unix.SIGVTALRM},
		{"IOT alias", "IOT", unix.SIGABRT},
		{"CLD alias", "sigcld", unix.SIGCHLD},
		{"POLL alias", "POLL", unix.SIGIO},
		{"RTMIN", "RTMIN", 34},
		{"SIGRTMIN", "SIGRTMIN", 34},
		{"RTMIN+0", "RTMIN+0", 34},
		{"RTMIN+1", "rtmin+1", 35},
		{"RTMIN+30", "SIGRTMIN+30", 64},
		{"RTMAX", "RTMAX", 64},
		{"RTMAX-1", "RTMAX-1", 63},
		{"RTMAX-30", "sigrtmax-30", 34},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"zero", "0"},
		{"zeros", "00"},
		{"above 64", "65"},
		{"hex", "0x0f"},
		{"plus sign", "+15"},
		{"minus sign", "-15"},
		{"prefix only", "SIG"},
		{"prefix twice", "SIGSIGTERM"},
		{"unknown name", "FOO"},
		{"trailing space", "15 "},
		{"leading space", " TERM"},
		{"trailing newline", "TERM\n"},
		{"NUL", "TERM\x00"},
		{"too many digits", "00000000015"},
		{"huge", "99999999999999999999"},
		{"underscore", "1_5"},
		{"long s folds to S in Unicode", "ſigterm"},
		{"Kelvin sign folds to K in Unicode", "\u212aILL"},
		{"RTMIN+31", "RTMIN+31"},
		{"RTMAX-31", "RTMAX-31"},
		{"RTMIN-1", "RTMIN-1"},
		{"RTMAX+1", "RTMAX+1"},
		{"RTMIN+", "RTMIN+"},
		{"RTMIN++1", "RTMIN++1"},
		{"RTMIN+001", "RTMIN+001"},
		{"RT", "RT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, nil; want an error", tt.in, got)
			}
			if !errors.Is(err, ErrUnknown) {
				t.Errorf("Parse(%q) error %v does not wrap ErrUnknown", tt.in, err)
			}
			if want := fmt.Sprintf("unknown signal %q", tt.in); err.Error() != want {
				t.Errorf("Parse(%q) error = %q; want %q", tt.in, err, want)
			}
		})
	}
}

// The name table uses the generic numbering; x/sys/unix has each
// architecture's own constants.
func TestNamesMatchUnixConstants(t *testing.T) {
	for _, tt := range []struct {
		s    unix.Signal
		want string
	}{
		{unix.SIGHUP, "SIGHUP"}, {unix.SIGINT, "SIGINT"}, {unix.SIGQUIT, "SIGQUIT"},
		{unix.SIGILL, "SIGILL"}, {unix.SIGTRAP, "SIGTRAP"}, {unix.SIGABRT, "SIGABRT"},
		{unix.SIGBUS, "SIGBUS"}, {unix.SIGFPE, "SIGFPE"}, {unix.SIGKILL, "SIGKILL"},
		{unix.SIGUSR1, "SIGUSR1"}, {unix.SIGSEGV, "SIGSEGV"}, {unix.SIGUSR2, "SIGUSR2"},
		{unix.SIGPIPE, "SIGPIPE"}, {unix.SIGALRM, "SIGALRM"}, {unix.SIGTERM, "SIGTERM"},
		{unix.SIGSTKFLT, "SIGSTKFLT"}, {unix.SIGCHLD, "SIGCHLD"}, {unix.SIGCONT, "SIGCONT"},
		{unix.SIGSTOP, "SIGSTOP"}, {unix.SIGTSTP, "SIGTSTP"}, {unix.SIGTTIN, "SIGTTIN"},
		{unix.SIGTTOU, "SIGTTOU"}, {unix.SIGURG, "SIGURG"}, {unix.SIGXCPU, "SIGXCPU"},
		{unix.SIGXFSZ, "SIGXFSZ"}, {unix.SIGVTALRM, "SIGVTALRM"}, {unix.SIGPROF, "SIGPROF"},
		{unix.SIGWINCH, "SIGWINCH"}, {unix.SIGIO, "SIGIO"}, {unix.SIGPWR, "SIGPWR"},
		{unix.SIGSYS, "SIGSYS"},
	} {
		if got := Name(tt.s); got != tt.want {
			t.Errorf("Name(%d) = %q; want %q", int(tt.s), got, tt.want)
		}
	}
}

func TestName(t *testing.T) {
	for _, tt := range []struct {
		s    unix.Signal
		want string
	}{
		{0, "signal 0"},
		{-1, "signal -1"},
		{32, "signal 32"},
		{33, "signal 33"},
		{34, "SIGRTMIN"},
		{35, "SIGRTMIN+1"},
		{63, "SIGRTMIN+29"},
		{64, "SIGRTMAX"},
		{65, "signal 65"},
	} {
		if got := Name(tt.s); got != tt.want {
			t.Errorf("Name(%d) = %q; want %q", int(tt.s), got, tt.want)
		}
	}
}

func TestNameParseRoundTrip(t *testing.T) {
	for s := unix.Signal(1); s <= 64; s++ {
		name := Name(s)
		if s == 32 || s == 33 {
			if want := "signal " + strconv.Itoa(int(s)); name != want {
				t.Errorf("Name(%d) = %q; want %q", int(s), name, want)
			}
		} else if got, err := Parse(name); err != nil || got != s {
			t.Errorf("Parse(Name(%d) = %q) = %v, %v; want %d", int(s), name, got, err, int(s))
		}
		if got, err := Parse(strconv.Itoa(int(s))); err != nil || got != s {
			t.Errorf("Parse(%q) = %v, %v; want %d", strconv.Itoa(int(s)), got, err, int(s))
		}
	}
}

func TestCatchableLeavesOut(t *testing.T) {
	l := Catchable()
	in := map[os.Signal]bool{}
	for _, s := range l {
		if in[s] {
			t.Errorf("Catchable() lists %v twice", s)
		}
		in[s] = true
	}
	for _, s := range []unix.Signal{unix.SIGKILL, unix.SIGSTOP, unix.SIGURG, unix.SIGPROF, 32, 33, 34} {
		if in[s] {
			t.Errorf("Catchable() includes %s (%d)", Name(s), int(s))
		}
	}
	if want := 31 - 4 + 30; len(l) != want {
		t.Errorf("len(Catchable()) = %d; want %d", len(l), want)
	}
	l[0] = unix.SIGKILL
	if Catchable()[0] == unix.SIGKILL {
		t.Errorf("Catchable() returns a shared slice")
	}
}

// notifyAll is NotifyAll with a channel of the recommended size, undone
// when the test ends.
func notifyAll(t *testing.T) chan os.Signal {
	t.Helper()
	c := make(chan os.Signal, 64)
	NotifyAll(c)
	t.Cleanup(func() { signal.Reset() })
	return c
}

// await reads c until want arrives, failing on anything in bad and after a
// generous deadline.
func await(t *testing.T, c <-chan os.Signal, want unix.Signal, bad ...unix.Signal) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-c:
			for _, b := range bad {
				if s == b {
					t.Errorf("received %v; it must never be delivered", s)
				}
			}
			if s == want {
				return
			}
		case <-deadline:
			t.Fatalf("%s sent to self never arrived", Name(want))
		}
	}
}

func TestNotifyAllDelivers(t *testing.T) {
	for _, tt := range []struct {
		name string
		s    unix.Signal
	}{
		{"SIGUSR1", unix.SIGUSR1},
		{"SIGHUP", unix.SIGHUP},
		{"SIGWINCH", unix.SIGWINCH},
		{"SIGRTMIN+1", 35},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := notifyAll(t)
			if err := unix.Kill(os.Getpid(), tt.s); err != nil {
				t.Fatal(err)
			}
			await(t, c, tt.s)
		})
	}
}

// Every signal Catchable lists really reaches the channel: a signal that the
// runtime refused would instead take its default action and end the test
// binary, or vanish and time out here.
func TestNotifyAllDeliversEveryCatchableSignal(t *testing.T) {
	c := notifyAll(t)
	for _, s := range Catchable() {
		if err := unix.Kill(os.Getpid(), s.(unix.Signal)); err != nil {
			t.Fatal(err)
		}
		await(t, c, s.(unix.Signal))
	}
}

func TestNotifyAllDropsSIGURG(t *testing.T) {
	c := notifyAll(t)
	seen, err := sawBefore(c, unix.SIGURG, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if seen {
		t.Errorf("NotifyAll delivered SIGURG")
	}
}

// Negative control for TestNotifyAllDropsSIGURG: with SIGURG asked for as
// well, the same check sees it.
func TestSIGURGIsSeenWhenAskedFor(t *testing.T) {
	c := make(chan os.Signal, 64)
	NotifyAll(c)
	signal.Notify(c, unix.SIGURG)
	t.Cleanup(func() { signal.Reset() })
	seen, err := sawBefore(c, unix.SIGURG, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !seen {
		t.Errorf("SIGURG asked for and sent, but not seen before %s", Name(sentinel))
	}
}

// Why Catchable leaves out 32, 33 and 34: even with signal.Notify, a static
// Go program cannot receive them. 32 and 34 kill it; 33 vanishes into the
// runtime. 35 is the positive control: the helper does report a catch.
func TestRealtimeSignalsTheRuntimeKeeps(t *testing.T) {
	rolesUsed["raise"] = true // even when skipped below: the role is this test's
	for _, tt := range []struct {
		name   string
		s      int
		killed bool   // the helper dies of the signal
		out    string // otherwise its report
	}{
		{"32 kills", 32, true, ""},
		{"33 is swallowed", 33, false, "missed\n"},
		{"34 kills", 34, true, ""},
		{"35 is caught", 35, false, "caught\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if dynamic(t) {
				t.Skip("the test binary links libc (-race?), which owns 32 and 33; gotools is static")
			}
			cmd := runRole(t, "raise", strconv.Itoa(tt.s))
			out, err := cmd.Output()
			st := cmd.ProcessState.Sys().(waitStatus)
			if tt.killed {
				if !st.Signaled() || int(st.Signal()) != tt.s {
					t.Errorf("helper raising %d: %v, output %q; want killed by signal %d", tt.s, err, out, tt.s)
				}
				return
			}
			if err != nil || string(out) != tt.out {
				t.Errorf("helper raising %d: %v, output %q; want exit 0 and %q", tt.s, err, out, tt.out)
			}
		})
	}
}

// dynamic reports whether the running binary has an ELF interpreter, i.e.
// links libc. The race detector needs cgo, so a -race test binary does;
// gotools itself never does (STYLE.md rule 16).
func dynamic(t *testing.T) bool {
	t.Helper()
	f, err := elf.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// waitStatus is what os.ProcessState.Sys returns on Linux, without naming
// the frozen syscall package (unix.Signal is an alias of its Signal).
type waitStatus = interface {
	Signaled() bool
	Signal() unix.Signal
}

func FuzzParse(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzParse.
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			if !errors.Is(err, ErrUnknown) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrUnknown", in, err)
			}
			return
		}
		if s < 1 || s > 64 {
			t.Fatalf("Parse(%q) = %d; out of 1..64", in, int(s))
		}
		name := Name(s)
		if name == "signal "+strconv.Itoa(int(s)) {
			return
		}
		if back, err := Parse(name); err != nil || back != s {
			t.Fatalf("Parse(Name(Parse(%q))) = Parse(%q) = %v, %v; want %d", in, name, back, err, int(s))
		}
	})
}

// TestResetIgnored: an inherited SIG_IGN of signal 32 is gone after
// SelfPipe's reset, as children then see it (/proc/self/status SigIgn).
func TestResetIgnored(t *testing.T) {
	sigIgn := func() uint64 {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
				n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatal("no SigIgn line")
		return 0
	}
	const bit32 = 1 << 31
	act := [8]uint64{1} // SIG_IGN
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, 32, uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0); e != 0 {
		t.Fatalf("rt_sigaction(32, SIG_IGN): %v", e)
	}
	if sigIgn()&bit32 == 0 {
		t.Fatal("signal 32 not ignored after SIG_IGN: the check cannot see it")
	}
	resetIgnored(32, 34)
	if sigIgn()&bit32 != 0 {
		t.Errorf("signal 32 still ignored after resetIgnored")
	}
}
