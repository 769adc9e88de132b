package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/lock"
)

// initDirs makes DIR/scan and DIR/src (one longrun a) for init tests
// that run without newRcEnv; the live directory is DIR/live.
func initDirs(t *testing.T) (dir, scan, src, live string) {
	t.Helper()
	dir = t.TempDir()
	scan, src, live = filepath.Join(dir, "scan"), filepath.Join(dir, "src"), filepath.Join(dir, "live")
	writeTree(t, src, longrunFiles("a", "0"))
	if err := os.Mkdir(scan, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, scan, src, live
}

// checkOnlyLeft fails unless dir holds scan, src and the lock file only.
func checkOnlyLeft(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "scan" && e.Name() != "src" && e.Name() != "live:lock" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestRcInitWithoutSvscan(t *testing.T) {
	t.Parallel()
	dir, scan, src, live := initDirs(t)
	r := run(t, "rc", "init", "-l", live, scan, src)
	if r.Code != 111 || !strings.Contains(r.Stderr, "svscan is not running on "+scan) {
		t.Errorf("rc init without svscan = %s, %q; want 111", r.Status(), r.Stderr)
	}
	checkOnlyLeft(t, dir)
	if ents, _ := os.ReadDir(scan); len(ents) != 0 {
		t.Errorf("scan directory holds %v", ents)
	}
}

func TestRcInitTwiceAndStale(t *testing.T) {
	t.Parallel()
	files := longrunFiles("a", "0")
	files["a/run"] = strings.Replace(files["a/run"], "#!/bin/sh", "#!/bin/sh\n# not executable in the source", 1)
	e := newRcEnv(t, files)
	if err := os.Chmod(filepath.Join(e.src, "a", "run"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.init()
	if st, err := os.Stat(filepath.Join(e.sd("a"), "run")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("live run: %v, %v; want mode 0755", st.Mode(), err)
	}
	r := e.mustRc(1, "init", e.scan, e.src)
	if !strings.Contains(r.Stderr, e.live+" is live: use rc update") {
		t.Errorf("second init: %q", r.Stderr)
	}
	e.mustRc(0, "-u", "change", "a")
	// A restarted container: svscan and its supervisors are gone, the
	// live directory is still there.
	e.svscan.KillGroup(t)
	waitFor(t, "a's supervisor to be gone", func() bool {
		held, err := lock.Held(filepath.Join(e.sd("a"), "supervise", "lock"))
		return err == nil && !held
	})
	// The new svscan starts from a clean scan directory, as init makes it.
	if err := os.Remove(filepath.Join(e.scan, "a")); err != nil {
		t.Fatal(err)
	}
	r2, w := pipe(t)
	e.svscan = startIn(t, Opts{ExtraFiles: []*os.File{w}, NewPIDNS: true}, "svscan", "-d", "3", e.scan)
	w.Close()
	readToEOF(t, r2)
	r = e.mustRc(0, "init", "-t", "10000", e.scan, e.src)
	if !strings.Contains(r.Stderr, "rc: warning: removing stale live directory "+e.live) {
		t.Errorf("stale init: %q", r.Stderr)
	}
	if st := e.state(); st["a"] != "D" {
		t.Errorf("after a new init, a is %s", st["a"])
	}
	e.mustRc(0, "-u", "change", "a")
}

func TestRcOneshotContext(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"ctx/type": "oneshot\n",
		"fds/type": "oneshot\n",
		"fds/up":   "fdlist\n",
		"ctx/up": `sh -c "env > LOG.env; pwd > LOG.pwd; umask > LOG.umask; ` +
			`echo $$ > LOG.pid; cut -d\" \" -f6 /proc/$$/stat > LOG.sid"` + "\n",
	}
	e := newRcEnv(t, files)
	if r := runIn(t, Opts{Env: []string{"RC_TEST_VAR=from-init"}}, "rc", "-l", e.live, "init", e.scan, e.src); r.Code != 0 {
		t.Fatalf("rc init = %s, %q", r.Status(), r.Stderr)
	}
	other := t.TempDir()
	r := runIn(t, Opts{Env: []string{"RC_TEST_VAR=from-change", "RC_OTHER=x"}, Dir: other}, "rc", "-l", e.live, "-u", "change", "ctx", "fds")
	if r.Code != 0 {
		t.Fatalf("rc -u change = %s, %q", r.Status(), r.Stderr)
	}
	// fdlist (a oneshot) printed the fds it got on rc's stdout.
	var fds []string
	for _, l := range lines(r.Stdout) {
		fds = append(fds, strings.Fields(l)[0])
	}
	if strings.Join(fds, " ") != "0 1 2" {
		t.Errorf("the oneshot's fds: %q; want 0, 1, 2 only", r.Stdout)
	}
	read := func(ext string) string {
		b, err := os.ReadFile(e.log + "." + ext)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	env := lines(read("env"))
	for _, want := range []string{"RC_TEST_VAR=from-init", "RC_NAME=ctx"} {
		found := false
		for _, l := range env {
			found = found || l == want
		}
		if !found {
			t.Errorf("the script's environment lacks %s", want)
		}
	}
	for _, l := range env {
		if strings.HasPrefix(l, "RC_OTHER=") {
			t.Errorf("the script got rc's own environment: %s", l)
		}
	}
	if got := strings.TrimSpace(read("pwd")); got != "/" {
		t.Errorf("cwd %q; want /", got)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(read("pid")))
	if sid, _ := strconv.Atoi(strings.TrimSpace(read("sid"))); pid == 0 || sid != pid {
		t.Errorf("sid %d, pid %d: want its own session", sid, pid)
	}
	if got := strings.TrimSpace(read("umask")); got != "0022" && got != "022" {
		t.Logf("umask %q", got)
	}
}

// TestRcInitTimeoutRollsBack: supervisors that never come up (svscan runs
// a stand-in that never takes the lock) make init fail with 111 after -t
// and remove what it made.
func TestRcInitTimeoutRollsBack(t *testing.T) {
	t.Parallel()
	dir, scan, src, live := initDirs(t)
	r, w := pipe(t)
	sv := startIn(t, Opts{ExtraFiles: []*os.File{w}, NewPIDNS: true}, "svscan", "-d", "3", "--supervisor=sleeper", scan)
	w.Close()
	if got := readToEOF(t, r); got != "\n" {
		t.Fatalf("svscan wrote %q (stderr %q)", got, sv.Stderr())
	}
	res := run(t, "rc", "init", "-l", live, "-t", "300", scan, src)
	if res.Code != 111 || !strings.Contains(res.Stderr, "supervisors not up after 300 ms") {
		t.Errorf("rc init = %s, %q; want 111", res.Status(), res.Stderr)
	}
	checkOnlyLeft(t, dir)
	if ents, _ := os.ReadDir(scan); len(ents) != 1 || ents[0].Name() != ".s6-svscan" {
		t.Errorf("scan directory holds %v", ents)
	}
}

// TestRcOneshotRunsAsTreeOwner: root acting on a tree that belongs to uid
// 1000 runs its scripts as 1000, without supplementary groups.
func TestRcOneshotRunsAsTreeOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")
	for _, d := range []string{filepath.Dir(tmp), tmp} { // t.TempDir's are 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"who/type": "oneshot\n",
		"who/up":   "sh -c \"id -u > " + out + "/uid; id -G > " + out + "/groups\"\n",
	}
	e := newRcEnv(t, files)
	e.init()
	if err := os.Chown(e.live+":servicedirs", 1000, 1000); err != nil {
		t.Fatal(err)
	}
	e.mustRc(0, "-u", "change", "who")
	for f, want := range map[string]string{"uid": "1000", "groups": "1000"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s: %q, %v; want %s", f, b, err, want)
		}
	}
}
