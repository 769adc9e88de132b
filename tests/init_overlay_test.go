package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// End-to-end tests of init's overlay mode (spec/init.md §3-§6, §11 tests
// 10-13): an s6-overlay v3 style tree written here boots with init as PID 1
// of a new PID namespace under unshare(1), through GOTOOLS_INIT_ROOT.

// overlayTree writes the example tree under root: a cont-init.d script
// that adds BAR to the container environment, two s6-rc.d longruns (svc-b
// depends on svc-a, which notifies readiness) in the user bundle, a legacy services.d service, a
// cont-finish.d script, every one of them logging to root/log; extra
// files (path relative to root: content) are written too, executable when
// their content starts with "#!".
func overlayTree(t *testing.T, extra map[string]string) string {
	t.Helper()
	root := t.TempDir()
	svc := func(name, who string) map[string]string {
		return map[string]string{
			name + "/run":    "#!/bin/sh\necho \"" + who + " up $BAR\" >> $GOTOOLS_INIT_ROOT/log\nexec sleep 1000\n",
			name + "/finish": "#!/bin/sh\necho \"" + who + " down\" >> $GOTOOLS_INIT_ROOT/log\n",
		}
	}
	files := map[string]string{
		"etc/cont-init.d/10-bar":                            "#!/bin/sh\necho cont-init >> $GOTOOLS_INIT_ROOT/log\nprintf bar > $GOTOOLS_INIT_ROOT/run/s6/container_environment/BAR\n",
		"etc/cont-finish.d/10-done":                         "#!/bin/sh\necho cont-finish >> $GOTOOLS_INIT_ROOT/log\n",
		"etc/s6-overlay/s6-rc.d/svc-a/type":                 "longrun\n",
		"etc/s6-overlay/s6-rc.d/svc-b/type":                 "longrun\n",
		"etc/s6-overlay/s6-rc.d/svc-b/dependencies.d/svc-a": "",
		"etc/s6-overlay/s6-rc.d/user/contents.d/svc-a":      "",
		"etc/s6-overlay/s6-rc.d/user/contents.d/svc-b":      "",
		"run/.keep": "",
	}
	for k, v := range svc("etc/s6-overlay/s6-rc.d/svc-a", "svc-a") {
		files[k] = v
	}
	// svc-a notifies readiness once it has logged, so that svc-b, which
	// depends on it, starts (and logs) after it even on a loaded machine.
	files["etc/s6-overlay/s6-rc.d/svc-a/notification-fd"] = "3\n"
	files["etc/s6-overlay/s6-rc.d/svc-a/run"] = "#!/bin/sh\necho \"svc-a up $BAR\" >> $GOTOOLS_INIT_ROOT/log\necho >&3\nexec sleep 1000\n"
	for k, v := range svc("etc/s6-overlay/s6-rc.d/svc-b", "svc-b") {
		files[k] = v
	}
	for k, v := range svc("etc/services.d/legacy", "legacy") {
		files[k] = v
	}
	for k, v := range extra {
		files[k] = v
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		if err := writeExecutable(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// bootOverlay starts init as PID 1 of a new PID namespace with its own
// /proc (unshare --pid --fork --mount-proc) on the tree at root, and
// returns the unshare process and init's pid as the test sees it.
func bootOverlay(t *testing.T, root string, env []string, cmd ...string) (*Proc, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("unshare --pid needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	argv := append([]string{"unshare", "--pid", "--fork", "--mount-proc", "init"}, cmd...)
	p := startIn(t, Opts{Env: append([]string{"GOTOOLS_INIT_ROOT=" + root}, env...), Dir: root}, argv...)
	return p, forkedChild(t, p)
}

// forkedChild returns the pid of the child that unshare --fork (p) runs:
// init; 0 if p exits first.
func forkedChild(t *testing.T, p *Proc) int {
	t.Helper()
	var pid int
	waitFor(t, "init to start under unshare", func() bool {
		for _, st := range procStats() {
			if st.PPid == p.Pid {
				pid = st.Pid
				return true
			}
		}
		return !p.Running()
	})
	return pid
}

// logLines returns the lines of root/log.
func logLines(root string) []string {
	b, _ := os.ReadFile(filepath.Join(root, "log"))
	return lines(string(b))
}

// waitLog waits for line in root/log.
func waitLog(t *testing.T, p *Proc, root, line string) {
	t.Helper()
	waitFor(t, "log line "+line, func() bool {
		if !p.Running() {
			t.Fatalf("init exited (%s) before logging %q; log %q, stderr %q", p.result().Status(), line, logLines(root), p.Stderr())
		}
		return slices.Contains(logLines(root), line)
	})
}

// before reports whether each of the lines appears in log after the one
// before it.
func inOrder(log []string, want ...string) bool {
	at := -1
	for _, w := range want {
		i := slices.Index(log, w)
		if i <= at {
			return false
		}
		at = i
	}
	return true
}

// TestInitOverlayBoot is spec §11 test 10 (and issue 18's example tree):
// cont-init.d, the s6-rc.d services in dependency order, the legacy
// service, then the CMD, which sees the environment cont-init.d made; at
// the end services go down in reverse order with cont-finish.d last, and
// the container exits with the CMD's code.
func TestInitOverlayBoot(t *testing.T) {
	t.Parallel()
	root := overlayTree(t, map[string]string{
		// The legacy service's output goes to its logger, the log applet.
		"etc/services.d/legacy/run":     "#!/bin/sh\necho \"legacy up $BAR\" >> $GOTOOLS_INIT_ROOT/log\necho \"legacy says hi\"\nexec sleep 1000\n",
		"etc/services.d/legacy/log/run": "#!/bin/sh\nexec log n2 $GOTOOLS_INIT_ROOT/var/log/legacy\n",
		"var/log/.keep":                 "",
	})
	// An image's /var/run is a link to /run already (else a warning).
	if err := os.Symlink("../run", filepath.Join(root, "var/run")); err != nil {
		t.Fatal(err)
	}
	p, _ := bootOverlay(t, root, nil, "sh", "-c", `echo "cmd $BAR" >> $GOTOOLS_INIT_ROOT/log; exit 3`)
	r := p.Wait(t)
	log := logLines(root)
	if r.Code != 3 {
		t.Errorf("container exit %s; want 3 (the CMD's); stderr %q", r.Status(), r.Stderr)
	}
	if !inOrder(log, "cont-init", "svc-a up bar", "svc-b up bar", "cmd bar", "svc-b down", "svc-a down", "cont-finish") ||
		!inOrder(log, "legacy up bar", "cmd bar", "legacy down", "svc-a down") {
		t.Errorf("log %q; want cont-init < svc-a < svc-b, legacy < CMD < reverse stops < cont-finish", log)
	}
	if len(log) != 9 {
		t.Errorf("log %q; want each line once", log)
	}
	if b, err := os.ReadFile(filepath.Join(root, "var/log/legacy/current")); err != nil || string(b) != "legacy says hi\n" {
		t.Errorf("the legacy service's logdir holds %q, %v; want its line, through log", b, err)
	}
	for _, l := range lines(r.Stderr) {
		if !strings.HasPrefix(l, "init: info: ") {
			t.Errorf("stderr line %q; want only info lines", l)
		}
	}
}

// TestInitOverlayInProcess checks spec §0's in-process tree: while the
// example tree runs, init's only descendants are the services' own
// processes and the CMD (no svscan, supervise or rc process), and init
// holds each service's supervise/lock. The control case,
// --supervise-processes, shows the detector sees one supervise process
// per service.
func TestInitOverlayInProcess(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		flags      []string
		supervises int
	}{{"in-process", nil, 0}, {"--supervise-processes", []string{"--supervise-processes"}, 3}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := overlayTree(t, nil)
			p, initPid := bootOverlay(t, root, nil, append(tt.flags, "sh", "-c", "echo cmd >> $GOTOOLS_INIT_ROOT/log; exec sleep 1000")...)
			waitLog(t, p, root, "cmd")
			var names []string
			supervises := 0
			for _, pid := range treeOf(initPid) {
				if pid == initPid {
					continue
				}
				argv := procArgv(pid)
				if len(argv) == 0 {
					continue
				}
				name := filepath.Base(argv[0])
				names = append(names, name)
				switch name {
				case "supervise":
					supervises++
				case "svscan", "rc", "init", "gotools":
					t.Errorf("process %d %q in the tree; want services and the CMD only", pid, argv)
				}
			}
			if supervises != tt.supervises {
				t.Errorf("supervise processes in the tree %q: %d; want %d", names, supervises, tt.supervises)
			}
			if tt.supervises == 0 {
				lock := filepath.Join(root, "run/service/legacy/supervise/lock")
				if r := run(t, "fuser", lock); !strings.Contains(r.Stdout, strconv.Itoa(initPid)) {
					t.Errorf("fuser %s = %q; want init (%d) as the holder", lock, r.Stdout, initPid)
				}
			}
			unix.Kill(initPid, unix.SIGTERM)
			if r := p.Wait(t); r.Code != 143 {
				t.Errorf("container exit %s; want 143; stderr %q", r.Status(), r.Stderr)
			}
		})
	}
}

// TestInitOverlaySIGTERM is spec §11 test 12: SIGTERM to PID 1 stops the
// CMD first, then the services in reverse order, cont-finish.d last, well
// within the grace times, and the container exits with the CMD's status.
func TestInitOverlaySIGTERM(t *testing.T) {
	t.Parallel()
	root := overlayTree(t, nil)
	p, initPid := bootOverlay(t, root, nil, "sh", "-c",
		`trap 'echo cmd-term >> $GOTOOLS_INIT_ROOT/log; kill $!; exit 143' TERM; echo cmd >> $GOTOOLS_INIT_ROOT/log; sleep 1000 & wait`)
	waitLog(t, p, root, "cmd")
	begin := time.Now()
	if err := unix.Kill(initPid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := p.Wait(t)
	took := time.Since(begin)
	if r.Code != 143 {
		t.Errorf("container exit %s; want 143; stderr %q", r.Status(), r.Stderr)
	}
	log := logLines(root)
	if !inOrder(log, "cmd", "cmd-term", "legacy down", "svc-a down", "cont-finish") || !inOrder(log, "cmd-term", "svc-b down", "svc-a down") {
		t.Errorf("log %q; want the CMD stopped first, then legacy and svc-b, svc-a, cont-finish", log)
	}
	// Everything exits on SIGTERM: no grace is waited out (3 s each).
	if took > 30*time.Second {
		t.Errorf("shutdown took %v; want well under the grace times (10x slack)", took)
	}
	if !strings.Contains(r.Stderr, "init: info: stopping (SIGTERM)") {
		t.Errorf("stderr %q; want the stopping line", r.Stderr)
	}
}

// TestInitOverlayFinishHalts is spec §11 test 13's middle case: a service's
// finish writes 7 to the results file and runs halt while the CMD runs;
// the container exits 7 although the CMD then dies of SIGTERM.
func TestInitOverlayFinishHalts(t *testing.T) {
	t.Parallel()
	root := overlayTree(t, map[string]string{
		"etc/services.d/stopper/run": "#!/bin/sh\nuntil [ -e $GOTOOLS_INIT_ROOT/cmd-started ]; do sleep 0.02; done\nexit 1\n",
		"etc/services.d/stopper/finish": "#!/bin/sh\necho 7 > $GOTOOLS_INIT_ROOT/run/s6-linux-init-container-results/exitcode\n" +
			"exec $GOTOOLS_INIT_ROOT/run/s6/basedir/bin/halt\n",
	})
	p, _ := bootOverlay(t, root, nil, "sh", "-c", `touch $GOTOOLS_INIT_ROOT/cmd-started; exec sleep 1000`)
	if r := p.Wait(t); r.Code != 7 {
		t.Errorf("container exit %s; want 7 (the finish's); stderr %q", r.Status(), r.Stderr)
	}
	if log := logLines(root); !inOrder(log, "svc-a down", "cont-finish") {
		t.Errorf("log %q; want a full shutdown", log)
	}
}

// TestInitOverlayHaltOnExit is spec §11 test 13's first case: a
// services.d service with halt-on-exit "failure" that exits 0 is
// restarted; when it exits 5 the container stops with exit 5, the CMD
// stopped first. An s6-rc longrun with an empty halt-on-exit (always)
// halts on exit 0 too.
func TestInitOverlayHaltOnExit(t *testing.T) {
	t.Parallel()
	t.Run("services.d, failure", func(t *testing.T) {
		t.Parallel()
		root := overlayTree(t, map[string]string{
			"etc/services.d/flaky/halt-on-exit": "failure\n",
			"etc/services.d/flaky/run": "#!/bin/sh\ncd $GOTOOLS_INIT_ROOT\nif [ ! -e flaky-ran ]; then touch flaky-ran; echo flaky-0 >> log; exit 0; fi\n" +
				"until [ -e cmd-started ]; do sleep 0.02; done\necho flaky-5 >> log\nexit 5\n",
		})
		p, _ := bootOverlay(t, root, nil, "sh", "-c",
			`trap 'echo cmd-term >> $GOTOOLS_INIT_ROOT/log; kill $!; exit 143' TERM; touch $GOTOOLS_INIT_ROOT/cmd-started; sleep 1000 & wait`)
		r := p.Wait(t)
		if r.Code != 5 {
			t.Errorf("container exit %s; want 5 (the service's); stderr %q", r.Status(), r.Stderr)
		}
		if log := logLines(root); !inOrder(log, "flaky-0", "flaky-5", "cmd-term", "svc-a down", "cont-finish") {
			t.Errorf("log %q; want a restart after exit 0, then exit 5 and the CMD stopped first", log)
		}
		if !strings.Contains(r.Stderr, "init: warning: service flaky exited 5: stopping the container (halt-on-exit)\n") {
			t.Errorf("stderr %q; want the halt-on-exit warning", r.Stderr)
		}
	})
	t.Run("s6-rc longrun, always", func(t *testing.T) {
		t.Parallel()
		root := overlayTree(t, map[string]string{
			"etc/s6-overlay/s6-rc.d/once/type":            "longrun\n",
			"etc/s6-overlay/s6-rc.d/once/halt-on-exit":    "",
			"etc/s6-overlay/s6-rc.d/once/run":             "#!/bin/sh\nuntil [ -e $GOTOOLS_INIT_ROOT/cmd-started ]; do sleep 0.02; done\nexit 0\n",
			"etc/s6-overlay/s6-rc.d/user/contents.d/once": "",
		})
		p, _ := bootOverlay(t, root, nil, "sh", "-c", `touch $GOTOOLS_INIT_ROOT/cmd-started; exec sleep 1000`)
		if r := p.Wait(t); r.Code != 0 || !strings.Contains(r.Stderr, "service once exited 0: stopping the container") {
			t.Errorf("container exit %s, stderr %q; want 0 from the halt-on-exit service", r.Status(), r.Stderr)
		}
	})
}

// TestInitOverlayEssential is spec §11 test 13's last case: an essential
// s6-rc longrun exiting 6 whose finish exits 125 (a permanent failure)
// stops the container with exit 6.
func TestInitOverlayEssential(t *testing.T) {
	t.Parallel()
	root := overlayTree(t, map[string]string{
		"etc/s6-overlay/s6-rc.d/crit/type":            "longrun\n",
		"etc/s6-overlay/s6-rc.d/crit/flag-essential":  "",
		"etc/s6-overlay/s6-rc.d/crit/run":             "#!/bin/sh\nuntil [ -e $GOTOOLS_INIT_ROOT/cmd-started ]; do sleep 0.02; done\nexit 6\n",
		"etc/s6-overlay/s6-rc.d/crit/finish":          "#!/bin/sh\nexit 125\n",
		"etc/s6-overlay/s6-rc.d/user/contents.d/crit": "",
	})
	p, _ := bootOverlay(t, root, nil, "sh", "-c", `touch $GOTOOLS_INIT_ROOT/cmd-started; exec sleep 1000`)
	r := p.Wait(t)
	if r.Code != 6 {
		t.Errorf("container exit %s; want 6 (the essential service's); stderr %q", r.Status(), r.Stderr)
	}
	if !strings.Contains(r.Stderr, "init: warning: essential service crit failed permanently (exit 6): stopping the container\n") {
		t.Errorf("stderr %q; want the essential service's warning", r.Stderr)
	}
}

// TestInitOverlayCommands covers the generated halt, poweroff and reboot
// (spec §6 rule 1: 130 and 129), svscanctl -t on the scan directory, and a
// boot without a CMD.
func TestInitOverlayCommands(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cmd  string
		code int
	}{
		{"halt", "run/s6/basedir/bin/halt", 0},
		{"poweroff", "run/s6/basedir/bin/poweroff", 130},
		{"reboot", "run/s6/basedir/bin/reboot", 129},
		{"shutdown -r", "run/s6/basedir/bin/shutdown -r now", 129},
		{"svscanctl -t", "svscanctl -t run/service", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := overlayTree(t, nil)
			p, _ := bootOverlay(t, root, nil)
			waitLog(t, p, root, "legacy up bar")
			waitLog(t, p, root, "svc-b up bar")
			argv := strings.Fields(tt.cmd)
			if !strings.Contains(argv[0], "/") {
				argv[len(argv)-1] = filepath.Join(root, argv[len(argv)-1])
			} else {
				argv[0] = filepath.Join(root, argv[0])
			}
			if r := runIn(t, Opts{Env: []string{"GOTOOLS_INIT_ROOT=" + root}}, argv...); r.Code != 0 {
				t.Fatalf("%q = %s, %q", argv, r.Status(), r.Stderr)
			}
			if r := p.Wait(t); r.Code != tt.code {
				t.Errorf("container exit %s after %s; want %d; stderr %q", r.Status(), tt.name, tt.code, r.Stderr)
			}
			if log := logLines(root); !inOrder(log, "svc-a down", "cont-finish") {
				t.Errorf("log %q; want a full shutdown", log)
			}
		})
	}
}

