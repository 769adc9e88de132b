package supervisor

import (
	"bytes"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
)

func TestPrintable(t *testing.T) {
	for _, tt := range []struct {
		c    byte
		want string
	}{
		{'Y', "Y"}, {'~', "~"}, {' ', `\x20`}, {'\n', `\x0a`}, {0, `\x00`}, {0x7f, `\x7f`}, {0xff, `\xff`},
	} {
		if got := printable(tt.c); got != tt.want {
			t.Errorf("printable(%#x) = %q; want %q", tt.c, got, tt.want)
		}
	}
}

// TestScan runs one scan over a directory, with "true" as the supervisor
// program, and checks which entries became services (spec/supervise.md
// §8): not dot entries, files or names over namemax; symlinks to
// directories yes; a log/ subdirectory gets a pipe; past -C, a warning.
func TestScan(t *testing.T) {
	dir := t.TempDir()
	other := t.TempDir()
	for _, d := range []string{"a/log", "b", ".hidden", "toolongname", "c"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(dir, "lnk")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	var stderr bytes.Buffer
	s := &Tree{
		env:      &cli.Env{Name: "svscan", Stdout: &bytes.Buffer{}, Stderr: &stderr},
		max:      5, // a + a/log, b, c, lnk
		nameMax:  5,
		argv:     []string{"true"},
		spawnSup: true,
		dir:      ".",
		name:     dir,
		loop:     &Loop{},
		ctlR:     -1, ctlW: -1,
		byKey: map[treeKey]*treeService{},
	}
	t.Cleanup(func() {
		for _, sv := range s.services {
			sv.closePipe()
		}
	})
	s.scan()
	var names []string
	for _, sv := range s.services {
		names = append(names, sv.name)
		if (sv.name == "a") != (sv.hasLog && sv.log.pid != 0 && sv.pr != nil && sv.pw != nil) {
			t.Errorf("service %s: hasLog %v, logger pid %d; want a logger for a only", sv.name, sv.hasLog, sv.log.pid)
		}
		if sv.main.pid == 0 {
			t.Errorf("service %s: no supervisor started", sv.name)
		}
	}
	reapAll(t, s)
	slices.Sort(names)
	if want := []string{"a", "b", "c", "lnk"}; !slices.Equal(names, want) {
		t.Errorf("services = %q; want %q", names, want)
	}
	if stderr.Len() != 0 || !s.nextScan.IsZero() {
		t.Errorf("stderr %q, next scan %v; want no warning, no rescan", stderr.String(), s.nextScan)
	}

	// The known services fill -C: a new one is refused with a warning
	// and a rescan in 60 s.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sv := range s.services {
		sv.main.next = time.Time{}
	}
	s.scan()
	if len(s.services) != 4 {
		t.Errorf("%d services after a scan past -C; want 4", len(s.services))
	}
	reapAll(t, s)
	if !strings.Contains(stderr.String(), "svscan: warning: unable to supervise more than 5 services") || s.nextScan.IsZero() {
		t.Errorf("stderr %q, next scan %v; want the -C warning and a rescan", stderr.String(), s.nextScan)
	}
}

// reapAll waits for the supervisors the last scan started.
func reapAll(t *testing.T, s *Tree) {
	t.Helper()
	for _, sv := range s.services {
		for _, su := range []*treeSup{&sv.main, &sv.log} {
			if su.pid != 0 {
				var ws unix.WaitStatus
				if _, err := unix.Wait4(su.pid, &ws, 0, nil); err != nil {
					t.Errorf("wait4(%d): %v", su.pid, err)
				}
				su.pid = 0
			}
		}
	}
}

// TestTreeInProcess runs a tree on a scan directory that is not the
// working directory, in this process, as init does: the services start
// (one with a logger fed through the tree's pipe), the owner's hooks see
// its own child reaped and its own deadline, and Command('t') brings every
// service down and ends Run with the locks released.
func TestTreeInProcess(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("a/run", "#!/bin/sh\nexec sleep 100\n")
	write("b/run", "#!/bin/sh\necho hello\nexec sleep 100\n")
	write("b/log/run", "#!/bin/sh\nexec cat > out\n")

	sigR := chldPipe(t)
	var stderr bytes.Buffer
	env := &cli.Env{Name: "tree", Stdout: &bytes.Buffer{}, Stderr: &stderr}
	l := &Loop{Env: env, Signals: sigR}
	tr, err := OpenTree(l, TreeConfig{Env: env, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := OpenTree(l, TreeConfig{Env: env, Dir: t.TempDir()}); err == nil {
		t.Error("a second tree on the same loop was accepted")
	}
	// A second tree on the same directory is refused (exit 100).
	if _, err := OpenTree(&Loop{}, TreeConfig{Env: env, Dir: dir}); err == nil || !strings.Contains(err.Error(), "another instance") {
		t.Errorf("second OpenTree on %s: %v; want another instance", dir, err)
	}

	// The owner's child, reaped through Reaped.
	own, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	ownReaped := false
	l.Reaped = func(pid int, _ unix.WaitStatus) { ownReaped = ownReaped || pid == own.Pid }
	var pids []int
	l.Events = func(s *Service, ev string) {
		if ev == "u" {
			pids = append(pids, s.PID())
		}
	}
	giveUp := time.Now().Add(10 * time.Second)
	ticks := 0
	l.Deadline = func() time.Time { return time.Now().Add(5 * time.Millisecond) }
	l.Tick = func() {
		ticks++
		out, _ := os.ReadFile(filepath.Join(dir, "b/log/out"))
		switch {
		case tr.Quitting():
		case string(out) == "hello\n" && len(pids) == 3 && ownReaped:
			tr.Command('t')
		case time.Now().After(giveUp):
			t.Errorf("after 10 s: log %q, %d services up, own child reaped %v", out, len(pids), ownReaped)
			tr.Command('t')
		}
	}
	if err := l.Run(); err != nil {
		t.Fatal(err)
	}
	if !tr.Done() || tr.Err() != nil || len(l.Services()) != 0 || ticks == 0 {
		t.Errorf("after Run: done %v, err %v, %d services left, %d ticks", tr.Done(), tr.Err(), len(l.Services()), ticks)
	}
	for _, pid := range pids {
		if unix.Kill(pid, 0) == nil {
			t.Errorf("service pid %d still runs after t", pid)
		}
	}
	for _, name := range []string{"a", "b", "b/log"} {
		f, err := os.OpenFile(filepath.Join(dir, name, "supervise/lock"), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_WRLCK}); err != nil {
			t.Errorf("%s/supervise/lock still held after t: %v", name, err)
		}
		f.Close()
	}
	if stderr.Len() != 0 {
		t.Errorf("warnings: %s", stderr.String())
	}
}

// chldPipe is a signal pipe carrying SIGCHLD only, as [sig.SelfPipe]
// carries every signal, without taking the test binary's other signals.
func chldPipe(t *testing.T) int {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	c := make(chan os.Signal, 64)
	signal.Notify(c, unix.SIGCHLD)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-c:
				_, _ = unix.Write(p[1], []byte{byte(unix.SIGCHLD)})
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() {
		signal.Stop(c)
		close(done)
		unix.Close(p[0])
		unix.Close(p[1])
	})
	return p[0]
}
