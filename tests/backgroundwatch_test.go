package tests

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/applets/backgroundwatch"
)

// End-to-end acceptance tests of background-watch
// (spec/background-watch.md "Acceptance tests"); the run under a real
// s6-supervise is in interop_s6_test.go.
//
// Synchronisation is always on an event, never on time: the notification
// fd (-d 3) says that the pid file was read and phase 2 has begun, a
// launcher or daemon prints a line once its signal handlers are in place,
// a signal recorder's file is polled for the line a signal leaves.
//
// Daemons that may die early are never children of a shell: dash reaps a
// background child that died (wait4(-1, WNOHANG) on SIGCHLD, between two
// commands, builtins included), and then its status is lost and
// background-watch rightly exits 111 (TestBackgroundWatchDaemonReapedByAnother).
// Those daemons are started by the Go daemonize role, which never reaps.
// Daemons that are children of a shell stay alive until background-watch
// has taken them over.

// bwStart starts "background-watch -d 3 ARGS..." with the write end of a
// new pipe as fd 3 and extra as fds 4, 5, ..., and returns it with the
// pipe's read end. The test's copy of the write end is closed, so the read
// end sees EOF once background-watch has closed fd 3 (or exited). The
// caller closes its copies of extra.
func bwStart(t *testing.T, extra []*os.File, args ...string) (*Proc, *os.File) {
	t.Helper()
	r, w := pipe(t)
	p := startIn(t, Opts{ExtraFiles: append([]*os.File{w}, extra...)},
		append([]string{"background-watch", "-d", "3"}, args...)...)
	w.Close()
	return p, r
}

// bwWaitReady waits for background-watch's readiness notification on r:
// exactly one newline, then EOF. It marks the pid file as read and checked.
func bwWaitReady(t *testing.T, p *Proc, r *os.File) {
	t.Helper()
	if got := readToEOF(t, r); got != "\n" {
		t.Fatalf("%q: notification fd read %q; want %q (background-watch %s, stderr %q)",
			p.Argv, got, "\n", bwState(p), p.Stderr())
	}
}

// bwState describes p for failure messages: "running", or how it ended.
func bwState(p *Proc) string {
	if p.Running() {
		return "running"
	}
	return p.result().Status()
}

// bwPoll returns what the pipe read end r holds right now, without waiting,
// and whether it is at EOF (every write end closed). os.Pipe makes r
// non-blocking, so a read of an empty pipe with a writer left gives EAGAIN.
// Call it before any readToEOF on r, whose deadline would stop it.
func bwPoll(t *testing.T, r *os.File) (data string, eof bool) {
	t.Helper()
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatalf("bwPoll: %v", err)
	}
	var got []byte
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		buf := make([]byte, 512)
		for {
			n, err := unix.Read(int(fd), buf)
			switch {
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.EAGAIN):
				return true
			case err != nil:
				rerr = err
				return true
			case n == 0:
				eof = true
				return true
			}
			got = append(got, buf[:n]...)
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		t.Fatalf("bwPoll: read %q, then %v", got, err)
	}
	return string(got), eof
}

// bwWaitRecord waits until the signal record file holds exactly want. It
// fails as soon as the file holds something that is not the beginning of
// want (a signal too many, or out of order), rather than at the deadline.
func bwWaitRecord(t *testing.T, file, want string) {
	t.Helper()
	var got string
	waitFor(t, fmt.Sprintf("%s to hold %q", file, want), func() bool {
		b, _ := os.ReadFile(file)
		got = string(b)
		return got == want || !strings.HasPrefix(want, got)
	})
	if got != want {
		t.Fatalf("signal record %s = %q; want %q", file, got, want)
	}
}

