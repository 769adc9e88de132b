package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rcEnv is a supervision tree with an rc live directory over it: svscan
// runs as PID 1 of its own PID namespace (killed with the test), the live
// directory and the sources live in the test's temp dir.
type rcEnv struct {
	t      testing.TB
	dir    string
	scan   string
	live   string
	src    string
	log    string // the event log the test services append to
	svscan *Proc
}

// newRcEnv writes files (relative to the source dir; "LOG" in a file is
// replaced with the event log's path) and starts svscan; it does not run
// rc init.
func newRcEnv(t testing.TB, files map[string]string, env ...string) *rcEnv {
	t.Helper()
	return newRcEnvArgs(t, files, nil, env...)
}

// newRcEnvArgs is newRcEnv with more svscan arguments (--supervisor=PROG).
func newRcEnvArgs(t testing.TB, files map[string]string, svscanArgs []string, env ...string) *rcEnv {
	t.Helper()
	dir := t.TempDir()
	e := &rcEnv{t: t, dir: dir, scan: filepath.Join(dir, "scan"), live: filepath.Join(dir, "run", "live"),
		src: filepath.Join(dir, "src"), log: filepath.Join(dir, "events")}
	for _, d := range []string{e.scan, e.src, filepath.Dir(e.live)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fixed := map[string]string{}
	for k, v := range files {
		fixed[k] = strings.ReplaceAll(v, "LOG", e.log)
	}
	writeTree(t, e.src, fixed)
	r, w := pipe(t)
	o := Opts{ExtraFiles: []*os.File{w}, Env: env, NewPIDNS: true}
	e.svscan = startIn(t, o, append(append([]string{"svscan", "-d", "3"}, svscanArgs...), e.scan)...)
	w.Close()
	if got := readToEOF(t, r); got != "\n" {
		t.Fatalf("svscan -d 3 wrote %q (stderr %q)", got, e.svscan.Stderr())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("svscan's stderr: %s", e.svscan.Stderr())
		}
	})
	return e
}

// rc runs rc -l LIVE ARGS...
func (e *rcEnv) rc(args ...string) Result {
	e.t.Helper()
	return run(e.t, append([]string{"rc", "-l", e.live}, args...)...)
}

// init runs rc init and fails the test unless it succeeds.
func (e *rcEnv) init(args ...string) {
	e.t.Helper()
	argv := append([]string{"init", "-t", "10000"}, args...)
	argv = append(argv, e.scan, e.src)
	if r := e.rc(argv...); r.Code != 0 {
		e.t.Fatalf("rc init = %s, stderr %q", r.Status(), r.Stderr)
	}
}

// mustRc runs rc and fails the test unless it exits with code.
func (e *rcEnv) mustRc(code int, args ...string) Result {
	e.t.Helper()
	r := e.rc(args...)
	if r.Code != code {
		e.t.Fatalf("rc %q = %s, stderr %q; want exit %d", args, r.Status(), r.Stderr, code)
	}
	return r
}

// state returns the live state file as NAME -> letter.
func (e *rcEnv) state() map[string]string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.live, "state"))
	if err != nil {
		e.t.Fatal(err)
	}
	ls := lines(string(b))
	if len(ls) == 0 || ls[0] != "gotools-rc-state 1" {
		e.t.Fatalf("state file %q", b)
	}
	st := map[string]string{}
	for _, l := range ls[1:] {
		f := strings.SplitN(l, " ", 4)
		if len(f) != 4 {
			e.t.Fatalf("state line %q", l)
		}
		st[f[3]] = f[0]
	}
	return st
}

// hostPid translates a pid of svscan's PID namespace (status files hold
// those) into this namespace's; 0 if there is none.
func (e *rcEnv) hostPid(nspid int) int {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", e.svscan.Pid))
	if err != nil {
		return 0
	}
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || nsPid(pid) != nspid {
			continue
		}
		if other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && other == ns {
			return pid
		}
	}
	return 0
}

// sd is the live servicedir of name.
func (e *rcEnv) sd(name string) string {
	return filepath.Join(e.live+":servicedirs", name)
}

// event is one line of the event log: "WHAT NAME NANOSECONDS".
type event struct {
	what, name string
	at         int64
}

// events reads the event log.
func (e *rcEnv) events() []event {
	e.t.Helper()
	b, err := os.ReadFile(e.log)
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	var out []event
	for _, l := range lines(string(b)) {
		f := strings.Fields(l)
		if len(f) != 3 {
			e.t.Fatalf("event line %q", l)
		}
		at, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			e.t.Fatalf("event line %q", l)
		}
		out = append(out, event{f[0], f[1], at})
	}
	return out
}

// firstEvent returns when the first WHAT of name happened (0: never).
func firstEvent(evs []event, what, name string) int64 {
	for _, ev := range evs {
		if ev.what == what && ev.name == name {
			return ev.at
		}
	}
	return 0
}

