package fdrestore

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fdrestore"
)

type grabCmd struct {
	placement
	Args []string `arg:"" optional:"" passthrough:"partial" name:"pid" help:"PID FD[=TARGET]... -- PROG [ARG...]"`
}

// Run is grab (section 3): each FD[=TARGET] is -f TARGET=grab:PID:FD, the
// target defaulting to FD, or with --listen-fds to the next number from 3.
func (g *grabCmd) Run(env *cli.Env) error {
	args := cli.Operands(g.Args)
	if len(args) < 2 {
		return exitcode.ErrUsage
	}
	pid, err := strconv.Atoi(args[0])
	if err != nil || pid <= 0 || args[0] != strconv.Itoa(pid) {
		return exitcode.Errorf(exitcode.Usage, "invalid pid %q", args[0])
	}
	specs, prog := args[1:], []string(nil)
	if i := slices.Index(specs, "--"); i >= 0 {
		specs, prog = specs[:i], specs[i+1:]
	} else {
		i := slices.IndexFunc(specs, func(s string) bool { _, _, ok := grabSpec(s); return !ok })
		if i < 0 {
			return exitcode.ErrUsage
		}
		specs, prog = specs[:i], specs[i:]
	}
	if len(specs) == 0 || len(prog) == 0 {
		return exitcode.ErrUsage
	}
	cfg := fdrestore.FlagsConfig{}
	next := 3
	for _, s := range specs {
		fd, target, ok := grabSpec(s)
		switch {
		case !ok:
			return exitcode.Errorf(exitcode.Usage, "invalid fd %q: it must be FD or FD=TARGET", s)
		case target >= 0:
		case g.ListenFDs:
			target = next
			next++
		default:
			target = fd
		}
		cfg.Flags = append(cfg.Flags, fmt.Sprintf("%d=grab:%d:%d", target, pid, fd))
	}
	return g.placement.run(env, cfg, prog, false)
}

// grabSpec parses FD[=TARGET]; target is -1 without =.
func grabSpec(s string) (fd, target int, ok bool) {
	a, b, has := strings.Cut(s, "=")
	fd, err := strconv.Atoi(a)
	if err != nil || fd < 0 || a != strconv.Itoa(fd) {
		return 0, 0, false
	}
	if !has {
		return fd, -1, true
	}
	target, err = strconv.Atoi(b)
	if err != nil || target < 0 || b != strconv.Itoa(target) {
		return 0, 0, false
	}
	return fd, target, true
}
