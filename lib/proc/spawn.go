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
	// (and no FDs) means the caller's fds 0, 1 and 2.
	Files []*os.File
	// FDs, instead of Files (which must then be nil), is the child's fd
	// table as raw fds: FDs[i] becomes fd i, -1 closes it. A caller that
	// makes an fd for each spawn (a notification pipe) then needs no
	// *os.File for it.
	FDs []int
	Env []string // nil means the caller's environment
	Dir string
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
// signal mask, the default disposition of every signal the caller handles,
// and the soft RLIMIT_NOFILE the process started with (the Go runtime
// raises its own).
//
// The caller owns the child's wait status: Spawn never waits for a child
// that exec'd. A failure to find or run argv[0] is an error for which
// [SpawnCode] gives 127 or 126.
func Spawn(argv []string, attr Attr) (int, error) {
	var sp Spawner
	return sp.Spawn(argv, attr)
}

// Spawner spawns as [Spawn] does, and keeps its last command's argv,
// environment, path and directory converted to what execve(2) takes: a
// command spawned again with the same ones (a service restarted) costs no
// memory allocation. With a nil attr.Env, the environment is the
// process's as it was at the Spawner's first spawn.
type Spawner struct {
	argv   cstrings
	env    cstrings
	envNil bool // env holds the process's environment
	path   cstring
	dir    cstring
	fds    []int
	attr   forkAttr
}

// Spawn is [Spawn] with sp's kept conversions.
func (sp *Spawner) Spawn(argv []string, attr Attr) (int, error) {
	if len(argv) == 0 || argv[0] == "" {
		return 0, fmt.Errorf("unable to spawn: empty command: %w", unix.ENOENT)
	}
	if attr.FDs != nil && attr.Files != nil {
		return 0, fmt.Errorf("unable to spawn %s: both Files and FDs given: %w", argv[0], unix.EINVAL)
	}
	if err := sp.prepare(argv, attr); err != nil {
		return 0, fmt.Errorf("unable to spawn %s: %w", argv[0], err)
	}
	a := &sp.attr
	*a = forkAttr{
		path: sp.path.ptr(), dir: sp.dir.ptr(), argv: &sp.argv.ptrs[0], envv: &sp.env.ptrs[0],
		setsid: attr.Setsid, setpgid: attr.Setpgid, pgid: attr.Pgid,
		setctty: attr.Setctty, pdeathsig: uintptr(attr.Pdeathsig),
	}
	if attr.NewPIDNS {
		a.flags = unix.CLONE_NEWPID
	}
	// The child rearranges its table in sp.fds (shared memory under
	// vfork): FDs are copied, never used in place.
	sp.fds = sp.fds[:0]
	switch {
	case attr.FDs != nil:
		sp.fds = append(sp.fds, attr.FDs...)
	case attr.Files == nil:
		sp.fds = append(sp.fds, 0, 1, 2)
	}
	for _, f := range attr.Files {
		fd := -1
		if f != nil {
			fd = int(f.Fd())
		}
		sp.fds = append(sp.fds, fd)
	}
	a.fds = sp.fds
	a.nextfd = len(sp.fds)
	for _, fd := range sp.fds {
		a.nextfd = max(a.nextfd, fd+1)
	}
	pid, err := start(a)
	for _, f := range attr.Files {
		runtime.KeepAlive(f) // its fd must stay open until the child has it
	}
	if err != nil {
		return 0, fmt.Errorf("unable to spawn %s: %w", argv[0], err)
	}
	return pid, nil
}

// prepare converts what changed since the last spawn.
func (sp *Spawner) prepare(argv []string, attr Attr) error {
	if !sp.argv.same(argv) && !sp.argv.set(argv) {
		return unix.EINVAL
	}
	switch {
	case attr.Env == nil && sp.envNil:
	case attr.Env == nil:
		if !sp.env.set(os.Environ()) {
			return unix.EINVAL
		}
		sp.envNil = true
	case !sp.envNil && sp.env.same(attr.Env):
	default:
		if !sp.env.set(attr.Env) {
			return unix.EINVAL
		}
		sp.envNil = false
	}
	path := attr.Path
	if path == "" {
		path = argv[0]
	}
	if !sp.path.same(path) || attr.Path == "" {
		if attr.Path == "" {
			var err error
			if path, err = exec.LookPath(argv[0]); err != nil {
				return lookErrno(err)
			}
		}
		if !sp.path.set(path) {
			return unix.EINVAL
		}
	}
	if !sp.dir.same(attr.Dir) && !sp.dir.set(attr.Dir) {
		return unix.EINVAL
	}
	return nil
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
