package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// gatedRun is a run script that becomes ready (notification-fd 3) only
// once the test writes a line into the FIFO gate.
func gatedRun(t *testing.T) (run, gate string) {
	t.Helper()
	gate = filepath.Join(t.TempDir(), "gate")
	if err := unix.Mkfifo(gate, 0o600); err != nil {
		t.Fatal(err)
	}
	return "#!/bin/sh\nread x < " + shellQuote(gate) + "\nprintf '\\n' >&3\nexec 3>&-\nexec sleep 1000\n", gate
}

// release opens gate for writing and writes a line to it, which makes the
// gated run ready.
func release(t *testing.T, gate string) {
	t.Helper()
	if err := os.WriteFile(gate, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitListeners waits until dir/event holds n listener FIFOs: a waiter
// started in the background has subscribed once the count goes up.
func waitListeners(t *testing.T, dir string, n int) {
	t.Helper()
	ev := filepath.Join(dir, "event")
	waitFor(t, "listener FIFOs in "+ev, func() bool {
		if _, err := os.Stat(ev); err != nil {
			return false
		}
		return len(ftrigListeners(t, ev)) == n
	})
}

// wantExit checks how a waiter ended.
func wantExit(t *testing.T, r Result, code int, stderr string) {
	t.Helper()
	if r.Code != code || r.Stderr != stderr || r.Stdout != "" {
		t.Errorf("%s, stderr %q, stdout %q; want exit %d, stderr %q", r.Status(), r.Stderr, r.Stdout, code, stderr)
	}
}

// TestSvwaitStates drives one gated service through up, ready and down,
// with svwait and svc -w waiting at each step.
func TestSvwaitStates(t *testing.T) {
	t.Parallel()
	runScript, gate := gatedRun(t)
	dir := svcDir(t, map[string]string{"run": runScript, "notification-fd": "3\n"})
	s := startSupervise(t, dir)
	s.expect("s")
	s.expect("u")
	wantExit(t, run(t, "svwait", "-u", dir), 0, "")
	wantExit(t, run(t, "svwait", "-d", "-t", "50", dir), 99, "svwait: fatal: timed out\n")

	// -U: still waiting while run is not ready (the negative control).
	// "s6-svwait" here is the farm's alias, i.e. gotools svwait.
	p := start(t, "s6-svwait", "-U", dir)
	waitListeners(t, dir, 2)
	if !p.Running() {
		t.Fatalf("svwait -U on an unready service ended: %s", p.Wait(t).Status())
	}
	release(t, gate)
	s.expect("U")
	wantExit(t, p.Wait(t), 0, "")

	// -D, started before svc -d.
	p = start(t, "svwait", "-D", dir)
	waitListeners(t, dir, 2)
	if !p.Running() {
		t.Fatalf("svwait -D on an up service ended: %s", p.Wait(t).Status())
	}
	wantExit(t, run(t, "svc", "-d", dir), 0, "")
	s.expect("dD")
	wantExit(t, p.Wait(t), 0, "")

	// svc -wu -u: up again; then svc -wD -d returns after the finish.
	wantExit(t, run(t, "svc", "-wu", "-T", "5000", "-u", dir), 0, "")
	s.expect("u")
	wantExit(t, run(t, "svc", "-wD", "-d", dir), 0, "")
	s.expect("dD")
	if l := ftrigListeners(t, filepath.Join(dir, "event")); len(l) != 1 {
		t.Errorf("event/ holds %q; want only the test's listener", l)
	}
}

// TestSvwaitOrAnd waits on two services with -o and -a.
func TestSvwaitOrAnd(t *testing.T) {
	t.Parallel()
	a := startSupervise(t, svcDir(t, map[string]string{"run": "#!/bin/sh\nexec sleep 1000\n", "down": ""}))
	b := startSupervise(t, svcDir(t, map[string]string{"run": "#!/bin/sh\nexec sleep 1000\n", "down": ""}))
	a.expect("s")
	b.expect("s")

	or := start(t, "svwait", "-o", "-u", a.dir, b.dir)
	and := start(t, "svwait", "-a", "-u", a.dir, b.dir)
	waitListeners(t, a.dir, 3)
	waitListeners(t, b.dir, 3)
	wantExit(t, run(t, "svc", "-u", a.dir), 0, "")
	a.expect("u")
	wantExit(t, or.Wait(t), 0, "")
	// b is still down: -a waits on (checked once -o has returned).
	if !and.Running() {
		t.Fatalf("svwait -a with one service down ended: %s", and.Wait(t).Status())
	}
	wantExit(t, run(t, "svc", "-u", b.dir), 0, "")
	b.expect("u")
	wantExit(t, and.Wait(t), 0, "")
}

// TestSvwaitFailures covers the exit codes other than 0: timeout, a dead
// supervisor, a permanent failure, and a signal, each leaving no FIFO.
func TestSvwaitFailures(t *testing.T) {
	t.Parallel()
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		s := startSupervise(t, svcDir(t, map[string]string{"run": "#!/bin/sh\nexec sleep 1000\n", "down": ""}))
		s.expect("s")
		t0 := time.Now()
		wantExit(t, run(t, "svwait", "-t", "100", "-u", s.dir), 99, "svwait: fatal: timed out\n")
		if d := time.Since(t0); d < 100*time.Millisecond {
			t.Errorf("svwait -t 100 gave up after %v", d)
		}
		if l := ftrigListeners(t, filepath.Join(s.dir, "event")); len(l) != 1 {
			t.Errorf("event/ holds %q; want only the test's listener", l)
		}
	})
	t.Run("supervisor died", func(t *testing.T) {
		t.Parallel()
		s := startSupervise(t, svcDir(t, map[string]string{"run": "#!/bin/sh\nexec sleep 1000\n", "down": ""}))
		s.expect("s")
		p := start(t, "svwait", "-u", s.dir)
		waitListeners(t, s.dir, 2)
		wantExit(t, run(t, "svc", "-x", s.dir), 0, "")
		s.expect("x")
		wantExit(t, p.Wait(t), 102, "svwait: fatal: some supervisors died\n")
	})
	t.Run("permanent failure", func(t *testing.T) {
		t.Parallel()
		s := startSupervise(t, svcDir(t, map[string]string{"run": "#!/bin/sh\nexit 1\n", "finish": "#!/bin/sh\nexit 125\n", "down": ""}))
		s.expect("s")
		p := start(t, "svwait", "-U", s.dir)
		waitListeners(t, s.dir, 2)
		wantExit(t, run(t, "svc", "-u", s.dir), 0, "")
		s.expect("u")
		s.expect("d")
		s.expect("OD")
		wantExit(t, p.Wait(t), 1, "svwait: fatal: 1 services failed permanently\n")
	})
	t.Run("permanent failure, s6 names", func(t *testing.T) {
		t.Parallel()
		s := startSupervise(t, svcDir(t, map[string]string{"run": "#!/bin/sh\nexit 1\n", "finish": "#!/bin/sh\nexit 125\n", "down": ""}))
		s.expect("s")
		p := start(t, "s6-svwait", "-U", s.dir)
		waitListeners(t, s.dir, 2)
		// s6-svc -wU here: without notification-fd, s6's warning, then up.
		q := start(t, "s6-svc", "-wu", "-u", s.dir)
		s.expect("u")
		s.expect("d")
		s.expect("OD")
		wantExit(t, p.Wait(t), 1, "s6-svwait: fatal: some services reported permanent failure or their supervisor died\n")
		if r := q.Wait(t); r.Code != 0 {
			t.Errorf("s6-svc -wu -u = %s, stderr %q; want 0 (it was up once)", r.Status(), r.Stderr)
		}
	})
	t.Run("SIGTERM", func(t *testing.T) {
		t.Parallel()
		dir := svcDir(t, map[string]string{"run": "#!/bin/sh\nexec sleep 1000\n"})
		p := start(t, "svwait", "-u", dir)
		waitListeners(t, dir, 1)
		p.Signal(unix.SIGTERM)
		wantExit(t, p.Wait(t), 128+int(unix.SIGTERM), "")
		if l := ftrigListeners(t, filepath.Join(dir, "event")); len(l) != 0 {
			t.Errorf("after SIGTERM event/ holds %q; want nothing", l)
		}
	})
	t.Run("missing DIR", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(t.TempDir(), "nosuch")
		r := run(t, "svwait", missing)
		if r.Code != 111 || !strings.HasPrefix(r.Stderr, "svwait: fatal: unable to mkdir "+missing+"/event: No such file or directory") {
			t.Errorf("svwait MISSING = %s, stderr %q; want 111", r.Status(), r.Stderr)
		}
	})
}

