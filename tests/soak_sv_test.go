//go:build soak

package tests

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/servicedir"
)

// TestSoakSupervise restarts a crashing service 1000 times, with the
// throttle shortened by the test hook: supervise ends with no zombie, the
// same number of open fds, and a death tally of max-death-tally records.
func TestSoakSupervise(t *testing.T) {
	t.Parallel()
	const restarts = 1000
	dir := svcDir(t, map[string]string{"run": "#!/bin/sh\nexit 1\n", "max-death-tally": "300\n", "down": ""})
	s := startSuperviseEnv(t, dir, "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
	s.expect("s")
	// Idle and down: the fd table to compare with at the end (while it
	// runs, a notification to a listener holds one more fd for a moment).
	fds := s.idleFDs()
	s.control("u")
	s.expect("udD")
	for i := 1; i < restarts; i++ {
		s.expect("udD")
	}
	s.control("O")
	waitFor(t, "wantup cleared", func() bool { return s.status().Flags&servicedir.FlagWantUp == 0 })
	// One more cycle may have started before O: let it end.
	waitFor(t, "the service down", func() bool { return s.status().PID == 0 })
	if z := zombiesUnder(t, s.p.Pid); len(z) != 0 {
		t.Errorf("zombies under supervise after %d restarts: %v", restarts, z)
	}
	if now := s.idleFDs(); len(now) != len(fds) {
		t.Errorf("supervise's fds after %d restarts = %v; before = %v", restarts, now, fds)
	}
	tally := mustRead(t, filepath.Join(dir, "supervise", "death_tally"))
	if len(tally) != 300*servicedir.DeathSize {
		t.Errorf("death_tally is %d bytes; want 300 records (%d bytes)", len(tally), 300*servicedir.DeathSize)
	}
	s.control("x")
	if r := s.p.Wait(t); r.Code != 0 {
		t.Errorf("supervise = %s; want 0", r.Status())
	}
	assertNoNew(t, dir)
}

// TestSoakSuperviseMemory: after 1,000 restarts of a crashing service,
// idle supervise's RssAnon is back to its idle figure (issue 20 item 7:
// 1.2 MB before, 4.3 MB after on the code; +1 MB last session).
func TestSoakSuperviseMemory(t *testing.T) {
	t.Parallel()
	_, m := restartStorm(t, 1000)
	m.check(t)
}

// idleFDs returns supervise's fd table once no notification is being
// written: right after an event was read, supervise may still hold the
// listener's fifo open for a moment.
func (s *supervised) idleFDs() map[int]string {
	s.t.Helper()
	var fds map[int]string
	waitFor(s.t, "supervise to close the event fifos", func() bool {
		fds = openFDs(s.t, s.p.Pid)
		for _, target := range fds {
			if strings.Contains(target, "/event/") {
				return false
			}
		}
		return true
	})
	return fds
}
