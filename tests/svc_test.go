package tests

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// svcControlled makes a service directory whose supervise/control is a
// FIFO the test reads (non-blocking), standing in for a supervisor.
func svcControlled(t *testing.T) (dir string, fifo int) {
	t.Helper()
	dir = t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "supervise"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "supervise", "control")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	fifo, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fifo) })
	return dir, fifo
}

// svcRead returns what the FIFO holds ("" when empty).
func svcRead(t *testing.T, fifo int) string {
	t.Helper()
	b := make([]byte, 256)
	n, err := unix.Read(fifo, b)
	if errors.Is(err, unix.EAGAIN) {
		return ""
	}
	if err != nil {
		t.Fatalf("read control FIFO: %v", err)
	}
	return string(b[:n])
}

// TestSvcSendsLettersInOrder: the supervisor gets exactly the letters, in
// command-line order, in one write; usage errors send nothing.
func TestSvcSendsLettersInOrder(t *testing.T) {
	t.Parallel()
	dir, fifo := svcControlled(t)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "-ud", args: []string{"-ud"}, want: "ud"},
		{name: "-du", args: []string{"-du"}, want: "du"},
		{name: "-s term", args: []string{"-s", "term"}, want: "t"},
		{name: "mixed", args: []string{"-d", "-s", "SIGHUP", "-xO"}, want: "dhxO"},
		{name: "-T without -w", args: []string{"-T", "5", "-k"}, want: "k"},
		{name: "probe", args: nil, want: ""},
		{name: "62 letters", args: []string{"-" + strings.Repeat("ud", 31)}, want: strings.Repeat("ud", 31)},
		{name: "63 letters", args: []string{"-" + strings.Repeat("u", 63)}, code: 100},
		{name: "-s SEGV", args: []string{"-u", "-s", "SEGV"}, code: 100},
	} {
		argv := append(append([]string{"svc"}, tt.args...), dir)
		r := run(t, argv...)
		if r.Code != tt.code {
			t.Errorf("%s: run(%q) = %s, stderr %q; want exit %d", tt.name, argv, r.Status(), r.Stderr, tt.code)
		}
		if got := svcRead(t, fifo); got != tt.want {
			t.Errorf("%s: run(%q) wrote %q; want %q", tt.name, argv, got, tt.want)
		}
	}
}

// TestSvcDirErrors checks each failing DIR's code and warning line.
func TestSvcDirErrors(t *testing.T) {
	t.Parallel()
	unsupervised := t.TempDir()
	broken := t.TempDir()
	if err := os.Mkdir(filepath.Join(broken, "supervise"), 0o700); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nosuch")
	for _, tt := range []struct {
		name string
		dir  string
		code int
		line string
	}{
		{"unsupervised", unsupervised, 102, "svc: fatal: unable to control " + unsupervised + ": supervisor not listening\n"},
		{"supervise without FIFO", broken, 1, "svc: fatal: something is wrong with the " + broken + "/supervise directory\n"},
		{"missing DIR", missing, 111, "svc: fatal: unable to control " + missing + ": No such file or directory\n"},
	} {
		for _, args := range [][]string{{"svc", "-u", tt.dir}, {"svc", tt.dir}, {"s6-svc", "-u", tt.dir}} {
			line := strings.Replace(tt.line, "svc: ", args[0]+": ", 1)
			if r := run(t, args...); r.Code != tt.code || r.Stderr != line || r.Stdout != "" {
				t.Errorf("%s: run(%q) = %s, stderr %q; want exit %d, %q", tt.name, args, r.Status(), r.Stderr, tt.code, line)
			}
		}
		// Among several DIRs, each failure is a warning and svc goes on.
		args := []string{"svc", "-u", tt.dir, tt.dir}
		line := strings.ReplaceAll(tt.line, "svc: fatal: ", "svc: warning: ")
		if r := run(t, args...); r.Code != tt.code || r.Stderr != line+line || r.Stdout != "" {
			t.Errorf("%s: run(%q) = %s, stderr %q; want exit %d, %q twice", tt.name, args, r.Status(), r.Stderr, tt.code, line)
		}
	}
}

// TestSvcKeepsGoing: with the middle DIR unsupervised, the outer two are
// controlled and svc exits 102.
func TestSvcKeepsGoing(t *testing.T) {
	t.Parallel()
	a, fa := svcControlled(t)
	c, fc := svcControlled(t)
	b := t.TempDir()
	r := run(t, "s6-svc", "-dx", a, b, c)
	want := "s6-svc: warning: unable to control " + b + ": supervisor not listening\n"
	if r.Code != 102 || r.Stderr != want {
		t.Errorf("run(s6-svc -dx A B C) = %s, stderr %q; want exit 102, %q", r.Status(), r.Stderr, want)
	}
	for i, fifo := range []int{fa, fc} {
		if got := svcRead(t, fifo); got != "dx" {
			t.Errorf("DIR #%d got %q; want %q", 2*i+1, got, "dx")
		}
	}
}

