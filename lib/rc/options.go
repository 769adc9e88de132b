//go:build linux

package rc

import (
	"io"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/proc"
)

// Spawner starts argv with attr and returns its pid and a function that
// blocks until the process has exited and returns its wait status. The
// default spawns with [proc.Spawn] and reaps through a pidfd and
// wait4(pid); init, which reaps every child of PID 1 with wait4(-1),
// passes one that registers the pid with its reaper before the reaper can
// see it die.
type Spawner func(argv []string, attr proc.Attr) (pid int, wait func() unix.WaitStatus, err error)

// Options are what the rc command line sets, and what init sets when it
// runs the engine in-process.
type Options struct {
	Live    string // the live directory (default /run/s6-rc)
	Prefix  string // init: prefix of the SCANDIR links
	Block   bool   // -b: wait for the lock
	Verbose int    // -v
	Timeout uint32 // -t, ms, 0 = none
	// change
	Up            bool // -u (true) or -d/-D
	Force         bool // -D: essential services stop too
	All           bool // -a
	Prune         bool // -p
	HideEssential bool // -e
	DryRun        int  // -n MS: MS+1; update -n: 1
	// update
	ConvFile       string
	RestartChanged bool

	// Warn and Info print one message line each (without the "rc:
	// warning: " prefix); nil drops them. Stdout gets list output.
	Warn, Info func(msg string)
	Stdout     io.Writer
	// Spawn, when set, replaces rc's own spawning and reaping of oneshot
	// scripts: a host that reaps every child itself (init, PID 1) starts
	// the script and hands back its wait status (see [Spawner]).
	Spawn Spawner
	// Environ is the environment Init records for oneshots (nil: the
	// process's own).
	Environ []string
	// HostSignals says the host process handles signals (init, PID 1):
	// Change then neither catches nor ignores any, and the host cancels
	// the context it passes instead (a first SIGTERM: no new
	// transitions; exit code 1 unless the context's deadline passed: 2).
	HostSignals bool
}

func (o *Options) warn(format string, args ...any) {
	if o.Warn != nil && o.Verbose >= 1 {
		o.Warn(sprintf(format, args...))
	}
}

func (o *Options) info(format string, args ...any) {
	if o.Info != nil && o.Verbose >= 2 {
		o.Info(sprintf(format, args...))
	}
}

// Check reads and validates sources (rc check).
func Check(sources []string, o Options) (*DB, error) {
	r := Reader{Warn: func(m string) {
		if o.Warn != nil {
			o.Warn(m)
		}
	}, Verbose: o.Verbose}
	return r.Read(sources)
}
