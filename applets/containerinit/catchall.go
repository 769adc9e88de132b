package containerinit

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/overlay"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sys"
)

// The catch-all logger (S6_LOGGING 1 and 2, spec §5.1 step 6): a service
// of the tree, s6-overlay's s6-svscan-log, whose run is a script-mode file
// of this binary. It reads the FIFO that init's stdout and stderr (and so
// every service's that has no logger of its own) are moved onto, drops to
// S6_CATCHALL_USER and becomes "log -bp -- S6_LOGGING_SCRIPT
// /run/uncaught-logs". -p: SIGTERM does not stop it; it drains the FIFO
// to EOF, when init has given its own stdout and stderr back (shutdown)
// and the services are gone.
const (
	catchallDir = "/run/service/s6-svscan-log"
	// catchallConf holds the logger's words and ids, one per line: the
	// uid:gid to drop to ("" as root: none), then S6_LOGGING_SCRIPT.
	catchallConf = "conf"
)

// startCatchall writes the logger's servicedir and moves init's fds 1 and
// 2 onto its FIFO, keeping the originals for the CMD and for the end.
func (b *boot) startCatchall() error {
	dir := overlay.Path(catchallDir)
	logs := overlay.Path(overlay.UncaughtLogs)
	ids := ""
	if os.Geteuid() == 0 {
		uid, gid, err := catchallUser(b.v.catchallUser)
		if err != nil {
			return exitcode.Errorf(exitcode.Sys, "invalid S6_CATCHALL_USER %q: %w", b.v.catchallUser, err)
		}
		ids = strconv.Itoa(uid) + ":" + strconv.Itoa(gid)
		if err := os.Mkdir(logs, 0o2750); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", logs, sys.Errno(err))
		}
		if err := os.Lchown(logs, uid, gid); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to chown %s: %w", logs, sys.Errno(err))
		}
	} else if err := os.Mkdir(logs, 0o2750); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", logs, sys.Errno(err))
	}
	conf := ids + "\n" + strings.Join(b.v.loggingScript, "\n") + "\n"
	for _, f := range []struct {
		name, data string
		mode       os.FileMode
	}{{catchallConf, conf, 0o644}, {"run", "#!" + b.self + " init\n", 0o755}} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", dir, sys.Errno(err))
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.data), f.mode); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to write %s: %w", filepath.Join(dir, f.name), sys.Errno(err))
		}
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to mkfifo %s: %w", fifo, sys.Errno(err))
	}
	// Read-write: the open does not wait for the logger, and writes wait
	// in the pipe until it reads.
	fd, err := sys.Open(fifo, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to open %s: %w", fifo, sys.Errno(err))
	}
	defer unix.Close(fd)
	for i := range b.term {
		t, err := unix.FcntlInt(uintptr(i+1), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to keep fd %d: %w", i+1, sys.Errno(err))
		}
		b.term[i] = os.NewFile(uintptr(t), "terminal")
	}
	for i := 1; i <= 2; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to move fd %d to %s: %w", i, fifo, sys.Errno(err))
		}
	}
	return nil
}

// restoreTerminal gives init its own stdout and stderr back, which ends
// its writes to the catch-all logger.
func (b *boot) restoreTerminal() {
	for i, t := range b.term {
		if t != nil {
			_ = unix.Dup3(int(t.Fd()), i+1, 0)
			t.Close()
			b.term[i] = nil
		}
	}
}

// cmdFiles are the CMD's fds 0-2: the terminal with S6_LOGGING 1, or 2
// with S6_CMD_USE_TERMINAL and a terminal; else init's (the logger's with
// S6_LOGGING 2; nil: init's own).
func (b *boot) cmdFiles() []*os.File {
	if b.term[0] == nil {
		return nil
	}
	if b.v.logging == 1 || (b.v.cmdUseTerminal && isTerminal(b.term[0])) {
		return []*os.File{os.Stdin, b.term[0], b.term[1]}
	}
	return nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// isCatchallRun reports whether arg, init's first operand, is the
// catch-all logger's run file, as its supervisor runs it (./run, in its
// directory).
func isCatchallRun(arg string) bool {
	if filepath.Base(arg) != "run" {
		return false
	}
	abs, err := filepath.Abs(arg)
	if err != nil {
		return false
	}
	want := filepath.Join(overlay.Path(catchallDir), "run")
	if abs == want {
		return true
	}
	a, err1 := filepath.EvalSymlinks(abs)
	w, err2 := filepath.EvalSymlinks(want)
	return err1 == nil && err2 == nil && a == w
}

// runCatchall is the catch-all logger's run: the FIFO as stdin, the
// terminal or nothing as stdout and stderr (never the FIFO: its own
// warnings would come back to it), the uid:gid of the conf file, then
// log.
func runCatchall() error {
	dir := overlay.Path(catchallDir)
	conf, err := os.ReadFile(filepath.Join(dir, catchallConf))
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to read %s: %w", filepath.Join(dir, catchallConf), sys.Errno(err))
	}
	words := strings.Split(strings.TrimSuffix(string(conf), "\n"), "\n")
	ids, script := words[0], words[1:]
	fd, err := sys.Open(filepath.Join(dir, "fifo"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to open %s: %w", filepath.Join(dir, "fifo"), sys.Errno(err))
	}
	if err := unix.Dup3(fd, 0, 0); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to move the fifo to fd 0: %w", sys.Errno(err))
	}
	out, err := sys.Open("/dev/console", unix.O_WRONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		out, err = sys.Open(os.DevNull, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	}
	if err == nil {
		_ = unix.Dup3(out, 1, 0)
		_ = unix.Dup3(out, 2, 0)
	}
	if ids != "" {
		u, g, _ := strings.Cut(ids, ":")
		uid, _ := strconv.Atoi(u)
		gid, _ := strconv.Atoi(g)
		if err := dropTo(uid, gid); err != nil {
			return err
		}
	}
	argv := append(append([]string{"log", "-bp", "--"}, script...), overlay.Path(overlay.UncaughtLogs))
	return exitcode.Errorf(exitcode.NoExec, "unable to exec log: %w", sys.Errno(proc.ExecFile(proc.Self(), argv, os.Environ())))
}

// dropTo sets the process's groups, gid and uid (the Go runtime applies
// them to every thread).
func dropTo(uid, gid int) error {
	if err := unix.Setgroups(nil); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to setgroups: %w", sys.Errno(err))
	}
	if err := unix.Setgid(gid); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to setgid %d: %w", gid, sys.Errno(err))
	}
	if err := unix.Setuid(uid); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to setuid %d: %w", uid, sys.Errno(err))
	}
	return nil
}

// catchallUser resolves S6_CATCHALL_USER: a name from /etc/passwd (its
// primary group unless :group is given), or uid[:gid].
func catchallUser(user string) (uid, gid int, err error) {
	passwd, _ := os.ReadFile(overlay.Path("/etc/passwd"))
	group, _ := os.ReadFile(overlay.Path("/etc/group"))
	name, grp, _ := strings.Cut(user, ":")
	uid, gid, err = overlay.Account{User: name, Group: grp}.Resolve(passwd, group)
	if err != nil && user == "root" {
		return 0, 0, nil // the default, in an image without /etc/passwd
	}
	if n, perr := strconv.ParseUint(name, 10, 31); err != nil && perr == nil && grp == "" {
		// A bare uid that /etc/passwd does not name: its gid is the same.
		return int(n), int(n), nil
	}
	return uid, gid, err
}
