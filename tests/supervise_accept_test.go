package tests

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/servicedir"
)

// Acceptance tests of supervise (spec/supervise.md §10) that
// supervise_test.go does not cover: control letters, timeout-kill and
// timeout-finish, the restart throttle, invalid numeric files, resources
// over restarts, the directories supervise makes, x/HUP/INT while up.

// accLines returns the complete lines of the file name ("" if missing).
func accLines(name string) []string {
	b, _ := os.ReadFile(name)
	return lines(string(b))
}

// accWaitLines waits until the file name holds at least n complete lines,
// and returns them.
func accWaitLines(t *testing.T, name string, n int) []string {
	t.Helper()
	var l []string
	waitFor(t, fmt.Sprintf("%d lines in %s", n, name), func() bool {
		l = accLines(name)
		return len(l) >= n
	})
	return l
}

// quiet fails the test if an event arrives within d: for "must not
// happen" checks (no restart), whose window is a lower bound.
func (s *supervised) quiet(d time.Duration) {
	s.t.Helper()
	if len(s.buf) > 0 {
		s.t.Fatalf("events %q after %q; want none", s.buf, s.got)
	}
	buf := make([]byte, 64)
	n, err := s.ev.Read(buf, time.Now().Add(d))
	if n > 0 {
		s.t.Fatalf("events %q within %v after %q; want none", buf[:n], d, s.got)
	}
	if err == nil {
		s.t.Fatalf("events: read nothing and no timeout")
	}
}

// runPID returns run's pid from the status file; the test fails if none.
func (s *supervised) runPID() int {
	s.t.Helper()
	st := s.status()
	if st.PID == 0 || st.Flags&servicedir.FlagFinishing != 0 {
		s.t.Fatalf("status = %+v; want the service up", st)
	}
	return int(st.PID)
}

// procState returns the state letter of pid, 0 if it is gone.
func procState(pid int) byte {
	st, err := readStat(pid)
	if err != nil {
		return 0
	}
	return st.State
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	s := procState(pid)
	return s != 0 && s != 'Z'
}

const sleepRun = "#!/bin/sh\nexec sleep 1000\n"

// TestSuperviseAcceptLetters checks §3.6: each signal letter reaches run
// (trapsig records every signal it gets, and lives on), p/c stop and
// continue it and set/clear paused, k kills it, an unknown byte is ignored
// and the bytes after it still apply.
func TestSuperviseAcceptLetters(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "signals")
	dir := svcDir(t, map[string]string{"run": "#!/bin/sh\nexec trapsig > " + out + "\n"})
	s := startSupervise(t, dir)
	s.expect("su")
	pid := s.runPID()
	accWaitLines(t, out, 1) // "ready": trapsig catches everything now
	n := 1
	for _, tt := range []struct{ letters, sig string }{
		{"Za", "ALRM"}, // Z is ignored; the a after it in the same write applies
		{"b", "ABRT"}, {"q", "QUIT"}, {"h", "HUP"}, {"i", "INT"},
		{"1", "USR1"}, {"2", "USR2"}, {"y", "WINCH"}, {"t", "TERM"},
	} {
		s.control(tt.letters)
		n++
		l := accWaitLines(t, out, n)
		if got := l[n-1]; got != tt.sig {
			t.Errorf("after %q run recorded %q; want %q (all: %q)", tt.letters, got, tt.sig, l)
		}
	}
	if got := s.runPID(); got != pid {
		t.Fatalf("run pid %d -> %d: a letter restarted the service", pid, got)
	}

	s.control("p")
	waitFor(t, "p: paused flag and run stopped (T)", func() bool {
		return s.status().Flags&servicedir.FlagPaused != 0 && procState(pid) == 'T'
	})
	s.control("c")
	waitFor(t, "c: paused flag cleared and run sleeping (S)", func() bool {
		return s.status().Flags&servicedir.FlagPaused == 0 && procState(pid) == 'S'
	})

	s.control("k")
	s.expect("dD")
	if st := s.status(); st.WStat != uint16(unix.SIGKILL) {
		t.Errorf("wstat after k = %#04x; want %#04x (SIGKILL)", st.WStat, unix.SIGKILL)
	}
	s.quit("dx", "x")
}

