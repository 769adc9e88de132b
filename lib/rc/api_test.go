package rc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/proc"
)

// oneshotTree writes a tree of oneshots only: Init needs no svscan for it.
func oneshotTree(t *testing.T) (src string) {
	t.Helper()
	src = filepath.Join(t.TempDir(), "src")
	files := map[string]string{
		"a/type": "oneshot\n", "a/up": "true\n",
		"b/type": "oneshot\n", "b/up": "true\n", "b/dependencies": "a\n",
		"slow/type": "oneshot\n", "slow/up": "sleep 0.3\n",
		"after/type": "oneshot\n", "after/up": "true\n", "after/dependencies": "slow\n",
	}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// TestHostSpawnAndRecord drives the engine as init does: its own spawner
// (which reaps), Record, and a context instead of signals.
func TestHostSpawnAndRecord(t *testing.T) {
	dir := t.TempDir()
	scan := filepath.Join(dir, "scan")
	if err := os.Mkdir(scan, 0o755); err != nil {
		t.Fatal(err)
	}
	o := Options{Live: filepath.Join(dir, "live"), Verbose: 1, HostSignals: true, Environ: []string{"PATH=" + os.Getenv("PATH")}}
	if err := Init(scan, []string{oneshotTree(t)}, o); err != nil {
		t.Fatalf("Init: %v", err)
	}
	var mu sync.Mutex
	var spawned [][]string
	o.Spawn = func(argv []string, attr proc.Attr) (int, func() unix.WaitStatus, error) {
		mu.Lock()
		spawned = append(spawned, argv)
		mu.Unlock()
		return defaultSpawn(argv, attr)
	}
	l, err := Open(o.Live, true, false)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer l.Close()
	if err := l.Record(true, "a"); err != nil {
		t.Fatal(err)
	}
	o.Up = true
	if err := l.Change(context.Background(), []string{"b"}, o); err != nil {
		t.Fatalf("Change: %v", err)
	}
	if len(spawned) != 1 || spawned[0][0] != "true" {
		t.Errorf("spawned %q; want only b's true (a was recorded up)", spawned)
	}
	if l.State["a"].S != 'U' || l.State["b"].S != 'U' {
		t.Errorf("state %v", l.State)
	}
	// A cancelled context (the host's SIGTERM) starts nothing new and
	// waits for the running script; a deadline is exit code 2. slow (a
	// 300 ms sleep) must have started before the deadline: a loaded
	// machine may take longer than 100 ms to spawn it, so the deadline
	// grows, staying below slow's 300 ms, until it did.
	began := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, argv := range spawned {
			if len(argv) > 0 && argv[0] == "sleep" {
				return true
			}
		}
		return false
	}
	for _, d := range []time.Duration{100, 150, 200, 250} {
		ctx, cancel := context.WithTimeout(context.Background(), d*time.Millisecond)
		err = l.Change(ctx, []string{"after"}, o)
		cancel()
		if began() {
			break
		}
	}
	if exitcode.Of(err) != CodeTimedOut {
		t.Errorf("Change past the context's deadline = %v (code %d); want 2", err, exitcode.Of(err))
	}
	if l.State["slow"].S != 'U' || l.State["after"].S != 'D' {
		t.Errorf("state %v; want slow U (waited for), after D", l.State)
	}
	ctx2, cancel2 := context.WithCancelCause(context.Background())
	cancel2(errors.New("interrupted by SIGTERM"))
	o.Up = false
	o.All = true
	if err := l.Change(ctx2, nil, o); exitcode.Of(err) != CodeFailed {
		t.Errorf("Change with a cancelled context = %v; want exit 1", err)
	}
}
