package tests

import (
	"strconv"
	"testing"
)

// crashTree is a small diamond: oneshots slow enough that a killed rc
// leaves them running, longruns with readiness.
func crashTree() (map[string]string, map[string][]string) {
	files := merge(
		oneshotFiles("c0", "0.15"),
		longrunFiles("c1", "0.05", "c0"),
		oneshotFiles("c2", "0.15", "c0"),
		longrunFiles("c3", "0", "c1", "c2"),
		oneshotFiles("c4", "0.1", "c3"),
		map[string]string{"all/type": "bundle\n", "all/contents": "c4\n"},
	)
	deps := map[string][]string{"c1": {"c0"}, "c2": {"c0"}, "c3": {"c1", "c2"}, "c4": {"c3"}}
	return files, deps
}

// checkNoOverlap fails if a service's script began again while its
// previous run had not ended.
func checkNoOverlap(t *testing.T, evs []event) {
	t.Helper()
	open := map[string]bool{}
	for _, ev := range evs {
		key := ev.name
		switch ev.what {
		case "begin", "dbegin":
			if open[key] {
				t.Errorf("%s began again before its previous script ended: %v", key, evs)
			}
			open[key] = true
		case "end", "dend":
			open[key] = false
		}
	}
}

// crashAndRecover kills rc -u change all after its n-th state write, then
// checks that the next rc finishes the job and the one after undoes it.
func crashAndRecover(t *testing.T, e *rcEnv, n int) {
	t.Helper()
	r := run(t, "env", "GOTOOLS_RC_KILL_AFTER_WRITE="+strconv.Itoa(n), "rc", "-l", e.live, "-u", "change", "all")
	if r.Code == 0 {
		t.Logf("n=%d: rc finished before its %d-th write", n, n)
	}
	e.state() // parses
	e.mustRc(0, "-u", "change", "all")
	for name, s := range e.state() {
		if s != "U" {
			t.Errorf("n=%d: after recovery %s is %s; want U", n, name, s)
		}
	}
	if r := e.rc("diff"); r.Code != 0 || r.Stdout != "" {
		t.Errorf("n=%d: diff = %s %q; want nothing", n, r.Status(), r.Stdout)
	}
	e.mustRc(0, "-da", "change")
	for name, s := range e.state() {
		if s != "D" {
			t.Errorf("n=%d: after -da change %s is %s; want D", n, name, s)
		}
	}
	if r := e.rc("diff"); r.Code != 0 || r.Stdout != "" {
		t.Errorf("n=%d: diff = %s %q; want nothing", n, r.Status(), r.Stdout)
	}
}

func TestRcCrashRecovery(t *testing.T) {
	t.Parallel()
	files, _ := crashTree()
	e := newRcEnv(t, files)
	e.init()
	for _, n := range []int{1, 2, 4, 6} {
		crashAndRecover(t, e, n)
	}
	checkNoOverlap(t, e.events())
}
