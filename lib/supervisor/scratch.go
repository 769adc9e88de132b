package supervisor

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sys"
)

// scratch is the buffers a service's work uses within one call and drops
// before returning: paths, a configuration file, the bytes of a status or
// death tally, the fd table and argv of a spawn, the listing of event/.
// A [Loop] holds one for all its services (one goroutine runs them), so
// that a death and restart allocates nothing once they exist (issue 20
// item 7: every 256 KiB allocated costs a collection, and each collection
// leaves runtime metadata behind for life), and 500 services of one loop
// do not each keep their own. Nothing may keep a scratch buffer across a
// call that could use it again.
type scratch struct {
	path, path2 sys.CPath
	conf        []byte // readConf's, confMax bytes
	out         []byte // a file's content, for writeFile
	files       []*os.File
	fds         []int // run's fd table, raw
	argv        []string
	notifier    ftrig.Notifier
	// spawner starts run and finish: what they share with the previous
	// spawn (the environment, often argv and the directory) is not
	// converted again, and what differs is converted into its buffers.
	spawner proc.Spawner
}

// scratch returns the loop's scratch buffers, or the service's own when it
// has no loop (a test's bare Service).
func (s *Service) scratch() *scratch {
	if s.loop != nil {
		return &s.loop.scratch
	}
	if s.own == nil {
		s.own = new(scratch)
	}
	return s.own
}

// cpath is the file name of the service directory as a NUL-terminated
// path, in the scratch buffer: valid until the next cpath.
func (s *Service) cpath(name string) *byte { return s.scratch().path.Make(s.at, name) }

// present reports whether the file name of the service directory exists,
// as lstat(2) sees it.
func (s *Service) present(name string) bool {
	var st unix.Stat_t
	return sys.Fstatat(unix.AT_FDCWD, s.cpath(name), &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// writeFile writes the file name of the service directory atomically:
// NAME.new, then a rename over NAME; NAME.new is removed on failure. No
// fsync: the state is rebuilt at every start (§2.6). The error is the
// bare errno (a failed write's is wrapped).
func (s *Service) writeFile(name string, b []byte) error {
	sc := s.scratch()
	tmp := sc.path.Make(s.at, name, ".new")
	dst := sc.path2.Make(s.at, name)
	fd, err := sys.Openat(unix.AT_FDCWD, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o666)
	if err != nil {
		return err
	}
	_, werr := sys.Write(fd, b)
	cerr := unix.Close(fd)
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = sys.Renameat(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst)
	}
	if werr != nil {
		_ = sys.Unlinkat(unix.AT_FDCWD, tmp, 0)
	}
	return werr
}