// TestSvwaitBeforeSupervise: svwait started on a directory no supervisor
// has run on yet (no status file) waits, and the service coming up
// satisfies it.
func TestSvwaitBeforeSupervise(t *testing.T) {
	t.Parallel()
	dir := svcDir(t, map[string]string{"run": "#!/bin/sh\nexec sleep 1000\n"})
	p := start(t, "svwait", "-u", dir)
	waitListeners(t, dir, 1)
	if !p.Running() {
		t.Fatalf("svwait -u without a status file ended: %s", p.Wait(t).Status())
	}
	s := startSupervise(t, dir)
	s.expect("s")
	s.expect("u")
	wantExit(t, p.Wait(t), 0, "")
}

// TestSvcWait covers svc -w's timeout and readiness fallback.
func TestSvcWait(t *testing.T) {
	t.Parallel()
	t.Run("never ready", func(t *testing.T) {
		t.Parallel()
		s := startSupervise(t, svcDir(t, map[string]string{"run": "#!/bin/sh\nexec sleep 1000\n", "notification-fd": "3\n", "down": ""}))
		s.expect("s")
		t0 := time.Now()
		wantExit(t, run(t, "svc", "-wU", "-T", "200", "-u", s.dir), 99, "svc: fatal: timed out\n")
		if d := time.Since(t0); d < 200*time.Millisecond {
			t.Errorf("svc -wU -T 200 gave up after %v", d)
		}
		s.expect("u")
		if l := ftrigListeners(t, filepath.Join(s.dir, "event")); len(l) != 1 {
			t.Errorf("event/ holds %q; want only the test's listener", l)
		}
	})
	t.Run("no notification-fd", func(t *testing.T) {
		t.Parallel()
		s := startSupervise(t, svcDir(t, map[string]string{"run": "#!/bin/sh\nexec sleep 1000\n", "down": ""}))
		s.expect("s")
		wantExit(t, run(t, "svc", "-wU", "-T", "5000", "-u", s.dir), 0,
			"svc: warning: "+s.dir+"/notification-fd not present - ignoring request for readiness notification\n")
		s.expect("u")
	})
	t.Run("send error", func(t *testing.T) {
		t.Parallel()
		dir := svcDir(t, map[string]string{"run": "#!/bin/sh\nexec sleep 1000\n"})
		wantExit(t, run(t, "svc", "-wu", "-u", dir), 102, "svc: fatal: unable to control "+dir+": supervisor not listening\n")
		if l := ftrigListeners(t, filepath.Join(dir, "event")); len(l) != 0 {
			t.Errorf("event/ holds %q; want nothing", l)
		}
	})
}

