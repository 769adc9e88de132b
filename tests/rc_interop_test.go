package tests

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRcInteropRealS6 drives real s6-supervise (through svscan
// --supervisor) with rc, and reads rc's live servicedirs with real
// s6-svstat and s6-svc (spec/rc.md test 14, a subset).
func TestRcInteropRealS6(t *testing.T) {
	t.Parallel()
	tools := requireS6(t, "s6-supervise", "s6-svstat", "s6-svc")
	files, deps := crashTree()
	e := newRcEnvArgs(t, files, []string{"--supervisor=" + tools[0]})
	e.init()
	e.mustRc(0, "-u", "change", "all")
	checkOrder(t, e.events(), deps, true)
	st := run(t, tools[1], e.sd("c3"))
	if st.Code != 0 || !strings.HasPrefix(st.Stdout, "up ") || !strings.Contains(st.Stdout, "ready") {
		t.Errorf("s6-svstat c3 = %s %q; want up and ready", st.Status(), st.Stdout)
	}
	if r := e.rc("diff"); r.Code != 0 || r.Stdout != "" {
		t.Errorf("diff = %s %q", r.Status(), r.Stdout)
	}
	// Real s6-svc takes c1 down behind rc's back: diff sees it.
	if r := run(t, tools[2], "-d", e.sd("c1")); r.Code != 0 {
		t.Fatalf("s6-svc -d = %s %q", r.Status(), r.Stderr)
	}
	if r := e.rc("diff"); r.Code != 1 || strings.TrimSpace(r.Stdout) != "-c1" {
		t.Errorf("diff after s6-svc -d = %s %q; want 1, -c1", r.Status(), r.Stdout)
	}
	if err := os.Remove(e.log); err != nil {
		t.Fatal(err)
	}
	e.mustRc(0, "-da", "change")
	checkOrder(t, e.events(), map[string][]string{"c4": {"c3"}}, false)
	for n, s := range e.state() {
		if s != "D" {
			t.Errorf("%s is %s after -da change", n, s)
		}
	}
}

func TestRcLockBusy(t *testing.T) {
	t.Parallel()
	files, _ := crashTree()
	e := newRcEnv(t, files)
	e.init()
	holder := start(t, "setlock", e.live+":lock", "sleeper")
	holder.WaitLine(t, "^ready$")
	r := e.rc("-u", "change", "all")
	if r.Code != 111 || !strings.Contains(r.Stderr, "unable to lock "+e.live+": Resource temporarily unavailable (another rc is running; -b waits)") {
		t.Errorf("rc with the lock busy = %s, %q; want 111", r.Status(), r.Stderr)
	}
	if r := e.rc("list", "all"); r.Code != 111 {
		t.Errorf("rc list with the lock held exclusively = %s; want 111", r.Status())
	}
	// -b waits for the lock instead.
	p := start(t, "rc", "-l", e.live, "-b", "-u", "change", "all")
	var st unix.Stat_t
	if err := unix.Stat(e.live+":lock", &st); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rc -b to wait for the lock (/proc/locks)", func() bool {
		b, _ := os.ReadFile("/proc/locks")
		for _, l := range lines(string(b)) {
			if strings.Contains(l, " -> ") && strings.Contains(l, ":"+strconv.FormatUint(st.Ino, 10)+" ") {
				return true
			}
		}
		return false
	})
	if !p.Running() {
		t.Fatalf("rc -b did not wait: %s", p.Stderr())
	}
	holder.Signal(unix.SIGTERM)
	if r := p.Wait(t); r.Code != 0 {
		t.Errorf("rc -b = %s, %q; want 0 once the lock is free", r.Status(), r.Stderr)
	}
}