// bwDir returns the names in dir, sorted.
func bwDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir(%q) = %v", dir, err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// bwPids reads the decimal pids after prefix in the lines of s.
func bwPids(t *testing.T, s, prefix string) []int {
	t.Helper()
	var pids []int
	for _, l := range lines(s) {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			pid, err := strconv.Atoi(rest)
			if err != nil {
				t.Fatalf("line %q: want %s and a pid", l, prefix)
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

// bwKillOrphan checks that pid is a child of bw, kills it, and waits until
// bw has reaped it: its /proc entry is gone (a zombie keeps one).
func bwKillOrphan(t *testing.T, bw *Proc, pid int) {
	t.Helper()
	if st, err := readStat(pid); err != nil || st.PPid != bw.Pid || st.State == 'Z' {
		t.Fatalf("orphan %d: readStat = %v, %v; want alive, child of background-watch %d", pid, st, err, bw.Pid)
	}
	// It is alive and unreaped, so the pid is still its own.
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatalf("kill(%d, SIGTERM) = %v", pid, err)
	}
	waitFor(t, fmt.Sprintf("background-watch to reap orphan %d", pid), func() bool {
		st, err := readStat(pid)
		return err != nil || st.PPid != bw.Pid // gone, or the number reused
	})
}

// bwExitCase is a daemon exit code and what background-watch must exit with.
type bwExitCase struct {
	name       string
	exit, want int
}

// bwExitCases are the daemon exit codes 0..255 with the code background-watch
// must relay: the code itself below 128, 128 from 128 on (exitcode.Approx).
func bwExitCases() []bwExitCase {
	var cases []bwExitCase
	for n := range 256 {
		cases = append(cases, bwExitCase{name: strconv.Itoa(n), exit: n, want: min(n, 128)})
	}
	return cases
}

// TestBackgroundWatchRelaysDaemonExitCodes runs a daemon that exits n, for
// every n in 0..255, and expects background-watch to exit n, or 128 for n
// >= 128 (exitcode.Approx), with nothing on stderr.
func TestBackgroundWatchRelaysDaemonExitCodes(t *testing.T) {
	t.Parallel()
	// The daemon, a shell, is alive when its pid is read: it blocks on fd
	// 4 until the test closes the pipe's write end, which it does only
	// once background-watch has notified (pid file read and checked).
	// background-watch is then in phase 2 and waits for it.
	t.Run("alive when read", func(t *testing.T) {
		t.Parallel()
		for _, tt := range bwExitCases() {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				pidfile := filepath.Join(t.TempDir(), "pid")
				hold, release := pipe(t)
				p, notif := bwStart(t, []*os.File{hold}, pidfile, "sh", "-c",
					`sh -c "read x <&4; exit $1" & echo $! > "$2"`, "launcher", strconv.Itoa(tt.exit), pidfile)
				hold.Close()
				bwWaitReady(t, p, notif)
				if !p.Running() {
					t.Fatalf("background-watch %s before its daemon exited; want it up (stderr %q)", bwState(p), p.Stderr())
				}
				release.Close()
				if r := p.Wait(t); r.Code != tt.want || r.Stderr != "" {
					t.Errorf("background-watch with a daemon that exits %d = %s, stderr %q; want exit %d, no stderr",
						tt.exit, r.Status(), r.Stderr, tt.want)
				}
			})
		}
	})
	// The daemon exits as soon as it is ready, when its launcher is about
	// to write the pid file and exit: in some runs it is dead before the
	// read (its status kept from phase 1, or taken once the pidfd shows it
	// dead), in others alive. Every path must give the same code.
	t.Run("racing the read", func(t *testing.T) {
		t.Parallel()
		for _, tt := range bwExitCases() {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				pidfile := filepath.Join(t.TempDir(), "pid")
				argv := []string{"background-watch", pidfile, "daemonize", pidfile, "0", "-after", "0", "-code", strconv.Itoa(tt.exit)}
				if r := run(t, argv...); r.Code != tt.want || r.Stderr != "" {
					t.Errorf("run(%q) = %s, stderr %q; want exit %d, no stderr", argv, r.Status(), r.Stderr, tt.want)
				}
			})
		}
	})
}

// TestBackgroundWatchRelaysDaemonFate ends a daemon that background-watch
// took over (it notified) by sending a signal to the daemon itself, not to
// background-watch: background-watch exits 128+n when the daemon is killed
// by signal n, and the daemon's code otherwise (42 -> 42, 200 -> 128). It
// never touches the pid file in phase 2, and leaves no file behind.
func TestBackgroundWatchRelaysDaemonFate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		daemon []string // flags of the daemon role
		send   unix.Signal
		want   int
	}{
		{name: "exit 42", daemon: []string{"-on", "USR1", "-code", "42"}, send: unix.SIGUSR1, want: 42},
		{name: "exit 200", daemon: []string{"-on", "USR1", "-code", "200"}, send: unix.SIGUSR1, want: 128},
		{name: "exit 0", daemon: []string{"-on", "USR1", "-code", "0"}, send: unix.SIGUSR1, want: 0},
		{name: "killed by TERM", send: unix.SIGTERM, want: 143},
		{name: "killed by HUP", daemon: []string{"-on", "HUP"}, send: unix.SIGHUP, want: 129},
		{name: "killed by INT", daemon: []string{"-on", "INT"}, send: unix.SIGINT, want: 130},
		{name: "killed by USR1", daemon: []string{"-on", "USR1"}, send: unix.SIGUSR1, want: 138},
		{name: "killed by USR2", daemon: []string{"-on", "USR2"}, send: unix.SIGUSR2, want: 140},
		{name: "killed by KILL", send: unix.SIGKILL, want: 137},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			pidfile := filepath.Join(dir, "pid")
			rec := filepath.Join(t.TempDir(), "signals")
			p, notif := bwStart(t, nil, append([]string{pidfile, "daemonize", pidfile, "0", "-record", rec}, tt.daemon...)...)
			bwWaitReady(t, p, notif)
			daemon := readPidfile(t, pidfile)
			// Its launcher is gone: the daemon was re-parented to
			// background-watch, its subreaper.
			if st, err := readStat(daemon); err != nil || st.PPid != p.Pid {
				t.Fatalf("daemon %d: readStat = %v, %v; want a child of background-watch %d", daemon, st, err, p.Pid)
			}
			if err := unix.Kill(daemon, tt.send); err != nil {
				t.Fatalf("kill(%d, %s) = %v", daemon, unix.SignalName(tt.send), err)
			}
			r := p.Wait(t)
			if r.Code != tt.want || r.Stderr != "" {
				t.Errorf("background-watch after %s to its daemon = %s, stderr %q; want exit %d, no stderr",
					unix.SignalName(tt.send), r.Status(), r.Stderr, tt.want)
			}
			wantRec := sigName(tt.send) + "\n"
			if tt.send == unix.SIGKILL {
				wantRec = "" // not catchable, so never recorded
			}
			if b, _ := os.ReadFile(rec); string(b) != wantRec {
				t.Errorf("daemon recorded %q; want %q", b, wantRec)
			}
			if b, err := os.ReadFile(pidfile); string(b) != fmt.Sprintf("%d\n", daemon) {
				t.Errorf("pid file after background-watch exited: %q, %v; want %q, untouched", b, err, fmt.Sprintf("%d\n", daemon))
			}
			if got := bwDir(t, dir); !slices.Equal(got, []string{"pid"}) {
				t.Errorf("pid file directory holds %q; want only %q", got, "pid")
			}
		})
	}
}