// Shell snippets for the test services: each appends "WHAT NAME NS" to
// the log with one write.
func logCmd(what string) string {
	return `echo "` + what + ` $RC_NAME $(date +%s%N)" >> LOG`
}

// oneshotFiles is a oneshot that logs "begin" and "end" around a sleep for
// up, and "dbegin"/"dend" for down.
func oneshotFiles(name string, sleep string, deps ...string) map[string]string {
	body := func(b, e string) string {
		return fmt.Sprintf("sh -c \"%s; sleep %s; %s\"\n", strings.ReplaceAll(logCmd(b), `"`, `\"`), sleep, strings.ReplaceAll(logCmd(e), `"`, `\"`))
	}
	f := map[string]string{
		name + "/type": "oneshot\n",
		name + "/up":   body("begin", "end"),
		name + "/down": body("dbegin", "dend"),
	}
	if len(deps) > 0 {
		f[name+"/dependencies"] = strings.Join(deps, "\n") + "\n"
	}
	return f
}

// longrunFiles is a longrun that logs "begin" when run starts and "end"
// when it is ready (after readyAfter with notification-fd 3, or at once
// without); "dbegin" when it gets SIGTERM and "dend" from finish.
func longrunFiles(name string, readyAfter string, deps ...string) map[string]string {
	ready := logCmd("end")
	if readyAfter != "" {
		ready = "sleep " + readyAfter + "; " + logCmd("end") + "; echo >&3"
	}
	run := "#!/bin/sh\nRC_NAME=" + name + "\n" + logCmd("begin") + "\n" +
		"trap '" + logCmd("dbegin") + "; exit 0' TERM\n" + ready + "\nsleep 1000 & wait\n"
	f := map[string]string{
		name + "/type":   "longrun\n",
		name + "/run":    run,
		name + "/finish": "#!/bin/sh\nRC_NAME=" + name + "\n" + logCmd("dend") + "\n",
	}
	if readyAfter != "" {
		f[name+"/notification-fd"] = "3\n"
	}
	if len(deps) > 0 {
		f[name+"/dependencies.d/"] = ""
		for _, d := range deps {
			f[name+"/dependencies.d/"+d] = ""
		}
	}
	return f
}

// diamondTree is test 6's tree: 20 services, oneshots and longruns with
// readiness after a delay, two diamonds; s19 depends on all the others.
func diamondTree() (files map[string]string, deps map[string][]string) {
	type svc struct {
		name, kind, delay string
		deps              []string
	}
	svcs := []svc{
		{"s00", "o", "0", nil},
		{"s01", "L", "0.1", []string{"s00"}},
		{"s02", "o", "0.3", []string{"s00"}},
		{"s03", "o", "0.3", []string{"s00"}},
		{"s04", "l", "", []string{"s01", "s02", "s03"}},
		{"s05", "o", "0", []string{"s02"}},
		{"s06", "L", "0.05", []string{"s04", "s05"}},
		{"s07", "o", "0", []string{"s06"}},
		{"s08", "l", "", []string{"s06"}},
		{"s09", "L", "0.05", []string{"s07", "s08"}},
		{"s10", "o", "0", []string{"s00"}},
		{"s11", "l", "", []string{"s10"}},
		{"s12", "o", "0", []string{"s11", "s03"}},
		{"s13", "L", "0.05", []string{"s12"}},
		{"s14", "o", "0", []string{"s13", "s09"}},
		{"s15", "l", "", []string{"s14"}},
		{"s16", "o", "0", []string{"s14"}},
		{"s17", "l", "", []string{"s15", "s16"}},
		{"s18", "o", "0", []string{"s17"}},
		{"s19", "L", "0.05", []string{"s18", "s10"}},
	}
	files = map[string]string{}
	deps = map[string][]string{}
	for _, s := range svcs {
		var f map[string]string
		switch s.kind {
		case "o":
			f = oneshotFiles(s.name, s.delay, s.deps...)
		case "L":
			f = longrunFiles(s.name, s.delay, s.deps...)
		default:
			f = longrunFiles(s.name, "0", s.deps...)
		}
		for k, v := range f {
			files[k] = v
		}
		deps[s.name] = s.deps
	}
	files["all/type"] = "bundle\n"
	files["all/contents"] = "s19\n"
	return files, deps
}

// checkOrder checks that every service began after each dependency ended
// (up), or after each dependent ended (down).
func checkOrder(t *testing.T, evs []event, deps map[string][]string, up bool) {
	t.Helper()
	b, en := "begin", "end"
	if !up {
		b, en = "dbegin", "dend"
	}
	for n, ds := range deps {
		for _, d := range ds {
			first, then := d, n // up: d ends, then n begins
			if !up {
				first, then = n, d
			}
			end, begin := firstEvent(evs, en, first), firstEvent(evs, b, then)
			if end == 0 || begin == 0 {
				t.Errorf("missing events: %s %s %d, %s %s %d", en, first, end, b, then, begin)
				continue
			}
			if begin < end {
				t.Errorf("%s %s at %d, before %s %s at %d", b, then, begin, en, first, end)
			}
		}
	}
}