// TestSuperviseAcceptSignalFiles checks that r sends down-signal (no
// restart) and l sends reload-signal (default HUP).
func TestSuperviseAcceptSignalFiles(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		letter string
		file   string // file name = content; "" for none
		text   string
		want   string
	}{
		{"r down-signal USR1", "r", "down-signal", "USR1\n", "USR1"},
		{"r down-signal 10", "r", "down-signal", "10\n", "USR1"},
		{"r default TERM", "r", "", "", "TERM"},
		{"l default HUP", "l", "", "", "HUP"},
		{"l reload-signal USR2", "l", "reload-signal", "SIGUSR2\n", "USR2"},
		{"l reload-signal 12", "l", "reload-signal", "12", "USR2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "signals")
			files := map[string]string{"run": "#!/bin/sh\nexec trapsig > " + out + "\n"}
			if tt.file != "" {
				files[tt.file] = tt.text
			}
			dir := svcDir(t, files)
			s := startSupervise(t, dir)
			s.expect("su")
			pid := s.runPID()
			accWaitLines(t, out, 1)
			s.control(tt.letter)
			if l := accWaitLines(t, out, 2); l[1] != tt.want {
				t.Errorf("%s: run recorded %q; want %q", tt.letter, l[1:], tt.want)
			}
			if got := s.runPID(); got != pid || s.status().Flags&servicedir.FlagWantUp == 0 {
				t.Errorf("after %s: pid %d -> %d, status %+v; want same run, wantup", tt.letter, pid, got, s.status())
			}
			if r := s.p.Stderr(); r != "" {
				t.Errorf("supervise stderr %q; want nothing", r)
			}
		})
	}
}

// TestSuperviseAcceptGroupLetters checks that P, C and K reach a
// grandchild in run's process group, and that P/C set/clear paused.
func TestSuperviseAcceptGroupLetters(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	gcFile, out := filepath.Join(tmp, "gc"), filepath.Join(tmp, "signals")
	dir := svcDir(t, map[string]string{"run": "#!/bin/sh\nsleeper > /dev/null &\necho $! > " + gcFile +
		"\nexec trapsig > " + out + "\n"})
	s := startSupervise(t, dir)
	s.expect("su")
	pid := s.runPID()
	accWaitLines(t, out, 1)
	gc, err := strconv.Atoi(strings.TrimSpace(string(mustRead(t, gcFile))))
	if err != nil {
		t.Fatalf("grandchild pid: %v", err)
	}
	if st, err := readStat(gc); err != nil || st.PGrp != pid {
		t.Fatalf("grandchild %d: %+v, %v; want in run's group %d", gc, st, err, pid)
	}
	s.control("P")
	waitFor(t, "P: paused, run and grandchild stopped", func() bool {
		return s.status().Flags&servicedir.FlagPaused != 0 && procState(pid) == 'T' && procState(gc) == 'T'
	})
	s.control("C")
	waitFor(t, "C: paused cleared, run and grandchild running", func() bool {
		return s.status().Flags&servicedir.FlagPaused == 0 && procState(pid) == 'S' && procState(gc) == 'S'
	})
	s.control("K")
	s.expect("dD")
	if ws := reapOrphan(t, gc); !ws.Signaled() || ws.Signal() != unix.SIGKILL {
		t.Errorf("grandchild after K: %v; want killed by SIGKILL", ws)
	}
	if st := s.status(); st.WStat != uint16(unix.SIGKILL) {
		t.Errorf("wstat after K = %#04x; want SIGKILL", st.WStat)
	}
	s.quit("dx", "x")
}

// TestSuperviseAcceptOnceAndDownFile checks o, O, D and U.
func TestSuperviseAcceptOnceAndDownFile(t *testing.T) {
	t.Parallel()
	t.Run("o runs a down service once", func(t *testing.T) {
		t.Parallel()
		dir := svcDir(t, map[string]string{"run": "#!/bin/sh\nexit 0\n", "down": ""})
		s := startSupervise(t, dir)
		s.expect("s")
		s.control("o")
		s.expect("udD")
		// Without o's "once", the throttle restarts it 1 s after D.
		s.quiet(1500 * time.Millisecond)
		if st := s.status(); st.PID != 0 || st.Flags&servicedir.FlagWantUp != 0 {
			t.Errorf("status after o and a death = %+v; want down, not wanted up", st)
		}
	})
	t.Run("O then k does not restart", func(t *testing.T) {
		t.Parallel()
		dir := svcDir(t, map[string]string{"run": sleepRun})
		s := startSupervise(t, dir)
		s.expect("su")
		pid := s.runPID()
		s.control("O")
		waitFor(t, "wantup cleared by O", func() bool { return s.status().Flags&servicedir.FlagWantUp == 0 })
		if !alive(pid) || s.runPID() != pid {
			t.Fatalf("O touched run %d", pid)
		}
		s.control("k")
		s.expect("dD")
		s.quiet(1500 * time.Millisecond)
	})
	t.Run("D creates down, U removes it", func(t *testing.T) {
		t.Parallel()
		dir := svcDir(t, map[string]string{"run": sleepRun})
		down := filepath.Join(dir, "down")
		s := startSupervise(t, dir)
		s.expect("su")
		s.control("D")
		s.expect("dD")
		if _, err := os.Stat(down); err != nil {
			t.Errorf("after D: %v; want a down file", err)
		}
		if st := s.status(); st.Flags&servicedir.FlagWantUp != 0 {
			t.Errorf("after D: %+v; want wantup cleared", st)
		}
		s.control("U")
		s.expect("u")
		if _, err := os.Stat(down); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after U: stat down = %v; want ENOENT", err)
		}
		s.control("dx")
		s.expect("dDx")
	})
}