// forwardLauncher is a shell launcher for the signal forwarding test. It
// appends the name of each signal it gets to $1, for the five of the spec,
// URG (a shell can trap it, unlike a Go program) and WINCH. ALRM releases
// it: it records it and becomes a daemonize that starts a daemon recording
// to $3 (ending on ALRM), writes the pid file $2 and exits 0. It waits in
// "wait", which a trapped signal interrupts, so each trap runs at once.
//
// The release both sets go and kills the sleep: a shell runs a trap
// between commands, so one that ran after the loop's test and before
// "wait" would otherwise leave the shell waiting 1000 s. With the sleep
// gone, that "wait" returns at once (the same holds for the launchers
// below).
const forwardLauncher = `
rec=$1
for sig in HUP USR1 USR2 TERM INT URG WINCH; do trap "echo $sig >> \"\$rec\"" $sig; done
sleep 1000 & s=$!
trap 'echo ALRM >> "$rec"; go=1; kill $s' ALRM
echo launcher ready
until [ -n "$go" ]; do wait $s 2>/dev/null; done
wait $s 2>/dev/null
exec daemonize "$2" 0 -record "$3" -on ALRM
`

// shellDaemon is a daemon that can catch SIGURG: it records URG, WINCH and
// TERM to $1, and exits 3 on TERM. (A shell's background job ignores INT,
// so this one is not asked to record it.)
const shellDaemon = `
rec=$1
trap 'echo URG >> "$rec"' URG
trap 'echo WINCH >> "$rec"' WINCH
trap 'echo TERM >> "$rec"; kill $s; wait $s 2>/dev/null; exit 3' TERM
sleep 1000 & s=$!
echo daemon ready
while :; do wait $s; done
`

