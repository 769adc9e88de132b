package fdrestore

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fdrestore"
)

// image is `restore IMAGE|- [-- PROG [ARG...]]`: a one-process image is
// placed in this process (in place or re-exec'd) and execs; a
// multi-process image spawns one stage per process and stays their parent.
func (r *restoreCmd) image(env *cli.Env, args []string) error {
	name, prog := args[0], []string(nil)
	if len(args) > 1 {
		if args[1] != "--" || len(args) == 2 {
			return exitcode.ErrUsage
		}
		prog = args[2:]
	}
	if r.Setsid || r.Ctty != nil || len(r.Name) > 0 {
		return exitcode.Errorf(exitcode.Usage, "--setsid, --ctty and --name are for flags mode: an image says them per process")
	}
	data, err := readImage(name)
	if err != nil {
		return err
	}
	img, err := fdrestore.DecodeImage(data)
	if err != nil {
		return err
	}
	lim, err := limits()
	if err != nil {
		return err
	}
	ip, err := fdrestore.NewImagePlan(fdrestore.ImageConfig{
		Image: img, Prog: prog, Lossy: r.Lossy, ListenFDs: r.ListenFDs,
		AllowDirFD: r.AllowDirFD, InheritStdio: r.InheritStdio, Limits: lim,
	})
	if err != nil {
		return err
	}
	for _, w := range ip.Warnings {
		env.Warnf("%s", w)
	}
	problems := ip.ResolveExecs()
	if r.Check {
		for _, err := range ip.Global.CheckDisk(ip.Global.HoldTimeout) {
			problems = append(problems, ip.RenameTargets(err))
		}
		for _, pp := range ip.Procs {
			fmt.Fprintf(env.Stdout, "process %s: %q\n", pp.ID, pp.Exec)
			printPlan(env.Stdout, pp.Plan)
		}
		return checkResult(env, problems)
	}
	if len(problems) > 0 {
		return problems[0]
	}
	if len(ip.Procs) == 1 && ip.Procs[0].Plan.Setsid && unix.Getpgrp() == unix.Getpid() {
		return exitcode.Errorf(exitcode.Sys, "unable to create a new session: fdrestore leads its process group")
	}
	m, err := fdrestore.OpenMasters(ip.Global)
	if err != nil {
		return ip.RenameTargets(err)
	}
	if len(ip.Procs) > 1 {
		if r.Verbose {
			fmt.Fprintf(env.Stderr, "%s: info: placement path: %d stage processes\n", env.Name, len(ip.Procs))
		}
		code, err := fdrestore.RunImage(ip, m, os.Environ(), nil)
		if err != nil {
			return err
		}
		return exitcode.Exit(code)
	}
	pp := ip.Procs[0]
	m = ip.ViewMasters(0, m) // one process: every global master is its own
	return r.placeAndExec(env, fdrestore.StageRequest{Plan: pp.Plan, Prog: pp.Exec, Path: pp.Path, ID: pp.ID}, pp.Plan, m)
}

// checkResult prints every problem --check found, one fatal line each, and
// exits 1 if there is any (section 10).
func checkResult(env *cli.Env, problems []error) error {
	for _, err := range problems {
		env.Fatal(err)
	}
	if len(problems) > 0 {
		return exitcode.Exit(exitcode.Refused)
	}
	return nil
}

// readImage reads the image file, or stdin for "-", with raw system calls
// (6.3 rule 1: an os.File would start the Go runtime's netpoller).
func readImage(name string) ([]byte, error) {
	fd := 0
	if name != "-" {
		var err error
		if fd, err = unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return nil, exitcode.Errorf(exitcode.Sys, "unable to open image %s: %w", name, err)
		}
		defer unix.Close(fd)
	}
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, exitcode.Errorf(exitcode.Sys, "unable to read image %s: %w", name, err)
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
		if len(out) > 1<<30 {
			return nil, exitcode.Errorf(exitcode.Usage, "image %s is larger than 1 GiB", name)
		}
	}
}
