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
	// On tmpfs where there is one: the letters write supervise/status
	// (open, write, rename), which costs six times as much on a disk.
	dir, err := os.MkdirTemp("/dev/shm", "fuzzcontrol")
	if err != nil {
		dir = f.TempDir()
	} else {
		f.Cleanup(func() { os.RemoveAll(dir) })
	}
	if err := os.Mkdir(filepath.Join(dir, "supervise"), 0o700); err != nil {
		f.Fatal(err)
	}
	// No process per iteration: a start (u, U, o) reads the service's
	// configuration and stops at notification-fd = lock-fd, a refusal
	// (retry in 60 s) before any fork. With no run file it forked and
	// failed to exec ./run instead, a millisecond per start letter, and
	// the fuzzer spent its time minimising such inputs. The spawn itself
	// is covered by the start tests.
	for _, name := range []string{"notification-fd", "lock-fd"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("3\n"), 0o644); err != nil {
			f.Fatal(err)
		}
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
