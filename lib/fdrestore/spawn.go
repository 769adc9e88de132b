//go:build linux

package fdrestore

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/proc"
)

// Messages on a spawned stage's control socket (6.6): the stage says
// ready once its table is built, the coordinator says go once every stage
// is ready, and a stage whose exec fails says so (then a code byte and the
// message); EOF after go means the exec succeeded (the socket is CLOEXEC).
const (
	msgReady      = 'r'
	msgGo         = 'g'
	msgExecFailed = 'e'
)

// stageProc is one spawned stage process, seen from the coordinator.
type stageProc struct {
	id      string
	pid     int
	control int
	ws      unix.WaitStatus
	done    bool
}

// RenameTargets rewrites "fd V" in a message about the global plan's
// virtual target V as "fd N of process ID".
func (ip *ImagePlan) RenameTargets(err error) error {
	if err == nil {
		return nil
	}
	re := regexp.MustCompile(`\bfd (\d+)\b`)
	msg := re.ReplaceAllStringFunc(err.Error(), func(s string) string {
		v, _ := strconv.Atoi(s[3:])
		k := v / ip.stride
		if k < 0 || k >= len(ip.Procs) {
			return s
		}
		return fmt.Sprintf("fd %d of process %s", v-ip.base(k), ip.Procs[k].ID)
	})
	return exitcode.New(exitcode.Of(err), &renamed{msg, err})
}

// renamed is an error with a rewritten message that still unwraps to the
// original (so that an errno in it is found and spelled as s6 does).
type renamed struct {
	msg string
	err error
}

func (r *renamed) Error() string { return r.msg }
func (r *renamed) Unwrap() error { return r.err }

