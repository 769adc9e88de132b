package supervisor

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/sys"
)

// readFile reads a servicedir file each time it is used (§1: never
// cached). A missing file is (nil, false) silently; another error warns
// and is (nil, false) too, so the caller applies its default.
func (s *Service) readFile(name string) ([]byte, bool) {
	b, err := s.readConf(name)
	if errors.Is(err, unix.ENOENT) {
		return nil, false
	}
	if err != nil {
		s.env.Warnf("unable to read %s: %w", name, err)
		return nil, false
	}
	return b, true
}

// confMax bounds what is read of a servicedir file: every file's meaning
// is in its first line, at most 511 bytes long (pidfile), so 512 bytes
// tell a valid file from an overlong one (number and signal files must
// end their line within 64).
const confMax = 512

// readConf reads at most confMax bytes of the regular file name of the
// service directory, into the scratch buffer: the caller copies what it
// keeps before anything else reads a file. It never blocks: the open is
// non-blocking and anything but a regular file (a FIFO with no writer
// would block a plain open or read forever) is an error wrapping EINVAL.
// A missing file is a bare ENOENT, and allocates nothing.
func (s *Service) readConf(name string) ([]byte, error) {
	fd, err := sys.Openat(unix.AT_FDCWD, s.cpath(name), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		return nil, unix.EISDIR
	default:
		return nil, fmt.Errorf("not a regular file: %w", unix.EINVAL)
	}
	sc := s.scratch()
	if sc.conf == nil {
		sc.conf = make([]byte, confMax)
	}
	buf := sc.conf
	n := 0
	for n < len(buf) {
		m, err := sys.Read(fd, buf[n:])
		if err != nil {
			return nil, sys.Errno(err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	return buf[:n], nil
}

// number reads a number file: (value, true), or (0, false) when it is
// missing, unreadable or invalid (invalid warns).
func (s *Service) number(name string) (uint32, bool) {
	b, ok := s.readFile(name)
	if !ok {
		return 0, false
	}
	v, err := servicedir.ParseNumber(b)
	if err != nil {
		s.env.Warnf("invalid %s: %s", name, servicedir.Quote(b))
		return 0, false
	}
	return v, true
}

// signal reads a signal file, with def for missing or invalid.
func (s *Service) signal(name string, def unix.Signal) unix.Signal {
	b, ok := s.readFile(name)
	if !ok {
		return def
	}
	v, err := servicedir.ParseSignal(b)
	if err != nil {
		s.env.Warnf("invalid %s: %s", name, servicedir.Quote(b))
		return def
	}
	return v
}

// fdNumber reads notification-fd or lock-fd: 1 <= n < soft RLIMIT_NOFILE,
// or -1 (§1).
func (s *Service) fdNumber(name string) int {
	v, ok := s.number(name)
	if !ok {
		return -1
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && (v == 0 || uint64(v) >= rl.Cur) {
		s.env.Warnf("invalid %s: %s", name, servicedir.Quote([]byte(strconv.FormatUint(uint64(v), 10))))
		return -1
	}
	return int(v)
}

func (s *Service) killTimeout() time.Duration {
	v, _ := s.number("timeout-kill")
	return time.Duration(v) * time.Millisecond
}

func (s *Service) finishTimeout() time.Duration {
	v, ok := s.number("timeout-finish")
	if !ok {
		return defaultFinish
	}
	return time.Duration(v) * time.Millisecond // 0: unlimited
}

func (s *Service) maxDeathTally() int {
	v, ok := s.number("max-death-tally")
	if !ok {
		return 100
	}
	return int(min(v, servicedir.MaxDeathTally))
}
