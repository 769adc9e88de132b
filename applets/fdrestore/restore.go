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

type restoreCmd struct {
	FD          []string `short:"f" name:"fd" sep:"none" placeholder:"[N=]SOURCE" help:"Place SOURCE at fd N (repeatable)."`
	Name        []string `name:"name" sep:"none" placeholder:"N=NAME" help:"LISTEN_FDNAMES entry of fd N (default unknown)."`
	ListenFDs   bool     `name:"listen-fds" help:"Set LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID as systemd does."`
	CloseOthers bool     `short:"C" name:"close-others" help:"Close every fd >= 3 no -f names."`
	Check       bool     `name:"check" help:"Print the plan and exit 0; create nothing."`
	Verbose     bool     `short:"v" name:"verbose" help:"Print the plan and the placement path on stderr."`
	Args        []string `arg:"" optional:"" passthrough:"partial" name:"prog" help:"The program and its arguments (after --)."`
}

// Run is restore in flags mode, in place: parse, plan, census, open the
// masters, place them, register the epolls, set LISTEN_*, sweep (-C) and
// exec (sections 6.1 to 6.5).
func (r *restoreCmd) Run(env *cli.Env) error {
	prog := cli.Operands(r.Args)
	if len(r.FD) == 0 {
		if len(prog) > 0 {
			return exitcode.Errorf(exitcode.Usage, "image mode is not supported yet")
		}
		return exitcode.ErrUsage
	}
	if len(prog) == 0 && !r.Check {
		return exitcode.ErrUsage
	}
	lim, err := limits()
	if err != nil {
		return err
	}
	before, err := fdrestore.Census(nil)
	if err != nil {
		return err
	}
	plan, err := fdrestore.NewFlagsPlan(fdrestore.FlagsConfig{
		Flags: r.FD, Names: r.Name, ListenFDs: r.ListenFDs, CloseOthers: r.CloseOthers,
		Limits: lim, Inherited: before.Inherited,
	})
	if err != nil {
		return err
	}
	if r.Check {
		printPlan(env.Stdout, plan)
		return nil
	}
	if r.Verbose {
		printPlan(env.Stderr, plan)
		fmt.Fprintf(env.Stderr, "%s: info: placement path: in place\n", env.Name)
	}
	if err := before.Refuse(plan); err != nil {
		return err
	}
	m, err := fdrestore.OpenMasters(plan)
	if err != nil {
		return err
	}
	if err := fdrestore.StageInPlace(plan, m, func(fd int) { env.Stderr = fdWriter(fd) }); err != nil {
		_ = m.Close()
		return err
	}
	// From here the masters are gone (placed or closed): only the paths
	// created on disk remain to clean up on failure.
	progEnv, warning := plan.Environ(os.Environ(), unix.Getpid())
	if warning != "" {
		env.Warnf("%s", warning)
	}
	err = proc.ExecEnv(prog, progEnv)
	_ = m.Close()
	return err
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
}
