package tests

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The roles are the instruments of every other test: these tests pin down
// what each one does, so that a failure elsewhere is gotools' and not a
// helper's.

func TestRoleExitwith(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		arg  string
		want int
	}{
		{name: "zero", arg: "0", want: 0},
		{name: "one", arg: "1", want: 1},
		{name: "42", arg: "42", want: 42},
		{name: "128", arg: "128", want: 128},
		{name: "200", arg: "200", want: 200},
		{name: "255", arg: "255", want: 255},
		{name: "out of range", arg: "256", want: 100},
		{name: "not a number", arg: "x", want: 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if r := run(t, "exitwith", tt.arg); r.Code != tt.want || r.Signal != 0 {
				t.Errorf("run(exitwith %s) = %s; want exit %d", tt.arg, r.Status(), tt.want)
			}
		})
	}
}

func TestRoleKillself(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		arg  string
		want unix.Signal
	}{
		{name: "HUP", arg: "HUP", want: unix.SIGHUP},
		{name: "INT", arg: "SIGINT", want: unix.SIGINT},
		{name: "USR1 (ignored by a plain Go program)", arg: "usr1", want: unix.SIGUSR1},
		{name: "USR2", arg: "USR2", want: unix.SIGUSR2},
		{name: "TERM by number", arg: "15", want: unix.SIGTERM},
		{name: "ALRM", arg: "ALRM", want: unix.SIGALRM},
		{name: "KILL", arg: "KILL", want: unix.SIGKILL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if r := run(t, "killself", tt.arg); r.Signal != tt.want {
				t.Errorf("run(killself %s) = %s; want killed by %s (stderr %q)", tt.arg, r.Status(), unix.SignalName(tt.want), r.Stderr)
			}
		})
	}
}

func TestRoleSleeper(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		send []unix.Signal // in order; the last one must kill it
	}{
		{name: "TERM", send: []unix.Signal{unix.SIGTERM}},
		{name: "HUP", send: []unix.Signal{unix.SIGHUP}},
		{name: "USR1", send: []unix.Signal{unix.SIGUSR1}},
		{name: "INT", send: []unix.Signal{unix.SIGINT}},
		{name: "ignores CHLD WINCH URG TSTP", send: []unix.Signal{unix.SIGCHLD, unix.SIGWINCH, unix.SIGURG, unix.SIGTSTP, unix.SIGUSR2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, "sleeper")
			p.WaitLine(t, "^ready$")
			for _, sig := range tt.send {
				p.Signal(sig)
			}
			want := tt.send[len(tt.send)-1]
			if r := p.Wait(t); r.Signal != want || r.Stdout != "ready\n" {
				t.Errorf("sleeper after %v = %s, stdout %q; want killed by %s, stdout %q", tt.send, r.Status(), r.Stdout, unix.SignalName(want), "ready\n")
			}
		})
	}
}

func TestRoleTrapsig(t *testing.T) {
	t.Parallel()
	t.Run("prints each signal", func(t *testing.T) {
		t.Parallel()
		p := start(t, "trapsig")
		p.WaitLine(t, "^ready$")
		// The kernel and the Go runtime merge pending signals of one kind, so
		// each one is waited for before the next is sent.
		for _, sig := range []unix.Signal{unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGTERM, unix.SIGINT, unix.SIGURG, unix.SIGQUIT} {
			p.Signal(sig)
			if sig != unix.SIGURG {
				p.WaitLine(t, "^"+sigName(sig)+"$")
			}
		}
		if got, want := p.Stdout(), "ready\nHUP\nUSR1\nUSR2\nTERM\nINT\nQUIT\n"; got != want {
			t.Errorf("trapsig stdout = %q; want %q", got, want)
		}
		if !p.Running() {
			t.Errorf("trapsig exited (%s); want it running until killed", p.result().Status())
		}
	})
	t.Run("-on TERM -code 7", func(t *testing.T) {
		t.Parallel()
		p := start(t, "trapsig", "-on", "TERM", "-code", "7")
		p.WaitLine(t, "^ready$")
		p.Signal(unix.SIGTERM)
		if r := p.Wait(t); r.Code != 7 || r.Stdout != "ready\nTERM\n" {
			t.Errorf("trapsig -on TERM -code 7 = %s, stdout %q; want exit 7, %q", r.Status(), r.Stdout, "ready\nTERM\n")
		}
	})
}