// TestInitOverlayStages is spec §11 tests 11, 14, 15 in part: a failing
// cont-init.d script is a warning by default and stops the container with
// exit 1 under S6_BEHAVIOUR_IF_STAGE2_FAILS=2, the CMD never started; the
// CMD waits for a services.d service's readiness unless
// S6_CMD_WAIT_FOR_SERVICES=0; S6_KEEP_ENV=0 gives the CMD PATH only.
func TestInitOverlayStages(t *testing.T) {
	t.Parallel()
	failing := map[string]string{"etc/cont-init.d/20-fail": "#!/bin/sh\nexit 4\n"}
	t.Run("failed stage, default", func(t *testing.T) {
		t.Parallel()
		root := overlayTree(t, failing)
		p, _ := bootOverlay(t, root, nil, "sh", "-c", `echo cmd >> $GOTOOLS_INIT_ROOT/log; exit 5`)
		r := p.Wait(t)
		if r.Code != 5 || !strings.Contains(r.Stderr, "init: warning: cont-init failed (code 1)\n") {
			t.Errorf("container = %s, stderr %q; want 5 and one warning", r.Status(), r.Stderr)
		}
	})
	t.Run("failed stage, behaviour 2", func(t *testing.T) {
		t.Parallel()
		root := overlayTree(t, failing)
		p, _ := bootOverlay(t, root, []string{"S6_BEHAVIOUR_IF_STAGE2_FAILS=2"}, "sh", "-c", `echo cmd >> $GOTOOLS_INIT_ROOT/log; exit 5`)
		r := p.Wait(t)
		if r.Code != 1 || slices.Contains(logLines(root), "cmd") {
			t.Errorf("container = %s, log %q, stderr %q; want 1 and no CMD", r.Status(), logLines(root), r.Stderr)
		}
	})
	slow := map[string]string{
		"etc/services.d/slow/notification-fd": "3\n",
		"etc/services.d/slow/run":             "#!/bin/sh\nsleep 1\necho slow-ready >> $GOTOOLS_INIT_ROOT/log\necho >&3\nexec sleep 1000\n",
	}
	for _, tt := range []struct {
		name string
		env  []string
		wait bool
	}{{"readiness waited for", nil, true}, {"S6_CMD_WAIT_FOR_SERVICES=0", []string{"S6_CMD_WAIT_FOR_SERVICES=0"}, false},
		// The services-up stage runs with the tree environment, PATH only.
		{"S6_CMD_WAIT_FOR_SERVICES=0, S6_KEEP_ENV=0", []string{"S6_CMD_WAIT_FOR_SERVICES=0", "S6_KEEP_ENV=0"}, false}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := overlayTree(t, slow)
			p, _ := bootOverlay(t, root, tt.env, "sh", "-c", `echo cmd >> $GOTOOLS_INIT_ROOT/log; until grep -q slow-ready $GOTOOLS_INIT_ROOT/log; do sleep 0.05; done`)
			if r := p.Wait(t); r.Code != 0 {
				t.Fatalf("container = %s, stderr %q", r.Status(), r.Stderr)
			}
			if got := inOrder(logLines(root), "slow-ready", "cmd"); got != tt.wait {
				t.Errorf("log %q: CMD after readiness: %v; want %v", logLines(root), got, tt.wait)
			}
		})
	}
	for _, tt := range []struct {
		name   string
		env    []string
		hidden bool
	}{{"fix-attrs.d", nil, false}, {"fix-attrs.d, S6_FIX_ATTRS_HIDDEN=1", []string{"S6_FIX_ATTRS_HIDDEN=1"}, true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := overlayTree(t, map[string]string{"data/a": "", "data/sub/b": "", "data/.hidden/c": "", "other/d": "",
				"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n"})
			files := map[string]string{
				// Recursive, to a name with a numeric fallback; the other
				// tree only at its top.
				"etc/fix-attrs.d/01-data":  "# a comment\n" + root + "/dat? true nosuchuser,1234:2345 0600 0710\n",
				"etc/fix-attrs.d/02-other": "\n" + root + "/other false root 0644 0701\n",
			}
			if err := os.MkdirAll(filepath.Join(root, "etc/fix-attrs.d"), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p, _ := bootOverlay(t, root, tt.env, "true")
			if r := p.Wait(t); r.Code != 0 || strings.Contains(r.Stderr, "failed") {
				t.Fatalf("container = %s, stderr %q", r.Status(), r.Stderr)
			}
			for _, f := range []struct {
				path     string
				mode     os.FileMode
				uid, gid uint32
				changed  bool
			}{
				{"data", 0o710, 1234, 2345, true}, {"data/a", 0o600, 1234, 2345, true}, {"data/sub", 0o710, 1234, 2345, true},
				{"data/sub/b", 0o600, 1234, 2345, true}, {"data/.hidden/c", 0o600, 1234, 2345, tt.hidden},
				{"other", 0o701, 0, 0, true}, {"other/d", 0o644, 0, 0, true},
			} {
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(root, f.path), &st); err != nil {
					t.Fatal(err)
				}
				got := os.FileMode(st.Mode & 0o7777)
				if f.changed != (got == f.mode && st.Uid == f.uid && st.Gid == f.gid) {
					t.Errorf("%s: mode %o, owner %d:%d; want %o %d:%d: %v", f.path, got, st.Uid, st.Gid, f.mode, f.uid, f.gid, f.changed)
				}
			}
		})
	}
	t.Run("fix-attrs.d malformed, behaviour 2", func(t *testing.T) {
		t.Parallel()
		root := overlayTree(t, map[string]string{"etc/fix-attrs.d/01-bad": "/x true root 0644\n"})
		p, _ := bootOverlay(t, root, []string{"S6_BEHAVIOUR_IF_STAGE2_FAILS=2"}, "sh", "-c", `echo cmd >> $GOTOOLS_INIT_ROOT/log`)
		r := p.Wait(t)
		if r.Code != 1 || slices.Contains(logLines(root), "cont-init") || !strings.Contains(r.Stderr, "01-bad: malformed fix-attrs line 1: 4 words") {
			t.Errorf("container = %s, log %q, stderr %q; want 1, the line's error and no cont-init", r.Status(), logLines(root), r.Stderr)
		}
	})
	t.Run("S6_STAGE2_HOOK", func(t *testing.T) {
		t.Parallel()
		root := overlayTree(t, nil)
		p, _ := bootOverlay(t, root, []string{"S6_STAGE2_HOOK=echo hook >> $GOTOOLS_INIT_ROOT/log"}, "sh", "-c", `echo cmd >> $GOTOOLS_INIT_ROOT/log`)
		if r := p.Wait(t); r.Code != 0 || !inOrder(logLines(root), "hook", "cont-init", "cmd") {
			t.Errorf("container = %s, log %q, stderr %q; want 0 and the hook first", r.Status(), logLines(root), r.Stderr)
		}
	})
	t.Run("S6_STAGE2_HOOK fails, behaviour 2", func(t *testing.T) {
		t.Parallel()
		root := overlayTree(t, nil)
		p, _ := bootOverlay(t, root, []string{"S6_STAGE2_HOOK=exit 4", "S6_BEHAVIOUR_IF_STAGE2_FAILS=2"}, "sh", "-c", `echo cmd >> $GOTOOLS_INIT_ROOT/log`)
		r := p.Wait(t)
		if r.Code != 4 || slices.Contains(logLines(root), "cont-init") || slices.Contains(logLines(root), "cmd") {
			t.Errorf("container = %s, log %q, stderr %q; want 4, no cont-init and no CMD", r.Status(), logLines(root), r.Stderr)
		}
	})
	t.Run("SIGTERM while waiting for readiness", func(t *testing.T) {
		t.Parallel()
		root := overlayTree(t, map[string]string{
			"etc/services.d/never/notification-fd": "3\n",
			"etc/services.d/never/run":             "#!/bin/sh\necho never-up >> $GOTOOLS_INIT_ROOT/log\nexec sleep 1000\n",
		})
		p, initPid := bootOverlay(t, root, nil, "sh", "-c", `echo cmd >> $GOTOOLS_INIT_ROOT/log`)
		waitLog(t, p, root, "never-up")
		begin := time.Now()
		unix.Kill(initPid, unix.SIGTERM)
		r := p.Wait(t)
		if took := time.Since(begin); r.Code != 0 || took > 30*time.Second || slices.Contains(logLines(root), "cmd") {
			t.Errorf("container = %s after %v, log %q, stderr %q; want 0 at once and no CMD", r.Status(), took, logLines(root), r.Stderr)
		}
	})
	t.Run("S6_KEEP_ENV=0", func(t *testing.T) {
		t.Parallel()
		root := overlayTree(t, nil)
		cmdEnv, contEnv := filepath.Join(root, "cmd-env"), filepath.Join(root, "contenv")
		p, _ := bootOverlay(t, root, []string{"S6_KEEP_ENV=0", "FOO=bar"}, "sh", "-c", "env > "+cmdEnv+"; with-contenv env > "+contEnv)
		if r := p.Wait(t); r.Code != 0 {
			t.Fatalf("container = %s, stderr %q", r.Status(), r.Stderr)
		}
		ce, _ := os.ReadFile(cmdEnv)
		cc, _ := os.ReadFile(contEnv)
		if strings.Contains(string(ce), "FOO=") || strings.Contains(string(ce), "BAR=") || !strings.Contains(string(ce), "PATH=") {
			t.Errorf("the CMD's environment %q; want PATH, no FOO or BAR", ce)
		}
		if !strings.Contains(string(cc), "FOO=bar\n") || !strings.Contains(string(cc), "BAR=bar\n") {
			t.Errorf("with-contenv env %q; want FOO=bar and BAR=bar", cc)
		}
	})
}