// TestSuperviseAcceptTimeoutKill checks timeout-kill 300 on a run that
// ignores SIGTERM: SIGKILL no sooner than 300 ms after d; with
// flag-timeout-killpg it reaches a grandchild in run's group, without it
// the grandchild survives.
func TestSuperviseAcceptTimeoutKill(t *testing.T) {
	t.Parallel()
	for _, killpg := range []bool{false, true} {
		t.Run(fmt.Sprintf("killpg=%v", killpg), func(t *testing.T) {
			t.Parallel()
			gcFile := filepath.Join(t.TempDir(), "gc")
			files := map[string]string{
				"run":          "#!/bin/sh\ntrap '' TERM\nsleep 1000 &\necho $! > " + gcFile + ".tmp\nmv " + gcFile + ".tmp " + gcFile + "\nexec sleep 1000\n",
				"timeout-kill": "300\n",
			}
			if killpg {
				files["flag-timeout-killpg"] = ""
			}
			s := startSupervise(t, svcDir(t, files))
			s.expect("su")
			pid := s.runPID()
			waitFor(t, "run to exec sleep", func() bool { return sleeping(pid) })
			gc, err := strconv.Atoi(strings.TrimSpace(string(mustRead(t, gcFile))))
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			s.control("d")
			s.expect("dD")
			if el := time.Since(t0); el < 300*time.Millisecond {
				t.Errorf("run died %v after d; want >= 300 ms (timeout-kill)", el)
			}
			if st := s.status(); st.WStat != uint16(unix.SIGKILL) {
				t.Errorf("wstat = %#04x; want SIGKILL", st.WStat)
			}
			// The grandchild is ours now (TestMain made us a subreaper).
			if killpg {
				if ws := reapOrphan(t, gc); !ws.Signaled() || ws.Signal() != unix.SIGKILL {
					t.Errorf("grandchild: %v; want killed by SIGKILL (flag-timeout-killpg)", ws)
				}
			} else {
				if !alive(gc) {
					t.Errorf("grandchild %d died without flag-timeout-killpg", gc)
				}
				unix.Kill(gc, unix.SIGKILL)
				reapOrphan(t, gc)
			}
			s.control("x")
			s.expect("x")
		})
	}
}

// TestSuperviseAcceptTimeoutFinish checks timeout-finish 300 with a
// finish that sleeps: D no sooner than 300 ms after d, one warning line;
// and finish's arguments after k (a separate finish, which is not killed
// before it writes them under load).
func TestSuperviseAcceptTimeoutFinish(t *testing.T) {
	t.Parallel()
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		dir := svcDir(t, map[string]string{
			"run":            sleepRun,
			"finish":         "#!/bin/sh\nexec sleep 1000\n",
			"timeout-finish": "300\n",
		})
		s := startSupervise(t, dir)
		s.expect("su")
		// The lower bound starts before k: finish is spawned after it,
		// while reading d late would shorten the measure.
		t0 := time.Now()
		s.control("k")
		s.expect("d")
		s.expect("D")
		if el := time.Since(t0); el < 300*time.Millisecond {
			t.Errorf("D %v after k; want >= 300 ms (timeout-finish)", el)
		}
		warn := "supervise " + dir + ": warning: ./finish ran longer than timeout-finish (300 ms); killing it"
		if got := s.p.Stderr(); got != warn+"\n" {
			t.Errorf("stderr %q; want the one line %q", got, warn)
		}
		s.control("dx")
		s.expect("x")
	})
	t.Run("args after k", func(t *testing.T) {
		t.Parallel()
		args := filepath.Join(t.TempDir(), "args")
		dir := svcDir(t, map[string]string{"run": sleepRun, "finish": "#!/bin/sh\necho \"$@\" > " + args + "\n"})
		s := startSupervise(t, dir)
		s.expect("su")
		pid := s.runPID()
		s.control("k")
		s.expect("dD")
		want := fmt.Sprintf("256 9 %s %d", dir, pid)
		if l := accLines(args); len(l) != 1 || l[0] != want {
			t.Errorf("finish args = %q; want %q", l, want)
		}
		s.control("dx")
		s.expect("x")
	})
}

