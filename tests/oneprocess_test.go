package tests

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/servicedir"
)

// Tests of svscan --one-process (issue 16 item 2): every service is
// supervised inside svscan's own process, and clients cannot tell.

// startTree starts svscan --one-process on the scan directory holding
// dir (svcDir's, whose only service dir is dir), with a listener
// subscribed to dir/event first, as startSupervise does for supervise.
func startTree(t *testing.T, dir string) *supervised {
	t.Helper()
	s := subscribed(t, dir)
	s.p = start(t, "svscan", "--one-process", filepath.Dir(dir))
	t.Cleanup(func() { collectSessions(t, s.p, s) }) // before start's kill
	return s
}

// collectSessions records the sessions of p's children in s, for its
// sweep: once svscan is killed, they are no longer its children.
func collectSessions(t *testing.T, p *Proc, s *supervised) {
	if !p.Running() {
		return
	}
	for _, st := range children(t, p.Pid) {
		s.sids[st.Session] = true
	}
}

// noSupervisors fails if svscan p has a supervise child: with
// --one-process its children are the services' processes only.
func noSupervisors(t *testing.T, p *Proc) {
	t.Helper()
	for _, st := range children(t, p.Pid) {
		if args := procArgv(st.Pid); len(args) > 0 && filepath.Base(args[0]) == "supervise" {
			t.Errorf("svscan --one-process has a supervise child: %d %q", st.Pid, args)
		}
	}
}

// TestOneProcessInteropS6: real s6-svc, s6-svstat, s6-svok and s6-svwait
// drive and read a service of svscan --one-process as they do a supervise
// process (the same test as TestSuperviseInteropS6), a real s6-supervise
// is refused the directory, and no supervise process exists.
func TestOneProcessInteropS6(t *testing.T) {
	t.Parallel()
	interopS6(t, func(t *testing.T, dir string) *supervised {
		s := startTree(t, dir)
		t.Cleanup(func() { noSupervisors(t, s.p) })
		return s
	}, true)
}

// TestOneProcessS6Svwait: real s6-svwait -U and -D return 0 against the
// tree, and 99 on a timeout; gotools svstat reads it.
func TestOneProcessS6Svwait(t *testing.T) {
	t.Parallel()
	tools := requireS6(t, "s6-svwait", "s6-svc")
	dir := svcDir(t, map[string]string{"run": readyRun, "notification-fd": "3\n", "down": ""})
	s := startTree(t, dir)
	s.expect("s")
	w := start(t, tools[0], "-U", "-t", "5000", dir)
	waitFor(t, "s6-svwait to subscribe", func() bool { return len(ftrigListeners(t, filepath.Join(dir, "event"))) == 2 })
	run(t, tools[1], "-u", dir)
	if r := w.Wait(t); r.Code != 0 {
		t.Errorf("s6-svwait -U = %s, %q; want 0", r.Status(), r.Stderr)
	}
	s.expect("uU")
	if r := run(t, "svstat", "-o", "up,ready,normallyup", dir); r.Stdout != "true true false\n" {
		t.Errorf("svstat = %q, %q; want %q", r.Stdout, r.Stderr, "true true false\n")
	}
	if r := run(t, tools[0], "-D", "-t", "100", dir); r.Code != 99 {
		t.Errorf("s6-svwait -D -t 100 on an up service = %s; want 99", r.Status())
	}
	noSupervisors(t, s.p)
}

// treeDir makes a scan directory with the services given (name -> files).
func treeDir(t *testing.T, services map[string]map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, files := range services {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, content := range files {
			mode := os.FileMode(0o644)
			if f == "run" || f == "finish" {
				mode = 0o755
			}
			if err := writeExecutable(filepath.Join(dir, f), []byte(content), mode); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ftrig.MkFifodir(filepath.Join(dir, "event")); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// listen subscribes to dir/event and returns a supervised that reads it,
// for a service of a tree (its p is set once the tree is started).
func listen(t *testing.T, dir string) *supervised {
	t.Helper()
	l, err := ftrig.Subscribe(filepath.Join(dir, "event"))
	if err != nil {
		t.Fatal(err)
	}
	s := &supervised{t: t, dir: dir, ev: l, sids: map[int]bool{}}
	t.Cleanup(func() { l.Close() })
	return s
}

// TestOneProcessTroubleStaysLocal: one service's trouble does not delay
// another's handling. Service hung's finish never ends (timeout-finish 0)
// and its down-signal file is a FIFO nobody writes (reading it must not
// block); meanwhile service ok is controlled down and up at once, and the
// whole process group of service crash is SIGKILLed while ok restarts:
// crash is restarted, ok is untouched.
func TestOneProcessTroubleStaysLocal(t *testing.T) {
	t.Parallel()
	sleeper := "#!/bin/sh\nexec sleep 1000\n"
	root := treeDir(t, map[string]map[string]string{
		"hung":  {"run": sleeper, "finish": "#!/bin/sh\nexec sleep 1000\n", "timeout-finish": "0\n"},
		"ok":    {"run": sleeper},
		"crash": {"run": "#!/bin/sh\nsleep 1000 &\nexec sleep 1000\n"},
	})
	hungDir, okDir, crashDir := filepath.Join(root, "hung"), filepath.Join(root, "ok"), filepath.Join(root, "crash")
	if err := unix.Mkfifo(filepath.Join(hungDir, "down-signal"), 0o644); err != nil {
		t.Fatal(err)
	}
	hung, ok, crash := listen(t, hungDir), listen(t, okDir), listen(t, crashDir)
	t.Cleanup(func() {
		for _, s := range []*supervised{hung, ok, crash} {
			s.sweep()
		}
	})
	p := start(t, "svscan", "--one-process", root)
	t.Cleanup(func() { collectSessions(t, p, hung) }) // before start's kill
	for _, s := range []*supervised{hung, ok, crash} {
		s.p = p
		s.expect("su")
	}
	// hung: d reads the FIFO down-signal (invalid: SIGTERM), then finish
	// hangs for good.
	hung.control("d")
	hung.expect("d")
	if st, _ := readStatus(hungDir); st.PID == 0 {
		t.Fatalf("hung's finish is not running: %+v", st)
	}
	for i := 0; i < 3; i++ {
		ok.control("d")
		ok.expect("dD")
		ok.control("u")
		ok.expect("u")
	}
	// SIGKILL to crash's whole process group, while ok restarts.
	cst, _ := readStatus(crashDir)
	ok.control("k")
	if err := unix.Kill(-int(cst.PID), unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crash.expect("dD")
	ok.expect("dD")
	crash.expect("u")
	ok.expect("u")
	if st, _ := readStatus(hungDir); st.PID == 0 || st.Flags&servicedir.FlagFinishing == 0 {
		t.Errorf("hung after the others' handling = %+v; want its finish still running", st)
	}
	if r := run(t, "svok", hungDir); r.Code != 0 {
		t.Errorf("svok on hung = %s; want 0", r.Status())
	}
	noSupervisors(t, p)
	for _, s := range []*supervised{hung, ok, crash} {
		// Each run is a session leader: remember the session, so that
		// the sweep also kills what d leaves of it (crash's background
		// sleep outlives its leader's SIGTERM and is no child of svscan).
		// No x: svscan would start a new supervisor, whose service would
		// come up again in a session nobody collected.
		if st, _ := readStatus(s.dir); st.PID != 0 {
			s.sids[int(st.PID)] = true
		}
		s.control("d")
	}
}
