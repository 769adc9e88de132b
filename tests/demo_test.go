package tests

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMakeDemo runs "make demo" as the README tells a newcomer to, stopped
// after a few seconds by DEMO_FLAGS instead of Ctrl-C: every example
// service and logger must show up in svstat's lines (ready for the one with
// notification-fd), svscan must bring them all down and exit 0, and the
// copy of the tree must be gone with no process left running in it.
func TestMakeDemo(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary and runs the demo for 8 s")
	}
	makePath, ok := realLookPath("make")
	if !ok {
		t.Fatalf("make not found in %s (the README's first command needs it)", realPath)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, makePath, "-s", "-C", root, "demo", "DEMO_FLAGS=-for=8s")
	cmd.Env = append(os.Environ(), "PATH="+realPath)
	b, err := cmd.CombinedOutput()
	outText := string(b)
	if err != nil {
		t.Fatalf("make demo: %v\n%s", err, outText)
	}

	services := []string{"forking", "locked", "plain", "ready"}
	for _, name := range services {
		for _, dir := range []string{name, name + "/log"} {
			re := regexp.MustCompile(`(?m)svstat  ` + regexp.QuoteMeta(dir) + ` +up \(pid [1-9][0-9]* pgid [1-9][0-9]*\) [0-9]+ seconds`)
			if !re.MatchString(outText) {
				t.Errorf("no svstat line showing %s up", dir)
			}
			if !strings.Contains(outText, "event   "+padTo(dir, 12)+" x  supervisor exiting") {
				t.Errorf("no x event for %s: its supervisor did not exit", dir)
			}
		}
	}
	if !regexp.MustCompile(`svstat  ready +up \(pid \d+ pgid \d+\) \d+ seconds, ready \d+ seconds`).MatchString(outText) {
		t.Errorf("the notification-fd service never showed ready")
	}
	if !regexp.MustCompile(`log     locked +\S+ round 1: in the critical section`).MatchString(outText) {
		t.Errorf("the setlock service's log line never showed (logger pipe or setlock broken)")
	}
	if !strings.Contains(outText, "svscan exited 0: every service and logger is down") {
		t.Errorf("svscan did not exit 0 at the end")
	}
	m := regexp.MustCompile(`removed (/\S+)`).FindStringSubmatch(outText)
	if m == nil {
		t.Fatalf("the demo did not remove its copy\n%s", outText)
	}
	if _, err := os.Stat(m[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after the demo: %v", m[1], err)
	}
	// Nothing may still run in the removed tree.
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && strings.HasPrefix(cwd, m[1]) {
			t.Errorf("process %s still runs in %s", e.Name(), cwd)
		}
	}
	if t.Failed() {
		t.Logf("make demo output:\n%s", outText)
	}
}

func padTo(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}
