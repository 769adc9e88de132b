package containerinit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/overlay"
	"github.com/gotools-dev/gotools/lib/rc"
	"github.com/gotools-dev/gotools/lib/sys"
)

// liveDir is rc's live directory under init (spec §3).
const liveDir = "/run/s6-rc"

// userDir is the user's rc source as init gives it to rc.
const userDir = "/run/s6/rc-user"

// builtinDir holds the built-in rc sources of spec §3, written at boot.
const builtinDir = "/run/s6/rc-builtin"

// rcOptions are the rc engine's options under init: in-process, rc's
// words with init's name and verbosity, init's reaper for the oneshots.
func (b *boot) rcOptions() rc.Options {
	return rc.Options{Live: overlay.Path(liveDir), Verbose: b.o.verbosity, Environ: b.treeEnv, HostSignals: true,
		Spawn: b.h.rcSpawn, Stdout: b.o.env.Stdout,
		Warn: func(m string) { b.o.warn("%s", m) }, Info: func(m string) { b.o.info("%s", m) }}
}

// rcInit writes the built-in sources and runs rc's init on /run/service
// with the user's sources and them (spec §5.1 step 7), in-process.
func (b *boot) rcInit() error {
	sources, err := b.writeSources(overlay.Path(userDir), overlay.Path(builtinDir))
	if err != nil {
		return err
	}
	o := b.rcOptions()
	scan := overlay.Path(overlay.ScanDir)
	err = b.await(func() error { return rc.Init(scan, sources, o) })
	if err == nil {
		b.rcLive = true
	}
	return err
}

// rcChange is rc change on the live directory: names (all with o.All) up
// or down, until done or ctx ends.
func rcChange(ctx context.Context, names []string, o rc.Options) error {
	l, err := rc.Open(o.Live, true, false)
	if err != nil {
		return err
	}
	defer l.Close()
	return l.Change(ctx, names, o)
}

// writeSources writes the rc sources init gives rc: at us the user's
// source without its user and user2 bundles (built in memory, see
// writeBuiltins), as a directory of links to its entries, and at bi the
// built-ins. It returns the source directories.
func (b *boot) writeSources(us, bi string) ([]string, error) {
	user := b.etcPath("s6-overlay/s6-rc.d")
	if err := os.MkdirAll(us, 0o755); err != nil {
		return nil, exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", us, sys.Errno(err))
	}
	ents, _ := os.ReadDir(user)
	var sources []string
	for _, e := range ents {
		if n := e.Name(); n != "user" && n != "user2" && n[0] != '.' {
			sources = []string{us}
			if err := os.Symlink(filepath.Join(user, n), filepath.Join(us, n)); err != nil {
				return nil, exitcode.Errorf(exitcode.Sys, "unable to link %s: %w", n, sys.Errno(err))
			}
		}
	}
	if err := b.writeBuiltins(bi, user); err != nil {
		return nil, err
	}
	return append(sources, bi), nil
}

// rcUp brings "top" up (spec §5.1 step 8); it returns the failed stage's
// code: 1 for a failure, 2 for S6_CMD_WAIT_FOR_SERVICES_MAXTIME expiring.
// A stop signal meanwhile starts no new transition.
func (b *boot) rcUp() int {
	o := b.rcOptions()
	o.Up = true
	o.Timeout = uint32(b.v.waitMax.Milliseconds())
	ctx, cancel := context.WithCancel(context.Background())
	b.rcCancel = cancel
	err := b.await(func() error { return rcChange(ctx, []string{"top"}, o) })
	b.rcCancel = nil
	cancel()
	switch c := exitcode.Of(err); c {
	case 0:
		return 0
	case rc.CodeTimedOut:
		return 2
	case rc.CodeFailed:
		return 1
	default:
		b.o.warn("%s", cli.Message(err))
		return 1
	}
}