// TestSuperviseAcceptThrottle checks the restart throttle of §3.5.
func TestSuperviseAcceptThrottle(t *testing.T) {
	t.Parallel()
	files := map[string]string{"run": readyRun, "notification-fd": "3\n"}
	t.Run("ready 1.5 s, killed: restart not throttled", func(t *testing.T) {
		t.Parallel()
		s := startSupervise(t, svcDir(t, files))
		s.expect("suU")
		readyAt := time.Now()
		waitFor(t, "1.5 s of readiness", func() bool { return time.Since(readyAt) >= 1500*time.Millisecond })
		s.control("k")
		s.expect("dD")
		// Without an upper bound on time: x is read after D. Restarted
		// at once (UP), x waits for the next death; throttled (DOWN,
		// waiting), x exits at once. So "u" passes, "x" is the bug.
		// (This assumes the immediate restart happens before the
		// control fifo is read again, as "immediately" means.)
		s.control("x")
		s.expect("uU")
		s.control("k")
		s.expect("dDx")
	})
	t.Run("ready 0.2 s, killed: restart >= readiness + 1 s", func(t *testing.T) {
		t.Parallel()
		s := startSupervise(t, svcDir(t, files))
		s.expect("suU")
		readyAt := time.Now()
		ready := s.status().ReadyStamp
		waitFor(t, "0.2 s of readiness", func() bool { return time.Since(readyAt) >= 200*time.Millisecond })
		s.control("k")
		s.expect("dD")
		s.expect("u")
		st := s.status()
		gap := time.Duration(int64(st.Stamp.Sec-ready.Sec))*time.Second + time.Duration(int64(st.Stamp.Nsec)-int64(ready.Nsec))
		if gap < time.Second {
			t.Errorf("restart stamp %v after readiness stamp; want >= 1 s", gap)
		}
		s.expect("U")
		s.control("dx")
		s.expect("dDx")
	})
	t.Run("d then u starts at once", func(t *testing.T) {
		t.Parallel()
		// Exits 1 without readiness: each restart waits 1 s after D.
		s := startSupervise(t, svcDir(t, map[string]string{"run": "#!/bin/sh\nexit 1\n"}))
		s.expect("sudD")
		// During the throttle wait: d cancels it; u in DOWN starts at
		// once, so x finds the service up (LASTUP) and waits for its
		// death: "u dD x". Had u only set wantup, x would exit: "x".
		s.control("dux")
		s.expect("udDx")
	})
}

