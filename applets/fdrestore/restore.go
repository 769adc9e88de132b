package fdrestore

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/decimal"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fdrestore"
	"github.com/gotools-dev/gotools/lib/proc"
)

// placement is the options restore and grab share.
type placement struct {
	Name        []string `name:"name" sep:"none" placeholder:"N=NAME" help:"LISTEN_FDNAMES entry of fd N (default unknown)."`
	ListenFDs   bool     `name:"listen-fds" help:"Set LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID as systemd does."`
	CloseOthers bool     `short:"C" name:"close-others" help:"Close every fd >= 3 the plan does not name."`
	AllowDirFD  bool     `name:"allow-dirfd" help:"Permit directory and O_PATH fds in the result."`
	Verbose     bool     `short:"v" name:"verbose" help:"Print the plan and the placement path on stderr."`
}

// restoreSynopsis is restore's usage line.
const restoreSynopsis = "restore [OPTIONS] -f [N=]SOURCE... -- PROG... | restore [OPTIONS] IMAGE [-- PROG...]"

type restoreCmd struct {
	FD     []string `short:"f" name:"fd" sep:"none" placeholder:"[N=]SOURCE" help:"Place SOURCE at fd N (repeatable)."`
	Setsid bool     `name:"setsid" help:"Call setsid() before exec."`
	Ctty   *int     `name:"ctty" placeholder:"N" help:"Make target N (a terminal) the controlling terminal; implies --setsid."`
	Check  bool     `name:"check" help:"Print the plan, check that files, pids, fds, holder ids and programs exist (exit 1 naming each problem); create nothing."`
	Lossy  bool     `name:"lossy" help:"Image mode: leave the fds of unrestorable files closed, with a warning each."`
	// InheritStdio is image mode's --inherit-stdio.
	InheritStdio bool `name:"inherit-stdio" help:"Image mode: fds 0-2 of every process are fdrestore's own."`
	placement
	Args []string `arg:"" optional:"" passthrough:"partial" name:"prog" help:"The program and its arguments (after --)."`
	pre  []string // the -f values prescan took out of the arguments, in order
}

// Run is restore in flags mode: parse, plan, open the masters, place them
// in place or through the re-exec path, and exec (sections 6.1 to 6.5).
func (r *restoreCmd) Run(env *cli.Env) error {
	prog := cli.Operands(r.Args)
	r.FD = append(r.pre, r.FD...)
	for _, f := range r.FD {
		if _, _, _, err := fdrestore.ParseFlag(f); err != nil {
			// The synopsis, then what was wrong with which word.
			fmt.Fprintf(env.Stderr, "%s: usage: %s %s\n", env.Name, env.Name, restoreSynopsis)
			return err
		}
	}
	if len(r.FD) == 0 {
		if len(prog) == 0 {
			return exitcode.ErrUsage
		}
		return r.image(env, prog)
	}
	if len(prog) == 0 && !r.Check {
		return exitcode.ErrUsage
	}
	cfg := fdrestore.FlagsConfig{Flags: r.FD, Setsid: r.Setsid}
	if r.Ctty != nil {
		cfg.Ctty, cfg.HasCtty = *r.Ctty, true
	}
	return r.placement.run(env, cfg, prog, r.Check)
}

// run plans cfg with the shared options, then opens, places and execs prog.
func (o *placement) run(env *cli.Env, cfg fdrestore.FlagsConfig, prog []string, check bool) error {
	var err error
	cfg.Names, cfg.ListenFDs, cfg.CloseOthers, cfg.AllowDirFD = o.Name, o.ListenFDs, o.CloseOthers, o.AllowDirFD
	if cfg.Limits, err = limits(); err != nil {
		return err
	}
	before, err := fdrestore.Census(nil)
	if err != nil {
		return err
	}
	cfg.Inherited = before.Inherited
	plan, err := fdrestore.NewFlagsPlan(cfg)
	if err != nil {
		return err
	}
	path, err := fdrestore.ResolveExec("", prog)
	if check {
		printPlan(env.Stdout, plan)
		problems := plan.CheckDisk(plan.HoldTimeout)
		if err != nil && len(prog) > 0 {
			problems = append([]error{err}, problems...)
		}
		return checkResult(env, problems)
	}
	if err != nil {
		return err
	}
	if plan.Setsid && unix.Getpgrp() == unix.Getpid() {
		return exitcode.Errorf(exitcode.Sys, "unable to create a new session: fdrestore leads its process group")
	}
	m, err := fdrestore.OpenMasters(plan)
	if err != nil {
		return err
	}
	return o.placeAndExec(env, fdrestore.StageRequest{Config: cfg, Prog: prog, Path: path}, plan, m)
}