func TestRoleDaemon(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		send []unix.Signal
		code int         // wanted exit code, if sig is 0
		sig  unix.Signal // wanted fatal signal
		rec  string      // wanted record (-record is added to args)
	}{
		{name: "TERM kills it by default", send: []unix.Signal{unix.SIGTERM}, sig: unix.SIGTERM, rec: "TERM\n"},
		{name: "exits 42 on USR1", args: []string{"-on", "USR1", "-code", "42"}, send: []unix.Signal{unix.SIGUSR1}, code: 42, rec: "USR1\n"},
		{name: "exits 200 on USR1", args: []string{"-on", "USR1", "-code", "200"}, send: []unix.Signal{unix.SIGUSR1}, code: 200, rec: "USR1\n"},
		{name: "dies by KILL on HUP", args: []string{"-on", "HUP", "-code", "KILL"}, send: []unix.Signal{unix.SIGHUP}, sig: unix.SIGKILL, rec: "HUP\n"},
		{name: "exits 3 after 0 ms", args: []string{"-after", "0", "-code", "3"}, code: 3},
		{name: "exits 0 after 0 ms", args: []string{"-after", "0"}, code: 0},
		{
			name: "records HUP USR1 USR2 TERM INT, ends on QUIT",
			args: []string{"-on", "QUIT"},
			send: []unix.Signal{unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGTERM, unix.SIGINT, unix.SIGURG, unix.SIGQUIT},
			sig:  unix.SIGQUIT,
			rec:  "HUP\nUSR1\nUSR2\nTERM\nINT\nQUIT\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := filepath.Join(t.TempDir(), "signals")
			p := start(t, append([]string{"daemon", "-record", rec}, tt.args...)...)
			p.WaitLine(t, "^ready$")
			for i, sig := range tt.send {
				p.Signal(sig)
				if sig == unix.SIGURG || i == len(tt.send)-1 {
					continue
				}
				waitFor(t, "daemon to record "+sigName(sig), func() bool {
					b, _ := os.ReadFile(rec)
					return strings.HasSuffix(string(b), sigName(sig)+"\n")
				})
			}
			r := p.Wait(t)
			if r.Signal != tt.sig || tt.sig == 0 && r.Code != tt.code {
				want := Result{Code: tt.code, Signal: tt.sig}
				t.Errorf("daemon %q after %v = %s; want %s (stderr %q)", tt.args, tt.send, r.Status(), want.Status(), r.Stderr)
			}
			b, err := os.ReadFile(rec)
			if tt.rec == "" && !errors.Is(err, fs.ErrNotExist) || tt.rec != "" && string(b) != tt.rec {
				t.Errorf("daemon %q recorded %q, %v; want %q", tt.args, b, err, tt.rec)
			}
		})
	}
}

func TestRoleDaemonNotifyAndFDs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fds := filepath.Join(dir, "fds")
	r, w := pipe(t)
	p := startIn(t, Opts{ExtraFiles: []*os.File{w}}, "daemon", "-notify", "3", "-fds", fds)
	w.Close()
	// EOF after the newline: the daemon closed its end once ready.
	if got := readToEOF(t, r); got != "\n" {
		t.Errorf("daemon -notify 3 wrote %q; want %q", got, "\n")
	}
	if !p.Running() {
		t.Errorf("daemon exited (%s); want it running", p.result().Status())
	}
	want := fmt.Sprintf("0 -> /dev/null\n1 -> %s\n2 -> %s\n", p.outPath, p.errPath)
	if b, err := os.ReadFile(fds); string(b) != want {
		t.Errorf("daemon -fds: %q, %v; want %q", b, err, want)
	}
}

func TestRoleFdlist(t *testing.T) {
	t.Parallel()
	extra := filepath.Join(t.TempDir(), "extra")
	f, err := os.Create(extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // after the parallel subtests
	for _, tt := range []struct {
		name  string
		extra []*os.File
		want  string // the lines after 0, 1 and 2
	}{
		{name: "stdio only"},
		{name: "one extra file", extra: []*os.File{f}, want: "3 -> " + extra + "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startIn(t, Opts{ExtraFiles: tt.extra}, "fdlist")
			r := p.Wait(t)
			want := fmt.Sprintf("0 -> /dev/null\n1 -> %s\n2 -> %s\n%s", p.outPath, p.errPath, tt.want)
			if r.Code != 0 || r.Stdout != want {
				t.Errorf("run(fdlist) = %s, stdout %q; want exit 0, %q", r.Status(), r.Stdout, want)
			}
		})
	}
}

