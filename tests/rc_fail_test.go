package tests

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestRcFailingOneshotBlocksDependents(t *testing.T) {
	t.Parallel()
	files := merge(
		oneshotFiles("base", "0"),
		map[string]string{"bad/type": "oneshot\n", "bad/up": "false\n", "bad/dependencies": "base\n"},
		oneshotFiles("after-bad", "0", "bad"),
		longrunFiles("lr-after-bad", "0", "after-bad"),
		oneshotFiles("independent", "0.2", "base"),
		map[string]string{"top/type": "bundle\n", "top/contents": "lr-after-bad\nindependent\n"},
	)
	e := newRcEnv(t, files)
	e.init()
	r := e.mustRc(1, "-u", "change", "top")
	if !strings.Contains(r.Stderr, "rc: warning: unable to start service bad: up exited 1\n") ||
		!strings.Contains(r.Stderr, "rc: warning: not starting after-bad: dependency bad failed\n") {
		t.Errorf("stderr %q lacks the failure and the skip", r.Stderr)
	}
	evs := e.events()
	if firstEvent(evs, "begin", "after-bad") != 0 || firstEvent(evs, "begin", "lr-after-bad") != 0 {
		t.Errorf("dependents of a failed oneshot ran: %v", evs)
	}
	if firstEvent(evs, "end", "independent") == 0 {
		t.Errorf("an independent oneshot did not run: %v", evs)
	}
	st := e.state()
	for n, want := range map[string]string{"base": "U", "independent": "U", "bad": "D", "after-bad": "D", "lr-after-bad": "D"} {
		if st[n] != want {
			t.Errorf("state of %s = %s; want %s", n, st[n], want)
		}
	}
}

func TestRcLongrunNeverReadyTimesOut(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"slow/type":            "longrun\n",
		"slow/run":             "#!/bin/sh\nexec sleep 1000\n",
		"slow/notification-fd": "3\n",
		"slow/timeout-up":      "300\n",
		"next/type":            "oneshot\n",
		"next/up":              "touch LOG\n",
		"next/dependencies":    "slow\n",
	}
	e := newRcEnv(t, files)
	e.init()
	t0 := time.Now()
	r := e.mustRc(1, "-u", "change", "next")
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("failed after %v, before timeout-up 300", d)
	}
	if !strings.Contains(r.Stderr, "unable to start service slow: timed out after 300 ms") {
		t.Errorf("stderr %q", r.Stderr)
	}
	if _, err := os.Stat(e.log); err == nil {
		t.Errorf("next ran although slow failed")
	}
	if _, err := os.Stat(filepath.Join(e.sd("slow"), "down")); err != nil {
		t.Errorf("slow/down after a failed start: %v", err)
	}
	waitFor(t, "slow to be down", func() bool {
		st, ok := readStatus(e.sd("slow"))
		return ok && st.PID == 0
	})
	if st := e.state(); st["slow"] != "D" || st["next"] != "D" {
		t.Errorf("state %v; want slow and next D", st)
	}
}

func TestRcPermanentFailureFailsAtOnce(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"perm/type":            "longrun\n",
		"perm/run":             "#!/bin/sh\nexit 3\n",
		"perm/finish":          "#!/bin/sh\nexit 125\n",
		"perm/notification-fd": "3\n",
		"perm/timeout-up":      "60000\n",
	}
	e := newRcEnv(t, files)
	e.init()
	r := e.mustRc(1, "-u", "change", "perm")
	if !strings.Contains(r.Stderr, "unable to start service perm: permanent failure") {
		t.Errorf("stderr %q", r.Stderr)
	}
}