// TestBackgroundWatchForwardsSignals sends HUP, USR1, USR2, TERM and INT to
// background-watch, each once the previous one was recorded (the kernel
// merges pending signals of one kind), and expects them, in order, at the
// launcher in phase 1 and at the daemon in phase 2. SIGURG is never
// forwarded: it is sent, then WINCH, and the recorder must hold WINCH and
// no URG. A forwarded URG could not arrive after WINCH: everything on the
// way (the kernel's delivery, the Go runtime's signal queue, dash's trap
// loop) takes the lowest pending signal number first, and URG (23) is
// lower than WINCH (28).
func TestBackgroundWatchForwardsSignals(t *testing.T) {
	t.Parallel()
	five := []unix.Signal{unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGTERM, unix.SIGINT}
	// send sends each of five, then URG and WINCH, to bw and waits for
	// each to be recorded in rec; it returns the record.
	send := func(t *testing.T, bw *Proc, rec string) string {
		t.Helper()
		var want string
		for _, sig := range five {
			bw.Signal(sig)
			want += sigName(sig) + "\n"
			bwWaitRecord(t, rec, want)
		}
		bw.Signal(unix.SIGURG)
		bw.Signal(unix.SIGWINCH)
		want += "WINCH\n"
		bwWaitRecord(t, rec, want)
		return want
	}

	t.Run("to the launcher, then to the daemon", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		pidfile, lrec, drec := filepath.Join(dir, "pid"), filepath.Join(dir, "launcher"), filepath.Join(dir, "daemon")
		p, notif := bwStart(t, nil, pidfile, "sh", "-c", forwardLauncher, "launcher", lrec, pidfile, drec)
		p.WaitLine(t, "^launcher ready$")

		want := send(t, p, lrec)
		if _, err := os.Stat(pidfile); err == nil {
			t.Fatal("pid file written before the launcher was released")
		}
		p.Signal(unix.SIGALRM) // releases the launcher
		bwWaitReady(t, p, notif)
		if b, _ := os.ReadFile(lrec); string(b) != want+"ALRM\n" {
			t.Errorf("launcher recorded %q; want %q", b, want+"ALRM\n")
		}

		want = send(t, p, drec)
		if z := zombiesUnder(t, p.Pid); len(z) != 0 {
			t.Errorf("zombies under background-watch in phase 2: %v; want none", z)
		}
		p.Signal(unix.SIGALRM) // ends the daemon, killed by it
		if r := p.Wait(t); r.Code != 128+int(unix.SIGALRM) || r.Stderr != "" {
			t.Errorf("background-watch after ALRM = %s, stderr %q; want exit %d (daemon killed by SIGALRM), no stderr",
				r.Status(), r.Stderr, 128+int(unix.SIGALRM))
		}
		if b, _ := os.ReadFile(drec); string(b) != want+"ALRM\n" {
			t.Errorf("daemon recorded %q; want %q", b, want+"ALRM\n")
		}
	})

	t.Run("no URG to a shell daemon", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		pidfile, rec := filepath.Join(dir, "pid"), filepath.Join(dir, "daemon")
		p, notif := bwStart(t, nil, pidfile, "sh", "-c", `sh -c "$3" daemon "$2" & echo $! > "$1"`,
			"launcher", pidfile, rec, shellDaemon)
		bwWaitReady(t, p, notif)
		p.WaitLine(t, "^daemon ready$")
		p.Signal(unix.SIGURG)
		p.Signal(unix.SIGWINCH)
		bwWaitRecord(t, rec, "WINCH\n")
		p.Signal(unix.SIGTERM)
		if r := p.Wait(t); r.Code != 3 || r.Stderr != "" {
			t.Errorf("background-watch after TERM = %s, stderr %q; want exit 3 (the daemon's), no stderr", r.Status(), r.Stderr)
		}
		if b, _ := os.ReadFile(rec); string(b) != "WINCH\nTERM\n" {
			t.Errorf("daemon recorded %q; want %q", b, "WINCH\nTERM\n")
		}
	})
}

// TestBackgroundWatchLauncherFails runs launchers that exit non-zero or are
// killed, with a stale pid file in place: background-watch warns once,
// exits with the approximation of the launcher's status, and removes the
// pid file (stale, or written by the failed launcher).
func TestBackgroundWatchLauncherFails(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		launcher []string // PIDFILE in it is replaced by the pid file's path
		want     int
		warning  string
	}{
		{name: "exits 5", launcher: []string{"exitwith", "5"}, want: 5,
			warning: "exitwith (parent) exited 5"},
		{name: "exits 200", launcher: []string{"exitwith", "200"}, want: 128,
			warning: "exitwith (parent) exited 200"},
		{name: "killed by TERM", launcher: []string{"killself", "TERM"}, want: 143,
			warning: "killself (parent) crashed with signal SIGTERM"},
		{name: "killed by KILL", launcher: []string{"killself", "KILL"}, want: 137,
			warning: "killself (parent) crashed with signal SIGKILL"},
		{name: "writes the pid file, exits 5", launcher: []string{"daemonize", "PIDFILE", "5"}, want: 5,
			warning: "daemonize (parent) exited 5"},
		{name: "writes the pid file, killed by TERM", launcher: []string{"daemonize", "PIDFILE", "TERM"}, want: 143,
			warning: "daemonize (parent) crashed with signal SIGTERM"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			pidfile := filepath.Join(dir, "pid")
			if err := os.WriteFile(pidfile, []byte("12345\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			argv := []string{"background-watch", pidfile}
			for _, a := range tt.launcher {
				argv = append(argv, strings.ReplaceAll(a, "PIDFILE", pidfile))
			}
			r := run(t, argv...)
			want := "background-watch: warning: " + tt.warning + "\n"
			if r.Code != tt.want || r.Stderr != want {
				t.Errorf("run(%q) = %s, stderr %q; want exit %d, stderr %q", argv, r.Status(), r.Stderr, tt.want, want)
			}
			if got := bwDir(t, dir); len(got) != 0 {
				t.Errorf("pid file directory holds %q after the launcher failed; want it empty (pid file removed)", got)
			}
		})
	}
}

