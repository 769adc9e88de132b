package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The detectors other tests rely on, each with its negative control (tini's
// rule): a detector that cannot flag a planted fault proves nothing.

func TestDetectorsZombies(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		argv []string
		want int // zombies under the process once it is ready
	}{
		// noreap's children exit at once and are never waited for.
		{name: "noreap is flagged", argv: []string{"noreap", "3"}, want: 3},
		// sh waits for each child before it execs the sleeper.
		{name: "a reaping parent is not flagged", argv: []string{"sh", "-c", "exitwith 0; exitwith 0; exitwith 0; exec sleeper"}, want: 0},
		{name: "no children", argv: []string{"sleeper"}, want: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, tt.argv...)
			p.WaitLine(t, "^ready$")
			var z []int
			if tt.want > 0 {
				waitFor(t, fmt.Sprintf("%d zombies under %q", tt.want, tt.argv), func() bool {
					z = zombiesUnder(t, p.Pid)
					return len(z) >= tt.want
				})
			}
			z = zombiesUnder(t, p.Pid)
			if len(z) != tt.want {
				t.Errorf("zombiesUnder(%q) = %v; want %d zombies", tt.argv, z, tt.want)
			}
			for _, pid := range z {
				if st, err := readStat(pid); err != nil || st.State != 'Z' || st.PPid != p.Pid {
					t.Errorf("zombie %d: readStat = %v, %v; want state Z, parent %d", pid, st, err, p.Pid)
				}
			}
		})
	}
}

func TestDetectorsFDs(t *testing.T) {
	t.Parallel()
	sleep, ok := realLookPath("sleep")
	if !ok {
		t.Fatalf("sleep(1) not found in %s", realPath)
	}
	sleepExe, err := filepath.EvalSymlinks(sleep)
	if err != nil {
		t.Fatal(err)
	}
	leaked := filepath.Join(t.TempDir(), "leaked")
	if err := os.WriteFile(leaked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		argv   []string
		goProg bool   // a Go role: ready once it prints "ready", runtime fds allowed
		want   string // the one fd target beyond 0-2 expected; "" for none
	}{
		// What a non-Go program inherited is its whole fd table.
		{name: "sleep inherits nothing", argv: []string{"sleep", "1000"}},
		{name: "leakfd exec into sleep is flagged", argv: []string{"leakfd", leaked, "sleep", "1000"}, want: leaked},
		// A Go role also holds the runtime's fds; the allow-list drops them.
		{name: "Go sleeper holds nothing", argv: []string{"sleeper"}, goProg: true},
		{name: "Go leakfd is flagged", argv: []string{"leakfd", leaked}, goProg: true, want: leaked},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, tt.argv...)
			var fds map[int]string
			if tt.goProg {
				p.WaitLine(t, "^ready$")
				all := openFDs(t, p.Pid)
				fds = withoutGoRuntime(beyondStdio(all))
				t.Logf("%q: fds %v", tt.argv, all)
			} else {
				// Before its exec the child is a copy of the test process, and
				// right after it the dynamic loader holds its own fds.
				waitFor(t, fmt.Sprintf("%q to execute %s and sleep", tt.argv, sleepExe), func() bool {
					exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.Pid))
					return exe == sleepExe && sleeping(p.Pid)
				})
				fds = beyondStdio(openFDs(t, p.Pid))
			}
			switch {
			case tt.want == "" && len(fds) != 0:
				t.Errorf("openFDs(%q) beyond stdio = %v; want none", tt.argv, fds)
			case tt.want != "" && (len(fds) != 1 || !hasTarget(fds, tt.want)):
				t.Errorf("openFDs(%q) beyond stdio = %v; want exactly %s", tt.argv, fds, tt.want)
			}
		})
	}
}

func hasTarget(fds map[int]string, target string) bool {
	for _, t := range fds {
		if t == target {
			return true
		}
	}
	return false
}
