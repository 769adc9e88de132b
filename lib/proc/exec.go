//go:build linux

package proc

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

// Exec replaces the process with argv[0], searched in PATH when it has no
// slash (as execvp does), with the process's environment and an empty
// signal mask (see [Spawn]). Fds without close-on-exec are handed on. It
// returns only on failure: an *exitcode.Error of 127 (not found) or 126
// (not runnable) saying "unable to exec PROG: REASON".
func Exec(argv []string) error { return ExecEnv(argv, os.Environ()) }

// ExecEnv is [Exec] with env as the program's environment.
func ExecEnv(argv, env []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return exitcode.New(exitcode.NotFound, fmt.Errorf("unable to exec: empty command: %w", unix.ENOENT))
	}
	path, err := exec.LookPath(argv[0])
	if err == nil {
		err = execve(path, argv, env)
	}
	err = lookErrno(err)
	return exitcode.New(SpawnCode(err), fmt.Errorf("unable to exec %s: %w", argv[0], err))
}

// ExecFile is [ExecEnv] of the file at path, without a PATH search: argv[0]
// is only what the program sees (a multi-call binary re-executing itself
// under an applet's name).
func ExecFile(path string, argv, env []string) error {
	err := lookErrno(execve(path, argv, env))
	return exitcode.New(SpawnCode(err), fmt.Errorf("unable to exec %s: %w", path, err))
}

// execve runs execve(2) with an empty signal mask, restoring the mask if it
// fails.
func execve(path string, argv, env []string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var empty, old unix.Sigset_t
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &empty, &old)
	err := unix.Exec(path, argv, env)
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return err
}
