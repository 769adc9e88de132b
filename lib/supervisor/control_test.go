package supervisor

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/servicedir"
)

// FuzzControl feeds arbitrary control bytes to a supervisor whose run
// cannot start (there is none): no byte may panic, unknown bytes change
// nothing, and the status stays a valid 35-byte file. Processes are never
// spawned, so nothing is left to reap.
func FuzzControl(f *testing.F) {
	for _, seed := range []string{"u", "dx", "DUQ", "Z", "oO", "abqhkti12ypcPCKrl", "\x00\xff"} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "supervise"), 0o700); err != nil {
		f.Fatal(err)
	}
	env := &cli.Env{Name: "supervise x", Stdout: io.Discard, Stderr: io.Discard}
	f.Fuzz(func(t *testing.T, b []byte) {
		os.Remove(filepath.Join(dir, "down"))
		s := &Service{env: env, dir: dir, at: dir + "/", notif: -1}
		s.throttle = defaultThrottle
		s.setFlag(servicedir.FlagWantUp, true)
		for _, c := range b {
			if s.command(c) {
				if c != 'x' {
					t.Fatalf("byte %q made supervise exit", c)
				}
				break
			}
			if s.st != stDown || s.pid != 0 {
				t.Fatalf("byte %q started something with no run: state %d pid %d", c, s.st, s.pid)
			}
		}
		if st, err := os.ReadFile(filepath.Join(dir, "supervise", "status")); err == nil {
			if _, err := servicedir.UnmarshalStatus(st); err != nil {
				t.Fatalf("status after %q: %v", b, err)
			}
		}
	})
}
