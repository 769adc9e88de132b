package supervisor

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/ftrig"
)

// maxDeathBytes bounds what one death and restart of a service allocates
// on the Go heap. Issue 20 item 7: every 256 KiB allocated costs a
// collection at the next idle moment, and every collection leaves runtime
// metadata behind for life; at ~10 KB a death, a storm of 1,000 deaths
// took ~37 collections and doubled supervise's RssAnon. Now nothing is
// left: the spawn allocates nothing (the loop's proc.Spawner, the fd
// table as raw fds), and neither do the files and events.
const maxDeathBytes = 64

// TestDeathAllocations lets a service whose run exits 1 at once die and
// restart 200 times in a real Loop (1 ms throttle, a listener in event/),
// after 110 warm-up deaths, and measures the heap allocations per death;
// once plain, once with notification-fd (a pipe at every start).
func TestDeathAllocations(t *testing.T) {
	// The spawn copies the environment, twice: a small fixed one keeps
	// the figure the same wherever the test runs (a CI runner's
	// environment is several kilobytes).
	saved := os.Environ()
	os.Clearenv()
	t.Cleanup(func() {
		os.Clearenv()
		for _, kv := range saved {
			k, v, _ := strings.Cut(kv, "=")
			os.Setenv(k, v)
		}
	})
	os.Setenv("PATH", "/usr/bin:/bin")
	for _, tt := range []struct {
		name  string
		files map[string]string
	}{
		{name: "plain"},
		{name: "notification-fd", files: map[string]string{"notification-fd": "3\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "run"), []byte("#!/bin/false\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, text := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			perDeath, mallocs := deathAllocations(t, dir)
			t.Logf("one death and restart: %d bytes in %.1f mallocs (bound %d)", perDeath, mallocs, maxDeathBytes)
			if raceOn {
				return // see race_test.go
			}
			if perDeath > maxDeathBytes {
				t.Errorf("one death and restart allocates %d bytes (%.1f mallocs); want <= %d", perDeath, mallocs, maxDeathBytes)
			}
		})
	}
}

// deathAllocations supervises dir in a Loop until run died 310 times, and
// returns the bytes and mallocs per death of the last 200.
func deathAllocations(t *testing.T, dir string) (uint64, float64) {
	// The warm-up covers the death tally's growth to its 100 records.
	const warm, deaths = 110, 200
	var stderr bytes.Buffer
	env := &cli.Env{Name: "alloc", Stdout: &stderr, Stderr: &stderr}
	l := &Loop{Env: env, Signals: chldPipe(t)}
	s, err := Open(l, Config{Env: env, Dir: dir, Applet: "supervise"})
	if err != nil {
		t.Fatal(err)
	}
	s.throttle = time.Millisecond
	ln, err := ftrig.Subscribe(filepath.Join(dir, "event"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	var before, after runtime.MemStats
	died, ups := 0, 0
	l.Events = func(_ *Service, ev string) {
		switch ev {
		case "u":
			ups++
		case "dD":
			died++
			switch died {
			case warm:
				runtime.ReadMemStats(&before)
			case warm + deaths:
				runtime.ReadMemStats(&after)
			}
		}
	}
	l.Done = func() bool { return died >= warm+deaths }
	if err := l.Run(); err != nil {
		t.Fatal(err)
	}
	s.Signal(unix.SIGQUIT) // x, then the supervision ends
	if !s.Ended() {
		t.Fatal("the service did not end on SIGQUIT")
	}
	if stderr.Len() != 0 {
		t.Errorf("warnings: %s", stderr.String())
	}
	// The listener got every event: Notify found it each time. (The
	// first start, in Open, was before the hook and the listener.)
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := ln.Read(buf, time.Now().Add(100*time.Millisecond))
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	if u := strings.Count(string(got), "u"); u != ups || ups < warm+deaths-1 {
		t.Errorf("the listener read %d u events; the loop emitted %d, want >= %d", u, ups, warm+deaths-1)
	}
	return (after.TotalAlloc - before.TotalAlloc) / deaths, float64(after.Mallocs-before.Mallocs) / deaths
}