// TestSvwaitInteropS6: real s6-svwait waits on gotools supervise, and
// gotools svwait on real s6-supervise.
func TestSvwaitInteropS6(t *testing.T) {
	t.Parallel()
	t.Run("s6-svwait on supervise", func(t *testing.T) {
		t.Parallel()
		tools := requireS6(t, "s6-svwait")
		runScript, gate := gatedRun(t)
		s := startSupervise(t, svcDir(t, map[string]string{"run": runScript, "notification-fd": "3\n"}))
		s.expect("s")
		s.expect("u")
		wantExit(t, run(t, tools[0], "-U", "-t", "100", s.dir), 99, "s6-svwait: fatal: timed out\n")
		p := start(t, tools[0], "-U", "-t", "5000", s.dir)
		waitListeners(t, s.dir, 2)
		release(t, gate)
		s.expect("U")
		wantExit(t, p.Wait(t), 0, "")
		p = start(t, tools[0], "-D", "-t", "5000", s.dir)
		waitListeners(t, s.dir, 2)
		wantExit(t, run(t, "svc", "-d", s.dir), 0, "")
		s.expect("dD")
		wantExit(t, p.Wait(t), 0, "")
	})
	t.Run("svwait on s6-supervise", func(t *testing.T) {
		t.Parallel()
		s := startS6SvcService(t)
		wantExit(t, run(t, "svwait", "-u", "-t", "5000", s.dir), 0, "")
		p := start(t, "svwait", "-d", "-t", "5000", s.dir)
		waitListeners(t, s.dir, 1)
		s.svc("-d")
		wantExit(t, p.Wait(t), 0, "")
		p = start(t, "svwait", "-u", s.dir)
		waitListeners(t, s.dir, 1)
		s.svc("-x")
		wantExit(t, p.Wait(t), 102, "svwait: fatal: some supervisors died\n")
	})
}