func TestRcStartAttempts(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"crash/type":            "longrun\n",
		"crash/run":             "#!/bin/sh\necho x >> LOG\nexit 1\n",
		"crash/notification-fd": "3\n",
		"crash/start-attempts":  "3\n",
	}
	e := newRcEnv(t, files, "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
	e.init()
	r := e.mustRc(1, "-u", "change", "crash")
	if !strings.Contains(r.Stderr, "unable to start service crash: died 3 times before becoming ready") {
		t.Errorf("stderr %q", r.Stderr)
	}
	b, _ := os.ReadFile(e.log)
	if n := strings.Count(string(b), "x\n"); n < 3 {
		t.Errorf("run ran %d times; want at least 3", n)
	}
}

func TestRcGlobalTimeout(t *testing.T) {
	t.Parallel()
	files := merge(oneshotFiles("slow", "1"), oneshotFiles("after", "0", "slow"))
	e := newRcEnv(t, files)
	e.init()
	r := e.mustRc(2, "-t", "300", "-u", "change", "after")
	// The running script was waited for and recorded; nothing new began.
	if st := e.state(); st["slow"] != "U" || st["after"] != "D" {
		t.Errorf("state %v; want slow U, after D (stderr %q)", st, r.Stderr)
	}
	if firstEvent(e.events(), "begin", "after") != 0 {
		t.Errorf("after started past the global timeout")
	}
}

func TestRcSIGTERMDuringChange(t *testing.T) {
	t.Parallel()
	files := merge(
		oneshotFiles("script", "0.5"),
		map[string]string{
			"never/type": "longrun\n", "never/run": "#!/bin/sh\necho started >> LOG.never\nexec sleep 1000\n",
			"never/notification-fd": "3\n",
		},
		map[string]string{"top/type": "bundle\n", "top/contents": "script\nnever\n"},
	)
	e := newRcEnv(t, files)
	e.init()
	p := start(t, "rc", "-l", e.live, "-u", "change", "top")
	waitFor(t, "the script and the longrun to start", func() bool {
		_, err := os.Stat(e.log + ".never")
		return firstEvent(e.events(), "begin", "script") != 0 && err == nil
	})
	p.Signal(unix.SIGTERM)
	r := p.Wait(t)
	if r.Code != 1 || !strings.Contains(r.Stderr, "interrupted by SIGTERM") {
		t.Errorf("rc after SIGTERM = %s, %q; want 1, interrupted by SIGTERM", r.Status(), r.Stderr)
	}
	if firstEvent(e.events(), "end", "script") == 0 {
		t.Errorf("the running oneshot did not finish")
	}
	st := e.state()
	if st["script"] != "U" || st["never"] != "D" {
		t.Errorf("state %v; want script U (it finished), never D", st)
	}
	waitFor(t, "never to be down", func() bool {
		s, ok := readStatus(e.sd("never"))
		return ok && s.PID == 0
	})
}

func TestRcEssential(t *testing.T) {
	t.Parallel()
	files := merge(
		oneshotFiles("dep", "0"),
		oneshotFiles("ess", "0", "dep"),
		map[string]string{"ess/flag-essential": ""},
		oneshotFiles("user", "0", "ess"),
	)
	e := newRcEnv(t, files)
	e.init()
	e.mustRc(0, "-u", "change", "user")
	r := e.mustRc(0, "-d", "change", "dep")
	if !strings.Contains(r.Stderr, "rc: warning: service ess is essential, not stopping it\n") {
		t.Errorf("stderr %q", r.Stderr)
	}
	if st := e.state(); st["user"] != "D" || st["ess"] != "U" || st["dep"] != "U" {
		t.Errorf("state after -d %v; want user D, ess and dep U", st)
	}
	if r := e.mustRc(0, "-e", "listall", "user"); strings.Contains(r.Stdout, "ess") {
		t.Errorf("-e listall shows essentials: %q", r.Stdout)
	}
	e.mustRc(0, "-D", "change", "dep")
	if st := e.state(); st["ess"] != "D" || st["dep"] != "D" {
		t.Errorf("state after -D %v; want all D", st)
	}
	// -pu: bring up exactly ess's closure, stopping the rest.
	e.mustRc(0, "-u", "change", "user")
	e.mustRc(0, "-pu", "change", "ess")
	if st := e.state(); st["user"] != "D" || st["ess"] != "U" || st["dep"] != "U" {
		t.Errorf("state after -pu ess %v; want user D, ess and dep U", st)
	}
}