func TestRoleOrphans(t *testing.T) {
	t.Parallel()
	p := start(t, "orphans", "3")
	r := p.Wait(t)
	pids := lines(r.Stdout)
	if r.Code != 0 || len(pids) != 3 {
		t.Fatalf("run(orphans 3) = %s, stdout %q; want exit 0 and 3 pids", r.Status(), r.Stdout)
	}
	for _, s := range pids {
		pid, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("orphans printed %q; want a pid", s)
		}
		// Its parent is gone: it was re-parented to the test process, our
		// subreaper, and stays in the launcher's process group.
		st, err := readStat(pid)
		if err != nil || st.PPid != os.Getpid() || st.PGrp != p.Pid || st.State == 'Z' {
			t.Errorf("orphan %d: readStat = %v, %v; want alive, parent %d, group %d", pid, st, err, os.Getpid(), p.Pid)
		}
	}
	// KillGroup leaves nothing behind.
	p.KillGroup(t)
	for _, s := range pids {
		pid, _ := strconv.Atoi(s)
		if st, err := readStat(pid); err == nil {
			t.Errorf("orphan %d after KillGroup: %v; want gone", pid, st)
		}
	}
}

func TestRoleDaemonize(t *testing.T) {
	t.Parallel()
	type outcome struct {
		launcher Result // Code and Signal only
		pidfile  string // "PID": the daemon's pid and a newline; "SELF": the launcher's; "-": no file
		stdout   string // the launcher's stdout once it exited; "*": not checked
	}
	for _, tt := range []struct {
		name string
		args []string // before PIDFILE FATE
		fate string
		want outcome
	}{
		{name: "writes the daemon pid, exits 0", fate: "0", want: outcome{Result{}, "PID", "ready\n"}},
		{name: "exits 5", fate: "5", want: outcome{Result{Code: 5}, "PID", "ready\n"}},
		{name: "killed by TERM", fate: "TERM", want: outcome{Result{Code: -1, Signal: unix.SIGTERM}, "PID", "ready\n"}},
		{name: "writes its own pid", args: []string{"-write", "self"}, fate: "0", want: outcome{Result{}, "SELF", "ready\n"}},
		{name: "writes no pid file", args: []string{"-write", "none"}, fate: "0", want: outcome{Result{}, "-", "ready\n"}},
		{name: "writes an empty pid file", args: []string{"-content", ""}, fate: "0", want: outcome{Result{}, "", "ready\n"}},
		{name: "writes abc", args: []string{"-content", "abc"}, fate: "0", want: outcome{Result{}, "abc", "ready\n"}},
		{name: "writes 12x", args: []string{"-content", "12x"}, fate: "0", want: outcome{Result{}, "12x", "ready\n"}},
		{name: "exits before the daemon is ready", args: []string{"-early"}, fate: "0", want: outcome{Result{}, "PID", "*"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pidfile := filepath.Join(t.TempDir(), "pid")
			argv := append(append([]string{"daemonize"}, tt.args...), pidfile, tt.fate, "-on", "USR1", "-code", "42")
			p := start(t, argv...)
			r := p.Wait(t)
			if r.Code != tt.want.launcher.Code || r.Signal != tt.want.launcher.Signal {
				t.Errorf("run(%q) = %s; want %s (stderr %q)", argv, r.Status(), tt.want.launcher.Status(), r.Stderr)
			}
			if tt.want.stdout != "*" && r.Stdout != tt.want.stdout {
				t.Errorf("run(%q) stdout = %q; want %q", argv, r.Stdout, tt.want.stdout)
			}
			// The one daemon is in the launcher's group; it was re-parented
			// to us, its subreaper.
			sid, _ := unix.Getsid(0)
			members := groupMembers(p.Pid)
			if len(members) != 1 || members[0].PPid != os.Getpid() || members[0].Session != sid {
				t.Fatalf("group of %q after it exited = %v; want one daemon, child of %d, in our session", argv, members, os.Getpid())
			}
			daemon := members[0].Pid
			b, err := os.ReadFile(pidfile)
			var want string
			switch tt.want.pidfile {
			case "PID":
				want = fmt.Sprintf("%d\n", daemon)
			case "SELF":
				want = fmt.Sprintf("%d\n", p.Pid)
			case "-":
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("run(%q): pid file %q, %v; want none", argv, b, err)
				}
			default:
				want = tt.want.pidfile
			}
			if tt.want.pidfile != "-" && string(b) != want {
				t.Errorf("run(%q): pid file %q, %v; want %q", argv, b, err, want)
			}
			p.WaitLine(t, "^ready$")
			// Its exit status reaches us: the test of background-watch's
			// relaying holds.
			unix.Kill(daemon, unix.SIGUSR1)
			if ws := reapOrphan(t, daemon); !ws.Exited() || ws.ExitStatus() != 42 {
				t.Errorf("daemon %d after USR1: status %#x; want exit 42", daemon, ws)
			}
		})
	}
}