func TestRcDiamondUpAndDown(t *testing.T) {
	t.Parallel()
	files, deps := diamondTree()
	e := newRcEnv(t, files)
	e.init()
	for n, s := range e.state() {
		if s != "D" {
			t.Errorf("after init, %s is %s; want D", n, s)
		}
	}
	// The layout of spec/rc.md §3.1.
	if target, err := os.Readlink(e.live); err != nil || !strings.HasPrefix(target, "live:g:") {
		t.Errorf("readlink %s = %q, %v", e.live, target, err)
	}
	for _, f := range []string{"down", "event", "run"} {
		if _, err := os.Stat(filepath.Join(e.sd("s01"), f)); err != nil {
			t.Errorf("live servicedir s01: %v", err)
		}
	}
	if target, err := os.Readlink(filepath.Join(e.scan, "s01")); err != nil || target != e.sd("s01") {
		t.Errorf("scan link s01 -> %q, %v; want %s", target, err, e.sd("s01"))
	}

	t0 := time.Now()
	e.mustRc(0, "-u", "change", "all")
	t.Logf("up: %v", time.Since(t0))
	evs := e.events()
	checkOrder(t, evs, deps, true)
	// s02 and s03 (300 ms each, both only after s00) overlap.
	if b2, e3, b3, e2 := firstEvent(evs, "begin", "s02"), firstEvent(evs, "end", "s03"), firstEvent(evs, "begin", "s03"), firstEvent(evs, "end", "s02"); b2 >= e3 || b3 >= e2 {
		t.Errorf("s02 [%d, %d] and s03 [%d, %d] did not run in parallel", b2, e2, b3, e3)
	}
	for n, s := range e.state() {
		if s != "U" {
			t.Errorf("after -u change, %s is %s; want U", n, s)
		}
	}
	for _, n := range []string{"s01", "s04", "s19"} {
		if _, err := os.Stat(filepath.Join(e.sd(n), "down")); !os.IsNotExist(err) {
			t.Errorf("%s/down after up: %v; want absent", n, err)
		}
		if st, ok := readStatus(e.sd(n)); !ok || st.PID == 0 {
			t.Errorf("%s not up: %+v", n, st)
		}
	}
	if r := e.mustRc(0, "diff"); r.Stdout != "" {
		t.Errorf("rc diff = %q; want nothing", r.Stdout)
	}
	// A second change does nothing.
	before := len(e.events())
	e.mustRc(0, "-u", "change", "all")
	if after := len(e.events()); after != before {
		t.Errorf("second -u change logged %d more events", after-before)
	}

	if err := os.Remove(e.log); err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	e.mustRc(0, "-d", "change", "s00")
	t.Logf("down: %v", time.Since(t0))
	checkOrder(t, e.events(), deps, false)
	for n, s := range e.state() {
		if s != "D" {
			t.Errorf("after -d change, %s is %s; want D", n, s)
		}
	}
	for _, n := range []string{"s01", "s19"} {
		if _, err := os.Stat(filepath.Join(e.sd(n), "down")); err != nil {
			t.Errorf("%s/down after down: %v", n, err)
		}
	}
}

func TestRcListAndDryRun(t *testing.T) {
	t.Parallel()
	files, deps := diamondTree()
	e := newRcEnv(t, files)
	e.init()
	r := e.mustRc(0, "listall", "s04")
	if got, want := lines(r.Stdout), []string{"s00", "s01", "s02", "s03", "s04"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("listall s04 = %q; want %q", got, want)
	}
	r = e.mustRc(0, "-d", "listall", "s17")
	if got, want := lines(r.Stdout), []string{"s17", "s18", "s19"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("-d listall s17 = %q; want %q", got, want)
	}
	if r := e.mustRc(0, "list", "all"); strings.TrimSpace(r.Stdout) != "s19" {
		t.Errorf("list all = %q; want s19", r.Stdout)
	}
	e.mustRc(3, "-u", "change", "nosuch")
	// -n: the order printed obeys the dependencies, nothing is touched.
	r = e.mustRc(0, "-n", "10", "-u", "change", "all")
	pos := map[string]int{}
	for i, l := range lines(r.Stdout) {
		n, ok := strings.CutPrefix(l, "start ")
		if !ok {
			t.Fatalf("dry run printed %q", l)
		}
		pos[n] = i
	}
	if len(pos) != 20 {
		t.Errorf("dry run started %d services; want 20", len(pos))
	}
	for n, ds := range deps {
		for _, d := range ds {
			if pos[d] >= pos[n] {
				t.Errorf("dry run: start %s before its dependency %s", n, d)
			}
		}
	}
	if evs := e.events(); len(evs) != 0 {
		t.Errorf("dry run ran scripts: %v", evs)
	}
	var names []string
	for n, s := range e.state() {
		if s != "D" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) > 0 {
		t.Errorf("dry run changed the state of %v", names)
	}
}
