//go:build linux

package rc

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/execline"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/fdholder"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/sys"
	"github.com/gotools-dev/gotools/lib/tai"
)

// Pipe ids in the holder, as s6-rc names them.
func readID(consumer string) string  { return "pipe:s6rc-r-" + consumer }
func writeID(consumer string) string { return "pipe:s6rc-w-" + consumer }

// Script runs a script-mode file (spec/rc.md §8): file was written by rc;
// its second line is a directive, args are what supervise passed.
func Script(file string, args []string, stderr io.Writer) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to read %s: %w", file, sys.Errno(err))
	}
	lines := bytes.SplitN(b, []byte{'\n'}, 3)
	if len(lines) < 2 || !bytes.HasPrefix(lines[0], []byte("#!")) {
		return exitcode.Errorf(exitcode.Usage, "%s is not an rc script", file)
	}
	d, err := execline.Lex(lines[1])
	if err != nil || len(d) == 0 {
		return exitcode.Errorf(exitcode.Usage, "%s: invalid directive", file)
	}
	switch {
	case d[0] == "fdholder" && len(d) == 2:
		return holder(d[1])
	case d[0] == "pipe-run":
		return pipeRun(d[1:], args)
	case d[0] == "exec-as" && len(d) == 3:
		return execAs(d[1], d[2], args)
	}
	return exitcode.Errorf(exitcode.Usage, "%s: unknown directive %s", file, d[0])
}

// holder is the run of s6rc-fdholder: it binds ./s, makes one pipe per
// consumer of live's db, stores both ends, notifies readiness on fd 3 and
// serves until SIGTERM.
func holder(live string) error {
	b, err := os.ReadFile(filepath.Join(live, "db"))
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to read %s/db: %w", live, sys.Errno(err))
	}
	db, err := ParseDB(b, filepath.Join(live, "db"))
	if err != nil {
		return err
	}
	const path = "s"
	_ = unix.Unlink(path)
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to create a socket: %w", err)
	}
	old := unix.Umask(0o077)
	err = unix.Bind(lfd, &unix.SockaddrUnix{Name: path})
	unix.Umask(old)
	if err == nil {
		err = unix.Listen(lfd, 64)
	}
	if err != nil {
		unix.Close(lfd)
		return exitcode.Errorf(exitcode.Sys, "unable to bind %s: %w", path, err)
	}
	stop, err := sig.SelfPipe()
	if err != nil {
		return exitcode.New(exitcode.Sys, err)
	}
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		st, err := fdholder.Serve(lfd, fdholder.Config{MaxConn: 64, MaxFDs: 2*len(db.Pipes) + 16}, stop)
		done <- result{st, err}
	}()
	c, err := fdholder.Dial(path, 5*time.Second)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to connect to %s: %w", path, err)
	}
	for consumer := range db.Pipes {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			c.Close()
			return exitcode.Errorf(exitcode.Sys, "unable to create a pipe: %w", err)
		}
		err1 := c.Store(p[0], readID(consumer), tai.Stamp{})
		err2 := c.Store(p[1], writeID(consumer), tai.Stamp{})
		unix.Close(p[0])
		unix.Close(p[1])
		if err := errors.Join(err1, err2); err != nil {
			c.Close()
			return exitcode.Errorf(exitcode.Sys, "unable to store the pipe of %s: %w", consumer, err)
		}
	}
	c.Close()
	if err := fd.Notify(3); err != nil {
		return exitcode.New(exitcode.Sys, err)
	}
	r := <-done
	if r.err != nil {
		return exitcode.New(exitcode.Sys, r.err)
	}
	return nil
}

// execAs drops to uid and gid (no supplementary groups), then execs args
// looked up in PATH: how root runs the oneshots of another uid's tree.
func execAs(uid, gid string, args []string) error {
	u, err1 := strconv.Atoi(uid)
	g, err2 := strconv.Atoi(gid)
	if err1 != nil || err2 != nil || len(args) == 0 {
		return exitcode.Errorf(exitcode.Usage, "exec-as: invalid directive")
	}
	// x/sys/unix's Setgroups, Setgid and Setuid are syscall's, which
	// apply to every thread of the process (Go 1.16 and later).
	if err := unix.Setgroups(nil); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to setgroups: %w", err)
	}
	if err := unix.Setgid(g); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to setgid: %w", err)
	}
	if err := unix.Setuid(u); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to setuid: %w", err)
	}
	path, err := lookPath(args[0], os.Environ())
	if err != nil {
		return exitcode.Errorf(proc.SpawnCode(err), "unable to exec %s: %w", args[0], err)
	}
	return proc.ExecFile(path, args, os.Environ())
}

// pipeRun is the run (or finish) of a pipelined longrun: fetch the pipe
// ends from the holder onto fds 0 and 1, then exec PROG ARGS.
func pipeRun(d, args []string) error {
	var r, w string
	for len(d) >= 2 && (d[0] == "-r" || d[0] == "-w") {
		if d[0] == "-r" {
			r = d[1]
		} else {
			w = d[1]
		}
		d = d[2:]
	}
	if len(d) != 1 {
		return exitcode.Errorf(exitcode.Usage, "pipe-run: invalid directive")
	}
	sock := filepath.Join("..", FdholderName, "s")
	c, err := fdholder.Dial(sock, 5*time.Second)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to connect to %s: %w", sock, err)
	}
	defer c.Close()
	for _, x := range []struct {
		consumer, id string
		target       int
	}{{r, readID(r), 0}, {w, writeID(w), 1}} {
		if x.consumer == "" {
			continue
		}
		got, err := c.Retrieve(x.id, false)
		if err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to retrieve %s from %s: %w", x.id, sock, err)
		}
		if err := unix.Dup2(got, x.target); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to dup2: %w", err)
		}
		unix.Close(got)
	}
	c.Close()
	argv := append([]string{d[0]}, args...)
	return proc.ExecFile(d[0], argv, os.Environ())
}