func TestRoleDaemonizeVariants(t *testing.T) {
	t.Parallel()
	t.Run("passes its fds on as fork would", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		extra, fds := filepath.Join(dir, "extra"), filepath.Join(dir, "fds")
		f, err := os.Create(extra)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p := startIn(t, Opts{ExtraFiles: []*os.File{f}}, "daemonize", filepath.Join(dir, "pid"), "0", "-fds", fds)
		if r := p.Wait(t); r.Code != 0 {
			t.Fatalf("daemonize = %s; want exit 0 (stderr %q)", r.Status(), r.Stderr)
		}
		want := fmt.Sprintf("0 -> /dev/null\n1 -> %s\n2 -> %s\n3 -> %s\n", p.outPath, p.errPath, extra)
		if b, err := os.ReadFile(fds); string(b) != want {
			t.Errorf("daemon's inherited fds: %q, %v; want %q", b, err, want)
		}
	})
	t.Run("-setsid", func(t *testing.T) {
		t.Parallel()
		pidfile := filepath.Join(t.TempDir(), "pid")
		p := start(t, "daemonize", "-setsid", pidfile, "0")
		if r := p.Wait(t); r.Code != 0 {
			t.Fatalf("daemonize -setsid = %s; want exit 0 (stderr %q)", r.Status(), r.Stderr)
		}
		pid := readPidfile(t, pidfile)
		st, err := readStat(pid)
		if err != nil || st.Session != pid || st.PGrp != pid || st.PPid != os.Getpid() {
			t.Errorf("daemon %d: readStat = %v, %v; want its own session and group, child of %d", pid, st, err, os.Getpid())
		}
		// Out of the launcher's group, so no cleanup reaches it: end it here.
		unix.Kill(pid, unix.SIGTERM)
		if ws := reapOrphan(t, pid); !ws.Signaled() || ws.Signal() != unix.SIGTERM {
			t.Errorf("daemon %d after TERM: status %#x; want killed by SIGTERM", pid, ws)
		}
	})
	t.Run("-orphans 2", func(t *testing.T) {
		t.Parallel()
		pidfile := filepath.Join(t.TempDir(), "pid")
		p := start(t, "daemonize", "-orphans", "2", pidfile, "0")
		r := p.Wait(t)
		var orphans []int
		for _, l := range lines(r.Stdout) {
			if s, ok := strings.CutPrefix(l, "orphan "); ok {
				pid, _ := strconv.Atoi(s)
				orphans = append(orphans, pid)
			}
		}
		if r.Code != 0 || len(orphans) != 2 || !strings.HasSuffix(r.Stdout, "\nready\n") {
			t.Fatalf("daemonize -orphans 2 = %s, stdout %q; want exit 0, 2 orphan lines, ready", r.Status(), r.Stdout)
		}
		if n := len(groupMembers(p.Pid)); n != 3 {
			t.Errorf("group of daemonize -orphans 2 holds %d processes; want 3", n)
		}
		for _, pid := range orphans {
			if st, err := readStat(pid); err != nil || st.PGrp != p.Pid || st.PPid != os.Getpid() {
				t.Errorf("orphan %d: readStat = %v, %v; want group %d, child of %d", pid, st, err, p.Pid, os.Getpid())
			}
		}
	})
}
