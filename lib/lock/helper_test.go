//go:build linux

package lock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeHelper installs a shell script as the lock helper. Each script
// records its pid in DIR/pid, so that a test can check it was reaped.
func fakeHelper(t *testing.T, body string) (dir string) {
	t.Helper()
	dir = t.TempDir()
	script := filepath.Join(dir, "helper")
	text := "#!/bin/sh\necho $$ > " + filepath.Join(dir, "pid") + "\n" + body + "\n"
	if err := os.WriteFile(script, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(HelperEnv, script)
	return dir
}

// gone reports whether the helper whose pid the script wrote has been
// reaped: no such process, not even a zombie.
func gone(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		t.Fatalf("the helper never ran: %v", err)
	}
	_, err = os.Stat("/proc/" + strings.TrimSpace(string(b)))
	return errors.Is(err, os.ErrNotExist)
}

func TestViaHelperFailures(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		check      func(error) bool
		want       string
	}{
		{"garbage", "printf x; exec sleep 30", func(err error) bool { return errors.Is(err, ErrGarbage) }, "helper sent garbage"},
		{"exit 3", "exit 3", func(err error) bool {
			var he *HelperExit
			return errors.As(err, &he) && he.Status.ExitStatus() == 3
		}, "lock helper exited 3"},
		{"killed", "kill -USR1 $$", func(err error) bool {
			var he *HelperExit
			return errors.As(err, &he) && he.Status.Signal() == unix.SIGUSR1
		}, "lock helper crashed with signal SIGUSR1"},
		{"silent until the deadline", "exec sleep 30", func(err error) bool { return errors.Is(err, ErrTimeout) }, "timed out"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := fakeHelper(t, tt.body)
			start := time.Now()
			f, err := ViaHelper(filepath.Join(dir, "lock"), Exclusive, start.Add(300*time.Millisecond))
			if err == nil {
				f.Close()
				t.Fatalf("ViaHelper succeeded; want %q", tt.want)
			}
			if !tt.check(err) || err.Error() != tt.want {
				t.Errorf("ViaHelper = %v; want %q", err, tt.want)
			}
			if errors.Is(err, ErrTimeout) && time.Since(start) < 300*time.Millisecond {
				t.Errorf("gave up after %v; want >= 300ms", time.Since(start))
			}
			if !gone(t, dir) {
				t.Errorf("the helper is still there (alive or a zombie)")
			}
		})
	}
}

// TestViaHelperHandsOverTheLock: the helper answers "!" once it has the
// (real) lock, and the returned pipe is what keeps the helper holding it.
func TestViaHelperHandsOverTheLock(t *testing.T) {
	dir := fakeHelper(t, `printf '%s %s' "$1" "$2" > "$2.args"; printf '!'; read -r x; echo released > "$2.done"`)
	lockfile := filepath.Join(dir, "lock")
	f, err := ViaHelper(lockfile, Shared, time.Time{})
	if err != nil {
		t.Fatalf("ViaHelper = %v", err)
	}
	if b, _ := os.ReadFile(lockfile + ".args"); string(b) != "r "+lockfile {
		t.Errorf("helper arguments = %q; want %q", b, "r "+lockfile)
	}
	if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("the returned pipe is not close-on-exec (flags %#x, %v)", fl, err)
	}
	if _, err := os.Stat(lockfile + ".done"); err == nil {
		t.Fatalf("the helper let go before the pipe was closed")
	}
	f.Close()
	// The helper is ours to reap now.
	b, _ := os.ReadFile(filepath.Join(dir, "pid"))
	pid := 0
	for _, c := range strings.TrimSpace(string(b)) {
		pid = pid*10 + int(c-'0')
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("wait4(helper) = %v, %v", ws, err)
	}
	if b, _ := os.ReadFile(lockfile + ".done"); string(b) != "released\n" {
		t.Errorf("after the pipe closed the helper wrote %q; want %q", b, "released\n")
	}
}
