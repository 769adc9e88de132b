package containerinit

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/envdir"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/overlay"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/supervisor"
	"github.com/gotools-dev/gotools/lib/sys"
)

// The ends a container can come to (spec/init.md §6 rule 1).
const (
	endNone = iota
	endHalt
	endPoweroff
	endReboot
)

// boot is overlay mode's state (spec/init.md §3-§6). Everything in it
// belongs to the main goroutine; the host's Loop hands it events.
type boot struct {
	*loop
	h       *host
	v       *s6vars
	self    string   // the gotools binary, for script-mode files and stages
	treeEnv []string // the environment of services and the CMD
	treeUp  bool     // the in-process tree runs
	// term is init's own stdout and stderr while the catch-all logger
	// has them (S6_LOGGING).
	term   [2]*os.File
	rcLive bool // rc's live directory was made
	// rcCancel, while rc changes services, stops the change (a first stop
	// signal: no new transition starts).
	rcCancel func()
	end      int  // endNone until a halt, poweroff or reboot was asked
	explicit bool // an explicit halt happened (§6 rule 2)
	stopSig  unix.Signal
	cmdPid   int
	cmdWS    unix.WaitStatus
	cmdRan   bool
	cmdDone  bool
	// stopping is set once shutdown has begun: a second SIGTERM, SIGINT
	// or SIGQUIT then kills what is left at once.
	stopping bool
}

// runOverlay boots the s6-overlay layout, runs the CMD (if any) and shuts
// everything down (spec/init.md §5).
func runOverlay(o *options, cmd []string, verboseGiven bool) error {
	fixPath()
	l, err := begin(o)
	if err != nil {
		return err
	}
	b := &boot{loop: l, v: readVars(o, verboseGiven)}
	b.self, _ = os.Executable()
	// The Go collector off, as in svscan: the Loop collects before it
	// sleeps, so that an idle container never wakes up.
	supervisor.QuietRuntime(16 << 20)
	b.h, err = startHost(&cli.Env{Name: o.env.Name, Stdout: o.env.Stdout, Stderr: o.env.Stderr},
		hostHooks{signal: b.handleSignal, orphan: b.orphan, treeQuit: b.treeQuit, treeEnded: b.treeEnded})
	if err != nil {
		return err
	}
	if b.v.closingFD >= 3 {
		waitClosingFD(b.v.closingFD)
	}
	if err := b.prepareRun(); err != nil {
		// Nothing of the image's ran: nothing to shut down.
		_ = b.h.close()
		return err
	}
	stage := func(name string, c int) {
		if c == 0 {
			return
		}
		switch b.v.behaviour {
		case 0:
		case 1:
			o.warn("%s failed (code %d)", name, c)
		default:
			o.warn("%s failed (code %d): stopping the container", name, c)
			b.writeResult(c)
			b.explicit, b.end, b.stopSig = true, endHalt, unix.SIGTERM
		}
	}
	if b.stopSig == 0 && b.v.stage2Hook != "" {
		stage("S6_STAGE2_HOOK", b.stage2Hook())
	}
	if b.stopSig == 0 {
		stage("fix-attrs", b.fixAttrs())
	}
	if b.stopSig == 0 {
		stage("cont-init", b.runScripts(b.etcPath("cont-init.d"), 0))
	}
	b.treeEnv = b.readTreeEnv()
	// The in-process supervisors start run and finish with init's own
	// environment: make it the tree's.
	setEnviron(b.treeEnv)
	if b.stopSig == 0 && b.v.logging > 0 {
		if err := b.startCatchall(); err != nil {
			return b.shutdown(err)
		}
	}
	if b.stopSig == 0 {
		if err := b.startTree(); err != nil {
			return b.shutdown(err)
		}
		if err := b.rcInit(); err != nil {
			o.env.Fatal(err)
			return b.shutdown(exitcode.Exit(1))
		}
		stage("services", b.rcUp())
		b.watchEssential()
		b.watchHaltOnExit()
	}
	if b.stopSig == 0 && b.end == endNone && len(cmd) > 0 {
		if err := b.startCMD(cmd); err != nil {
			o.env.Fatal(err)
			b.writeResult(exitcode.Of(err))
		}
	}
	b.run()
	return b.shutdown(nil)
}

// setEnviron makes env the process's environment.
func setEnviron(env []string) {
	os.Clearenv()
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			os.Setenv(k, v)
		}
	}
}

