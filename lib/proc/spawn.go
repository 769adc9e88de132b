//go:build linux

package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

// Attr is what a spawned process gets besides its argv.
type Attr struct {
	// Files is the child's exact fd table: Files[i] becomes fd i. Nil
	// means the caller's fds 0, 1 and 2.
	Files []*os.File
	Env   []string // nil means the caller's environment
	Dir   string
	// Setpgid puts the child in a new process group of its own, or with
	// Pgid > 0 in the existing group Pgid.
	Setpgid bool
	Pgid    int
	// Path, when set, is the file to execute instead of argv[0] looked up
	// in PATH (s6-supervise runs ./finish with argv[0] "finish").
	Path string
	// Setsid makes the child the leader of a new session (and process
	// group): pid = pgid = sid, as s6-supervise starts run and finish.
	Setsid bool
	// Setctty, with Setsid, makes the child's fd 0, a terminal, its
	// controlling terminal (TIOCSCTTY): the terminal must be no other
	// session's controlling terminal.
	Setctty bool
	// NewPIDNS starts the child as PID 1 of a new PID namespace
	// (clone(2) CLONE_NEWPID; needs CAP_SYS_ADMIN, else EPERM).
	NewPIDNS bool
	// Pdeathsig is sent to the child when the thread that spawned it
	// ends (prctl(2) PR_SET_PDEATHSIG): callers lock the spawning
	// goroutine to a thread that lives as long as they do.
	Pdeathsig unix.Signal
}

// Spawn starts argv[0] (searched in PATH when it has no slash, as execvp
// does) with attr, and returns its pid. The child starts with an empty
// signal mask and the default disposition of every signal the caller
// handles: Go's fork resets handled signals to SIG_DFL, but it hands the
// child the forking thread's signal mask, which may have been inherited
// blocked at start-up, so Spawn clears the mask on a locked thread first.
//
// The caller owns the child's wait status: Spawn releases the pidfd that
// os.StartProcess keeps and never waits. A failure to find or run argv[0]
// is an error for which [SpawnCode] gives 127 or 126.
func Spawn(argv []string, attr Attr) (int, error) {
	if len(argv) == 0 || argv[0] == "" {
		return 0, fmt.Errorf("unable to spawn: empty command: %w", unix.ENOENT)
	}
	path := attr.Path
	if path == "" {
		var err error
		if path, err = exec.LookPath(argv[0]); err != nil {
			return 0, fmt.Errorf("unable to spawn %s: %w", argv[0], lookErrno(err))
		}
	}
	files := attr.Files
	if files == nil {
		files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
	}
	env := attr.Env
	if env == nil {
		env = os.Environ()
	}

	pa := &os.ProcAttr{Dir: attr.Dir, Env: env, Files: files, Sys: sysAttr(attr)}
	var p *os.Process
	var err error
	if maskEmpty() {
		// Every thread that runs goroutines has the mask the process
		// started with (less the signals the runtime never blocks): the
		// child gets an empty one from any of them, and no thread needs
		// locking (a first LockOSThread starts the runtime's template
		// thread, which lives as long as the process).
		p, err = os.StartProcess(path, argv, pa)
	} else {
		runtime.LockOSThread()
		var empty, old unix.Sigset_t
		if err := unix.PthreadSigmask(unix.SIG_SETMASK, &empty, &old); err != nil {
			runtime.UnlockOSThread()
			return 0, fmt.Errorf("unable to clear the signal mask: %w", err)
		}
		p, err = os.StartProcess(path, argv, pa)
		// Restoring the mask cannot fail with a valid how and set.
		_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
		runtime.UnlockOSThread()
	}
	if err != nil {
		return 0, fmt.Errorf("unable to spawn %s: %w", argv[0], lookErrno(err))
	}
	pid := p.Pid
	_ = p.Release() // closes the pidfd; the caller reaps with wait4
	return pid, nil
}

// maskEmpty reports whether the calling thread blocks no signal.
func maskEmpty() bool {
	var cur unix.Sigset_t
	if unix.PthreadSigmask(unix.SIG_SETMASK, nil, &cur) != nil {
		return false
	}
	return cur == unix.Sigset_t{}
}

// lookErrno unwraps os and os/exec errors to the errno, so that messages
// name the program once, as s6's "unable to spawn PROG: REASON" does.
func lookErrno(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, exec.ErrNotFound) {
		return unix.ENOENT
	}
	if errors.Is(err, fs.ErrPermission) {
		return unix.EACCES
	}
	return err
}

// SpawnCode is the exit code that reports a [Spawn] failure: 127 when the
// program was not found, 126 when it was found but could not be run.
func SpawnCode(err error) int {
	if errors.Is(err, unix.ENOENT) {
		return exitcode.NotFound
	}
	return exitcode.NoExec
}

func sysAttr(attr Attr) *unix.SysProcAttr {
	sa := &unix.SysProcAttr{Setpgid: attr.Setpgid, Pgid: attr.Pgid, Setsid: attr.Setsid, Setctty: attr.Setctty, Pdeathsig: attr.Pdeathsig}
	if attr.NewPIDNS {
		sa.Cloneflags = unix.CLONE_NEWPID
	}
	return sa
}