// TestSuperviseAcceptInvalidNumbers checks §1 for numeric files: one
// "invalid FILE" warning per use and the fallback.
func TestSuperviseAcceptInvalidNumbers(t *testing.T) {
	t.Parallel()
	values := []string{"abc", "-1", " 5", "5x", "99999999999", "", strings.Repeat("7", 70)}
	for _, file := range []string{"notification-fd", "lock-fd", "timeout-finish", "max-death-tally", "down-signal"} {
		vs := values
		if file == "down-signal" {
			vs = append(slices.Clip(values), "SIGFOO")
		}
		for _, v := range vs {
			t.Run(file+"="+strconv.Quote(v), func(t *testing.T) {
				t.Parallel()
				files := map[string]string{file: v}
				switch file {
				case "notification-fd":
					// Writes a newline on fd 3 if it is open.
					files["run"] = "#!/bin/sh\n{ printf '\\n' >&3; } 2>/dev/null\nexec sleep 1000\n"
				case "timeout-finish":
					files["run"] = sleepRun
					files["finish"] = "#!/bin/sh\nexit 0\n"
				default:
					files["run"] = sleepRun
				}
				dir := svcDir(t, files)
				s := startSupervise(t, dir)
				s.expect("su")
				pid := s.runPID()
				switch file {
				case "notification-fd":
					// Fallback: no pipe, so u but never U.
					waitFor(t, "run to exec sleep", func() bool { return sleeping(pid) })
					if st := s.status(); st.Flags&servicedir.FlagReady != 0 {
						t.Errorf("status %+v; want not ready", st)
					}
					s.control("dx")
					s.expect("dDx")
				case "timeout-finish":
					s.control("k")
					s.expect("dD")
					s.control("dx")
					s.expect("x")
				case "lock-fd":
					// Fallback: started without the service lock.
					s.control("dx")
					s.expect("dDx")
					if _, err := os.Stat(filepath.Join(dir, "supervise", "service-lock")); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("supervise/service-lock: %v; want it never created", err)
					}
				case "max-death-tally":
					// Fallback 100: the death is recorded (0 would not).
					s.control("dx")
					s.expect("dDx")
					if tally := mustRead(t, filepath.Join(dir, "supervise", "death_tally")); len(tally) != servicedir.DeathSize {
						t.Errorf("death_tally is %d bytes; want one record", len(tally))
					}
				case "down-signal":
					s.control("dx")
					s.expect("dDx")
					if st := s.status(); st.WStat != uint16(unix.SIGTERM) {
						t.Errorf("wstat = %#04x; want SIGTERM (fallback)", st.WStat)
					}
				}
				if r := s.p.Wait(t); r.Code != 0 {
					t.Errorf("supervise = %s; want 0", r.Status())
				}
				warn := "supervise " + dir + ": warning: invalid " + file + ": " + servicedir.Quote([]byte(v))
				if got := s.p.Stderr(); got != warn+"\n" {
					t.Errorf("stderr = %q; want the one line %q", got, warn)
				}
			})
		}
	}
	t.Run("timeout-finish=abc kills finish at 5 s", func(t *testing.T) {
		t.Parallel()
		dir := svcDir(t, map[string]string{"run": sleepRun, "finish": "#!/bin/sh\nexec sleep 1000\n", "timeout-finish": "abc"})
		s := startSupervise(t, dir)
		s.expect("su")
		// The lower bound starts before k: finish is spawned after it,
		// while reading d late would shorten the measure.
		t0 := time.Now()
		s.control("k")
		s.expect("d")
		s.expect("D")
		if el := time.Since(t0); el < 5*time.Second {
			t.Errorf("D %v after k; want >= 5 s (the default)", el)
		}
		want := "supervise " + dir + ": warning: invalid timeout-finish: \"abc\"\n" +
			"supervise " + dir + ": warning: ./finish ran longer than timeout-finish (5000 ms); killing it\n"
		if got := s.p.Stderr(); got != want {
			t.Errorf("stderr = %q; want %q", got, want)
		}
		s.control("dx")
		s.expect("x")
	})
}

// TestSuperviseAcceptResources restarts a ready service 8 times with k:
// supervise's fd count is unchanged and it leaves no zombie. (The 1000
// restarts of §10 need the throttle shortened by a test-only hook: each
// cycle of a service ready under 1 s takes 1 s.)
func TestSuperviseAcceptResources(t *testing.T) {
	t.Parallel()
	dir := svcDir(t, map[string]string{"run": readyRun, "notification-fd": "3\n"})
	s := startSupervise(t, dir)
	s.expect("suU")
	before := settledFDs(t, s.p.Pid)
	for range 8 {
		s.control("k")
		s.expect("dDuU")
	}
	after := settledFDs(t, s.p.Pid)
	if len(after) != len(before) {
		t.Errorf("supervise fds %v after 8 restarts; want %d as before: %v", after, len(before), before)
	}
	if z := zombiesUnder(t, s.p.Pid); len(z) != 0 {
		t.Errorf("zombies under supervise: %v", z)
	}
	assertNoNew(t, dir)
	s.control("dx")
	s.expect("dDx")
}

// settledFDs returns pid's fds once it holds no listener fifo of event/
// open: one is open for a moment around each event written (our
// listener reads U before supervise has closed it).
func settledFDs(t *testing.T, pid int) map[int]string {
	t.Helper()
	var fds map[int]string
	waitFor(t, "no event fifo open in supervise", func() bool {
		fds = openFDs(t, pid)
		for _, f := range fds {
			if strings.Contains(f, "/event/"+ftrig.Prefix) {
				return false
			}
		}
		return true
	})
	return fds
}

