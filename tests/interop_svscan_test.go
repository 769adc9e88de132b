package tests

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Interop between gotools' svscan and supervise and upstream s6's
// s6-svscan and s6-supervise (spec/supervise.md §10, "Interop with real
// s6", last bullet).
//
// What s6-svscan 2.11 does that these tests rely on (checked by hand
// against Debian's s6 2.11.3.2):
//   - it starts each supervisor by exec'ing the absolute path
//     /usr/bin/s6-supervise (compiled in, not looked up in PATH), with argv
//     "s6-supervise NAME"; gotools answers to s6-supervise as an alias of
//     supervise, so a gotools binary bind-mounted on that path runs as
//     gotools supervise;
//   - s6-svscanctl -t makes it send SIGTERM to the supervisors of services
//     and SIGHUP to those of loggers, wait for them all, then execute
//     .s6-svscan/finish, "if present; if not, it exits 0" (s6-svscan.html).

// s6SupervisePath is where Debian's s6-svscan finds s6-supervise.
const s6SupervisePath = "/usr/bin/s6-supervise"

// exeIs reports whether pid runs the file at path: /proc/PID/exe and path
// are the same device and inode. This holds across mount namespaces, where
// the text of the link names the path in the process's own namespace.
func exeIs(pid int, path string) bool {
	exe, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	fi, err := os.Stat(path)
	return err == nil && os.SameFile(exe, fi)
}