// TestInitOverlayStubbornService is spec §11 test 12's second half: a
// service that ignores SIGTERM holds the shutdown until --stop-timeout, or
// until a second SIGTERM, then everything is killed.
func TestInitOverlayStubbornService(t *testing.T) {
	t.Parallel()
	stubborn := map[string]string{
		"etc/services.d/stubborn/run": "#!/bin/sh\ntrap '' TERM\necho stubborn-up >> $GOTOOLS_INIT_ROOT/log\nwhile :; do sleep 0.1; done\n",
	}
	for _, tt := range []struct {
		name  string
		flags []string
	}{{"--stop-timeout", []string{"--stop-timeout", "500"}}, {"second SIGTERM", nil}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := overlayTree(t, stubborn)
			// Graces long enough that only the way out under test ends it.
			env := []string{"S6_SERVICES_GRACETIME=60000", "S6_KILL_GRACETIME=60000"}
			p, initPid := bootOverlay(t, root, env, append(tt.flags, "sleep", "1000")...)
			waitLog(t, p, root, "stubborn-up")
			begin := time.Now()
			if err := unix.Kill(initPid, unix.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if tt.flags == nil {
				waitFor(t, "the CMD to be stopped", func() bool { return strings.Contains(p.Stderr(), "stopping (SIGTERM)") })
				unix.Kill(initPid, unix.SIGTERM)
			}
			r := p.Wait(t)
			if took := time.Since(begin); took > 30*time.Second {
				t.Errorf("shutdown took %v; want it cut short (graces are 60 s)", took)
			}
			if !strings.Contains(r.Stderr, ": killing every process\n") {
				t.Errorf("stderr %q; want the kill warning", r.Stderr)
			}
		})
	}
}