// fixPath prepends /bin, /usr/bin and /command to PATH when missing
// (s6-overlay's rule; spec §2.1).
func fixPath() {
	path, ok := os.LookupEnv("PATH")
	if !ok {
		path = "/bin"
	}
	parts := filepath.SplitList(path)
	for _, d := range []string{"/command", "/usr/bin", "/bin"} {
		if !slices.Contains(parts, d) {
			parts = append([]string{d}, parts...)
		}
	}
	os.Setenv("PATH", strings.Join(parts, ":"))
}

// waitClosingFD reads fd until EOF, then closes it (S6_WAIT_FOR_CLOSING_FD).
func waitClosingFD(fd int) {
	buf := make([]byte, 512)
	for {
		n, err := sys.Read(fd, buf)
		if n <= 0 || err != nil {
			break
		}
	}
	_ = unix.Close(fd)
}

func (b *boot) etcPath(name string) string { return overlay.Path(b.v.etc + "/" + name) }

// prepareRun makes /run ready (spec §5.1 step 2): the stale directories of
// a previous boot go, the layout's are made anew, with the results file,
// the control commands and container_environment.
func (b *boot) prepareRun() error {
	if err := b.checkRun(); err != nil {
		return err
	}
	b.fixVarRun()
	stale, _ := filepath.Glob(overlay.Path("/run/s6-rc*"))
	stale = append(stale, overlay.Path(overlay.S6Dir), overlay.Path(overlay.ScanDir),
		overlay.Path(overlay.UncaughtLogs), overlay.Path(overlay.ResultsDir))
	uid := os.Getuid()
	for _, p := range stale {
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			continue
		}
		// Another uid's directory could hold files planted for init:
		// it goes too, or init does not boot (spec §8).
		if err := os.RemoveAll(p); err != nil {
			if int(st.Uid) != uid {
				return exitcode.Errorf(exitcode.Sys, "unable to use %s: owned by uid %d", p, st.Uid)
			}
			return exitcode.Errorf(exitcode.Sys, "unable to remove %s: %w", p, sys.Errno(err))
		}
	}
	for _, d := range []string{overlay.S6Dir, overlay.ContainerEnv, overlay.LegacyServices, overlay.BaseDirBin,
		overlay.ScanDir, overlay.ResultsDir} {
		if err := os.MkdirAll(overlay.Path(d), 0o755); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", overlay.Path(d), sys.Errno(err))
		}
	}
	if err := os.WriteFile(overlay.Path(overlay.ExitCodeFile), []byte("0\n"), 0o644); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to write %s: %w", overlay.Path(overlay.ExitCodeFile), sys.Errno(err))
	}
	for _, kv := range os.Environ() {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" || name[0] == '.' || strings.Contains(name, "/") {
			continue
		}
		if err := os.WriteFile(filepath.Join(overlay.Path(overlay.ContainerEnv), name), []byte(val), 0o644); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to write the container environment: %w", sys.Errno(err))
		}
	}
	// The stages rc runs get the tree environment, without the S6_*
	// variables when S6_KEEP_ENV=0: they read init's from here.
	var vars []byte
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "S6_") && !strings.Contains(kv, "\n") {
			vars = append(append(vars, kv...), '\n')
		}
	}
	if err := os.WriteFile(overlay.Path(stageVars), vars, 0o644); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to write %s: %w", overlay.Path(stageVars), sys.Errno(err))
	}
	for _, n := range controlCommands {
		p := filepath.Join(overlay.Path(overlay.BaseDirBin), n)
		if err := os.WriteFile(p, []byte("#!"+b.self+" init\n"), 0o755); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to write %s: %w", p, sys.Errno(err))
		}
	}
	return b.openControl()
}

// controlCommands are the generated commands of /run/s6/basedir/bin.
var controlCommands = [...]string{"halt", "poweroff", "reboot", "shutdown"}

// controlFIFO is where the control commands write their byte: the
// scanner's own .s6-svscan/control takes only svscanctl's commands.
const controlFIFO = "/run/s6/basedir/control"

// openControl makes the control FIFO and relays its bytes to the main
// goroutine. It is opened read-write so that it never reads EOF when a
// writer goes.
func (b *boot) openControl() error {
	p := overlay.Path(controlFIFO)
	if err := unix.Mkfifo(p, 0o600); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to mkfifo %s: %w", p, sys.Errno(err))
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to open %s: %w", p, sys.Errno(err))
	}
	go func() {
		buf := make([]byte, 16)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			for _, c := range buf[:n] {
				b.h.post(func() { b.control(c) })
			}
		}
	}()
	return nil
}

