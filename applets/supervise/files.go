package supervise

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/sys"
)

// readFile reads a servicedir file each time it is used (§1: never
// cached). A missing file is (nil, false) silently; another error warns
// and is (nil, false) too, so the caller applies its default.
func (s *service) readFile(name string) ([]byte, bool) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		s.env.Warnf("unable to read %s: %w", name, sys.Errno(err))
		return nil, false
	}
	return b, true
}

// number reads a number file: (value, true), or (0, false) when it is
// missing, unreadable or invalid (invalid warns).
func (s *service) number(name string) (uint32, bool) {
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
func (s *service) signal(name string, def unix.Signal) unix.Signal {
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
func (s *service) fdNumber(name string) int {
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

func (s *service) present(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

func (s *service) killTimeout() time.Duration {
	v, _ := s.number("timeout-kill")
	return time.Duration(v) * time.Millisecond
}

func (s *service) finishTimeout() time.Duration {
	v, ok := s.number("timeout-finish")
	if !ok {
		return defaultFinish
	}
	return time.Duration(v) * time.Millisecond // 0: unlimited
}

func (s *service) maxDeathTally() int {
	v, ok := s.number("max-death-tally")
	if !ok {
		return 100
	}
	return int(min(v, servicedir.MaxDeathTally))
}