// TestSuperviseAcceptDirs checks the modes of what supervise creates
// (§2.1): supervise/ 0700, control a FIFO 0600, lock 0644, a new event/
// 03730 with the effective gid; an existing event/ keeps its mode; a
// dangling symlink gets its target created.
func TestSuperviseAcceptDirs(t *testing.T) {
	t.Parallel()
	type check struct {
		path string
		mode os.FileMode // type bits included
	}
	fifodir := os.ModeDir | os.ModeSetgid | os.ModeSticky | 0o730
	for _, tt := range []struct {
		name   string
		setup  func(t *testing.T, dir string) // before supervise starts
		checks func(dir string) []check
	}{
		{"new", func(*testing.T, string) {}, func(d string) []check {
			return []check{
				{"supervise", os.ModeDir | 0o700},
				{"supervise/control", os.ModeNamedPipe | 0o600},
				{"supervise/lock", 0o644},
				{"event", fifodir},
			}
		}},
		{"existing event keeps its mode", func(t *testing.T, d string) {
			if err := os.Mkdir(filepath.Join(d, "event"), 0o755); err != nil {
				t.Fatal(err)
			}
			os.Chmod(filepath.Join(d, "event"), 0o751)
		}, func(d string) []check { return []check{{"event", os.ModeDir | 0o751}} }},
		{"dangling supervise symlink", func(t *testing.T, d string) {
			if err := os.Symlink("../target", filepath.Join(d, "supervise")); err != nil {
				t.Fatal(err)
			}
		}, func(d string) []check {
			return []check{{"../target", os.ModeDir | 0o700}, {"supervise/control", os.ModeNamedPipe | 0o600}}
		}},
		{"dangling event symlink", func(t *testing.T, d string) {
			if err := os.Symlink(filepath.Join(filepath.Dir(d), "ev"), filepath.Join(d, "event")); err != nil {
				t.Fatal(err)
			}
		}, func(d string) []check { return []check{{"../ev", fifodir}} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := svcDir(t, map[string]string{"run": sleepRun, "down": ""})
			tt.setup(t, dir)
			p := start(t, "supervise", dir)
			waitFor(t, "supervise/status", func() bool {
				_, err := os.Stat(filepath.Join(dir, "supervise", "status"))
				return err == nil
			})
			for _, c := range tt.checks(dir) {
				path := filepath.Join(dir, c.path)
				st, err := os.Stat(path)
				if err != nil {
					t.Errorf("stat %s: %v", c.path, err)
					continue
				}
				if st.Mode() != c.mode {
					t.Errorf("mode of %s = %v; want %v", c.path, st.Mode(), c.mode)
				}
				if c.mode == fifodir {
					var us unix.Stat_t
					if err := unix.Stat(path, &us); err != nil || int(us.Gid) != unix.Getegid() {
						t.Errorf("gid of %s = %d, %v; want the effective gid %d", c.path, us.Gid, err, unix.Getegid())
					}
				}
			}
			p.Signal(unix.SIGTERM)
			if r := p.Wait(t); r.Code != 0 || r.Stderr != "" {
				t.Errorf("supervise after TERM = %s, %q; want 0, nothing", r.Status(), r.Stderr)
			}
		})
	}
}

// startSuperviseIn is startSupervise with settings for supervise itself.
func startSuperviseIn(t *testing.T, o Opts, dir string) *supervised {
	t.Helper()
	return startSupervisorIn(t, o, "supervise", dir)
}

const stdioRecord = "echo \"$(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1)\" > "

// TestSuperviseAcceptExitWhileUp checks x while up: supervise exits 0 after
// the next death, and finish then has stdin and stdout on /dev/null (run,
// before x, has supervise's: the negative control).
func TestSuperviseAcceptExitWhileUp(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	runOut, finOut := filepath.Join(tmp, "run.out"), filepath.Join(tmp, "finish.out")
	dir := svcDir(t, map[string]string{
		"run":    "#!/bin/sh\n" + stdioRecord + runOut + "\nexec sleep 1000\n",
		"finish": "#!/bin/sh\n" + stdioRecord + finOut + "\n",
	})
	s := startSuperviseIn(t, Opts{Stdin: "input\n"}, dir)
	s.expect("su")
	l := accWaitLines(t, runOut, 1)
	if f := strings.Fields(l[0]); len(f) != 2 || f[0] == os.DevNull || f[1] == os.DevNull {
		t.Fatalf("run's stdin, stdout = %q; want supervise's, not /dev/null", l[0])
	}
	s.quit("xk", "dDx")
	if l := accLines(finOut); len(l) != 1 || l[0] != "/dev/null /dev/null" {
		t.Errorf("finish's stdin, stdout = %q; want /dev/null /dev/null", l)
	}
}