// mountedOn reports whether path is a mount point in the test's mount
// namespace (field 5 of /proc/self/mountinfo, proc(5)).
func mountedOn(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fl := strings.Fields(sc.Text()); len(fl) > 4 && fl[4] == path {
			return true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return false
}

// wantDown checks that each service of dir, by name, is down with the wait
// status given: its supervisor brought it down before exiting.
func wantDown(t *testing.T, dir string, wstats map[string]uint16) {
	t.Helper()
	for _, n := range slices.Sorted(maps.Keys(wstats)) {
		if st, ok := readStatus(filepath.Join(dir, n)); !ok || st.PID != 0 || st.WStat != wstats[n] {
			t.Errorf("%s status %+v, %v; want down with wstat %#04x", n, st, ok, wstats[n])
		}
	}
}

// TestSvscanInteropS6SvscanRunsSupervise: real s6-svscan, PID 1 of a new
// PID namespace and in a private mount namespace where the gotools binary
// is bind-mounted on /usr/bin/s6-supervise, runs gotools supervisors: a
// service's output reaches its logger through s6-svscan's pipe, and real
// s6-svscanctl -t ends the tree cleanly (the service killed by SIGTERM,
// the logger drained to EOF), s6-svscan exiting 0 without a finish script.
// The bind mount never shows in the test's own mount namespace.
func TestSvscanInteropS6SvscanRunsSupervise(t *testing.T) {
	t.Parallel()
	tools := requireS6(t, "s6-svscan", "s6-svscanctl", "s6-supervise")
	svscan, ctl := tools[0], tools[1]
	if tools[2] != s6SupervisePath {
		t.Fatalf("s6-supervise is %s; this test needs the one s6-svscan execs, %s (Debian's s6)", tools[2], s6SupervisePath)
	}
	before, err := os.Stat(s6SupervisePath)
	if err != nil {
		t.Fatal(err)
	}
	// The negative control of the exeIs checks below.
	if exeIs(os.Getpid(), s6SupervisePath) || exeIs(os.Getpid(), gotoolsBin) {
		t.Fatalf("exeIs: the test process runs %s or %s", s6SupervisePath, gotoolsBin)
	}
	if gt, err := os.Stat(gotoolsBin); err != nil || os.SameFile(gt, before) {
		t.Fatalf("Stat(%s) = %v, %v; want a file other than %s", gotoolsBin, gt, err, s6SupervisePath)
	}
	untouched := func(when string) {
		t.Helper()
		after, err := os.Stat(s6SupervisePath)
		if err != nil || !os.SameFile(after, before) || after.Size() != before.Size() || after.ModTime() != before.ModTime() {
			t.Errorf("%s: Stat(%s) = %v, %v; want the real one, as before (%d bytes)", when, s6SupervisePath, after, err, before.Size())
		}
		if mountedOn(t, s6SupervisePath) {
			t.Errorf("%s: %s is a mount point in the test's namespace: the bind mount leaked", when, s6SupervisePath)
		}
	}
	// The negative control of the mount point check.
	if !mountedOn(t, "/proc") {
		t.Fatal("mountedOn(/proc) = false; want true")
	}
	// Registered first, so it runs last: after the namespaces are gone.
	t.Cleanup(func() { untouched("after the test") })

	dir := scanDir(t, map[string]string{
		"a/run":     "#!/bin/sh\necho hello\nexec sleep 1000\n",
		"a/log/run": "#!/bin/sh\nexec cat >> out\n",
	})
	// unshare(1) --propagation private makes every mount private before
	// the bind, so it cannot propagate to a shared peer of the host's.
	r, w := pipe(t)
	p := startNS(t, Opts{ExtraFiles: []*os.File{w}},
		"unshare", "--mount", "--propagation", "private",
		"sh", "-c", `mount --bind "$1" "$2" && exec "$3" -d 3 "$4"`,
		"sh", gotoolsBin, s6SupervisePath, svscan, dir)
	w.Close()
	if got := readToEOF(t, r); got != "\n" {
		t.Fatalf("s6-svscan -d 3 wrote %q; want %q (stderr %q)", got, "\n", p.Stderr())
	}
	sups := waitSupervisorsNamed(t, p, dir, "s6-supervise", "a", "a/log")
	untouched("while s6-svscan runs")
	procs := slices.Collect(maps.Values(sups))
	for name, pid := range sups {
		if !exeIs(pid, gotoolsBin) || exeIs(pid, s6SupervisePath) {
			t.Errorf("supervisor of %s (pid %d) does not run %s", name, pid, gotoolsBin)
		}
		for _, st := range children(t, pid) {
			procs = append(procs, st.Pid)
		}
	}
	out := filepath.Join(dir, "a", "log", "out")
	waitFile(t, out, "hello\n")

	if res := run(t, ctl, "-t", dir); res.Code != 0 || res.Stderr != "" {
		t.Fatalf("s6-svscanctl -t = %s, stderr %q; want exit 0", res.Status(), res.Stderr)
	}
	if res := p.Wait(t); res.Code != 0 || res.Stderr != "" || res.Stdout != "" {
		t.Errorf("s6-svscan after s6-svscanctl -t = %s, stdout %q, stderr %q; want exit 0 (no finish script)", res.Status(), res.Stdout, res.Stderr)
	}
	wantDown(t, dir, map[string]uint16{"a": uint16(unix.SIGTERM), "a/log": 0})
	waitFor(t, "the supervisors and services to be gone", func() bool {
		for _, pid := range procs {
			if _, err := readStat(pid); err == nil {
				return false
			}
		}
		return true
	})
	if b, _ := os.ReadFile(out); string(b) != "hello\n" {
		t.Errorf("%s = %q; want %q", out, b, "hello\n")
	}
	untouched("after s6-svscan exited")
}

// TestSvscanInteropRunsS6Supervise: gotools svscan --supervisor=PATH runs
// real s6-supervise supervisors, loggers included, and obeys real
// s6-svscanctl: -an gives a new service directory a supervisor, and -t
// ends the tree cleanly, svscan exiting 0.
func TestSvscanInteropRunsS6Supervise(t *testing.T) {
	t.Parallel()
	tools := requireS6(t, "s6-supervise", "s6-svscanctl", "s6-svstat")
	sup, ctl, svstat := tools[0], tools[1], tools[2]
	const sleepRun = "#!/bin/sh\nexec sleep 1000\n"
	dir := scanDir(t, map[string]string{
		"a/run":     "#!/bin/sh\necho hello\nexec sleep 1000\n",
		"a/log/run": "#!/bin/sh\nexec cat >> out\n",
	})
	p := startSvscan(t, dir, "--supervisor="+sup)
	sups := waitSupervisorsNamed(t, p, dir, "s6-supervise", "a", "a/log")
	out := filepath.Join(dir, "a", "log", "out")
	waitFile(t, out, "hello\n")

	writeScanFile(t, dir, "b/run", sleepRun)
	if res := run(t, ctl, "-an", dir); res.Code != 0 || res.Stderr != "" {
		t.Fatalf("s6-svscanctl -an = %s, stderr %q; want exit 0", res.Status(), res.Stderr)
	}
	now := waitSupervisorsNamed(t, p, dir, "s6-supervise", "a", "a/log", "b")
	for name, pid := range sups {
		if now[name] != pid {
			t.Errorf("supervisor of %s is pid %d after -an; want the same %d", name, now[name], pid)
		}
	}
	for name, pid := range now {
		if !exeIs(pid, sup) || exeIs(pid, gotoolsBin) {
			t.Errorf("supervisor of %s (pid %d) does not run %s", name, pid, sup)
		}
	}
	if res := run(t, svstat, "-o", "up,normallyup", filepath.Join(dir, "b")); res.Code != 0 || res.Stdout != "true true\n" {
		t.Errorf("s6-svstat -o up,normallyup b = %s, stdout %q, stderr %q; want exit 0, %q", res.Status(), res.Stdout, res.Stderr, "true true\n")
	}

	if res := run(t, ctl, "-t", dir); res.Code != 0 || res.Stderr != "" {
		t.Fatalf("s6-svscanctl -t = %s, stderr %q; want exit 0", res.Status(), res.Stderr)
	}
	if res := p.Wait(t); res.Code != 0 || res.Stderr != "" {
		t.Errorf("svscan after s6-svscanctl -t = %s, stderr %q; want exit 0", res.Status(), res.Stderr)
	}
	term := uint16(unix.SIGTERM)
	wantDown(t, dir, map[string]uint16{"a": term, "a/log": 0, "b": term})
	if b, _ := os.ReadFile(out); string(b) != "hello\n" {
		t.Errorf("%s = %q; want %q", out, b, "hello\n")
	}
}
