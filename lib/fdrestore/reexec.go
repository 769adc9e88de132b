//go:build linux

package fdrestore

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sys"
)

// StageRequest is what the coordinator hands the stage process on the
// re-exec path (6.3 rule 4), as JSON in a memfd: enough to rebuild the
// plan (which is pure) and to finish it.
type StageRequest struct {
	Config FlagsConfig
	Prog   []string
	// Path is the file to exec with Prog as argv; "" searches Prog[0]
	// in PATH.
	Path string `json:",omitempty"`
	// Paths are the files the coordinator created, removed if the stage fails.
	Paths []string
	// Stdio lists the fds among 0-2 that pass through: their copies follow
	// the masters, in this order, then the stderr copy for messages.
	Stdio []int
	// Image mode (the spawned path): the process's plan itself, the
	// indexes in its Masters() of the masters that follow, and the
	// barrier: the stage says ready and waits for go before it execs.
	Plan    *Plan  `json:",omitempty"`
	Masters []int  `json:",omitempty"`
	Spawned bool   `json:",omitempty"`
	ID      string `json:",omitempty"` // the image process, for messages
}

// stageArg is the hidden command line of the stage: the applet's name is
// argv[0] of the re-exec.
const stageArg = "stage"

// Reexec hands plan p and its masters to a fresh copy of this binary,
// `fdrestore stage --control N`, in this same process (6.3 rule 4): the Go
// runtime's fds vanish at execve, and with blocking /dev/null as fds 0-2 the
// new runtime opens none. Everything travels on one end of a SOCK_SEQPACKET
// socketpair (fds in flight take no fd number): the request in a memfd,
// the masters, copies of the fds 0-2 that pass through, and a copy of
// stderr. It returns only on failure, with 0-2 as they were and m closed
// and its paths removed.
func Reexec(req StageRequest, p *Plan, m *Masters) error {
	fail := func(err error) error {
		_ = m.Close()
		return err
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(exitcode.New(exitcode.Sys, fmt.Errorf("unable to create the stage's control socket: %w", err)))
	}
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])

	targeted := map[int]bool{}
	for _, e := range p.Entries {
		targeted[e.Target] = true
	}
	req.Stdio = nil
	for fd := range 3 {
		if !targeted[fd] && fdOpen(fd) {
			req.Stdio = append(req.Stdio, fd)
		}
	}
	req.Paths = m.Paths
	if req.Plan != nil {
		req.Masters = nil
		for i := range m.FDs {
			req.Masters = append(req.Masters, i)
		}
	}
	if err := sendStage(pair[0], req, slices.Concat(m.FDs, req.Stdio, []int{2})); err != nil {
		return fail(err)
	}

	// Keep 0-2 to put them back if the exec fails, then blocking /dev/null.
	var saved [3]int
	for fd := range 3 {
		saved[fd] = -1
		if fdOpen(fd) {
			if saved[fd], err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3); err != nil {
				restoreStdio(saved)
				return fail(exitcode.New(exitcode.Sys, fmt.Errorf("unable to save fd %d: %w", fd, err)))
			}
		}
	}
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err == nil {
		for fd := range 3 {
			if err = unix.Dup3(null, fd, 0); err != nil {
				break
			}
		}
		_ = unix.Close(null)
	}
	if err == nil {
		err = fd.ClearCloexec(pair[1])
	}
	if err != nil {
		restoreStdio(saved)
		return fail(exitcode.New(exitcode.Sys, fmt.Errorf("unable to prepare the re-exec: %w", err)))
	}
	err = proc.ExecFile(proc.Self(), []string{"fdrestore", stageArg, "--control", strconv.Itoa(pair[1])}, os.Environ())
	restoreStdio(saved)
	return fail(exitcode.New(exitcode.Sys, fmt.Errorf("unable to re-execute for the re-exec path: %w", err)))
}

// sendStage queues req (JSON in a memfd) and then fds, numbered in order,
// on the control socket sock.
func sendStage(sock int, req StageRequest, fds []int) error {
	safe := mapStrings(reflect.ValueOf(req), escapeBytes).Interface()
	data, err := json.Marshal(safe)
	if err != nil {
		return exitcode.New(exitcode.Internal, fmt.Errorf("unable to encode the stage request: %w", err))
	}
	memfd, err := unix.MemfdCreate("fdrestore-stage", unix.MFD_CLOEXEC)
	if err != nil {
		return exitcode.New(exitcode.Sys, fmt.Errorf("unable to create the stage request: %w", err))
	}
	err = writeAll(memfd, data)
	if err == nil {
		err = SendFiles(sock, []uint32{0}, []int{memfd})
	}
	_ = unix.Close(memfd)
	if err != nil {
		return exitcode.New(exitcode.Sys, fmt.Errorf("unable to send the stage request: %w", unwrapUsage(err)))
	}
	idx := make([]uint32, len(fds))
	for i := range idx {
		idx[i] = uint32(i)
	}
	return SendFiles(sock, idx, fds)
}

