// The Go runtime would otherwise keep the cgroup CPU limit files open in
// every role (containermaxprocs, Go 1.25), and the fd checks would have to
// allow them; main.go turns it off for gotools the same way.
//go:debug containermaxprocs=0

// Package tests holds gotools' end-to-end tests: TestMain builds the binary
// once, makes a symlink farm with one link per applet and alias, and drives
// the real processes through it (STYLE.md "Testing").
//
// The test binary is also its own helper program: started under the name of
// a role (helpers_test.go), it runs that role instead of the tests, as
// os/exec's helperCommands do. Roles are reached through symlinks in the
// same farm, so a gotools applet can run them as its children by name.
//
// Environment:
//
//	GOTOOLS_BIN=PATH     test this binary instead of building one
//	GOTOOLS_RACE=1       build with -race (CGO_ENABLED=1, a dynamic binary)
//	GOTOOLS_REQUIRE_S6=1 fail, not skip, tests that need upstream s6 tools
//	GORACE=...           passed on; unset, it is atexit_sleep_ms=0
package tests

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The environment TestMain sets up for every test.
var (
	gotoolsBin string   // the gotools binary under test (absolute)
	binDir     string   // the farm: applets, aliases, "gotools" and the roles
	realPath   string   // $PATH without binDir, where upstream s6 tools are looked up
	listed     []string // "gotools --list --aliases" lines, as printed
)

// envRolesDir names the directory where each role invocation leaves a
// marker file named after the role, so TestMain can tell which roles a full
// run never used.
const envRolesDir = "GOTOOLS_TEST_ROLES_DIR"

func TestMain(m *testing.M) {
	if r, ok := roles[filepath.Base(os.Args[0])]; ok {
		name := filepath.Base(os.Args[0])
		markUsed(name)
		os.Exit(r(os.Args[1:]))
	}
	os.Exit(testMain(m))
}

// markUsed records that role name ran (os/exec's helperCommandUsed, across
// processes).
func markUsed(name string) {
	dir := os.Getenv(envRolesDir)
	if dir == "" {
		return
	}
	if f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
		f.Close()
	}
}

func testMain(m *testing.M) int {
	// Fds the test process inherited beyond stdio (from go test's parent: a
	// CI runner's or a shell's pipes) would reach every process we start,
	// since os/exec closes nothing, and fail every leak check. Mark them
	// close-on-exec: the flag belongs to our fd table alone, so their owner
	// is not affected, and nothing is closed.
	if fds, err := inheritedFDs(); err == nil {
		for _, fd := range fds {
			if fd > 2 {
				unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
			}
		}
	}
	dir, err := os.MkdirTemp("", "gotools-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "tests: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := setup(dir); err != nil {
		fmt.Fprintf(os.Stderr, "tests: %v\n", err)
		return 1
	}
	// Orphans of the processes we start (a daemon whose launcher exited, the
	// survivors of a killed applet) come back to us rather than to pid 1, so
	// each test's cleanup can reap them and assert that nothing is left.
	// prctl(2) PR_SET_CHILD_SUBREAPER is not inherited across fork, so the
	// roles we start are not subreapers.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "tests: prctl(PR_SET_CHILD_SUBREAPER): %v\n", err)
		return 1
	}

	code := m.Run()

	if code == 0 && fullRun() {
		for _, name := range slices.Sorted(maps.Keys(roles)) {
			if _, err := os.Stat(filepath.Join(dir, "roles", name)); err != nil {
				fmt.Fprintf(os.Stderr, "tests: role %q unused\n", name)
				code = 1
			}
		}
	}
	for _, left := range killChildren() {
		fmt.Fprintf(os.Stderr, "tests: process %s was left behind (killed)\n", left)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// fullRun reports whether every test ran, which is when an unused role means
// a dead helper (os/exec's rule).
func fullRun() bool {
	for _, f := range []string{"test.run", "test.skip", "test.list"} {
		if fl := flag.Lookup(f); fl != nil && fl.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}

// setup builds gotools (or takes $GOTOOLS_BIN) and fills the farm in dir.
func setup(dir string) error {
	bin, err := build(dir)
	if err != nil {
		return err
	}
	gotoolsBin = bin
	binDir = filepath.Join(dir, "bin")
	rolesDir := filepath.Join(dir, "roles")
	for _, d := range []string{binDir, rolesDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	out, err := exec.Command(bin, "--list", "--aliases").Output()
	if err != nil {
		return fmt.Errorf("%s --list --aliases: %w", bin, err)
	}
	listed = strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	names := []string{"gotools"}
	for _, l := range listed {
		names = append(names, strings.Split(l, "\t")...)
	}
	for _, n := range names {
		if _, ok := roles[n]; ok {
			return fmt.Errorf("role %q has the name of an applet", n)
		}
		if err := os.Symlink(bin, filepath.Join(binDir, n)); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for n := range roles {
		if err := os.Symlink(self, filepath.Join(binDir, n)); err != nil {
			return err
		}
	}
	realPath = os.Getenv("PATH")
	os.Setenv("PATH", binDir+string(os.PathListSeparator)+realPath)
	// A binary built with -race (GOTOOLS_RACE=1, or a GOTOOLS_BIN) sleeps
	// 1 s before every exit by default (ThreadSanitizer's atexit_sleep_ms),
	// which every client run would pay and every bounded wait would count.
	if _, ok := os.LookupEnv("GORACE"); !ok {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Setenv(envRolesDir, rolesDir)
	return nil
}

// build returns $GOTOOLS_BIN, or builds gotools from the module root (the
// parent of this package) into dir as the Makefile does: static, stripped.
// GOTOOLS_RACE=1 builds with the race detector instead, which needs cgo.
func build(dir string) (string, error) {
	if p := os.Getenv("GOTOOLS_BIN"); p != "" {
		return filepath.Abs(p)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(mod, []byte("module github.com/gotools-dev/gotools\n")) {
		return "", fmt.Errorf("%s is not the gotools module root (go.mod: %v)", root, err)
	}
	out := filepath.Join(dir, "gotools")
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", out}
	cgo := "CGO_ENABLED=0"
	if os.Getenv("GOTOOLS_RACE") == "1" {
		args = append(args, "-race")
		cgo = "CGO_ENABLED=1"
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), cgo)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, msg)
	}
	return out, nil
}

// killChildren kills and reaps every child still left to the test process
// once all tests are done, and returns the pids of those that were alive.
// Zombies are reaped silently: a test that ended by t.Fatal may leave one.
func killChildren() []string {
	var left []string
	self := os.Getpid()
	for _, st := range procStats() {
		if st.PPid != self {
			continue
		}
		if st.State != 'Z' {
			// Name it by its argv, so that the test that left it can be found.
			argv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.Pid))
			left = append(left, fmt.Sprintf("%d %q", st.Pid, strings.Split(strings.TrimRight(string(argv), "\x00"), "\x00")))
			unix.Kill(st.Pid, unix.SIGKILL)
		}
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(st.Pid, &ws, 0, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
	}
	return left
}
