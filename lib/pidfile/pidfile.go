//go:build linux

package pidfile

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"

	"github.com/gotools-dev/gotools/lib/decimal"
	"github.com/gotools-dev/gotools/lib/sys"
	"golang.org/x/sys/unix"
)

// ErrInvalid is the error for a pid file that exists but does not hold a
// pid: garbage, an empty file, more than [MaxSize] bytes, or not a regular
// file. Its text completes supervise.md's warning "pidfile PATH does not
// contain a valid pid".
var ErrInvalid = errors.New("does not contain a valid pid")

const (
	// MaxSize is the largest pid file read (background-watch.md step 5):
	// a real one is at most 11 bytes, so anything longer is not a pid file.
	MaxSize = 512

	// MaxPID is the largest pid accepted. The kernel's own limit is
	// PID_MAX_LIMIT, 2^22 on 64-bit (proc(5) /proc/sys/kernel/pid_max), but
	// pid_t is a 32-bit signed int, so 2^31-1 is the most a pid file can
	// meaningfully hold.
	MaxPID = 1<<31 - 1

	maxDigits = 10
)

// Parse returns the pid in b, the content of a pid file. b must be at most
// [MaxSize] bytes and be exactly one line, "PID\n" or "PID" with no newline,
// where PID is 1 to 10 ASCII decimal digits worth 1..[MaxPID]. There is no
// room for a sign, a space, a "\r" or a second line. Leading zeros are
// accepted ("0042" is 42), as skalibs' uint_scan reads them; no daemon
// writes them, and they cannot make one number read as another. Every
// failure is [ErrInvalid] itself, so the caller's message is exactly
// "pidfile PATH does not contain a valid pid".
func Parse(b []byte) (int, error) {
	if len(b) > MaxSize {
		return 0, ErrInvalid
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	pid, ok := decimal.Parse(b, maxDigits, MaxPID)
	if !ok || pid < 1 {
		return 0, ErrInvalid
	}
	return int(pid), nil
}

// Read reads and parses the pid file at path. It follows symlinks (pid
// files in /run often are ones) but opens with O_NONBLOCK and O_NOCTTY, so
// that a fifo or a terminal planted at path can neither block the caller
// nor become its controlling terminal (open(2)); anything but a regular
// file is [ErrInvalid]. A system call failure is returned as the bare
// errno, not an *os.PathError, so the caller can say "unable to read
// pidfile PATH: No such file or directory" naming PATH once; a missing file
// satisfies errors.Is(err, fs.ErrNotExist).
func Read(path string) (int, error) {
	b, err := readRegular(path, MaxSize+1)
	if err != nil {
		return 0, err
	}
	return Parse(b)
}

// readRegular reads at most max bytes of the regular file at path.
func readRegular(path string, max int) ([]byte, error) {
	fd, err := sys.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, sys.Errno(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, sys.Errno(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, ErrInvalid
	}
	return readAtMost(fd, max)
}

// readAtMost reads fd until EOF or until max bytes, whichever comes first:
// read(2) may return less than asked for before the end of a file.
func readAtMost(fd, max int) ([]byte, error) {
	b := make([]byte, max)
	n := 0
	for n < max {
		m, err := sys.Read(fd, b[n:])
		if err != nil {
			return nil, sys.Errno(err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	return b[:n], nil
}

// Write atomically replaces the pid file at path with "PID\n". It creates a
// temporary file with a random name in path's directory, with
// O_CREAT|O_EXCL|O_NOFOLLOW so that nothing planted there is followed or
// reused, mode 0644 minus the umask, fsyncs it and renames it over path
// (rename(2) replaces path atomically: a reader sees the old file or the
// whole new one). The temporary file is removed on every error. The
// directory is not fsynced: a pid file does not outlive a reboot. Errors
// are bare errnos, as [Read]'s are.
func Write(path string, pid int) (err error) {
	if pid < 1 || pid > MaxPID {
		return fmt.Errorf("pid %d out of range 1..%d", pid, MaxPID)
	}
	tmp, fd, err := createTemp(path)
	if err != nil {
		return err
	}
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
		if err != nil {
			unix.Unlink(tmp)
		}
	}()
	if _, err := sys.Write(fd, []byte(strconv.Itoa(pid)+"\n")); err != nil {
		return sys.Errno(err)
	}
	if err := unix.Fsync(fd); err != nil {
		return sys.Errno(err)
	}
	err = unix.Close(fd)
	fd = -1
	if err != nil {
		return sys.Errno(err)
	}
	if err := unix.Rename(tmp, path); err != nil {
		return sys.Errno(err)
	}
	return nil
}

// createTemp creates a new file next to path, named ".BASE.RANDOM.tmp"
// so that it stays hidden from a glob of the pid file's name.
func createTemp(path string) (string, int, error) {
	dir, base := filepath.Split(path)
	for range 100 {
		tmp := dir + "." + base + "." + strconv.FormatUint(rand.Uint64(), 36) + ".tmp"
		fd, err := sys.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o644)
		if err == nil {
			return tmp, fd, nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return "", -1, sys.Errno(err)
		}
	}
	return "", -1, unix.EEXIST
}

// Remove unlinks the pid file at path; a file already gone is not an error.
// Errors are bare errnos, as [Read]'s are.
func Remove(path string) error {
	if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}
