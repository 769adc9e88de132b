package svscan

import (
	"bytes"
	"os"
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

func TestClamp(t *testing.T) {
	for _, tt := range []struct{ v, lo, hi, want int }{
		{0, 4, 160000, 4}, {1000, 4, 160000, 1000}, {200000, 4, 160000, 160000}, {251, 11, 1019, 251}, {3, 11, 1019, 11},
	} {
		if got := clamp(tt.v, tt.lo, tt.hi); got != tt.want {
			t.Errorf("clamp(%d, %d, %d) = %d; want %d", tt.v, tt.lo, tt.hi, got, tt.want)
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
	s := &scanner{
		env:     &cli.Env{Name: "svscan", Stdout: &bytes.Buffer{}, Stderr: &stderr},
		dir:     dir,
		max:     5, // a + a/log, b, c, lnk
		nameMax: 5,
		argv:    []string{"true"},
		byKey:   map[key]*service{},
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
func reapAll(t *testing.T, s *scanner) {
	t.Helper()
	for _, sv := range s.services {
		for _, su := range []*sup{&sv.main, &sv.log} {
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