// TestInitOverlayCheck is spec §11 test 19: --check validates the layout
// without booting: rc's message for an undefined dependency, one line per
// non-executable script or malformed S6_* variable, exit 1; a good tree
// exits 0. Nothing is started and /run is not touched.
func TestInitOverlayCheck(t *testing.T) {
	t.Parallel()
	good := overlayTree(t, nil)
	if r := runIn(t, Opts{Env: []string{"GOTOOLS_INIT_ROOT=" + good}}, "init", "--check"); r.Code != 0 || r.Stderr != "" {
		t.Errorf("init --check on a good tree = %s, %q; want 0 and nothing", r.Status(), r.Stderr)
	}
	bad := overlayTree(t, map[string]string{
		"etc/s6-overlay/s6-rc.d/svc-b/dependencies.d/nosuch": "",
		"etc/cont-init.d/20-noexec":                          "echo\n",
	})
	r := runIn(t, Opts{Env: []string{"GOTOOLS_INIT_ROOT=" + bad, "S6_VERBOSITY=x"}}, "init", "--check")
	want := []string{
		`init: warning: invalid S6_VERBOSITY: "x"`,
		"init: warning: " + bad + "/etc/cont-init.d/20-noexec: not executable",
		"rc: fatal: nosuch (in ",
	}
	ls := lines(r.Stderr)
	if r.Code != 1 || len(ls) != len(want) {
		t.Fatalf("init --check on a bad tree = %s, stderr %q; want 1 and %d lines", r.Status(), r.Stderr, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(ls[i], w) {
			t.Errorf("line %d %q; want %q...", i+1, ls[i], w)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(bad, "run")); len(ents) != 1 || slices.Contains(logLines(bad), "cont-init") {
		t.Errorf("--check touched the tree: run/ holds %v, log %q", ents, logLines(bad))
	}
}

// TestInitOverlayNotPID1 is spec §11 test 17's second half: not PID 1 (a
// subreaper), the overlay boots, SIGTERM stops it, and none of its
// descendants is left (they are found by the tree root in their
// environment, since services run in sessions of their own).
func TestInitOverlayNotPID1(t *testing.T) {
	t.Parallel()
	root := overlayTree(t, nil)
	p := startIn(t, Opts{Env: []string{"GOTOOLS_INIT_ROOT=" + root}}, "init", "sh", "-c", "echo cmd >> $GOTOOLS_INIT_ROOT/log; exec sleep 1000")
	waitLog(t, p, root, "cmd")
	if len(ownedBy(root)) < 4 {
		t.Fatalf("processes of the tree: %v; want init, the scanner, services and the CMD", ownedBy(root))
	}
	p.Signal(unix.SIGTERM)
	if r := p.Wait(t); r.Code != 143 {
		t.Errorf("init = %s, stderr %q; want 143", r.Status(), r.Stderr)
	}
	if left := ownedBy(root); len(left) != 0 {
		t.Errorf("processes left: %v", left)
	}
	if log := logLines(root); !inOrder(log, "svc-b down", "svc-a down", "cont-finish") {
		t.Errorf("log %q; want a full shutdown", log)
	}
}

// ownedBy returns the live processes whose environment names root as
// GOTOOLS_INIT_ROOT.
func ownedBy(root string) []int {
	var l []int
	for _, st := range procStats() {
		if st.State == 'Z' {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/environ")
		if err == nil && slices.Contains(strings.Split(string(b), "\x00"), "GOTOOLS_INIT_ROOT="+root) {
			l = append(l, st.Pid)
		}
	}
	return l
}

// TestInitOverlayRun is spec §11 test 16 in part: a /run mounted noexec is
// replaced by a tmpfs when init is root, and is fatal (111, with the fix)
// when it is not; a /run every uid may write to without the sticky bit
// boots with one warning; /var/run, an empty directory, becomes a symlink
// to /run.
func TestInitOverlayRun(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("mounts need root")
	}
	noexec := func(root string, argv ...string) []string {
		return append([]string{"unshare", "--pid", "--fork", "--mount-proc", "sh", "-c",
			`mount -t tmpfs -o noexec tmpfs "$GOTOOLS_INIT_ROOT/run" && exec "$@"`, "sh"}, argv...)
	}
	t.Run("noexec, root", func(t *testing.T) {
		t.Parallel()
		root := overlayTree(t, nil)
		r := runIn(t, Opts{Env: []string{"GOTOOLS_INIT_ROOT=" + root}}, noexec(root, "init", "sh", "-c", "echo cmd >> $GOTOOLS_INIT_ROOT/log")...)
		if r.Code != 0 || !slices.Contains(logLines(root), "cmd") || !strings.Contains(r.Stderr, "/run was mounted noexec: mounted a tmpfs on it\n") {
			t.Errorf("init = %s, log %q, stderr %q; want a tmpfs /run and a boot", r.Status(), logLines(root), r.Stderr)
		}
	})
	t.Run("noexec, not root", func(t *testing.T) {
		t.Parallel()
		root := overlayTree(t, nil)
		reachable(t, root)
		r := runIn(t, Opts{Env: []string{"GOTOOLS_INIT_ROOT=" + root}},
			noexec(root, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "init", "--overlay", "true")...)
		want := "init: fatal: unable to use " + root + "/run: mounted noexec (give the container a /run tmpfs with exec, or an emptyDir)\n"
		if r.Code != 111 || r.Stderr != want {
			t.Errorf("init = %s, stderr %q; want 111 and %q", r.Status(), r.Stderr, want)
		}
	})
	t.Run("run/s6 of another uid", func(t *testing.T) {
		t.Parallel()
		// A sticky /run every uid may write to, where root left a
		// run/s6 with a file: uid 65534 cannot remove it.
		root := overlayTree(t, map[string]string{"run/s6/planted": ""})
		reachable(t, root)
		if err := unix.Chmod(filepath.Join(root, "run"), 0o1777); err != nil {
			t.Fatal(err)
		}
		r := runIn(t, Opts{Env: []string{"GOTOOLS_INIT_ROOT=" + root}},
			"unshare", "--pid", "--fork", "--mount-proc", "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "init", "--overlay", "true")
		want := "init: fatal: unable to use " + root + "/run/s6: owned by uid 0\n"
		if r.Code != 111 || r.Stderr != want {
			t.Errorf("init = %s, stderr %q; want 111 and %q", r.Status(), r.Stderr, want)
		}
		// Root removes it and boots.
		p, _ := bootOverlay(t, root, nil, "true")
		if r := p.Wait(t); r.Code != 0 {
			t.Errorf("init as root = %s, stderr %q; want a boot", r.Status(), r.Stderr)
		}
	})
	t.Run("world-writable, /var/run", func(t *testing.T) {
		t.Parallel()
		root := overlayTree(t, map[string]string{"var/run/.keep": ""})
		if err := os.Remove(filepath.Join(root, "var/run/.keep")); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(root, "run"), 0o777); err != nil {
			t.Fatal(err)
		}
		p, _ := bootOverlay(t, root, nil, "true")
		r := p.Wait(t)
		if r.Code != 0 || !strings.Contains(r.Stderr, "init: warning: "+root+"/run is writable by every user and not sticky: another user could rename init's directories\n") {
			t.Errorf("init = %s, stderr %q; want a boot with the warning", r.Status(), r.Stderr)
		}
		if l, err := os.Readlink(filepath.Join(root, "var/run")); err != nil || l != filepath.Join(root, "run") {
			t.Errorf("var/run links to %q, %v; want %s/run", l, err, root)
		}
	})
}

// TestInitOverlayLogging is spec §4's S6_LOGGING and S6_CATCHALL_USER: with 1, what the
// supervision tree writes (a service without a logger, init's own lines)
// goes to the catch-all logger in run/uncaught-logs, the CMD's output to
// init's stdout; with 2, the CMD's output goes to the logger too. No line
// is lost at the end: the logger drains its FIFO to EOF.
func TestInitOverlayLogging(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		logging string
		cmdLogs bool
	}{{"1", false}, {"2", true}} {
		t.Run("S6_LOGGING="+tt.logging, func(t *testing.T) {
			t.Parallel()
			root := overlayTree(t, map[string]string{
				"etc/services.d/chatty/run": "#!/bin/sh\necho chatty says hi\necho chatty-up >> $GOTOOLS_INIT_ROOT/log\nexec sleep 1000\n",
			})
			// The logger drops to S6_CATCHALL_USER (a bare uid: no passwd),
			// which must reach run/uncaught-logs.
			reachable(t, root)
			env := []string{"S6_LOGGING=" + tt.logging, "S6_CATCHALL_USER=65534"}
			p, _ := bootOverlay(t, root, env, "sh", "-c", `echo cmd says hi; echo cmd >> $GOTOOLS_INIT_ROOT/log`)
			r := p.Wait(t)
			if r.Code != 0 {
				t.Fatalf("container = %s, stderr %q", r.Status(), r.Stderr)
			}
			b, err := os.ReadFile(filepath.Join(root, "run/uncaught-logs/current"))
			logs := string(b)
			if err != nil || !strings.Contains(logs, " chatty says hi\n") || !strings.Contains(logs, " init: info: service legacy-services: successfully started\n") {
				t.Errorf("uncaught-logs/current = %q, %v; want the service's line and init's", logs, err)
			}
			if strings.Contains(logs, "cmd says hi") != tt.cmdLogs || strings.Contains(r.Stdout, "cmd says hi") == tt.cmdLogs {
				t.Errorf("the CMD's line in the logs: %v, on stdout %q; want it in the logs: %v", strings.Contains(logs, "cmd says hi"), r.Stdout, tt.cmdLogs)
			}
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(root, "run/uncaught-logs/current"), &st); err != nil || st.Uid != 65534 || st.Gid != 65534 {
				t.Errorf("uncaught-logs/current owned by %d:%d, %v; want the catch-all user 65534:65534", st.Uid, st.Gid, err)
			}
			if strings.Contains(r.Stdout, "chatty says hi") {
				t.Errorf("stdout %q: the service's line reached the terminal", r.Stdout)
			}
		})
	}
}

// reachable opens root and the test's directories above it to every uid
// (t.TempDir makes them 0700), for an init run as another uid.
func reachable(t *testing.T, root string) {
	t.Helper()
	for d := root; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
