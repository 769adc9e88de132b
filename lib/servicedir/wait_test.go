//go:build linux

package servicedir

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/tai"
)

// waitDir makes a service directory; st, if not nil, is its status.
func waitDir(t *testing.T, st *Status) string {
	t.Helper()
	dir := t.TempDir()
	if st != nil {
		if err := os.Mkdir(filepath.Join(dir, "supervise"), 0o700); err != nil {
			t.Fatal(err)
		}
		st.Stamp, st.ReadyStamp = tai.Now(), tai.Now()
		if err := os.WriteFile(filepath.Join(dir, "supervise", "status"), st.Marshal(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fifos returns the listener FIFOs left in dir/event.
func fifos(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "event"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWaitEvents(t *testing.T) {
	up := &Status{PID: 42, Flags: FlagWantUp}
	for _, tt := range []struct {
		name   string
		st     []*Status // one per dir; nil: no status file
		state  byte
		any    bool
		events []string // one per dir, sent after Watch
		code   int
	}{
		{name: "already up", st: []*Status{up}, state: 'u', code: 0},
		{name: "no status, then up", st: []*Status{nil}, state: 'u', events: []string{"su"}, code: 0},
		{name: "up then ready", st: []*Status{up}, state: 'U', events: []string{"U"}, code: 0},
		{name: "down and ready", st: []*Status{up}, state: 'D', events: []string{"dD"}, code: 0},
		{name: "restart", st: []*Status{up}, state: 'r', events: []string{"du"}, code: 0},
		{name: "permanent failure", st: []*Status{nil}, state: 'U', events: []string{"udOD"}, code: 1},
		{name: "O while down wanted", st: []*Status{up}, state: 'D', events: []string{"dOD"}, code: 0},
		{name: "died", st: []*Status{nil}, state: 'u', events: []string{"x"}, code: CodeDied},
		{name: "x after the goal", st: []*Status{up}, state: 'd', events: []string{"dDx"}, code: 0},
		{name: "-a, one failed", st: []*Status{nil, nil}, state: 'U', events: []string{"uU", "udOD"}, code: 1},
		{name: "-o, one up", st: []*Status{nil, nil}, state: 'u', any: true, events: []string{"", "u"}, code: 0},
		{name: "-o, both died", st: []*Status{nil, nil}, state: 'u', any: true, events: []string{"x", "x"}, code: CodeDied},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var dirs []string
			for _, st := range tt.st {
				dirs = append(dirs, waitDir(t, st))
			}
			w, err := Watch(dirs)
			if err != nil {
				t.Fatalf("Watch = %v", err)
			}
			defer w.Close()
			for i, ev := range tt.events {
				if ev == "" {
					continue
				}
				if n, err := ftrig.Notify(filepath.Join(dirs[i], "event"), []byte(ev)); n != 1 || err != nil {
					t.Fatalf("Notify = %d, %v; want 1 listener", n, err)
				}
			}
			goal, _ := ParseGoal(tt.state)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = w.Wait(ctx, goal, tt.any)
			if code := exitcode.Of(err); code != tt.code {
				t.Errorf("Wait(%c) = %v (code %d); want code %d", tt.state, err, code, tt.code)
			}
			w.Close()
			for _, d := range dirs {
				if f := fifos(t, d); len(f) != 0 {
					t.Errorf("after Close, %s/event holds %q; want nothing", d, f)
				}
			}
		})
	}
}

func TestWaitTimesOut(t *testing.T) {
	dir := waitDir(t, nil)
	w, err := Watch([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if f := fifos(t, dir); len(f) != 1 || !ftrig.IsListenerName(f[0]) {
		t.Errorf("while watching, event/ holds %q; want one listener FIFO", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err = w.Wait(ctx, Goal{Up: true}, false)
	if code := exitcode.Of(err); code != CodeTimedOut || err.Error() != "timed out" || time.Since(t0) < 50*time.Millisecond {
		t.Errorf("Wait = %v (code %d) after %v; want 99 timed out after >= 50ms", err, code, time.Since(t0))
	}
}

func TestWatchErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nosuch")
	if _, err := Watch([]string{missing}); exitcode.Of(err) != exitcode.Sys {
		t.Errorf("Watch(missing) = %v; want code 111", err)
	}
	bad := waitDir(t, nil)
	os.Mkdir(filepath.Join(bad, "supervise"), 0o700)
	os.WriteFile(filepath.Join(bad, "supervise", "status"), make([]byte, 34), 0o644)
	ok := waitDir(t, nil)
	_, err := Watch([]string{ok, bad})
	if want := "unable to read status for " + bad + ": malformed status file (34 bytes)"; exitcode.Of(err) != exitcode.Sys || err.Error() != want {
		t.Errorf("Watch(malformed) = %v; want 111 %q", err, want)
	}
	if f := fifos(t, ok); len(f) != 0 {
		t.Errorf("after a failed Watch, %s/event holds %q; want nothing", ok, f)
	}
}
