package containerinit

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/overlay"
	"github.com/gotools-dev/gotools/lib/proc"
)

// runStage runs one stage of spec §5 in a process of its own (the hidden
// --stage=NAME, run by rc as a built-in oneshot's up or down), and exits
// 0 or 1, so that "rc -d change base" from a shell behaves as under
// s6-overlay.
func runStage(o *options, name string) error {
	loadStageVars()
	v := readVars(o, false)
	etc := func(d string) string { return overlay.Path(v.etc + "/" + d) }
	var err error
	switch name {
	case "cont-finish":
		err = stageScripts(o, etc("cont-finish.d"), v.killFinishMax)
	case "services-up":
		err = servicesUp(o, v, etc("services.d"))
	case "services-down":
		err = servicesDown(o, v, etc("services.d"))
	default:
		return exitcode.Errorf(exitcode.Usage, "unknown stage %q", name)
	}
	if err != nil {
		o.env.Fatal(err)
		return exitcode.Exit(1)
	}
	return nil
}

// stageScripts runs every entry of dir in byte order, each at most max
// (then SIGKILL), all of them whatever fails; a failure warns.
func stageScripts(o *options, dir string, max time.Duration) error {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name()[0] == '.' {
			continue
		}
		p := filepath.Join(dir, e.Name())
		o.info("running %s", p)
		cmd := exec.Command(p)
		cmd.Dir = "/"
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			o.warn("unable to spawn %s: %v", p, err)
			continue
		}
		var timer *time.Timer
		if max > 0 {
			timer = time.AfterFunc(max, func() {
				o.warn("%s ran longer than %d ms: killing it", p, max.Milliseconds())
				_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
			})
		}
		_ = cmd.Wait()
		if timer != nil {
			timer.Stop()
		}
		code := cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(unix.WaitStatus); ok {
			code = statusCode(ws)
		}
		o.info("%s exited %d", p, code)
		if code != 0 {
			o.warn("%s exited %d", p, code)
		}
	}
	return nil
}

// stageVars holds init's S6_* variables for its stages, one KEY=VALUE a
// line: rc gives them the tree environment, which S6_KEEP_ENV=0 reduces
// to PATH.
const stageVars = "/run/s6/init-vars"

// loadStageVars sets the S6_* variables of stageVars that the stage's
// environment lacks.
func loadStageVars() {
	b, err := os.ReadFile(overlay.Path(stageVars))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if _, set := os.LookupEnv(k); ok && strings.HasPrefix(k, "S6_") && !set {
			os.Setenv(k, v)
		}
	}
}

// legacyServices lists the services.d entries, in byte order.
func legacyServices(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var l []string
	for _, e := range ents {
		if e.Name()[0] != '.' && e.IsDir() {
			l = append(l, e.Name())
		}
	}
	return l
}

// servicesUp copies each services.d directory to /run/s6/legacy-services,
// links it into the scan directory, has the scanner scan, and with
// S6_CMD_WAIT_FOR_SERVICES waits for the services to be up (and ready,
// those with a notification-fd) (spec §5.1 step 8).
func servicesUp(o *options, v *s6vars, src string) error {
	names := legacyServices(src)
	if len(names) == 0 {
		return nil
	}
	dst := overlay.Path(overlay.LegacyServices)
	scan := overlay.Path(overlay.ScanDir)
	var dirs, ready []string
	for _, n := range names {
		d := filepath.Join(dst, n)
		if err := copyTree(filepath.Join(src, n), d); err != nil {
			return err
		}
		for _, ev := range []string{d, filepath.Join(d, "log")} {
			if _, err := os.Stat(ev); err == nil {
				_ = os.Mkdir(filepath.Join(ev, "event"), 0o3730)
				_ = os.Chmod(filepath.Join(ev, "event"), 0o3730|fs.ModeSetgid|fs.ModeSticky)
			}
		}
		if err := os.Symlink(d, filepath.Join(scan, n)); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if _, err := os.Stat(filepath.Join(d, "notification-fd")); err == nil {
			ready = append(ready, d)
		} else {
			dirs = append(dirs, d)
		}
	}
	if err := svscanctl(scan, "a"); err != nil {
		return err
	}
	if !v.waitServices {
		return nil
	}
	for _, w := range []struct {
		flag string
		dirs []string
	}{{"-u", dirs}, {"-U", ready}} {
		if len(w.dirs) == 0 {
			continue
		}
		if err := self(append([]string{"svwait", w.flag}, w.dirs...)...); err != nil {
			return err
		}
	}
	return nil
}

// servicesDown brings the services.d services down (at most
// S6_SERVICES_GRACETIME).
func servicesDown(o *options, v *s6vars, src string) error {
	dst := overlay.Path(overlay.LegacyServices)
	var dirs []string
	for _, n := range legacyServices(src) {
		dirs = append(dirs, filepath.Join(dst, n))
	}
	if len(dirs) == 0 {
		return nil
	}
	args := append([]string{"svc", "-wD", "-T", strconv.FormatInt(v.servicesGrace.Milliseconds(), 10), "-d"}, dirs...)
	if err := self(args...); err != nil {
		o.warn("services.d services not down after %d ms", v.servicesGrace.Milliseconds())
	}
	// The links stay: init's tree supervises through them, and its final
	// svscanctl -t stops these supervisors with the rest, their loggers
	// draining first.
	return nil
}

// self runs another applet of this binary and waits for it.
func self(args ...string) error {
	cmd := exec.Command(proc.Self(), args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// svscanctl writes a command to the scanner's control FIFO.
func svscanctl(scan, c string) error {
	f, err := os.OpenFile(filepath.Join(scan, ".s6-svscan", "control"), os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(c)
	return err
}

// copyTree copies the directory src to dst (files, modes, symlinks).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case info.Mode().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, in); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		}
		return nil // FIFOs and others: supervise makes its own
	})
}
