package fdrestore

import (
	"fmt"
	"slices"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
)

// Table is a census of the process's fds (6.3 rule 2): inherited fds come
// through execve without FD_CLOEXEC; every other open fd is CLOEXEC and,
// unless the engine opened it, owned by the Go runtime.
type Table struct {
	Inherited []int // without FD_CLOEXEC: came through execve
	Reserved  []int // FD_CLOEXEC and not the engine's: the Go runtime's
}

// Census lists /proc/self/fd with raw getdents(2), ignoring the fds in
// mine (the engine's) and the directory's own fd.
func Census(mine []int) (Table, error) {
	var t Table
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return t, exitcode.New(exitcode.Sys, fmt.Errorf("unable to open /proc/self/fd: %w", err))
	}
	defer unix.Close(dir)
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(dir, buf)
		if err != nil {
			return t, exitcode.New(exitcode.Sys, fmt.Errorf("unable to read /proc/self/fd: %w", err))
		}
		if n <= 0 {
			break
		}
		for off := 0; off < n; {
			d := (*unix.Dirent)(unsafe.Pointer(&buf[off]))
			off += int(d.Reclen)
			name := unix.ByteSliceToString((*[256]byte)(unsafe.Pointer(&d.Name[0]))[:])
			fd, err := strconv.Atoi(name)
			if err != nil || fd == dir || slices.Contains(mine, fd) {
				continue
			}
			flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
			if err != nil {
				continue // closed meanwhile by another thread of the runtime
			}
			if flags&unix.FD_CLOEXEC != 0 {
				t.Reserved = append(t.Reserved, fd)
			} else {
				t.Inherited = append(t.Inherited, fd)
			}
		}
	}
	slices.Sort(t.Inherited)
	slices.Sort(t.Reserved)
	return t, nil
}

// Blocks reports whether a runtime-owned fd sits at a target of p:
// placing over it would break the Go runtime, so placement must go through
// the re-exec path (6.3 rule 4).
func (t Table) Blocks(p *Plan) bool {
	for _, e := range p.Entries {
		if slices.Contains(t.Reserved, e.Target) {
			return true
		}
	}
	return false
}

// StageInPlace runs 6.5 steps 1 to 5 and 7 in this process: lift, place,
// epoll registrations on final numbers, setsid and controlling terminal,
// release and -C sweep. It leaves m with no fds (all placed or closed) but
// its created paths. Before placing it makes a close-on-exec copy of stderr
// above every number in use and calls stderr with it, for messages once a
// target replaced fd 2.
func StageInPlace(p *Plan, m *Masters, stderr func(fd int)) error {
	fds := m.FDs
	m.FDs = nil // owned by stage from here: it closes them
	return stage(p, fds, p.PlaceTargets(), 2, false, nil, stderr)
}

// stage places masters at targets in this process. errfd is the fd whose
// copy above every number in use is handed to stderr (closing errfd itself
// when closeErr: a received copy that may sit on a target). The masters
// are always closed, placed or not.
// keep are engine fds above every target that must survive placement (the
// control socket of a spawned stage).
func stage(p *Plan, masters []int, targets []PlaceTarget, errfd int, closeErr bool, keep []int, stderr func(fd int)) (err error) {
	defer func() {
		if err != nil {
			fd.CloseAll(masters)
		}
	}()
	mine := slices.Concat(masters, keep)
	if closeErr {
		mine = append(mine, errfd)
	}
	t, err := Census(mine)
	if err != nil {
		return err
	}
	t.Reserved = append(t.Reserved, keep...)
	for _, pt := range targets {
		if slices.Contains(t.Reserved, pt.FD) {
			return exitcode.Errorf(exitcode.Sys, "unable to place fd %d: the Go runtime holds it", pt.FD)
		}
	}
	pl, err := Place(PlaceInput{
		Masters:     masters,
		Targets:     targets,
		Inherited:   t.Inherited,
		Reserved:    t.Reserved,
		CloseOthers: p.CloseOthers,
	})
	if err != nil {
		return err
	}
	top := max(pl.Max, errfd, slices.Max(append(slices.Concat(masters, pl.Lifted, t.Inherited, t.Reserved), 2)))
	if cp, err := unix.FcntlInt(uintptr(errfd), unix.F_DUPFD_CLOEXEC, top+1); err == nil && stderr != nil {
		stderr(cp)
	}
	if closeErr {
		_ = unix.Close(errfd)
	}
	masters = nil // the ops own them from here: Release closes them
	if err := RunOps(pl.Lift); err != nil {
		return err
	}
	if p.Setsid {
		if _, err := unix.Setsid(); err != nil {
			return exitcode.New(exitcode.Sys, fmt.Errorf("unable to create a new session: %w", err))
		}
	}
	if err := RunOps(pl.Place); err != nil {
		return err
	}
	if err := Register(p); err != nil {
		return err
	}
	if err := Terminal(p); err != nil {
		return err
	}
	return RunOps(pl.Release)
}

// Terminal makes the plan's ctty target the controlling terminal of this
// process's session, then puts the own process group in its foreground
// (6.5 step 5). The session must be new (setsid).
func Terminal(p *Plan) error {
	if p.Ctty < 0 {
		return nil
	}
	if err := unix.IoctlSetInt(p.Ctty, unix.TIOCSCTTY, 0); err != nil {
		return exitcode.New(exitcode.Sys, fmt.Errorf("unable to make fd %d the controlling terminal: %w", p.Ctty, err))
	}
	if err := unix.IoctlSetPointerInt(p.Ctty, unix.TIOCSPGRP, unix.Getpgrp()); err != nil {
		return exitcode.New(exitcode.Sys, fmt.Errorf("unable to give fd %d's terminal to the process group: %w", p.Ctty, err))
	}
	return nil
}

// RunOps executes placement ops with raw system calls.
func RunOps(ops []Op) error {
	for _, op := range ops {
		var err error
		switch op.Kind {
		case OpLift:
			err = unix.Dup3(op.From, op.To, unix.O_CLOEXEC)
		case OpPlace:
			err = unix.Dup3(op.From, op.To, 0)
		case OpClose:
			err = unix.Close(op.From)
		case OpCloseRangeCloexec:
			err = unix.CloseRange(uint(op.From), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
		default:
			return exitcode.Errorf(exitcode.Internal, "unknown placement op %v", op)
		}
		if err != nil {
			return exitcode.New(exitcode.Sys, fmt.Errorf("unable to %v: %w", op, err))
		}
	}
	return nil
}

// Register adds every epoll item under its final numbers (6.5 step 4), so
// that the program's EPOLL_CTL_MOD and DEL find them; inner epolls first.
func Register(p *Plan) error {
	for _, o := range p.EpollOrder {
		obj := &p.Objects[o]
		if len(obj.Targets) == 0 {
			continue
		}
		epfd := obj.Targets[0]
		for _, it := range obj.Source.Items {
			data := uint64(it.Target)
			if it.HasData {
				data = it.Data
			}
			ev := unix.EpollEvent{Events: it.Events, Fd: int32(uint32(data)), Pad: int32(uint32(data >> 32))}
			if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, it.Target, &ev); err != nil {
				return exitcode.New(exitcode.Sys, fmt.Errorf("unable to register fd %d in the epoll at fd %d: %w", it.Target, epfd, err))
			}
		}
	}
	return nil
}
