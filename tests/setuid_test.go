package tests

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// nobody is the unprivileged user the setuid tests run as.
const nobody = 65534

// privCopy installs a copy of gotools owned by root with mode, in a
// directory that nobody can traverse, plus one symlink per applet and alias
// name, and returns the directory. It skips the test unless it runs as root
// on a filesystem that honours setuid bits.
func privCopy(t *testing.T, mode os.FileMode) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("installing a setuid-root copy needs root")
	}
	dir, err := os.MkdirTemp("", "gotools-setuid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Flags&unix.ST_NOSUID != 0 {
		t.Skipf("%s is on a nosuid filesystem", dir)
	}
	// The directories above dir must be searchable by nobody too.
	for d := filepath.Dir(dir); d != "/"; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("%s is not searchable by uid %d", d, nobody)
		}
	}
	bin, err := os.ReadFile(gotoolsBin)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "gotools")
	if err := writeExecutable(exe, bin, 0o700); err != nil {
		t.Fatal(err)
	}
	// chmod(2) after the write: writing clears the setuid bit.
	if err := os.Chown(exe, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(exe, mode); err != nil {
		t.Fatal(err)
	}
	for _, l := range listed {
		for _, name := range strings.Split(l, "\t") {
			if err := os.Symlink("gotools", filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// runAsNobody runs argv (argv[0] a path) as uid and gid 65534 with no
// supplementary groups, in dir, and returns its result.
func runAsNobody(t *testing.T, dir string, argv ...string) Result {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}},
	}
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
		if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
			r.Signal = unix.Signal(ws.Signal())
		}
	default:
		t.Fatalf("run(%q) as %d: %v", argv, nobody, err)
	}
	return r
}

// TestSetuidInstallRefused installs gotools setuid root (and, apart,
// setgid root) and runs every applet name as nobody: each one exits 111
// with one line naming it, before it reads its arguments, so a setuid copy
// runs nothing for its caller. The same copy without the bit works, which
// shows that the refusal comes from the ids, not from the install.
func TestSetuidInstallRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		mode os.FileMode
	}{
		{name: "setuid", mode: 0o755 | os.ModeSetuid},
		{name: "setgid", mode: 0o755 | os.ModeSetgid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := privCopy(t, tt.mode)
			work := t.TempDir()
			// A directory only root may write in: prog would create the
			// marker there only with root's rights.
			marker := filepath.Join(work, "marker")
			for _, l := range listed {
				for _, name := range strings.Split(l, "\t") {
					argv := []string{filepath.Join(dir, name), "--help"}
					switch name {
					case "setlock", "s6-setlock":
						argv = []string{filepath.Join(dir, name), filepath.Join(work, "lock"), "/usr/bin/touch", marker}
					case "fdrestore":
						argv = []string{filepath.Join(dir, name), "restore", "-f", "3=file:" + filepath.Join(work, "f") + ":w", "--", "/usr/bin/touch", marker}
					}
					r := runAsNobody(t, dir, argv...)
					want := name + ": fatal: refusing to run with real and effective user or group ids that differ"
					if r.Code != 111 || r.Stdout != "" || !strings.HasPrefix(r.Stderr, want) || len(lines(r.Stderr)) != 1 || !strings.HasSuffix(r.Stderr, "\n") {
						t.Errorf("run(%q) as uid %d from a %s copy = %s, stdout %q, stderr %q; want exit 111, one stderr line %q...",
							argv, nobody, tt.name, r.Status(), r.Stdout, r.Stderr, want)
					}
				}
			}
			for _, argv := range [][]string{{filepath.Join(dir, "gotools"), "--version"}, {filepath.Join(dir, "gotools"), "svok", "/"}} {
				if r := runAsNobody(t, dir, argv...); r.Code != 111 || !strings.HasPrefix(r.Stderr, "gotools: fatal: refusing") {
					t.Errorf("run(%q) as uid %d from a %s copy = %s, stderr %q; want exit 111, gotools: fatal: refusing...", argv, nobody, tt.name, r.Status(), r.Stderr)
				}
			}
			for _, f := range []string{marker, filepath.Join(work, "lock"), filepath.Join(work, "f")} {
				if _, err := os.Lstat(f); err == nil {
					t.Errorf("%s exists: a refused applet acted", f)
				}
			}
			// Negative control: the same copy, without the bit.
			if err := os.Chmod(filepath.Join(dir, "gotools"), 0o755); err != nil {
				t.Fatal(err)
			}
			argv := []string{filepath.Join(dir, "svok"), "--help"}
			if r := runAsNobody(t, dir, argv...); r.Code != 0 || r.Stderr != "" {
				t.Errorf("run(%q) as uid %d, no setuid bit = %s, stderr %q; want exit 0", argv, nobody, r.Status(), r.Stderr)
			}
		})
	}
}