// TestSuperviseAcceptHupInt checks §3.7: HUP while up leaves the service
// running and supervise exits 0 after a later k; INT sends SIGINT to run's
// group and supervise exits 0.
func TestSuperviseAcceptHupInt(t *testing.T) {
	t.Parallel()
	t.Run("HUP", func(t *testing.T) {
		t.Parallel()
		dir := svcDir(t, map[string]string{"run": sleepRun})
		s := startSupervise(t, dir)
		s.expect("su")
		pid := s.runPID()
		if fds := openFDs(t, s.p.Pid); fds[1] == os.DevNull {
			t.Fatalf("supervise's stdout is already /dev/null")
		}
		s.p.Signal(unix.SIGHUP)
		// HUP handled: stdin and stdout moved to /dev/null (§3.7).
		waitFor(t, "supervise's stdout on /dev/null after HUP", func() bool {
			return openFDs(t, s.p.Pid)[1] == os.DevNull
		})
		if !alive(pid) || s.runPID() != pid {
			t.Fatalf("HUP took the service %d down: status %+v", pid, s.status())
		}
		s.quit("k", "dDx")
	})
	t.Run("INT", func(t *testing.T) {
		t.Parallel()
		tmp := t.TempDir()
		out, gcOut := filepath.Join(tmp, "run.sig"), filepath.Join(tmp, "gc.sig")
		dir := svcDir(t, map[string]string{"run": "#!/bin/sh\ntrapsig > " + gcOut + " &\nexec trapsig > " + out + "\n"})
		s := startSupervise(t, dir)
		s.expect("su")
		accWaitLines(t, out, 1)
		accWaitLines(t, gcOut, 1)
		s.p.Signal(unix.SIGINT)
		s.expect("x")
		if r := s.p.Wait(t); r.Code != 0 {
			t.Errorf("supervise = %s; want exit 0", r.Status())
		}
		for _, f := range []string{out, gcOut} {
			if l := accWaitLines(t, f, 2); l[1] != "INT" {
				t.Errorf("%s recorded %q; want INT", filepath.Base(f), l[1:])
			}
		}
	})
}

// benchService starts supervise on a service directory for a benchmark,
// with a listener subscribed first; it returns supervise and the listener.
func benchService(b *testing.B, prog string, files map[string]string) (string, *Proc, *ftrig.Listener) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "svc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for name, content := range files {
		if err := writeExecutable(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := ftrig.MkFifodir(filepath.Join(dir, "event")); err != nil {
		b.Fatal(err)
	}
	l, err := ftrig.Subscribe(filepath.Join(dir, "event"))
	if err != nil {
		b.Fatal(err)
	}
	p := start(b, prog, dir)
	b.Cleanup(func() {
		l.Close()
		// d kills run (sleep, by SIGTERM); x then ends supervise.
		writeControl(dir, "dx")
		p.Wait(b)
	})
	return dir, p, l
}

// benchExpect reads events until it has len(want) bytes, which must be want.
func benchExpect(b *testing.B, l *ftrig.Listener, want string) {
	b.Helper()
	var got []byte
	buf := make([]byte, 64)
	for len(got) < len(want) {
		n, err := l.Read(buf[:len(want)-len(got)], time.Now().Add(10*time.Second))
		if err != nil {
			b.Fatalf("events %q, then %v; want %q", got, err, want)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != want {
		b.Fatalf("events %q; want %q", got, want)
	}
}

// benchSupervisors runs bench once per supervisor: gotools' supervise,
// and real s6-supervise next to it when it is installed.
func benchSupervisors(b *testing.B, bench func(b *testing.B, prog string)) {
	b.Run("supervise", func(b *testing.B) { bench(b, "supervise") })
	if s6, ok := realLookPath("s6-supervise"); ok {
		b.Run("s6-supervise", func(b *testing.B) { bench(b, s6) })
	}
}

// BenchmarkSuperviseIdleMemory reports the memory and threads of a
// supervisor whose service is up and ready, after 2 s idle (§11: RssAnon
// <= 1.5 MiB). A measurement: the metrics are what count.
func BenchmarkSuperviseIdleMemory(b *testing.B) {
	benchSupervisors(b, func(b *testing.B, prog string) {
		_, p, l := benchService(b, prog, map[string]string{"run": readyRun, "notification-fd": "3\n"})
		benchExpect(b, l, "suU")
		time.Sleep(2 * time.Second) // idle time being measured, not synchronisation
		st := procStatus(b, p.Pid)
		for b.Loop() {
		}
		b.ReportMetric(float64(st["RssAnon"]), "RssAnon-KiB")
		b.ReportMetric(float64(st["VmRSS"]), "VmRSS-KiB")
		b.ReportMetric(float64(st["Threads"]), "threads")
	})
}

// schedRuns sums field 3, the number of times the task was scheduled in,
// of /proc/PID/task/*/schedstat ("RUNTIME WAITTIME RUNS").
func schedRuns(b *testing.B, pid int) int64 {
	b.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		b.Fatal(err)
	}
	var sum int64
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue
		}
		f := strings.Fields(string(data))
		if len(f) < 3 {
			b.Fatalf("schedstat %q", data)
		}
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		sum += n
	}
	return sum
}

