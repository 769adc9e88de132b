package containerinit

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sys"
)

// runSimple is simple mode (spec §2): spawn the CMD, forward signals to it
// while it runs, then end what is left and exit with its status.
func runSimple(o *options) error {
	l, err := begin(o)
	if err != nil {
		return err
	}
	if err := l.catch(); err != nil {
		return err
	}
	var status unix.WaitStatus
	running := true
	tty := !o.setsid && ownsTerminal()
	if o.setsid {
		l.ctty = l.releaseTerminal()
	}
	pid, err := l.spawnCMD(o.cmd, nil, func(ws unix.WaitStatus) { status, running = ws, false })
	if err != nil {
		return err
	}
	if tty {
		giveTerminal(pid)
	}
	o.info("CMD %s started: pid %d", o.cmd[0], pid)
	for running {
		s := (<-l.sigs).(unix.Signal)
		if s == unix.SIGCHLD {
			if _, err := l.reap(); err != nil {
				return err
			}
			continue
		}
		if l.dropped(s) {
			continue
		}
		l.forward(pid, s)
	}
	if tty {
		takeTerminal()
	}
	if err := l.terminate(time.Duration(o.grace) * time.Millisecond); err != nil {
		return err
	}
	return exitcode.Exit(o.code(statusCode(status)))
}

// runPause is pause mode (catatonit -P): no CMD; reap until SIGTERM or
// SIGINT, then end what is left and exit 0.
func runPause(o *options) error {
	l, err := begin(o)
	if err != nil {
		return err
	}
	if err := l.catch(); err != nil {
		return err
	}
	o.info("pausing")
	for {
		switch (<-l.sigs).(unix.Signal) {
		case unix.SIGCHLD:
			if _, err := l.reap(); err != nil {
				return err
			}
		case unix.SIGTERM, unix.SIGINT:
			return l.terminate(time.Duration(o.grace) * time.Millisecond)
		}
	}
}

// spawnCMD starts argv as the CMD ([loop.cmdAttr]) with env (nil:
// init's). dead gets its wait status. A failure to start it is exit 126
// or 127.
func (l *loop) spawnCMD(argv, env []string, dead func(unix.WaitStatus)) (int, error) {
	pid, err := proc.Spawn(argv, l.cmdAttr(env))
	if err != nil {
		return 0, cmdError(argv, err)
	}
	l.owners[pid] = dead
	return pid, nil
}

// cmdAttr is how the CMD starts: in its own process group (its own
// session with --setsid, with init's terminal as its controlling
// terminal), in the recorded working directory, with env.
func (l *loop) cmdAttr(env []string) proc.Attr {
	return proc.Attr{Dir: l.cwd, Env: env, Setpgid: !l.o.setsid, Setsid: l.o.setsid, Setctty: l.ctty}
}

// cmdError is the error of a CMD that could not be started: exit 126,
// or 127 when it was not found.
func cmdError(argv []string, err error) error {
	return exitcode.Errorf(proc.SpawnCode(err), "unable to exec %s: %w", argv[0], sys.Errno(err))
}

// forward passes a received signal on to the CMD ([loop.send]) unless it
// is dead (reaped): its pid may be reused.
func (l *loop) forward(pid int, s unix.Signal) {
	if _, alive := l.owners[pid]; alive {
		l.send(pid, s)
	}
}

// send passes a received signal on to the live CMD pid (spec §2.3), or
// its process group with -g or --setsid, after -r. The signals the kernel
// sends about init itself, and the terminal stop signals, are not
// forwarded.
func (l *loop) send(pid int, s unix.Signal) {
	switch s {
	case unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP, unix.SIGSYS, unix.SIGABRT:
		return
	case unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
		if _, ok := l.o.rewrite[s]; !ok {
			if !l.o.setsid {
				if s == unix.SIGTSTP {
					break
				}
				return
			}
			s = unix.SIGSTOP // dumb-init's --setsid rule
		}
	}
	if r, ok := l.o.rewrite[s]; ok {
		if r == 0 {
			return
		}
		s = r
	}
	if l.o.group || l.o.setsid {
		_ = unix.Kill(-pid, s)
		return
	}
	_ = unix.Kill(pid, s)
}
