//go:build linux

package proc

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/sys"
)

// Pidfd follows one process through a pidfd (pidfd_open(2), Linux >= 5.3):
// unlike a pid, it can never name a recycled process, it can be signalled
// ([Pidfd.Signal]) and it becomes readable when the process exits, whoever
// its parent is.
type Pidfd struct {
	Pid int
	f   *os.File
}

// OpenPidfd opens a pidfd for pid. It is non-blocking, so that the Go
// runtime's poller can watch it ([Pidfd.Wait]).
func OpenPidfd(pid int) (*Pidfd, error) {
	var fd int
	var err error
	for {
		fd, err = unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return nil, os.NewSyscallError("pidfd_open", err)
	}
	return &Pidfd{Pid: pid, f: os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid))}, nil
}

// Signal sends s to the process (pidfd_send_signal(2)).
func (p *Pidfd) Signal(s unix.Signal) error {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = sys.PidfdSendSignal(int(fd), s) }); err != nil {
		return err
	}
	return serr
}

// Exited reports, without blocking, whether the process has exited: a
// pidfd polls readable once its process is a zombie or gone.
func (p *Pidfd) Exited() (bool, error) {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return false, err
	}
	var n int
	var perr error
	if err := rc.Control(func(fd uintptr) {
		n, perr = sys.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
	}); err != nil {
		return false, err
	}
	return n > 0, perr
}

// Wait blocks until the process has exited, sleeping in the runtime's
// poller (no thread is held). It returns early with an error only when the
// pidfd is closed.
func (p *Pidfd) Wait() error {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		var n int
		n, perr = sys.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return perr != nil || n > 0
	})
	runtime.KeepAlive(p)
	if err != nil {
		return err
	}
	return perr
}

// Close closes the pidfd.
func (p *Pidfd) Close() error { return p.f.Close() }

// Fd returns the pidfd's descriptor, for a poll(2) set. It stays valid
// until [Pidfd.Close].
func (p *Pidfd) Fd() int {
	fd := -1
	if rc, err := p.f.SyscallConn(); err == nil {
		_ = rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}