// stage2Hook runs S6_STAGE2_HOOK (spec §5.1 step 3): with /bin/sh -c when
// the image has a /bin/sh (the hook is a shell excerpt in s6-overlay's
// README), else split on blanks and executed. It returns its exit code.
func (b *boot) stage2Hook() int {
	argv := []string{"/bin/sh", "-c", b.v.stage2Hook}
	if st, err := os.Stat("/bin/sh"); err != nil || st.IsDir() {
		argv = strings.Fields(b.v.stage2Hook)
	}
	b.o.info("running S6_STAGE2_HOOK")
	return b.runWait("", argv, os.Environ(), 0)
}

// runScripts runs every entry of dir not starting with a dot, in byte
// order, each to its end (spec §5.1 step 5), each at most max (0: no
// limit; then SIGKILL). It returns 1 if any failed.
func (b *boot) runScripts(dir string, max time.Duration) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	failed := 0
	for _, e := range ents {
		if e.Name()[0] == '.' {
			continue
		}
		p := filepath.Join(dir, e.Name())
		b.o.info("running %s", p)
		c := b.runWait("", []string{p}, os.Environ(), max)
		b.o.info("%s exited %d", p, c)
		if c != 0 {
			failed = 1
		}
	}
	return failed
}

// runWait spawns argv (the file at path when set) in its own session with
// stdin /dev/null, cwd /, and waits for it (at most max, then SIGKILL),
// handling events meanwhile: a stop signal is recorded for after. It
// returns the exit code, 128+n, or 126/127 when argv could not be run.
func (b *boot) runWait(path string, argv, env []string, max time.Duration) int {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return exitcode.Sys
	}
	defer null.Close()
	done, code := false, 0
	pid, err := b.h.spawn(argv, proc.Attr{Path: path, Files: []*os.File{null, os.Stdout, os.Stderr}, Env: env, Dir: "/", Setsid: true},
		func(ws unix.WaitStatus) { done, code = true, statusCode(ws) })
	if err != nil {
		b.o.warn("unable to spawn %s: %s", argv[0], sys.Errno(err))
		return proc.SpawnCode(err)
	}
	var expire <-chan time.Time
	if max > 0 {
		t := time.NewTimer(max)
		defer t.Stop()
		expire = t.C
	}
	if !b.waitUntil(func() bool { return done }, expire) {
		b.o.warn("%s ran longer than %d ms: killing it", argv[0], max.Milliseconds())
		_ = unix.Kill(-pid, unix.SIGKILL)
		_ = unix.Kill(pid, unix.SIGKILL)
		b.waitUntil(func() bool { return done }, nil)
	}
	return code
}

// waitUntil handles the host's events until cond holds (true) or expire
// fires (false; nil: never).
func (b *boot) waitUntil(cond func() bool, expire <-chan time.Time) bool {
	for !cond() {
		select {
		case <-b.h.wake:
			b.h.drain()
		case <-expire:
			return false
		case <-b.h.done:
			b.loopFailed()
			return false
		}
	}
	return true
}

// loopFailed reports the end of the host's Loop (poll(2) failed): nothing
// is reaped or supervised any more, so the container stops; the shutdown
// reaps by itself.
func (b *boot) loopFailed() {
	b.h.drain()
	if b.stopSig == 0 {
		b.o.env.Fatal(exitcode.Errorf(exitcode.Sys, "the supervision loop ended: %w", b.h.err))
		b.ask(unix.SIGTERM, endHalt)
	}
}

// await runs f in a goroutine of its own (rc's engine, which blocks) and
// handles the host's events until it returns.
func (b *boot) await(f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	for {
		select {
		case err := <-done:
			return err
		case <-b.h.wake:
			b.h.drain()
		case <-b.h.done:
			b.loopFailed()
			return exitcode.Errorf(exitcode.Sys, "the supervision loop ended: %w", b.h.err)
		}
	}
}

// cmdRunning reports whether the CMD was started and not yet reaped.
func (b *boot) cmdRunning() bool { return b.cmdPid != 0 && !b.cmdDone }