// RunImage realises an image plan whose masters m are open: one stage
// process per image process, spawned in plan order as `fdrestore stage
// --control 3` with blocking /dev/null as 0-2 (6.3 rule 5), each sent its
// plan and files; once all are ready the coordinator closes its masters
// and says go (6.6). A failure before go kills and reaps every stage,
// closes the masters, removes created paths: no program has run. After go
// it stays the parent: it forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1
// and SIGUSR2 to every process, reaps them, and returns the exit code of
// the first (the approximation of background-watch.md).
func RunImage(ip *ImagePlan, m *Masters, env []string, stderr func(string)) (int, error) {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGCHLD)
	defer signal.Stop(sigs)

	var procs []*stageProc
	abort := func(err error) (int, error) {
		for _, sp := range procs {
			if !sp.done {
				_ = unix.Kill(sp.pid, unix.SIGKILL)
			}
		}
		for _, sp := range procs {
			if !sp.done {
				_, _ = unix.Wait4(sp.pid, &sp.ws, 0, nil)
				sp.done = true
			}
			if sp.control >= 0 {
				_ = unix.Close(sp.control)
			}
		}
		_ = m.Close()
		return 0, err
	}
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return abort(exitcode.New(exitcode.Sys, fmt.Errorf("unable to open /dev/null: %w", err)))
	}
	// The os.Files proc.Spawn needs own their fds (a finalizer would close
	// them): they are closed through them, never with unix.Close.
	nullFile := os.NewFile(uintptr(null), "/dev/null")
	defer nullFile.Close()

	for k, pp := range ip.Procs {
		sp := &stageProc{id: pp.ID, control: -1}
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return abort(exitcode.New(exitcode.Sys, fmt.Errorf("unable to create the control socket of process %s: %w", pp.ID, err)))
		}
		sp.control = pair[0]
		child := os.NewFile(uintptr(pair[1]), "control")
		attr := proc.Attr{
			Files: []*os.File{nullFile, nullFile, nullFile, child},
			Env:   env,
			Path:  proc.Self(),
		}
		switch {
		case pp.Plan.Setsid:
			// the stage calls setsid(2) itself
		case pp.Pgrp == -2:
			attr.Setpgid = true
		case pp.Pgrp >= 0 && pp.Pgrp < k:
			attr.Setpgid, attr.Pgid = true, procs[pp.Pgrp].pid
		}
		sp.pid, err = proc.Spawn([]string{"fdrestore", stageArg, "--control", "3"}, attr)
		_ = child.Close()
		if err != nil {
			_ = unix.Close(pair[0])
			return abort(exitcode.New(exitcode.Sys, fmt.Errorf("unable to spawn the stage of process %s: %w", pp.ID, err)))
		}
		procs = append(procs, sp)

		req := StageRequest{Prog: pp.Exec, Path: pp.Path, Plan: pp.Plan, Spawned: true, ID: pp.ID}
		var fds []int
		for i, g := range pp.Masters {
			req.Masters = append(req.Masters, i)
			fds = append(fds, m.FDs[g])
		}
		placed := map[int]bool{}
		for _, e := range pp.Plan.Entries {
			placed[e.Target] = true
		}
		for fd := range 3 {
			if !placed[fd] && fdOpen(fd) {
				req.Stdio = append(req.Stdio, fd)
				fds = append(fds, fd)
			}
		}
		if err := sendStage(sp.control, req, append(fds, 2)); err != nil {
			return abort(fmt.Errorf("process %s: %w", pp.ID, err))
		}
	}

	// Barrier: every stage ready, or none runs.
	for _, sp := range procs {
		b, err := readMsg(sp.control)
		if err != nil || len(b) == 0 || b[0] != msgReady {
			_, _ = unix.Wait4(sp.pid, &sp.ws, 0, nil)
			sp.done = true
			if sp.ws.Exited() && sp.ws.ExitStatus() != 0 {
				// The stage said why on stderr, naming the process.
				return abort(exitcode.Exit(sp.ws.ExitStatus()))
			}
			return abort(exitcode.Errorf(exitcode.Sys, "unable to build the fd table of process %s: its stage %s", sp.id, describe(sp.ws)))
		}
	}
	_ = m.CloseFDs()
	for _, sp := range procs {
		if _, err := unix.Write(sp.control, []byte{msgGo}); err != nil {
			return abort(exitcode.Errorf(exitcode.Sys, "unable to start process %s: %w", sp.id, err))
		}
	}
	for _, sp := range procs {
		b, err := readMsg(sp.control)
		_ = unix.Close(sp.control)
		sp.control = -1
		if err == nil && len(b) >= 2 && b[0] == msgExecFailed {
			// The stage spelled the message (cli.Message) before sending it.
			return abort(exitcode.Errorf(int(b[1]), "%s", b[2:]))
		}
	}
	// Nothing is left but the created paths, which now belong to the
	// programs: forget them before closing, or Close would remove them.
	m.Paths = nil
	_ = m.Close()

	// Parent: forward signals, reap, exit like the first process.
	left := len(procs)
	for left > 0 {
		s := <-sigs
		if s != unix.SIGCHLD {
			for _, sp := range procs {
				if !sp.done {
					_ = unix.Kill(sp.pid, s.(unix.Signal))
				}
			}
			continue
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err != nil || pid <= 0 {
				break
			}
			if i := slices.IndexFunc(procs, func(sp *stageProc) bool { return sp.pid == pid }); i >= 0 && !procs[i].done {
				procs[i].ws, procs[i].done = ws, true
				left--
			}
		}
	}
	return exitcode.Approx(procs[0].ws), nil
}

// readMsg reads one message from a control socket; nil at EOF.
func readMsg(fd int) ([]byte, error) {
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func describe(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exited %d", ws.ExitStatus())
	case ws.Signaled():
		return "was killed by " + unix.SignalName(ws.Signal())
	}
	return "ended"
}

// StageBarrier is the stage's side of 6.6, once its table is built: say
// ready, wait for go. EOF first means the coordinator died: exit 111.
func StageBarrier(control int) error {
	if _, err := unix.Write(control, []byte{msgReady}); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to tell the coordinator: %w", err)
	}
	b, err := readMsg(control)
	if err != nil || len(b) != 1 || b[0] != msgGo {
		return exitcode.Errorf(exitcode.Sys, "the coordinator went away before go")
	}
	return nil
}

// StageExecFailed tells the coordinator that the exec failed.
func StageExecFailed(control int, err error, text string) {
	msg := append([]byte{msgExecFailed, byte(exitcode.Of(err))}, text...)
	_, _ = unix.Write(control, msg)
}
