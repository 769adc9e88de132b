package tests

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Interop with upstream s6: background-watch run by a real s6-supervise
// (spec/background-watch.md "Acceptance tests"). The s6 tools are always
// called by the absolute paths requireS6 returns: the farm on $PATH has
// s6-* aliases that are gotools.
//
// What s6 2.11 does that these tests rely on (checked by hand against
// Debian's s6 2.11.3.2):
//   - s6-supervise starts ./run in a new session (setsid), so the service's
//     processes are outside the process group the harness kills; the test
//     sweeps their sessions itself (s6Service.sweep).
//   - With notification-fd, the run script gets the write end of a pipe as
//     that fd; the first "\n" makes the service ready.
//   - ./finish gets "EXITCODE SIGNUM SERVICENAME": "143 0 svc" for a run
//     that exited 143, "256 15 svc" for one killed by SIGTERM.
//   - s6-svstat prints "up (pid N) S seconds" until the service is ready,
//     then "up (pid N) S seconds, ready R seconds", and once down
//     "down (exitcode 143) S seconds, normally up, ready R seconds".
//     "-o up,ready,pid,exitcode,signal" prints "true false N -1 NA" and the
//     like, one line.
//   - s6-svc -t sends SIGTERM; -d sends SIGTERM then SIGCONT; -x makes
//     s6-supervise exit 0 once the service is down.

