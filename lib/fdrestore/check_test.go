//go:build linux

package fdrestore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

func TestResolveExec(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		exe  string
		argv []string
		code int // 0: resolves
	}{
		{"in PATH", "", []string{"sh"}, 0},
		{"exe wins over argv", "/bin/sh", []string{"nginx: worker process"}, 0},
		{"missing", "", []string{"/nonexistent/prog"}, exitcode.NotFound},
		{"missing exe", "/nonexistent/exe", []string{"sh"}, exitcode.NotFound},
		{"not executable", "", []string{noexec}, exitcode.NoExec},
		{"a directory", dir, []string{"x"}, exitcode.NoExec},
		{"empty", "", nil, exitcode.NotFound},
	} {
		path, err := ResolveExec(tc.exe, tc.argv)
		if got := exitcode.Of(err); got != tc.code || (err == nil) != (path != "") {
			t.Errorf("%s: ResolveExec(%q, %q) = %q, %v; want exit %d", tc.name, tc.exe, tc.argv, path, err, tc.code)
		}
	}
}

func TestCheckDiskCreatInMissingDir(t *testing.T) {
	p, err := NewFlagsPlan(FlagsConfig{Flags: []string{"3=file:/nonexistent/dir/f:wronly,creat", "4=file:/:rdonly"}})
	if err != nil {
		t.Fatal(err)
	}
	errs := p.CheckDisk(0)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "unable to open /nonexistent/dir/f for fd 3") {
		t.Errorf("CheckDisk = %v; want one problem naming /nonexistent/dir/f and fd 3", errs)
	}
}
