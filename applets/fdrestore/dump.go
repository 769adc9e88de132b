package fdrestore

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/decimal"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fdrestore"
	"github.com/gotools-dev/gotools/lib/sys"
)

// dumpCmd is `fdrestore dump` (section 4): the image of running processes'
// fd tables, on stdout or atomically into -o FILE (mode 0600: it may hold
// secrets, section 11).
type dumpCmd struct {
	Output  string   `short:"o" name:"output" placeholder:"FILE" help:"Write the image to FILE (through FILE.new, mode 0600) instead of stdout."`
	Tree    bool     `name:"tree" help:"Also dump the descendants of each PID."`
	Live    bool     `name:"live" help:"Give files that cannot be recreated faithfully a grab:PID:FD source."`
	Data    bool     `name:"data" help:"Add pipe, FIFO and memfd contents (base64)."`
	DataMax cli.Uint `name:"data-max" placeholder:"BYTES" default:"16777216" help:"With --data, the most bytes per file (default 16777216, 16 MiB; 0: the default); more is an error."`
	Strict  bool     `name:"strict" help:"Exit 1 after writing the image if a file is unsupported or incomplete."`
	PIDs    []string `arg:"" name:"pid" help:"The processes to dump."`
}

func (c *dumpCmd) Run(env *cli.Env) error {
	var pids []int
	for _, a := range c.PIDs {
		n, ok := decimal.Parse(a, 10, 1<<22)
		if !ok || n == 0 {
			return exitcode.Errorf(exitcode.Usage, "invalid pid %q", a)
		}
		pids = append(pids, int(n))
	}
	img, _, err := fdrestore.Dump(fdrestore.DumpOptions{
		PIDs: pids, Tree: c.Tree, Live: c.Live, Data: c.Data, DataMax: int64(c.DataMax), Now: time.Now(),
	})
	if err != nil {
		return err
	}
	b, err := fdrestore.EncodeImage(img)
	if err != nil {
		return exitcode.Errorf(exitcode.Internal, "%w", err)
	}
	if c.Output == "" {
		if _, err := env.Stdout.Write(b); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to write the image: %w", sys.Errno(err))
		}
	} else if err := writeAtomic(c.Output, b); err != nil {
		return err
	}
	if c.Strict {
		return strictCheck(img)
	}
	return nil
}

// strictCheck is --strict: exit 1 if a file is unsupported or has missing
// fields, naming the first and counting the rest.
func strictCheck(img *fdrestore.Image) error {
	var bad []string
	for _, p := range img.Processes {
		for _, e := range p.FDs {
			f := img.Files[e.File]
			if f == nil {
				continue
			}
			var why string
			switch {
			case f.Type == fdrestore.TypeUnsupported:
				why = fmt.Sprintf("fd %d of process %s: file %s (%s) is unsupported: %s", e.FD, p.ID, e.File, f.Link, f.Reason)
			case len(f.Missing) > 0:
				why = fmt.Sprintf("fd %d of process %s: file %s lacks %v", e.FD, p.ID, e.File, f.Missing)
			default:
				continue
			}
			bad = append(bad, why)
		}
	}
	switch len(bad) {
	case 0:
		return nil
	case 1:
		return exitcode.Errorf(exitcode.Refused, "image is incomplete: %s", bad[0])
	}
	return exitcode.Errorf(exitcode.Refused, "image is incomplete: %s (and %d more fds)", bad[0], len(bad)-1)
}

// writeAtomic writes b to path through path.new (mode 0600, O_EXCL and
// O_NOFOLLOW so that no planted link is followed), fsyncs and renames it.
// A stale path.new of an interrupted run is removed first.
func writeAtomic(path string, b []byte) (err error) {
	tmp := path + ".new"
	if err := unix.Unlink(tmp); err != nil && !errors.Is(err, unix.ENOENT) {
		return exitcode.Errorf(exitcode.Sys, "unable to remove %s: %w", tmp, err)
	}
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to create %s: %w", tmp, err)
	}
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
		if err != nil {
			unix.Unlink(tmp)
		}
	}()
	if _, err := sys.Write(fd, b); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to write %s: %w", tmp, sys.Errno(err))
	}
	if err := unix.Fsync(fd); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to sync %s: %w", tmp, err)
	}
	err = unix.Close(fd)
	fd = -1
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to write %s: %w", tmp, err)
	}
	if err := unix.Rename(tmp, path); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to rename %s to %s: %w", tmp, path, err)
	}
	return nil
}