// placeAndExec places the open masters m of one process's plan in this
// process, or through the re-exec path when the Go runtime holds a target
// (req then tells the stage what to rebuild), and execs req.Prog.
func (o *placement) placeAndExec(env *cli.Env, req fdrestore.StageRequest, plan *fdrestore.Plan, m *fdrestore.Masters) error {
	t, err := fdrestore.Census(m.FDs)
	if err != nil {
		_ = m.Close()
		return err
	}
	reexec := t.Blocks(plan)
	if o.Verbose {
		printPlan(env.Stderr, plan)
		path := "in place"
		if reexec {
			path = fmt.Sprintf("re-exec (the Go runtime holds fds %v)", t.Reserved)
		}
		fmt.Fprintf(env.Stderr, "%s: info: placement path: %s\n", env.Name, path)
	}
	if reexec {
		return fdrestore.Reexec(req, plan, m)
	}
	if err := fdrestore.StageInPlace(plan, m, func(fd int) { env.Stderr = fdWriter(fd) }); err != nil {
		_ = m.Close()
		return err
	}
	return execProg(env, plan, m, &req)
}

// execProg sets LISTEN_* and execs req's program, once every fd is placed.
// Only the paths created on disk remain in m, removed if the exec fails.
func execProg(env *cli.Env, plan *fdrestore.Plan, m *fdrestore.Masters, req *fdrestore.StageRequest) error {
	progEnv, warning := plan.Environ(os.Environ(), unix.Getpid())
	if warning != "" {
		env.Warnf("%s", warning)
	}
	err := execReq(req, progEnv)
	_ = m.Close()
	return err
}

// execReq execs req.Path (argv req.Prog) when the plan resolved it, else
// req.Prog[0] from PATH.
func execReq(req *fdrestore.StageRequest, progEnv []string) error {
	if req.Path != "" {
		return proc.ExecFile(req.Path, req.Prog, progEnv)
	}
	return proc.ExecEnv(req.Prog, progEnv)
}

// stageCmd is the hidden stage process of the re-exec path (6.3 rule 4):
// the coordinator re-executes itself as `fdrestore stage --control N`.
type stageCmd struct {
	Control int `name:"control" required:"" help:"The control socket."`
}

func (s *stageCmd) Run(env *cli.Env) error {
	plan, req, m, control, err := fdrestore.Stage(s.Control, func(fd int) { env.Stderr = fdWriter(fd) })
	if err != nil {
		if m != nil {
			_ = m.Close()
		}
		return err
	}
	if control < 0 {
		return execProg(env, plan, m, req)
	}
	// Spawned (image mode): the coordinator owns the created paths and
	// reports an exec failure.
	if err := fdrestore.StageBarrier(control); err != nil {
		return err
	}
	progEnv, warning := plan.Environ(os.Environ(), unix.Getpid())
	if warning != "" {
		env.Warnf("%s", warning)
	}
	err = execReq(req, progEnv)
	fdrestore.StageExecFailed(control, err, cli.Message(fmt.Errorf("process %s: %w", req.ID, err)))
	return exitcode.Exit(exitcode.Of(err))
}

// limits reads the open-file limits the plan checks targets against: the
// hard RLIMIT_NOFILE and fs.nr_open, read raw (6.3 rule 1).
func limits() (fdrestore.Limits, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return fdrestore.Limits{}, exitcode.New(exitcode.Sys, fmt.Errorf("unable to get RLIMIT_NOFILE: %w", err))
	}
	lim := fdrestore.Limits{HardNOFILE: rl.Max}
	fd, err := unix.Open("/proc/sys/fs/nr_open", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return lim, nil // no /proc: the hard limit alone bounds the targets
	}
	defer unix.Close(fd)
	var buf [32]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil || n <= 0 {
		return lim, nil
	}
	if v, ok := decimal.Parse(strings.TrimSpace(string(buf[:n])), 20, 1<<63); ok {
		lim.NrOpen = v
	}
	return lim, nil
}

// printPlan writes one line per target, then the -C closes.
func printPlan(w interface{ Write([]byte) (int, error) }, p *fdrestore.Plan) {
	for _, e := range p.Entries {
		line := fmt.Sprintf("fd %d: %s", e.Target, e.Source.Text)
		if p.ListenFDs && e.Target >= 3 && e.Object >= 0 {
			line += " name " + e.Name
		}
		fmt.Fprintln(w, line)
	}
	if p.CloseOthers {
		fmt.Fprintf(w, "close-others: %v and every fd above %d\n", p.Close, max(p.MaxTarget, 2))
	}
	if p.Ctty >= 0 {
		fmt.Fprintf(w, "setsid, controlling terminal fd %d\n", p.Ctty)
	} else if p.Setsid {
		fmt.Fprintln(w, "setsid")
	}
}