func TestRcReload(t *testing.T) {
	t.Parallel()
	files := merge(
		map[string]string{
			"lr/type": "longrun\n", "lr/notification-fd": "3\n",
			"lr/run":  "#!/bin/sh\ntrap 'echo \"reload lr 1\" >> LOG' HUP\necho >&3\nwhile :; do sleep 0.05; done\n",
			"os/type": "oneshot\n", "os/up": "true\n", "os/reload": "sh -c \"echo reload os 1 >> LOG\"\n",
			"off/type": "oneshot\n", "off/up": "true\n",
		},
	)
	e := newRcEnv(t, files)
	e.init()
	e.mustRc(0, "-u", "change", "lr", "os")
	e.mustRc(0, "reload", "lr", "os")
	waitFor(t, "both reloads", func() bool {
		evs := e.events()
		return firstEvent(evs, "reload", "lr") != 0 && firstEvent(evs, "reload", "os") != 0
	})
	r := e.mustRc(1, "reload", "off")
	if !strings.Contains(r.Stderr, "service off is not up") {
		t.Errorf("reload of a down service: %q", r.Stderr)
	}
	e.mustRc(3, "reload", "nosuch")
}

func TestRcOneshotTimeoutKillsItsGroup(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"hang/type":       "oneshot\n",
		"hang/up":         "sh -c \"sleep 30 & echo $! > LOG.child; wait\"\n",
		"hang/timeout-up": "200\n",
	}
	e := newRcEnv(t, files)
	e.init()
	// The script names its child only once sh has run that far: a loaded
	// machine may take the 200 ms before that, so try again until it did.
	var child int
	for attempt := 1; child == 0; attempt++ {
		if err := os.Remove(e.log + ".child"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		r := e.mustRc(1, "-u", "change", "hang")
		if !strings.Contains(r.Stderr, "unable to start service hang: timed out after 200 ms") {
			t.Errorf("stderr %q", r.Stderr)
		}
		b, err := os.ReadFile(e.log + ".child")
		if line, ok := strings.CutSuffix(string(b), "\n"); err == nil && ok {
			if child, err = strconv.Atoi(line); err != nil || child <= 0 {
				t.Fatalf("the script wrote %q as its child's pid", b)
			}
		} else if attempt == 5 {
			t.Fatalf("in 5 tries, the script never wrote its child's pid before the timeout: %q, %v", b, err)
		}
	}
	waitFor(t, "the script's background child to be killed", func() bool {
		st, err := readStat(child)
		return err != nil || st.State == 'Z'
	})
	if st := e.state(); st["hang"] != "D" {
		t.Errorf("hang is %s; want D", st["hang"])
	}
}

func TestRcSupervisorNotRunning(t *testing.T) {
	t.Parallel()
	files := merge(longrunFiles("lr", "0"), oneshotFiles("after", "0", "lr"))
	e := newRcEnv(t, files)
	e.init()
	e.svscan.KillGroup(t)
	waitFor(t, "lr's supervisor to be gone", func() bool {
		_, err := os.Stat(filepath.Join(e.sd("lr"), "supervise", "control"))
		return err == nil && run(t, "svok", e.sd("lr")).Code != 0
	})
	r := e.mustRc(1, "-u", "change", "after")
	if !strings.Contains(r.Stderr, "unable to start service lr: supervisor not running") ||
		!strings.Contains(r.Stderr, "not starting after: dependency lr failed") {
		t.Errorf("stderr %q", r.Stderr)
	}
	if st := e.state(); st["lr"] != "D" || st["after"] != "D" {
		t.Errorf("state %v", st)
	}
}