// writeBuiltins writes the in-memory source of spec §3 as a source
// directory: fix-attrs and legacy-cont-init (run by init itself, before
// the tree and after it: their up and down are empty), base, legacy-services, top, and the user and user2
// bundles unless the user's source defines them (the deprecated location).
func (b *boot) writeBuiltins(dir, user string) error {
	self := b.self
	svc := map[string]map[string]string{
		"fix-attrs":        {"type": "oneshot\n", "up": ""},
		"legacy-cont-init": {"type": "oneshot\n", "up": "", "dependencies": "fix-attrs\n"},
		"base":             {"type": "bundle\n", "contents": "fix-attrs\nlegacy-cont-init\n"},
		"legacy-services":  {"type": "oneshot\n", "up": self + " init --stage=services-up\n", "down": self + " init --stage=services-down\n", "dependencies": "base\nuser\n"},
		"top":              {"type": "bundle\n", "contents": "base\nlegacy-services\nuser\nuser2\n"},
	}
	for _, bundle := range []string{"user", "user2"} {
		// s6-overlay's documented place is s6-rc.d/user/contents.d, its
		// type file shipped by s6-overlay itself: here the bundle is
		// built in memory from either place.
		var contents bytes.Buffer
		for _, d := range []string{filepath.Join(user, bundle), filepath.Join(overlay.Path(b.v.bundleDir), bundle)} {
			ents, _ := os.ReadDir(filepath.Join(d, "contents.d"))
			for _, e := range ents {
				if e.Name()[0] != '.' {
					contents.WriteString(e.Name() + "\n")
				}
			}
		}
		svc[bundle] = map[string]string{"type": "bundle\n", "contents": contents.String()}
	}
	for name, files := range svc {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", d, sys.Errno(err))
		}
		for f, content := range files {
			if err := os.WriteFile(filepath.Join(d, f), []byte(content), 0o644); err != nil {
				return exitcode.Errorf(exitcode.Sys, "unable to write %s: %w", d, sys.Errno(err))
			}
		}
	}
	return nil
}

// startCMD spawns the CMD (spec §5.1 step 9): S6_CMD_ARG0 words first,
// in the image's WORKDIR, with the tree environment, in its own process
// group.
func (b *boot) startCMD(cmd []string) error {
	argv := append(append([]string(nil), b.v.cmdArg0...), cmd...)
	attr := b.cmdAttr(b.treeEnv)
	attr.Files = b.cmdFiles()
	tty := !b.o.setsid && ownsTerminal()
	pid, err := b.h.spawn(argv, attr, func(ws unix.WaitStatus) {
		if tty {
			takeTerminal()
		}
		b.cmdWS, b.cmdDone = ws, true
		if !b.explicit {
			b.writeResult(statusCode(ws))
		}
		if b.stopSig == 0 {
			b.o.info("CMD exited %d: stopping", statusCode(ws))
			b.stopSig = unix.SIGTERM
		}
	})
	if err != nil {
		return cmdError(argv, err)
	}
	if tty {
		giveTerminal(pid)
	}
	b.cmdPid, b.cmdRan = pid, true
	return nil
}

// run handles events until a stop is asked.
func (b *boot) run() { b.waitUntil(func() bool { return b.stopSig != 0 }, nil) }

// essentialFailed halts the container with the last status of the
// essential service at dir, which failed permanently (spec §5.2).
func (b *boot) essentialFailed(dir string) {
	code := lastDeath(dir)
	b.o.warn("essential service %s failed permanently (exit %d): stopping the container", filepath.Base(dir), code)
	b.writeResult(code)
	b.explicit = true
	b.ask(unix.SIGTERM, endHalt)
}

// writeResult writes code to the results file.
func (b *boot) writeResult(code int) {
	p := overlay.Path(overlay.ExitCodeFile)
	tmp := p + ".new"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(code)+"\n"), 0o644); err == nil {
		err = os.Rename(tmp, p)
		if err != nil {
			b.o.warn("unable to write %s: %s", p, sys.Errno(err))
		}
	}
}

// shutdown is spec §5.3: the CMD first, then rc -da change (services in
// reverse order), the tree, cont-finish.d, then what is left; then the
// exit code of §6. cause, when set, is an error that ends the boot.
func (b *boot) shutdown(cause error) error {
	if cause != nil && exitcode.Of(cause) != 1 {
		b.o.env.Fatal(cause)
	}
	b.stopping = true
	if b.o.stopTime > 0 {
		// --stop-timeout: the final SIGKILL of §5.3 step 3, whatever is
		// still waited for; every wait then ends as its processes die.
		t := time.AfterFunc(time.Duration(b.o.stopTime)*time.Millisecond, func() {
			b.h.post(func() { b.killNow(fmt.Sprintf("--stop-timeout %d ms", b.o.stopTime)) })
		})
		defer t.Stop()
	}
	if b.cmdRunning() {
		s := b.stopSig
		if s != unix.SIGINT && s != unix.SIGQUIT {
			s = unix.SIGTERM
		}
		b.send(b.cmdPid, s)
		b.waitFor(func() bool { return b.cmdDone }, b.v.servicesGrace)
	}
	if b.rcLive && b.treeUp {
		o := b.rcOptions()
		o.Up, o.All = false, true
		ctx, cancel := context.WithCancel(context.Background())
		b.rcCancel = cancel
		_ = b.await(func() error { return rcChange(ctx, nil, o) })
		b.rcCancel = nil
		cancel()
	}
	// The tree stops what is left of it, loggers last: each drains its
	// pipe to EOF first (svscanctl -t), so no log line is lost. The
	// catch-all logger's EOF comes once init writes to its terminal again.
	b.restoreTerminal()
	if b.treeUp {
		b.h.command('t')
		b.waitFor(func() bool { return !b.treeUp }, b.v.killGrace)
	}
	// cont-finish.d last, after every service, whether or not the user's
	// services depend on base (s6-overlay runs it as legacy-cont-init's
	// down, before the services that do not).
	b.runScripts(b.etcPath("cont-finish.d"), b.v.killFinishMax)
	b.restoreTerminal()
	b.endRest(b.v.killGrace)
	if err := b.h.close(); err != nil {
		b.o.env.Fatal(err)
	}
	if err := b.killAll(children()); err != nil {
		b.o.env.Fatal(err)
	}
	if b.v.syncDisks {
		unix.Sync()
	}
	if cause != nil {
		return exitcode.Exit(exitcode.Of(cause))
	}
	return exitcode.Exit(b.o.code(b.exitCode()))
}

