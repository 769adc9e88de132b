//go:build linux

package fdrestore

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fdholder"
)

// ResolveExec finds the file a process execs (6.1: exec[0] resolves in
// fdrestore's PATH to an executable): exe when an image recorded it (the
// file is run with argv as it is, so a program that rewrote its argv[0]
// still restores), else argv[0] searched in PATH as execvp does. The error
// is exit 127 (not found) or 126 (not executable), naming what.
func ResolveExec(exe string, argv []string) (string, error) {
	path, name, err := resolveExec(exe, argv)
	if err != nil {
		return "", execErr(fmt.Sprintf("unable to exec %s", name), err)
	}
	return path, nil
}

// resolveExec is [ResolveExec]; err is the errno, name what was looked for.
func resolveExec(exe string, argv []string) (path, name string, err error) {
	if exe == "" && (len(argv) == 0 || argv[0] == "") {
		return "", "an empty command", unix.ENOENT
	}
	name, path = exe, exe
	if exe == "" {
		name = argv[0]
		var err error
		if path, err = exec.LookPath(argv[0]); err != nil {
			var errno unix.Errno
			switch {
			case errors.As(err, &errno):
			case errors.Is(err, fs.ErrPermission):
				errno = unix.EACCES
			default:
				errno = unix.ENOENT
			}
			return "", name, errno
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", name, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", name, unix.EACCES
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return "", name, err
	}
	return path, name, nil
}

// execErr is "WHAT: ERRNO", exit 127 for a missing file, else 126.
func execErr(what string, err error) error {
	code := exitcode.NoExec
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		code = exitcode.NotFound
	}
	return exitcode.New(code, fmt.Errorf("%s: %w", what, err))
}

// ResolveExecs resolves the program of every process (its Path), so that
// a missing one is refused before any program runs. It returns every
// problem, in image order, each naming its process.
func (ip *ImagePlan) ResolveExecs() []error {
	var errs []error
	for _, pp := range ip.Procs {
		path, name, err := resolveExec(pp.Exe, pp.Exec)
		if err != nil {
			errs = append(errs, execErr(fmt.Sprintf("unable to exec %s for process %s", name, pp.ID), err))
			continue
		}
		pp.Path = path
	}
	return errs
}

// CheckDisk is the on-disk part of --check: it finds, without opening or
// creating anything, what would make the plan fail: a file to open that
// is missing (or whose directory is, with creat), an fd: source that is
// not open, a grab: pid that does not exist or lacks the fd, a hold: id
// the holder does not keep (one list per holder). Every problem is
// returned, each one line naming its fd.
func (p *Plan) CheckDisk(timeout time.Duration) []error {
	var errs []error
	lists := map[string][]string{}
	listErr := map[string]error{}
	for _, o := range p.Order {
		obj := &p.Objects[o]
		src := &obj.Source
		t := firstTarget(p, o)
		switch obj.Kind {
		case KindFile:
			path := src.Path
			if src.Flags&unix.O_CREAT != 0 {
				var st unix.Stat_t
				if err := unix.Stat(path, &st); err == nil {
					if src.Flags&unix.O_EXCL != 0 {
						errs = append(errs, sysErr("create "+path, t, unix.EEXIST))
					}
					continue
				}
				path = filepath.Dir(path)
			}
			var st unix.Stat_t
			if err := unix.Stat(path, &st); err != nil {
				errs = append(errs, sysErr("open "+src.Path, t, err))
			}
		case KindFD:
			if _, err := unix.FcntlInt(uintptr(src.FD), unix.F_GETFD, 0); err != nil {
				errs = append(errs, sysErr(fmt.Sprintf("duplicate fd %d", src.FD), t, err))
			}
		case KindGrab:
			what := fmt.Sprintf("grab fd %d of pid %d", src.FD, src.PID)
			pidfd, err := unix.PidfdOpen(src.PID, 0)
			if err != nil {
				if errors.Is(err, unix.ESRCH) {
					errs = append(errs, exitcode.Errorf(exitcode.Sys, "unable to %s for fd %d: pid %d does not exist", what, t, src.PID))
				} else {
					errs = append(errs, sysErr(what, t, err))
				}
				continue
			}
			_ = unix.Close(pidfd)
			var st unix.Stat_t
			if err := unix.Lstat(fmt.Sprintf("/proc/%d/fd/%d", src.PID, src.FD), &st); errors.Is(err, unix.ENOENT) {
				errs = append(errs, exitcode.Errorf(exitcode.Sys, "unable to %s for fd %d: pid %d has no fd %d", what, t, src.PID, src.FD))
			}
		case KindHold:
			ids, ok := lists[src.Socket]
			err := listErr[src.Socket]
			if !ok && err == nil {
				ids, err = listHolder(src.Socket, timeout)
				lists[src.Socket], listErr[src.Socket] = ids, err
				if err != nil {
					errs = append(errs, holdErr("list "+src.Socket, t, err))
				}
			}
			if err == nil && !slices.Contains(ids, src.ID) {
				errs = append(errs, holdErr("retrieve "+src.ID+" from "+src.Socket, t,
					&fdholder.RefusedError{Op: "retrieve", ID: src.ID, Errno: unix.ENOENT}))
			}
		}
	}
	return errs
}

// listHolder lists the ids the holder at socket keeps.
func listHolder(socket string, timeout time.Duration) ([]string, error) {
	c, err := fdholder.Dial(socket, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.List()
}