// Stage is the stage process of the re-exec path, `fdrestore stage
// --control N`: it receives the request and the files on fd control,
// rebuilds the plan, places everything and returns the plan, the request
// and the created paths' owner for the caller to set LISTEN_* and exec.
// stderr is called with the copy of the coordinator's stderr as soon as it
// is placed above every target.
func Stage(control int, stderr func(fd int)) (*Plan, *StageRequest, *Masters, int, error) {
	fail := func(m *Masters, err error) (*Plan, *StageRequest, *Masters, int, error) {
		_ = unix.Close(control)
		return nil, nil, m, -1, err
	}
	if _, err := unix.FcntlInt(uintptr(control), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return nil, nil, nil, -1, exitcode.New(exitcode.Usage, fmt.Errorf("bad control fd %d: %w", control, err))
	}
	_, first, err := RecvFiles(control, 1)
	if err != nil {
		return fail(nil, err)
	}
	data, err := readAll(first[0])
	_ = unix.Close(first[0])
	if err != nil {
		return fail(nil, exitcode.New(exitcode.Sys, fmt.Errorf("unable to read the stage request: %w", err)))
	}
	var coded StageRequest
	if err := json.Unmarshal(data, &coded); err != nil {
		return fail(nil, exitcode.New(exitcode.Usage, fmt.Errorf("bad stage request: %w", err)))
	}
	req := new(StageRequest)
	*req = mapStrings(reflect.ValueOf(coded), unescapeBytes).Interface().(StageRequest)
	m := &Masters{Paths: req.Paths}
	p := req.Plan
	if p == nil {
		if p, err = NewFlagsPlan(req.Config); err != nil {
			return fail(m, err)
		}
		req.Masters = nil
		for i := range p.Masters() {
			req.Masters = append(req.Masters, i)
		}
	}
	// The control socket goes above every target, out of placement's way.
	if c, err := unix.FcntlInt(uintptr(control), unix.F_DUPFD_CLOEXEC, max(p.MaxTarget, 2)+1); err == nil {
		_ = unix.Close(control)
		control = c
	} else {
		return fail(m, exitcode.New(exitcode.Sys, fmt.Errorf("unable to move the control socket: %w", err)))
	}
	nm := len(req.Masters)
	n := nm + len(req.Stdio) + 1
	idx, got, err := RecvFiles(control, n)
	if err != nil {
		return fail(m, err)
	}
	fds := make([]int, n)
	for i, x := range idx {
		if int(x) >= n {
			fd.CloseAll(got)
			return fail(m, exitcode.Errorf(exitcode.Sys, "unable to receive files: unknown file index %d", x))
		}
		fds[x] = got[i]
	}
	errfd := fds[n-1]
	masters := fds[:n-1]
	compact := map[int]int{} // index in p.Masters() -> index in masters
	for i, g := range req.Masters {
		compact[g] = i
	}
	var targets []PlaceTarget
	for _, t := range p.PlaceTargets() {
		if t.Master >= 0 {
			c, ok := compact[t.Master]
			if !ok {
				fd.CloseAll(fds)
				return fail(m, exitcode.Errorf(exitcode.Internal, "stage: no file for fd %d", t.FD))
			}
			t.Master = c
		}
		targets = append(targets, t)
	}
	for k, fd := range req.Stdio {
		targets = append(targets, PlaceTarget{FD: fd, Master: nm + k})
	}
	if err := stage(p, masters, targets, errfd, true, []int{control}, stderr); err != nil {
		if req.ID != "" {
			err = exitcode.New(exitcode.Of(err), fmt.Errorf("process %s: %w", req.ID, unwrapUsage(err)))
		}
		return fail(m, err)
	}
	if !req.Spawned {
		_ = unix.Close(control)
		control = -1
	}
	return p, req, m, control, nil
}

func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

func restoreStdio(saved [3]int) {
	for fd, s := range saved {
		if s >= 0 {
			_ = unix.Dup3(s, fd, 0)
			_ = unix.Close(s)
		}
	}
}

func writeAll(fd int, b []byte) error {
	_, err := sys.Write(fd, b)
	return sys.Errno(err)
}

// readAll reads fd from offset 0 to its end with pread.
func readAll(fd int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Pread(fd, buf, int64(len(out)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}