// TestBackgroundWatchBadPidfile has the launcher exit 0 with a pid file that
// is missing, holds no pid, or names a process that is not a live
// descendant: 104 for the first kinds and 111 for the last, each with one
// fatal line naming the file or the pid.
func TestBackgroundWatchBadPidfile(t *testing.T) {
	t.Parallel()
	// An unrelated live process: started by the test, not by background-watch.
	other := start(t, "sleeper")
	other.WaitLine(t, "^ready$")
	for _, tt := range []struct {
		name    string
		args    []string // daemonize's options; "OTHER" is replaced by the sleeper's pid
		want    int
		message string // %[1]s is the pid file; %[2]d the pid it holds
	}{
		{name: "missing", args: []string{"-write", "none"}, want: 104,
			message: "fatal: unable to read pidfile %[1]s: No such file or directory"},
		{name: "empty", args: []string{"-content", ""}, want: 104,
			message: "fatal: pidfile %[1]s does not contain a valid pid"},
		{name: "abc", args: []string{"-content", "abc"}, want: 104,
			message: "fatal: pidfile %[1]s does not contain a valid pid"},
		{name: "12x", args: []string{"-content", "12x"}, want: 104,
			message: "fatal: pidfile %[1]s does not contain a valid pid"},
		{name: "zero", args: []string{"-content", "0\n"}, want: 104,
			message: "fatal: pidfile %[1]s does not contain a valid pid"},
		{name: "pid 1", args: []string{"-content", "1\n"}, want: 111,
			message: "fatal: pid %[2]d read from %[1]s is not a live descendant"},
		{name: "unrelated live process", args: []string{"-content", "OTHER\n"}, want: 111,
			message: "fatal: pid %[2]d read from %[1]s is not a live descendant"},
		// The launcher's own pid: it is dead (and reaped) by then.
		{name: "dead process", args: []string{"-write", "self"}, want: 111,
			message: "fatal: pid %[2]d read from %[1]s is not a live descendant: No such process"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pidfile := filepath.Join(t.TempDir(), "pid")
			argv := []string{"background-watch", pidfile, "daemonize"}
			for _, a := range tt.args {
				argv = append(argv, strings.ReplaceAll(a, "OTHER", strconv.Itoa(other.Pid)))
			}
			argv = append(argv, pidfile, "0")
			r := run(t, argv...)
			var pid int
			if tt.want == 111 {
				pid = readPidfile(t, pidfile)
			}
			want := "background-watch: " + fmt.Sprintf(tt.message, pidfile, pid) + "\n"
			if r.Code != tt.want || r.Stderr != want {
				t.Errorf("run(%q) = %s, stderr %q; want exit %d, stderr %q", argv, r.Status(), r.Stderr, tt.want, want)
			}
		})
	}
	if !other.Running() {
		t.Errorf("the unrelated sleeper %s; want it untouched", bwState(other))
	}
}

// TestBackgroundWatchTimeout checks -t: a launcher that never exits is
// killed and reaped, and background-watch exits 137 no sooner than the
// timeout, with exactly one warning; -t 0 waits forever; and the timeout
// no longer applies once the launcher has exited.
func TestBackgroundWatchTimeout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		args     []string // PIDFILE is replaced by the pid file's path
		release  bool     // wait for "ready", then send USR1 to background-watch
		atLeast  time.Duration
		want     int
		warnings string
	}{
		{name: "-t 200 kills a launcher that never exits", args: []string{"-t", "200", "PIDFILE", "trapsig"},
			atLeast: 200 * time.Millisecond, want: 137,
			warnings: "trapsig (parent) did not exit within 200 ms: killing it"},
		{name: "--timeout-ready=200", args: []string{"--timeout-ready=200", "PIDFILE", "trapsig"},
			atLeast: 200 * time.Millisecond, want: 137,
			warnings: "trapsig (parent) did not exit within 200 ms: killing it"},
		// A -t 0 that fired at once would kill trapsig before it is ready.
		{name: "-t 0 waits forever", args: []string{"-t", "0", "PIDFILE", "trapsig", "-on", "USR1", "-code", "5"},
			release: true, want: 5, warnings: "trapsig (parent) exited 5"},
		// The daemon outlives the timeout by 200 ms, in phase 2.
		{name: "-t 1000 ends with the launcher", args: []string{"-t", "1000", "PIDFILE", "daemonize", "PIDFILE", "0", "-after", "1200", "-code", "42"},
			atLeast: 1000 * time.Millisecond, want: 42},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			pidfile := filepath.Join(dir, "pid")
			argv := []string{"background-watch"}
			for _, a := range tt.args {
				argv = append(argv, strings.ReplaceAll(a, "PIDFILE", pidfile))
			}
			begin := time.Now()
			p := start(t, argv...)
			if tt.release {
				p.WaitLine(t, "^ready$")
				p.Signal(unix.SIGUSR1)
			}
			r := p.Wait(t)
			elapsed := time.Since(begin)
			var want string
			if tt.warnings != "" {
				want = "background-watch: warning: " + tt.warnings + "\n"
			}
			if r.Code != tt.want || r.Stderr != want {
				t.Errorf("%q = %s, stderr %q; want exit %d, stderr %q", argv, r.Status(), r.Stderr, tt.want, want)
			}
			if elapsed < tt.atLeast {
				t.Errorf("%q exited after %v; want no sooner than %v", argv, elapsed, tt.atLeast)
			}
			// The launcher was killed and reaped by background-watch: a
			// live one, or a zombie re-parented to us, would still be in
			// the group.
			if tt.want == 137 {
				if left := groupMembers(p.Pid); len(left) != 0 {
					t.Errorf("%q left %v behind; want the launcher killed and reaped", argv, left)
				}
			}
		})
	}
}