// handleSignal is the host's signal hook: with S6_CMD_RECEIVE_SIGNALS,
// the stop signals go to a running CMD; otherwise spec §5.2.
func (b *boot) handleSignal(s unix.Signal) {
	if b.v.receiveSignals && b.cmdRunning() {
		switch s {
		case unix.SIGTERM, unix.SIGQUIT, unix.SIGINT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPWR, unix.SIGWINCH, unix.SIGHUP:
			b.send(b.cmdPid, s)
			return
		}
	}
	b.signal(s)
}

// signal handles a signal outside the CMD's forwarding (spec §5.2).
func (b *boot) signal(s unix.Signal) {
	switch s {
	case unix.SIGTERM, unix.SIGINT, unix.SIGQUIT, unix.SIGUSR2:
		if b.stopping && s != unix.SIGUSR2 {
			b.killNow("a second " + sig.Name(s))
			return
		}
		b.ask(s, endHalt)
	case unix.SIGUSR1, unix.SIGPWR:
		b.ask(s, endPoweroff)
	case unix.SIGHUP, unix.SIGWINCH:
		if b.cmdRunning() {
			b.send(b.cmdPid, s)
		}
	}
}

// orphan is the host's hook for a reaped child nobody waited for.
func (b *boot) orphan(pid int, ws unix.WaitStatus) {
	if b.o.warnOrph {
		b.o.warn("reaped orphan %d (exit %d)", pid, statusCode(ws))
	}
}

// treeQuit is the host's hook for svscanctl -t (or -i, -q) on
// /run/service: a halt (spec §3).
func (b *boot) treeQuit() {
	if !b.stopping && b.stopSig == 0 {
		b.explicit = true
		b.ask(unix.SIGTERM, endHalt)
	}
}

// treeEnded is the host's hook for the end of the tree: a stage waiting
// for its services waits no more.
func (b *boot) treeEnded(err error) {
	b.treeUp = false
	b.h.killStages()
	if err != nil {
		b.o.warn("the supervision tree failed: %s", cli.Message(err))
	}
	b.treeQuit()
}

// ask records a request to stop the container; an rc change in flight
// starts no new transition.
func (b *boot) ask(s unix.Signal, end int) {
	if b.stopSig == 0 {
		b.o.info("stopping (%s)", sig.Name(s))
		b.stopSig = s
		b.stopping = true
	}
	if b.rcCancel != nil {
		// The change starts nothing new; init's own stages in flight
		// (services-up waits for services) end now.
		b.rcCancel()
		b.h.killStages()
	}
	if b.end == endNone {
		b.end = end
	}
}

// control acts on a control byte (spec §3): 0 halt, 7 poweroff, 6 reboot.
func (b *boot) control(c byte) {
	end := endHalt
	switch c {
	case '7':
		end = endPoweroff
	case '6':
		end = endReboot
	case '0':
	default:
		b.o.warn("unknown control command: %c", c)
		return
	}
	b.explicit = true
	b.ask(unix.SIGTERM, end)
}

// readTreeEnv is the services' and the CMD's environment (spec §5.1 step
// 6): PATH plus container_environment read back as envdir -Lf, or PATH
// alone with S6_KEEP_ENV=0.
func (b *boot) readTreeEnv() []string {
	base := []string{"PATH=" + os.Getenv("PATH")}
	if r, ok := os.LookupEnv(overlay.RootEnv); ok {
		base = append(base, overlay.RootEnv+"="+r) // the test hook reaches the stages
	}
	if !b.v.keepEnv {
		return base
	}
	mods, err := envdir.Read(overlay.Path(overlay.ContainerEnv), envdir.Options{Verbatim: true, NoClamp: true})
	if err != nil {
		b.o.warn("unable to read %s: %s", overlay.Path(overlay.ContainerEnv), sys.Errno(err))
		return os.Environ()
	}
	return envdir.Merge(base, mods)
}

// startTree starts the in-process scanner on /run/service (spec §5.1
// step 6), or with --supervise-processes one supervise process per
// service.
func (b *boot) startTree() error {
	c := supervisor.TreeConfig{Env: &cli.Env{Name: b.o.env.Name, Stdout: b.o.env.Stdout, Stderr: b.o.env.Stderr},
		Dir: overlay.Path(overlay.ScanDir)}
	if b.o.superviseProcs {
		c.Spawn, c.Supervisor, c.SupervisorPath = true, []string{"supervise"}, b.self
	}
	if err := b.h.openTree(c); err != nil {
		return err
	}
	b.treeUp = true
	return nil
}
