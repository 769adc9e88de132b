package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lockBusy reports whether a non-blocking exclusive lock on name is
// refused, asking the given setlock (gotools' or real s6-setlock).
func lockBusy(t *testing.T, setlock, name string) bool {
	t.Helper()
	r := run(t, setlock, "-n", name, "true")
	switch r.Code {
	case 0:
		return false
	case 1:
		return true
	}
	t.Fatalf("%s -n %s true = %s, stderr %q; want 0 or 1", setlock, name, r.Status(), r.Stderr)
	return false
}

// TestSuperviseLockFD: with lock-fd 5, run holds an exclusive lock on
// supervise/service-lock on fd 5 (and no other fd beyond stdio), which
// other lockers see until run dies.
func TestSuperviseLockFD(t *testing.T) {
	t.Parallel()
	dir := svcDir(t, map[string]string{
		"run":     "#!/bin/sh\nreadlink /proc/$$/fd/5 > fd5\nexec sleep 1000\n",
		"lock-fd": "5\n",
	})
	lockfile := filepath.Join(dir, "supervise", "service-lock")
	s := startSupervise(t, dir)
	s.expect("su")
	pid := s.runPID()
	waitFor(t, "run to exec sleep", func() bool { return sleeping(pid) })
	if b := mustRead(t, filepath.Join(dir, "fd5")); string(b) != lockfile+"\n" {
		t.Errorf("run's fd 5 = %q; want %q", b, lockfile)
	}
	fds := beyondStdio(openFDs(t, pid))
	if len(fds) != 1 || fds[5] != lockfile {
		t.Errorf("run's fds beyond stdio = %v; want only 5 -> %s", fds, lockfile)
	}
	if !lockBusy(t, "setlock", lockfile) {
		t.Errorf("setlock -n on service-lock succeeded while run holds it")
	}
	if s6, ok := realLookPath("s6-setlock"); ok {
		if !lockBusy(t, s6, lockfile) {
			t.Errorf("real s6-setlock -n on service-lock succeeded while run holds it")
		}
	}
	s.control("d")
	s.expect("dD")
	if lockBusy(t, "setlock", lockfile) {
		t.Errorf("service-lock still locked after run died")
	}
	s.quit("x", "x")
	if got := s.p.Stderr(); got != "" {
		t.Errorf("stderr = %q; want nothing", got)
	}
}

// TestSuperviseLockFDWaitsForOldInstance: a run that leaves a process
// behind holding the lock makes the next run wait for it, with the two
// warnings of §3.2 (the file was written to; the lock is held), and the
// lock file emptied before the new run starts.
func TestSuperviseLockFDWaitsForOldInstance(t *testing.T) {
	t.Parallel()
	dir := svcDir(t, map[string]string{
		// The first run writes to the lock fd, leaves a child holding it
		// for a while, and exits; later runs only record their start.
		"run": `#!/bin/sh
echo start >> log
if [ ! -e once ]; then
  : > once
  echo junk >&5
  ( sleep 1; echo released >> log ) &
  exit 0
fi
stat -c %s supervise/service-lock > size
exec sleep 1000
`,
		"lock-fd": "5\n",
	})
	// A short throttle makes the restart come while the child still
	// holds the lock.
	s := startSuperviseEnv(t, dir, "GOTOOLS_SUPERVISE_THROTTLE_MS=50")
	s.expect("su")
	s.expect("dD")
	t0 := time.Now()
	s.expect("u") // setlock is running, and waits
	waitFor(t, "the second run", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "size"))
		return len(b) > 0
	})
	if el := time.Since(t0); el < 500*time.Millisecond {
		t.Errorf("the second run started %v after its u; want it to wait for the lock (~1 s)", el)
	}
	if b := mustRead(t, filepath.Join(dir, "log")); string(b) != "start\nreleased\nstart\n" {
		t.Errorf("log = %q; want the second start after the old holder released the lock", b)
	}
	if b := mustRead(t, filepath.Join(dir, "size")); string(b) != "0\n" {
		t.Errorf("service-lock size seen by the second run = %q; want 0 (truncated)", b)
	}
	want := []string{
		"supervise " + dir + ": warning: a previous instance of the service wrote to the lock file",
		"supervise " + dir + ": warning: another instance of the service is still running; the new one will wait for its lock",
	}
	if got := lines(s.p.Stderr()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stderr = %q; want %q", got, want)
	}
	s.quit("dx", "dDx")
}

// TestSuperviseLockFDSameAsNotificationFD: the clash refuses the start
// with one warning and no u, and is retried on u once it is fixed.
func TestSuperviseLockFDSameAsNotificationFD(t *testing.T) {
	t.Parallel()
	dir := svcDir(t, map[string]string{"run": readyRun, "notification-fd": "3\n", "lock-fd": "3\n"})
	s := startSupervise(t, dir)
	s.expect("s")
	line := s.p.WaitStderrLine(t, "same")
	if want := "supervise " + dir + ": warning: notification-fd and lock-fd are the same (retrying in 60 seconds)"; line != want {
		t.Errorf("warning = %q; want %q", line, want)
	}
	buf := make([]byte, 8)
	if n, err := s.ev.Read(buf, time.Now().Add(300*time.Millisecond)); err == nil {
		t.Fatalf("events %q after the clash; want none", buf[:n])
	}
	if st := s.status(); st.PID != 0 {
		t.Errorf("status pid %d; want the service not started", st.PID)
	}
	if err := os.WriteFile(filepath.Join(dir, "lock-fd"), []byte("4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.control("u")
	s.expect("uU")
	if !lockBusy(t, "setlock", filepath.Join(dir, "supervise", "service-lock")) {
		t.Errorf("service-lock free while the fixed service runs")
	}
	s.quit("dx", "dDx")
}