// TestBackgroundWatchUnderS6Supervise runs background-watch -d 3 as the
// last command of a run script, under a real s6-supervise with
// notification-fd 3. The launcher is held on a fifo until the test
// releases it, so the pid file does not exist before that:
//   - while it is held, the service is up but not ready, s6-svwait -u
//     returns and s6-svwait -U does not; once released, s6-svwait -U
//     returns 0, s6-svstat says ready, with background-watch's pid;
//   - s6-svc -t reaches the daemon (it records TERM), background-watch exits
//     143 (./finish sees exit code 143, not a signal), nothing of the old
//     instance is left, and s6-supervise starts a new one, which becomes
//     ready again when released;
//   - s6-svc -d reaches the daemon the same way, and s6-svstat reports
//     "down (exitcode 143)";
//   - s6-svc -d while a launcher is held kills the launcher (the signal is
//     forwarded in phase 1): background-watch warns, exits 143 and removes
//     the pid file;
//   - s6-svc -x ends s6-supervise with exit 0 and no process left.
func TestBackgroundWatchUnderS6Supervise(t *testing.T) {
	t.Parallel()
	s := startS6Service(t)

	// Instance 1, held: up, not ready.
	waitU := start(t, s.svwait, "-U", "-t", "20000", s.dir)
	waitFor(t, "s6-svwait -U to subscribe (a fifo in event/)", func() bool {
		ents, err := os.ReadDir(filepath.Join(s.dir, "event"))
		return err == nil && len(ents) > 0 || !waitU.Running()
	})
	// The negative control of the -U check below: the service is up, and
	// an s6-svwait that waits for that much returns.
	if r := run(t, s.svwait, "-u", "-t", "20000", s.dir); r.Code != 0 {
		t.Fatalf("s6-svwait -u = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	launcher, bw := s.launcher(1)
	if st, err := readStat(bw); err != nil || st.Session != bw {
		t.Errorf("background-watch %d: readStat = %v, %v; want a session leader (s6-supervise runs ./run in a new session)", bw, st, err)
	}
	s.wantStatus("true false "+strconv.Itoa(bw), "up", "ready", "pid")
	if _, err := os.Stat(s.pidfile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(%q) = %v; want no pid file while launcher %d is held", s.pidfile, err, launcher)
	}
	if !waitU.Running() {
		r := waitU.Wait(t)
		t.Fatalf("s6-svwait -U = %s, stderr %q, before the pid file was written; want it still waiting", r.Status(), r.Stderr)
	}
	if l := s.statusLine(); !regexp.MustCompile(`^up \(pid ` + strconv.Itoa(bw) + `\) \d+ seconds$`).MatchString(l) {
		t.Errorf("s6-svstat = %q; want up, pid %d, not ready", l, bw)
	}

	// Released: ready once the pid file is read.
	s.release()
	if r := waitU.Wait(t); r.Code != 0 {
		t.Fatalf("s6-svwait -U = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	daemon := readPidfile(t, s.pidfile)
	s.wantStatus("true true "+strconv.Itoa(bw), "up", "ready", "pid")
	if l := s.statusLine(); !regexp.MustCompile(`^up \(pid ` + strconv.Itoa(bw) + `\) \d+ seconds, ready \d+ seconds$`).MatchString(l) {
		t.Errorf("s6-svstat = %q; want up, pid %d, ready", l, bw)
	}
	if st, err := readStat(daemon); err != nil || st.PPid != bw || st.State == 'Z' {
		t.Errorf("daemon %d: readStat = %v, %v; want alive, re-parented to background-watch %d", daemon, st, err, bw)
	}
	// Neither the notification pipe nor anything else reached the daemon.
	if fds := withoutGoRuntime(beyondStdio(openFDs(t, daemon))); len(fds) != 0 {
		t.Errorf("daemon %d holds %v beyond stdio and the Go runtime's; want nothing", daemon, fds)
	}

	// s6-svc -t: the daemon gets SIGTERM, dies of it, background-watch
	// exits 143, s6-supervise restarts the service.
	s.svc("-t")
	s.wantFinishes("143 0")
	s.wantRecord("TERM\n")
	s.wantGone(bw)
	launcher2, bw2 := s.launcher(2)
	if bw2 == bw {
		t.Fatalf("restarted background-watch has pid %d, the old one's", bw2)
	}
	s.waitStatus("true false "+strconv.Itoa(bw2), "up", "ready", "pid")
	s.release()
	if r := run(t, s.svwait, "-U", "-t", "20000", s.dir); r.Code != 0 {
		t.Fatalf("s6-svwait -U after the restart = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	s.wantStatus("true true "+strconv.Itoa(bw2), "up", "ready", "pid")
	if daemon2 := readPidfile(t, s.pidfile); daemon2 == daemon {
		t.Errorf("launcher %d wrote pid %d, the first daemon's", launcher2, daemon2)
	}

	// s6-svc -d: the same, and the service stays down.
	s.svc("-d")
	if r := run(t, s.svwait, "-D", "-t", "20000", s.dir); r.Code != 0 {
		t.Fatalf("s6-svwait -D = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	// s6-supervise sends SIGTERM then SIGCONT. background-watch forwards
	// them in that order, but the daemon, a Go program, may see SIGCONT
	// first: the kernel delivers the two to different threads, whose
	// handlers race to queue them. It dies on the SIGTERM, so a SIGCONT
	// that comes after it is never recorded.
	s.wantFinishes("143 0", "143 0")
	record := s.wantRecord("TERM\nTERM\n", "TERM\nCONT\nTERM\n")
	s.wantGone(bw2)
	s.wantStatus("false 143 NA", "up", "exitcode", "signal")
	if l := s.statusLine(); !regexp.MustCompile(`^down \(exitcode 143\) \d+ seconds, normally up, ready \d+ seconds$`).MatchString(l) {
		t.Errorf("s6-svstat = %q; want down (exitcode 143)", l)
	}

	// s6-svc -d while the launcher is held: phase 1 forwards SIGTERM to
	// the launcher, which dies of it.
	s.svc("-u")
	launcher3, bw3 := s.launcher(3)
	s.waitStatus("true false "+strconv.Itoa(bw3), "up", "ready", "pid") // see waitStatus
	s.svc("-d")
	if r := run(t, s.svwait, "-D", "-t", "20000", s.dir); r.Code != 0 {
		t.Fatalf("s6-svwait -D = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	s.wantFinishes("143 0", "143 0", "143 0")
	s.wantGone(bw3)
	s.wantRecord(record) // no third daemon was started
	if _, err := os.Stat(s.pidfile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(%q) = %v; want the stale pid file removed after launcher %d was killed", s.pidfile, err, launcher3)
	}
	warning := "background-watch: warning: " + s.launch + " (parent) crashed with signal SIGTERM"
	if got := lines(s.sup.Stderr()); !slices.Equal(got, []string{warning}) {
		t.Errorf("stderr of the service = %q; want %q", got, warning)
	}

	s.svc("-x")
	if r := s.sup.Wait(t); r.Code != 0 {
		t.Errorf("s6-supervise after s6-svc -x = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
}

// s6Service is a service directory run by a real s6-supervise. Its run
// script is
//
//	exec background-watch -d 3 PIDFILE LAUNCH
//
// with notification-fd 3. LAUNCH appends its pid to a marker file, waits
// for a line on the hold fifo, then executes the daemonize role, which
// starts the daemon role (recording signals), waits until it is ready,
// writes its pid to PIDFILE and exits 0. Each line the test writes to the
// fifo releases one launcher. ./finish appends "$1 $2" (exit code, signal
// number) to a file.
type s6Service struct {
	t                       *testing.T
	supervise, svc6         string // upstream tools, absolute paths
	svwait, svstat          string
	dir                     string // the service directory
	launch, pidfile, record string
	marker, finishes        string
	hold                    *os.File // the fifo, open read-write
	sup                     *Proc
	sessions                map[int]bool // background-watch sessions seen
}

// startS6Service makes the service directory, starts s6-supervise on it and
// waits until s6-svok says it runs. When the test ends, anything left of
// the service is killed (see sweep).
func startS6Service(t *testing.T) *s6Service {
	t.Helper()
	tools := requireS6(t, "s6-supervise", "s6-svc", "s6-svwait", "s6-svstat", "s6-svok")
	tmp := t.TempDir()
	s := &s6Service{
		t:         t,
		supervise: tools[0], svc6: tools[1], svwait: tools[2], svstat: tools[3],
		dir:      filepath.Join(tmp, "svc"),
		launch:   filepath.Join(tmp, "launch"),
		pidfile:  filepath.Join(tmp, "daemon.pid"),
		record:   filepath.Join(tmp, "record"),
		marker:   filepath.Join(tmp, "launchers"),
		finishes: filepath.Join(tmp, "finishes"),
		sessions: make(map[int]bool),
	}
	fifo := filepath.Join(tmp, "hold")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo %s: %v", fifo, err)
	}
	// Read-write: the open does not block, the launchers' opens for
	// reading do not either, and a line written before a launcher reads
	// stays in the fifo.
	hold, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hold.Close() })
	s.hold = hold

	q := shellQuote
	files := []struct {
		name, text string
		mode       os.FileMode
	}{
		{s.launch, "#!/bin/sh\necho $$ >> " + q(s.marker) + "\nread line < " + q(fifo) + "\n" +
			"exec " + q(filepath.Join(binDir, "daemonize")) + " " + q(s.pidfile) + " 0 -record " + q(s.record) + "\n", 0o755},
		{filepath.Join(s.dir, "run"), "#!/bin/sh\nexec " + q(filepath.Join(binDir, "background-watch")) +
			" -d 3 " + q(s.pidfile) + " " + q(s.launch) + "\n", 0o755},
		{filepath.Join(s.dir, "finish"), "#!/bin/sh\necho \"$1 $2\" >> " + q(s.finishes) + "\n", 0o755},
		{filepath.Join(s.dir, "notification-fd"), "3\n", 0o644},
	}
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := writeExecutable(f.name, []byte(f.text), f.mode); err != nil {
			t.Fatal(err)
		}
	}

	s.sup = start(t, s.supervise, s.dir)
	t.Cleanup(s.sweep) // runs before start's own cleanup
	waitFor(t, "s6-supervise to run "+s.dir, func() bool {
		return run(t, tools[4], s.dir).Code == 0
	})
	return s
}

// shellQuote quotes s for sh(1).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// launcher waits until the nth launcher (from 1) has started and is held,
// and returns its pid and its parent's, background-watch's.
func (s *s6Service) launcher(n int) (launcher, bw int) {
	s.t.Helper()
	var pids []string
	waitFor(s.t, fmt.Sprintf("launcher #%d to start", n), func() bool {
		b, err := os.ReadFile(s.marker)
		pids = lines(string(b))
		return err == nil && len(pids) >= n
	})
	if len(pids) != n {
		s.t.Fatalf("%d launchers started (%q); want %d", len(pids), pids, n)
	}
	launcher, err := strconv.Atoi(pids[n-1])
	if err != nil {
		s.t.Fatalf("launcher #%d: pid %q: %v", n, pids[n-1], err)
	}
	st, err := readStat(launcher)
	if err != nil {
		s.t.Fatalf("launcher #%d (pid %d): %v", n, launcher, err)
	}
	bst, err := readStat(st.PPid)
	if err != nil || bst.Comm != "background-watc" { // comm holds 15 bytes
		s.t.Fatalf("parent %d of launcher %d: readStat = %v, %v; want background-watch", st.PPid, launcher, bst, err)
	}
	s.sessions[bst.Session] = true
	return launcher, st.PPid
}

// release lets one held launcher go on.
func (s *s6Service) release() {
	s.t.Helper()
	if _, err := s.hold.WriteString("go\n"); err != nil {
		s.t.Fatalf("release the launcher: %v", err)
	}
}

// svc runs s6-svc with one option on the service.
func (s *s6Service) svc(opt string) {
	s.t.Helper()
	if r := run(s.t, s.svc6, opt, s.dir); r.Code != 0 {
		s.t.Fatalf("s6-svc %s = %s, stderr %q; want exit 0", opt, r.Status(), r.Stderr)
	}
}

// wantStatus checks the line "s6-svstat -o FIELDS" prints.
func (s *s6Service) wantStatus(want string, fields ...string) {
	s.t.Helper()
	o := strings.Join(fields, ",")
	r := run(s.t, s.svstat, "-o", o, s.dir)
	if got := strings.TrimSuffix(r.Stdout, "\n"); r.Code != 0 || got != want {
		s.t.Fatalf("s6-svstat -o %s = %s, %q, stderr %q; want exit 0, %q", o, r.Status(), got, r.Stderr, want)
	}
}

// waitStatus is wantStatus for a status that is about to be written:
// s6-supervise writes "up" after its child already runs, so a test that
// saw the new run may read the status before that write.
func (s *s6Service) waitStatus(want string, fields ...string) {
	s.t.Helper()
	o := strings.Join(fields, ",")
	var got string
	if !poll(deadline(s.t), func() bool {
		r := run(s.t, s.svstat, "-o", o, s.dir)
		got = strings.TrimSuffix(r.Stdout, "\n")
		return r.Code == 0 && got == want
	}) {
		s.t.Fatalf("s6-svstat -o %s = %q; want %q", o, got, want)
	}
}

// statusLine returns the line plain s6-svstat prints.
func (s *s6Service) statusLine() string {
	s.t.Helper()
	r := run(s.t, s.svstat, s.dir)
	if r.Code != 0 {
		s.t.Fatalf("s6-svstat = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	return strings.TrimSuffix(r.Stdout, "\n")
}

// wantRecord checks that the daemons' signal record holds one of want,
// and returns it.
// Call it once the daemons are dead (./finish ran, or s6-svwait -D
// returned): background-watch exits only after its daemon, so the record
// is complete.
func (s *s6Service) wantRecord(want ...string) string {
	s.t.Helper()
	b, err := os.ReadFile(s.record)
	if got := string(b); err != nil || !slices.Contains(want, got) {
		s.t.Fatalf("the daemons recorded %q (%v); want one of %q", got, err, want)
	}
	return string(b)
}

// wantFinishes waits until ./finish has run len(want) times and checks
// the arguments it got each time.
func (s *s6Service) wantFinishes(want ...string) {
	s.t.Helper()
	var got []string
	waitFor(s.t, fmt.Sprintf("./finish to run %d times", len(want)), func() bool {
		b, _ := os.ReadFile(s.finishes)
		got = lines(string(b))
		return len(got) >= len(want)
	})
	if !slices.Equal(got, want) {
		s.t.Fatalf("./finish got %q; want %q", got, want)
	}
}

// wantGone checks that nothing is left of the instance background-watch bw
// ran: once ./finish ran, s6-supervise has reaped background-watch, which
// exits only after reaping the daemon, and reaps its launcher first.
func (s *s6Service) wantGone(bw int) {
	s.t.Helper()
	var left []procStat
	for _, st := range procStats() {
		if st.Session == bw {
			left = append(left, st)
		}
	}
	if len(left) != 0 {
		s.t.Fatalf("session %d of the stopped background-watch still holds %v", bw, left)
	}
}

// sweep kills what the test left of the service: s6-supervise first (so
// it restarts nothing), then every process of the sessions of its
// children and of the background-watch instances seen. s6-supervise runs
// ./run in a new session, so the harness's process group kill does not
// reach them. Survivors fail the test unless it failed already.
func (s *s6Service) sweep() {
	own, _ := unix.Getsid(0)
	self := os.Getpid()
	pids := make(map[int]bool)
	for _, st := range procStats() {
		if st.PPid != s.sup.Pid {
			continue
		}
		if st.Session == st.Pid {
			s.sessions[st.Session] = true
		} else {
			pids[st.Pid] = true
		}
	}
	s.sup.KillGroup(s.t)
	until := deadline(s.t)
	if min := time.Now().Add(10 * time.Second); until.Before(min) {
		until = min // as in KillGroup: the test may have used all its time
	}
	var left []procStat
	ok := poll(until, func() bool {
		var live []procStat
		for _, st := range procStats() {
			if !pids[st.Pid] && (st.Session == own || !s.sessions[st.Session]) {
				continue
			}
			if st.State != 'Z' {
				live = append(live, st)
				if !slices.ContainsFunc(left, func(l procStat) bool { return l.Pid == st.Pid }) {
					left = append(left, st)
				}
				unix.Kill(st.Pid, unix.SIGKILL)
				continue
			}
			if st.PPid == self {
				var ws unix.WaitStatus
				unix.Wait4(st.Pid, &ws, unix.WNOHANG, nil)
			}
			live = append(live, st)
		}
		return len(live) == 0
	})
	if !ok {
		s.t.Errorf("the processes of service %s could not be killed and reaped", s.dir)
	}
	if len(left) != 0 && !s.t.Failed() {
		s.t.Errorf("processes of service %s were left behind (killed): %v", s.dir, left)
	}
}