// notifyLauncher is a shell launcher that runs daemonize (which starts a
// daemon, writes the pid file $1 and exits 0) and then holds on until it
// gets USR1, so the pid file is complete well before the launcher exits.
// The daemon writes the fds it inherited to $2.
const notifyLauncher = `
daemonize "$1" 0 -fds "$2" || exit 1
sleep 1000 & s=$!
trap 'go=1; kill $s' USR1
echo launcher ready
until [ -n "$go" ]; do wait $s 2>/dev/null; done
wait $s 2>/dev/null
exit 0
`

// TestBackgroundWatchNotificationFD checks -d 3: the fd gets exactly one
// newline, then EOF, only once the launcher has exited and the pid file was
// read, nothing when the pid file is garbage, and neither the launcher nor
// the daemon inherits it.
func TestBackgroundWatchNotificationFD(t *testing.T) {
	t.Parallel()
	t.Run("newline after the pid file was read", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		pidfile, fds := filepath.Join(dir, "pid"), filepath.Join(dir, "fds")
		p, notif := bwStart(t, nil, pidfile, "sh", "-c", notifyLauncher, "launcher", pidfile, fds)
		p.WaitLine(t, "^launcher ready$")
		daemon := readPidfile(t, pidfile)
		// The daemon is up and its pid file written, but the launcher has
		// not exited: no notification yet.
		if got, eof := bwPoll(t, notif); got != "" || eof {
			t.Fatalf("notification fd before the launcher exited: read %q, EOF %v; want nothing, fd still open", got, eof)
		}
		// Checked before waiting for EOF, which a leaked copy would hold off.
		want := fmt.Sprintf("0 -> /dev/null\n1 -> %s\n2 -> %s\n", p.outPath, p.errPath)
		if b, err := os.ReadFile(fds); string(b) != want {
			t.Fatalf("daemon's inherited fds: %q, %v; want %q (no fd 3)", b, err, want)
		}
		p.Signal(unix.SIGUSR1) // the launcher exits 0
		bwWaitReady(t, p, notif)
		p.Signal(unix.SIGTERM)
		if r := p.Wait(t); r.Code != 143 || r.Stderr != "" {
			t.Errorf("background-watch after TERM = %s, stderr %q; want exit 143 (daemon %d killed by SIGTERM), no stderr",
				r.Status(), r.Stderr, daemon)
		}
	})
	t.Run("EOF without a newline for abc", func(t *testing.T) {
		t.Parallel()
		pidfile := filepath.Join(t.TempDir(), "pid")
		p, notif := bwStart(t, nil, pidfile, "daemonize", "-content", "abc", pidfile, "0")
		r := p.Wait(t)
		want := fmt.Sprintf("background-watch: fatal: pidfile %s does not contain a valid pid\n", pidfile)
		if r.Code != 104 || r.Stderr != want {
			t.Errorf("background-watch = %s, stderr %q; want exit 104, stderr %q", r.Status(), r.Stderr, want)
		}
		// The daemon daemonize started is still alive: EOF now means it
		// holds no copy of fd 3.
		if got, eof := bwPoll(t, notif); got != "" || !eof {
			t.Errorf("notification fd after background-watch exited 104: read %q, EOF %v; want nothing, EOF", got, eof)
		}
	})
}

