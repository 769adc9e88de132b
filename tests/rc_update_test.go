package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// supervisorPID is the pid (in svscan's namespace) of the run of name.
func (e *rcEnv) runPID(name string) int {
	e.t.Helper()
	st, ok := readStatus(e.sd(name))
	if !ok {
		return 0
	}
	return int(st.PID)
}

func TestRcUpdate(t *testing.T) {
	t.Parallel()
	files := merge(
		longrunFiles("keep", "0"),
		longrunFiles("changed", "0", "keep"),
		longrunFiles("gone", "0"),
		oneshotFiles("typechange", "0"),
		longrunFiles("dependent", "0", "typechange"),
		map[string]string{"top/type": "bundle\n", "top/contents": "changed\ngone\ndependent\n"},
	)
	e := newRcEnv(t, files)
	e.init()
	e.mustRc(0, "-u", "change", "top")
	pids := map[string]int{}
	for _, n := range []string{"keep", "changed", "gone", "dependent"} {
		pids[n] = e.runPID(n)
	}
	update := func(code int, args ...string) Result {
		t.Helper()
		return e.mustRc(code, append(append([]string{"update"}, args...), e.src)...)
	}

	// Same sources: nothing restarts.
	update(0)
	for n, pid := range pids {
		if got := e.runPID(n); got != pid {
			t.Errorf("same sources: %s restarted (%d -> %d)", n, pid, got)
		}
	}

	// A changed run is rewritten but not restarted, unless asked.
	newRun := "#!/bin/sh\necho v2 > " + e.log + ".v2\necho >&3\nexec sleep 1000\n"
	if err := writeExecutable(filepath.Join(e.src, "changed", "run"), []byte(newRun), 0o755); err != nil {
		t.Fatal(err)
	}
	r := e.mustRc(0, "update", "-n", e.src)
	if r.Stdout != "" {
		t.Errorf("update -n with a changed run printed %q; want nothing", r.Stdout)
	}
	r = update(0)
	if !strings.Contains(r.Stderr, "changed, not restarted: changed") {
		t.Errorf("stderr %q", r.Stderr)
	}
	if got := e.runPID("changed"); got != pids["changed"] {
		t.Errorf("changed run restarted without --restart-changed")
	}
	if b, _ := os.ReadFile(filepath.Join(e.sd("changed"), "run")); string(b) != newRun {
		t.Errorf("live run = %q; want the new one", b)
	}
	v3 := "#!/bin/sh\necho >&3\nexec sleep 1001\n"
	if err := writeExecutable(filepath.Join(e.src, "changed", "run"), []byte(v3), 0o755); err != nil {
		t.Fatal(err)
	}
	r = e.mustRc(0, "update", "-n", "--restart-changed", e.src)
	if strings.TrimSpace(r.Stdout) != "restart changed" {
		t.Errorf("update -n --restart-changed = %q; want restart changed", r.Stdout)
	}
	update(0, "--restart-changed")
	if got := e.runPID("changed"); got == pids["changed"] || got == 0 {
		t.Errorf("--restart-changed: changed pid %d -> %d", pids["changed"], got)
	}
	if got := e.runPID("keep"); got != pids["keep"] {
		t.Errorf("--restart-changed restarted keep too")
	}

	// Removal, a type change, an addition.
	if err := os.RemoveAll(filepath.Join(e.src, "gone")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.src, "top", "contents"), []byte("changed\ndependent\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeTree(t, e.src, merge(
		map[string]string{"typechange/up": "", "typechange/down": ""},
		longrunFiles("typechange", "0"),
		longrunFiles("added", "0", "keep"),
	))
	os.Remove(filepath.Join(e.src, "typechange", "up"))
	os.Remove(filepath.Join(e.src, "typechange", "down"))
	r = e.mustRc(0, "update", "-n", e.src)
	for _, want := range []string{"stop gone", "restart typechange", "restart dependent"} {
		if !strings.Contains(r.Stdout, want+"\n") {
			t.Errorf("update -n = %q; lacks %q", r.Stdout, want)
		}
	}
	update(0)
	if _, err := os.Lstat(filepath.Join(e.scan, "gone")); !os.IsNotExist(err) {
		t.Errorf("scan link of a removed service: %v", err)
	}
	waitFor(t, "gone's servicedir to be removed", func() bool {
		_, err := os.Stat(e.sd("gone"))
		return os.IsNotExist(err)
	})
	st := e.state()
	if st["typechange"] != "U" || st["dependent"] != "U" || st["keep"] != "U" {
		t.Errorf("state after update: %v", st)
	}
	if _, ok := st["gone"]; ok {
		t.Errorf("gone still in the state: %v", st)
	}
	if st["added"] != "D" {
		t.Errorf("added is %q; want D (nothing up depends on it)", st["added"])
	}
	if got := e.runPID("dependent"); got == pids["dependent"] || got == 0 {
		t.Errorf("dependent of a type change not restarted (%d -> %d)", pids["dependent"], got)
	}
	if got := e.runPID("keep"); got != pids["keep"] {
		t.Errorf("keep restarted by an unrelated update")
	}
	if r := e.rc("diff"); r.Code != 0 || r.Stdout != "" {
		t.Errorf("diff after update = %s %q", r.Status(), r.Stdout)
	}

	// Conversion files: unknown 3, bundle 5, twice 6; invalid sources 4.
	conv := filepath.Join(e.dir, "conv")
	for _, tt := range []struct {
		text string
		code int
	}{{"nosuch restart\n", 3}, {"top\n", 5}, {"keep\nkeep restart\n", 6}, {"keep -> \n", 100}} {
		if err := os.WriteFile(conv, []byte(tt.text), 0o644); err != nil {
			t.Fatal(err)
		}
		e.mustRc(tt.code, "update", "-f", conv, e.src)
	}
	if err := os.WriteFile(conv, []byte("keep restart\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	update(0, "-f", conv)
	if got := e.runPID("keep"); got == pids["keep"] {
		t.Errorf("keep marked restart was not restarted")
	}
	bad := filepath.Join(e.dir, "bad")
	writeTree(t, bad, map[string]string{"x/type": "nonsense\n"})
	e.mustRc(4, "update", bad)
}

// TestRcUpdateStopPhaseFailures covers spec/rc.md §7 step 4: when the stop
// phase fails, update exits 9, and when it times out 10; either way the
// database is not switched (the service is still known and recorded up).
func TestRcUpdateStopPhaseFailures(t *testing.T) {
	t.Parallel()
	files := merge(
		map[string]string{
			"bad/type": "oneshot\n",
			"bad/up":   "true\n",
			"bad/down": "false\n",
		},
		oneshotFiles("slow", "1"),
		longrunFiles("keep", "0"),
	)
	e := newRcEnv(t, files)
	e.init()
	e.mustRc(0, "-u", "change", "bad", "slow", "keep")
	if st := e.state(); st["bad"] != "U" || st["slow"] != "U" {
		t.Fatalf("state before the updates: %v", st)
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"bad", []string{"update"}, 9, "stop phase failed; database not switched"},
		{"slow", []string{"-t", "300", "update"}, 10, "stop phase timed out; database not switched"},
	} {
		if err := os.RemoveAll(filepath.Join(e.src, tt.name)); err != nil {
			t.Fatal(err)
		}
		r := e.mustRc(tt.code, append(tt.args, e.src)...)
		if !strings.Contains(r.Stderr, tt.msg) {
			t.Errorf("update removing %s: stderr %q; want %q", tt.name, r.Stderr, tt.msg)
		}
		// Not switched: the old database still lists the service, and its
		// servicedir links are untouched.
		if r := e.mustRc(0, "listall", tt.name); !strings.Contains(r.Stdout, tt.name+"\n") {
			t.Errorf("after a failed update, listall %s = %q; want the old database", tt.name, r.Stdout)
		}
		if _, err := os.Lstat(filepath.Join(e.scan, "keep")); err != nil {
			t.Errorf("keep's scan link after a failed update: %v", err)
		}
		if err := os.MkdirAll(filepath.Join(e.src, tt.name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeTree(t, e.src, files)
	}
}