// endRest is §5.3 step 3 up to the SIGKILL: SIGTERM and SIGCONT to every
// process left, then a wait until none is left or grace has passed.
func (b *boot) endRest(grace time.Duration) {
	if grace <= 0 || !children() {
		return
	}
	b.signalRest(unix.SIGTERM)
	b.signalRest(unix.SIGCONT)
	// A service's processes are reaped by its supervisor, not posted:
	// every turn of the Loop wakes this wait.
	b.h.watch.Store(true)
	defer b.h.watch.Store(false)
	t := time.NewTimer(grace)
	defer t.Stop()
	if !b.waitUntil(func() bool { return !children() }, t.C) {
		b.o.warn("processes left after %d ms, sending SIGKILL", grace.Milliseconds())
	}
}

// killNow sends SIGKILL to every process left (spec §5.3: a second stop
// signal, or --stop-timeout expiring).
func (b *boot) killNow(why string) {
	b.o.warn("%s: killing every process", why)
	b.signalRest(unix.SIGKILL)
	if b.rcCancel != nil {
		b.rcCancel()
	}
}

// waitFor handles events until cond holds or max has passed.
func (b *boot) waitFor(cond func() bool, max time.Duration) {
	t := time.NewTimer(max)
	defer t.Stop()
	b.waitUntil(cond, t.C)
}

// exitCode is spec §6's precedence.
func (b *boot) exitCode() int {
	switch {
	case b.end == endPoweroff && b.explicit:
		return 130
	case b.end == endReboot:
		return 129
	case b.explicit:
		return b.readResult()
	case b.cmdRan && b.cmdDone:
		return statusCode(b.cmdWS)
	}
	return b.readResult()
}

// readResult reads the results file (§6); a malformed one warns and is
// 111.
func (b *boot) readResult() int {
	p := overlay.Path(overlay.ExitCodeFile)
	data, err := os.ReadFile(p)
	if err != nil {
		b.o.warn("unable to read %s: %s", p, sys.Errno(err))
		return exitcode.Sys
	}
	n, ok := parseResult(data)
	if !ok {
		line, _, _ := bytes.Cut(data, []byte("\n"))
		b.o.warn("invalid exitcode file: %q", bytes.TrimSpace(line))
		return exitcode.Sys
	}
	return n
}

// parseResult reads the results file's content: its first line, blanks
// trimmed, a decimal 0-255; empty is 0.
func parseResult(data []byte) (int, bool) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return 0, true
	}
	n, err := cli.ParseDecimal(string(line))
	if err != nil || n > 255 {
		return 0, false
	}
	return int(n), true
}

// runControl is the generated halt, poweroff, reboot and shutdown: one
// byte to init's control FIFO (spec §3).
func runControl(name string, args []string) error {
	c := byte('0')
	switch name {
	case "poweroff":
		c = '7'
	case "reboot":
		c = '6'
	case "shutdown":
		for _, a := range args {
			switch a {
			case "-r":
				c = '6'
			case "-p", "-P":
				c = '7'
			}
		}
	}
	p := overlay.Path(controlFIFO)
	fd, err := sys.Open(p, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to %s: no init listening on %s: %w", name, p, sys.Errno(err))
	}
	defer unix.Close(fd)
	if _, err := sys.Write(fd, []byte{c}); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to %s: %w", name, sys.Errno(err))
	}
	return nil
}

// controlName returns NAME when arg is the path of a generated control
// command /run/s6/basedir/bin/NAME.
func controlName(arg string) (string, bool) {
	for _, n := range controlCommands {
		if arg == filepath.Join(overlay.Path(overlay.BaseDirBin), n) {
			return n, true
		}
	}
	return "", false
}