// TestBackgroundWatchReapsUnrelatedOrphans kills orphans re-parented to
// background-watch, one while the launcher runs and two in phase 2: each is
// reaped (no zombie is left under background-watch) and none ends it, nor
// sends the daemon anything; then the daemon's exit ends it with the
// daemon's code.
func TestBackgroundWatchReapsUnrelatedOrphans(t *testing.T) {
	t.Parallel()
	const launcher = `
orphans 1 > "$2"
sleep 1000 & s=$!
trap 'go=1; kill $s' ALRM
echo launcher ready
until [ -n "$go" ]; do wait $s 2>/dev/null; done
wait $s 2>/dev/null
exec daemonize -orphans 2 "$1" 0 -on USR1 -code 42 -record "$3"
`
	dir := t.TempDir()
	pidfile, orphanFile, rec := filepath.Join(dir, "pid"), filepath.Join(dir, "orphan"), filepath.Join(dir, "signals")
	p, notif := bwStart(t, nil, pidfile, "sh", "-c", launcher, "launcher", pidfile, orphanFile, rec)
	p.WaitLine(t, "^launcher ready$")

	// Phase 1: the orphans role has exited, its sleeper is ours.
	b, err := os.ReadFile(orphanFile)
	first := bwPids(t, string(b), "")
	if err != nil || len(first) != 1 {
		t.Fatalf("orphans 1 printed %q, %v; want one pid", b, err)
	}
	bwKillOrphan(t, p, first[0])
	if !p.Running() {
		t.Fatalf("background-watch %s after an orphan died in phase 1; want it up (stderr %q)", bwState(p), p.Stderr())
	}

	p.Signal(unix.SIGALRM) // releases the launcher
	bwWaitReady(t, p, notif)
	more := bwPids(t, p.Stdout(), "orphan ")
	if len(more) != 2 {
		t.Fatalf("daemonize -orphans 2 printed %q; want 2 orphan lines", p.Stdout())
	}
	for _, pid := range more {
		bwKillOrphan(t, p, pid)
	}
	if z := zombiesUnder(t, p.Pid); len(z) != 0 {
		t.Errorf("zombies under background-watch: %v; want none", z)
	}
	if !p.Running() {
		t.Fatalf("background-watch %s after orphans died in phase 2; want it up (stderr %q)", bwState(p), p.Stderr())
	}
	if kids := children(t, p.Pid); len(kids) != 1 || kids[0].Pid != readPidfile(t, pidfile) {
		t.Errorf("children of background-watch: %v; want the daemon alone", kids)
	}

	p.Signal(unix.SIGUSR1)
	if r := p.Wait(t); r.Code != 42 || r.Stderr != "" {
		t.Errorf("background-watch after USR1 = %s, stderr %q; want exit 42, no stderr", r.Status(), r.Stderr)
	}
	// The daemon got USR1 and nothing else: no SIGCHLD was forwarded.
	if b, _ := os.ReadFile(rec); string(b) != "USR1\n" {
		t.Errorf("daemon recorded %q; want %q", b, "USR1\n")
	}
}

// TestBackgroundWatchUsageAndSpawnErrors checks the command line errors
// (100, one usage line), a notification fd that is not open (111), and a
// prog that is missing (127) or not executable (126), each with one line on
// stderr, nothing on stdout and no pid file.
func TestBackgroundWatchUsageAndSpawnErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\nexit 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	usage := usageLine("background-watch", backgroundwatch.Applet)
	for _, tt := range []struct {
		name   string
		args   []string // PIDFILE is replaced by a path in a fresh directory
		want   int
		stderr string
	}{
		{name: "no operands", want: 100, stderr: usage},
		{name: "no prog", args: []string{"PIDFILE"}, want: 100, stderr: usage},
		{name: "-d 1", args: []string{"-d", "1", "PIDFILE", "exitwith", "9"}, want: 100, stderr: usage},
		{name: "-d 2", args: []string{"-d", "2", "PIDFILE", "exitwith", "9"}, want: 100, stderr: usage},
		{name: "-t x", args: []string{"-t", "x", "PIDFILE", "exitwith", "9"}, want: 100, stderr: usage},
		{name: "-t -5", args: []string{"-t", "-5", "PIDFILE", "exitwith", "9"}, want: 100, stderr: usage},
		{name: "unknown option", args: []string{"-x", "PIDFILE", "exitwith", "9"}, want: 100, stderr: usage},
		{name: "-d 7 not open", args: []string{"-d", "7", "PIDFILE", "exitwith", "9"}, want: 111,
			stderr: "background-watch: fatal: unable to use notification fd 7: Bad file descriptor\n"},
		{name: "prog not found", args: []string{"PIDFILE", "gotools-no-such-prog"}, want: 127,
			stderr: "background-watch: fatal: unable to spawn gotools-no-such-prog: No such file or directory\n"},
		{name: "prog not executable", args: []string{"PIDFILE", noexec}, want: 126,
			stderr: "background-watch: fatal: unable to spawn " + noexec + ": Permission denied\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			piddir := t.TempDir()
			argv := []string{"background-watch"}
			for _, a := range tt.args {
				argv = append(argv, strings.ReplaceAll(a, "PIDFILE", filepath.Join(piddir, "pid")))
			}
			r := run(t, argv...)
			ok := r.Stderr == tt.stderr
			if strings.Contains(tt.stderr, ": usage: ") { // then the bad word, if any
				ok = isUsageLine(r.Stderr, tt.stderr, "background-watch")
			}
			if r.Code != tt.want || !ok || r.Stdout != "" {
				t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit %d, no stdout, stderr %q",
					argv, r.Status(), r.Stdout, r.Stderr, tt.want, tt.stderr)
			}
			if got := bwDir(t, piddir); len(got) != 0 {
				t.Errorf("run(%q) left %q in the pid file directory; want nothing", argv, got)
			}
		})
	}
}