// s6SvcService is a service run by the real s6-supervise.
type s6SvcService struct {
	t      *testing.T
	dir    string
	pids   string // ./run appends its pid here
	svstat string
	sup    *Proc
}

// TestSvcDrivesRealSupervise: gotools svc -d, -u, -k and -x act on the
// real s6-supervise as s6-svc would.
func TestSvcDrivesRealSupervise(t *testing.T) {
	t.Parallel()
	s := startS6SvcService(t)

	first := s.waitUp(0)
	s.svc("-d")
	s.waitDown()
	s.svc("-u")
	up := s.waitUp(first)
	s.svc("-k")
	restarted := s.waitUp(up)
	if restarted == up {
		t.Errorf("after svc -k the pid is still %d", up)
	}
	s.svc("-d")
	s.waitDown()
	s.svc("-x")
	if r := s.sup.Wait(t); r.Code != 0 {
		t.Errorf("s6-supervise after svc -x = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	// Nothing listens any more.
	if r := run(t, "svc", "-u", s.dir); r.Code != 102 {
		t.Errorf("svc -u after s6-supervise exited = %s, stderr %q; want exit 102", r.Status(), r.Stderr)
	}
}

func (s *s6SvcService) svc(opt string) {
	s.t.Helper()
	if r := run(s.t, "svc", opt, s.dir); r.Code != 0 || r.Stderr != "" {
		s.t.Fatalf("svc %s = %s, stderr %q; want exit 0", opt, r.Status(), r.Stderr)
	}
}

// status returns what s6-svstat -o up,pid says; ok is false while it
// fails (s6-supervise has not written its status yet).
func (s *s6SvcService) status() (up bool, pid int, ok bool) {
	s.t.Helper()
	r := run(s.t, s.svstat, "-o", "up,pid", s.dir)
	f := strings.Fields(r.Stdout)
	if r.Code != 0 || len(f) != 2 {
		return false, 0, false
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil {
		s.t.Fatalf("s6-svstat -o up,pid = %q", r.Stdout)
	}
	return f[0] == "true", pid, true
}

// waitUp waits until s6-svstat says up with a pid other than old, and
// returns the pid.
func (s *s6SvcService) waitUp(old int) int {
	s.t.Helper()
	var pid int
	waitFor(s.t, fmt.Sprintf("s6-svstat to say %s is up with a pid other than %d", s.dir, old), func() bool {
		up, p, ok := s.status()
		pid = p
		return ok && up && pid != old && pid > 0
	})
	return pid
}

func (s *s6SvcService) waitDown() {
	s.t.Helper()
	waitFor(s.t, "s6-svstat to say "+s.dir+" is down", func() bool {
		up, _, ok := s.status()
		return ok && !up
	})
}

// sweep kills s6-supervise, then every run it started that is still
// alive: s6-supervise starts ./run in a new session, out of reach of the
// harness's process-group kill. They are the test's to reap once
// s6-supervise is gone (TestMain makes us a subreaper).
func (s *s6SvcService) sweep() {
	s.sup.KillGroup(s.t)
	b, _ := os.ReadFile(s.pids)
	self := os.Getpid()
	for _, l := range lines(string(b)) {
		pid, err := strconv.Atoi(l)
		if err != nil {
			continue
		}
		ok := poll(deadline(s.t), func() bool {
			st, err := readStat(pid)
			if err != nil || st.Session != pid {
				return true // gone, or the pid is someone else's now
			}
			if st.State != 'Z' {
				unix.Kill(pid, unix.SIGKILL)
			}
			if st.PPid == self {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			}
			return false
		})
		if !ok {
			s.t.Errorf("run process %d of %s could not be killed and reaped", pid, s.dir)
		}
	}
}

// startS6SvcService starts real s6-supervise on a new service whose run
// records its pid and sleeps; its cleanup sweeps the run sessions.
func startS6SvcService(t *testing.T) *s6SvcService {
	t.Helper()
	tools := requireS6(t, "s6-supervise", "s6-svstat")
	tmp := t.TempDir()
	s := &s6SvcService{t: t, dir: filepath.Join(tmp, "svc"), pids: filepath.Join(tmp, "pids"), svstat: tools[1]}
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho $$ >> " + shellQuote(s.pids) + "\nexec sleep 1000\n"
	if err := writeExecutable(filepath.Join(s.dir, "run"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s.sup = start(t, tools[0], s.dir)
	t.Cleanup(s.sweep) // before start's own cleanup
	return s
}