// BenchmarkSuperviseIdleWakeups reports how often an idle supervise (its
// service up and ready) is scheduled in a 2 s window after 1 s of settling
// (§11 targets 0; the full measurement is 3 windows of 10 s).
func BenchmarkSuperviseIdleWakeups(b *testing.B) {
	benchSupervisors(b, func(b *testing.B, prog string) {
		_, p, l := benchService(b, prog, map[string]string{"run": readyRun, "notification-fd": "3\n"})
		benchExpect(b, l, "suU")
		time.Sleep(time.Second) // settling, part of the measurement
		before := schedRuns(b, p.Pid)
		time.Sleep(2 * time.Second) // the window
		after := schedRuns(b, p.Pid)
		for b.Loop() {
		}
		b.ReportMetric(float64(after-before), "wakeups/window")
	})
}

// BenchmarkSvcUpLatency times svc -u DIR on a down service, from just
// before the exec of svc to the read of u (§11: median <= 5 ms); each
// iteration's d, dD is outside the timer. Under s6-supervise it is the
// same gotools svc: the difference is the supervisor's.
func BenchmarkSvcUpLatency(b *testing.B) {
	benchSupervisors(b, func(b *testing.B, prog string) {
		dir, _, l := benchService(b, prog, map[string]string{"run": sleepRun, "down": ""})
		benchExpect(b, l, "s")
		svc := lookPath(b, "svc")
		var lat []time.Duration
		for b.Loop() {
			t0 := time.Now()
			cmd := exec.Command(svc, "-u", dir)
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			benchExpect(b, l, "u")
			lat = append(lat, time.Since(t0))
			b.StopTimer()
			if err := cmd.Wait(); err != nil {
				b.Fatalf("svc -u: %v", err)
			}
			if err := writeControl(dir, "d"); err != nil {
				b.Fatal(err)
			}
			benchExpect(b, l, "dD")
			b.StartTimer()
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
		b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
	})
}

// BenchmarkRestartAfterCrash times, 10 times per supervisor, from just
// before SIGKILL to a run that has been ready for over 1.5 s to the new u
// (§11: median <= 5 ms; about 1000 ms would be a throttle bug). Each
// round's 1.6 s of uptime is not measured; the rounds are fixed, not
// scaled by b.N, so that make bench stays short: the metrics are what
// count.
func BenchmarkRestartAfterCrash(b *testing.B) {
	benchSupervisors(b, func(b *testing.B, prog string) {
		dir, _, l := benchService(b, prog, map[string]string{"run": readyRun, "notification-fd": "3\n"})
		benchExpect(b, l, "suU")
		var lat []time.Duration
		for range 10 {
			time.Sleep(1600 * time.Millisecond) // uptime past the throttle, not synchronisation
			st, err := servicedir.UnmarshalStatus(mustRead(b, filepath.Join(dir, "supervise", "status")))
			if err != nil || st.PID == 0 {
				b.Fatalf("status %+v, %v; want the service up", st, err)
			}
			t0 := time.Now()
			if err := unix.Kill(int(st.PID), unix.SIGKILL); err != nil {
				b.Fatal(err)
			}
			benchExpect(b, l, "dDu")
			lat = append(lat, time.Since(t0))
			benchExpect(b, l, "U")
		}
		for b.Loop() {
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	})
}
