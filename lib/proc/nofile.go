//go:build linux

package proc

import (
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// probeNofile reads the soft RLIMIT_NOFILE that package syscall gives its
// children: it starts this binary traced (PTRACE_TRACEME), so that the
// child stops at its exec before running anything, reads the child's
// limit with prlimit(2) and kills it. Nil if that fails (no /proc, ptrace
// refused by a seccomp filter): children then keep the raised limit.
func probeNofile() *unix.Rlimit {
	runtime.LockOSThread() // the tracer is this thread
	defer runtime.UnlockOSThread()
	p, err := os.StartProcess(Self(), []string{"gotools-nofile-probe"}, &os.ProcAttr{
		Files: []*os.File{},
		Env:   []string{},
		Sys:   &syscall.SysProcAttr{Ptrace: true},
	})
	if err != nil {
		return nil
	}
	var lim unix.Rlimit
	perr := unix.Prlimit(p.Pid, unix.RLIMIT_NOFILE, nil, &lim)
	_ = p.Kill()
	_, _ = p.Wait()
	if perr != nil {
		return nil
	}
	return &lim
}