// TestBackgroundWatchNoFDLeaks checks that what the launcher and the daemon
// get from background-watch is stdin, stdout and stderr, and nothing of its
// own: not its notification fd, pidfds, pid file or runtime fds.
func TestBackgroundWatchNoFDLeaks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidfile, lfds, dfds := filepath.Join(dir, "pid"), filepath.Join(dir, "launcher-fds"), filepath.Join(dir, "daemon-fds")
	// fdlist, run by the launcher shell, inherits what the shell has.
	p, notif := bwStart(t, nil, pidfile, "sh", "-c", `fdlist > "$2" && exec daemonize "$1" 0 -fds "$3"`,
		"launcher", pidfile, lfds, dfds)
	bwWaitReady(t, p, notif)
	daemon := readPidfile(t, pidfile)
	for _, tt := range []struct {
		name, file, want string
	}{
		{name: "launcher", file: lfds, want: fmt.Sprintf("0 -> /dev/null\n1 -> %s\n2 -> %s\n", lfds, p.errPath)},
		{name: "daemon", file: dfds, want: fmt.Sprintf("0 -> /dev/null\n1 -> %s\n2 -> %s\n", p.outPath, p.errPath)},
	} {
		if b, err := os.ReadFile(tt.file); string(b) != tt.want {
			t.Errorf("fds the %s inherited: %q, %v; want %q", tt.name, b, err, tt.want)
		}
	}
	// The daemon's fd table now: its inherited fds and the Go runtime's.
	if fds := withoutGoRuntime(beyondStdio(openFDs(t, daemon))); len(fds) != 0 {
		t.Errorf("openFDs(daemon %d) beyond stdio and the Go runtime's = %v; want none", daemon, fds)
	}
	p.Signal(unix.SIGTERM)
	if r := p.Wait(t); r.Code != 143 {
		t.Errorf("background-watch after TERM = %s (stderr %q); want exit 143", r.Status(), r.Stderr)
	}
}

// TestBackgroundWatchDaemonDiedBeforeLauncher has the daemon die before its
// launcher exits: background-watch reaps it in phase 1, keeps its status
// and, once the pid file names it, exits with it, not 111. The launcher
// waits for the daemon's death without reaping it: the daemon is
// daemonize's child (daemonize never reaps), re-parented to
// background-watch, and holds the command substitution's pipe until it
// exits.
func TestBackgroundWatchDaemonDiedBeforeLauncher(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		code string // the daemon's -code
		want int
	}{
		{name: "exit 7", code: "7", want: 7},
		{name: "exit 200", code: "200", want: 128},
		{name: "killed by TERM", code: "TERM", want: 143},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pidfile := filepath.Join(t.TempDir(), "pid")
			argv := []string{"background-watch", pidfile, "sh", "-c", `out=$(daemonize "$1" 0 -after 0 -code "$2") && exit 0`,
				"launcher", pidfile, tt.code}
			if r := run(t, argv...); r.Code != tt.want || r.Stderr != "" {
				t.Errorf("run(%q) = %s, stderr %q; want exit %d, no stderr", argv, r.Status(), r.Stderr, tt.want)
			}
			readPidfile(t, pidfile) // written, and left alone
		})
	}
}

// TestBackgroundWatchDaemonReapedByAnother has a process between the
// daemon and background-watch reap the daemon (a shell that waits for its
// background child): its status is lost, and background-watch warns and
// exits 111 once the pidfd reports the death.
func TestBackgroundWatchDaemonReapedByAnother(t *testing.T) {
	t.Parallel()
	// The middle shell starts the daemon, prints its pid, closes its stdout
	// and waits for it. The launcher starts the middle in the background
	// of a command substitution (so the middle is re-parented to
	// background-watch), reads the pid until EOF and writes it.
	const middle = `sh -c "read x <&4; exit 3" >/dev/null & echo $!; exec >&-; wait`
	pidfile := filepath.Join(t.TempDir(), "pid")
	hold, release := pipe(t)
	p, notif := bwStart(t, []*os.File{hold}, pidfile, "sh", "-c", `pid=$(sh -c "$2" middle &) && echo "$pid" > "$1"`,
		"launcher", pidfile, middle)
	hold.Close()
	bwWaitReady(t, p, notif)
	daemon := readPidfile(t, pidfile)
	st, err := readStat(daemon)
	if err != nil {
		t.Fatalf("daemon %d: %v", daemon, err)
	}
	if mid, err := readStat(st.PPid); err != nil || mid.PPid != p.Pid {
		t.Fatalf("parent of daemon %d: readStat(%d) = %v, %v; want a child of background-watch %d", daemon, st.PPid, mid, err, p.Pid)
	}
	release.Close() // the daemon exits 3, the middle reaps it and exits
	want := fmt.Sprintf("background-watch: warning: exit status of daemon %d unknown\n", daemon)
	if r := p.Wait(t); r.Code != 111 || r.Stderr != want {
		t.Errorf("background-watch = %s, stderr %q; want exit 111, stderr %q", r.Status(), r.Stderr, want)
	}
}
