//go:build linux

package ftrig

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/sys"
	"github.com/gotools-dev/gotools/lib/tai"
)

// Prefix starts the name of every listener FIFO in a fifodir.
const Prefix = "ftrig1:"

// NameLen is the length of a listener FIFO's name: Prefix, a TAI64N stamp
// in text form ("@" and 24 hex digits), ":" and 6 random characters.
const NameLen = len(Prefix) + tai.TextSize + 1 + randLen

const (
	randLen   = 6
	randChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	// tries bounds the retries of mkfifo on a name collision (EEXIST):
	// 62^6 names per nanosecond stamp make one practically impossible.
	tries = 100
)

// IsListenerName reports whether name is one a notifier writes to: exactly
// NameLen bytes starting with "ftrig1:@", as s6's ftrigw_notifyb_nosig and
// ftrigw_clean test it (they look at nothing else).
func IsListenerName(name string) bool {
	return len(name) == NameLen && name[:len(Prefix)+1] == Prefix+"@"
}

// Listener is one subscription to a fifodir: its FIFO, opened for reading
// (non-blocking, through the Go poller) and for writing (so that it never
// reads EOF when notifiers come and go).
type Listener struct {
	path  string
	r     *os.File
	w     *os.File
	close sync.Once
	err   error
}

// Subscribe adds a listener to the fifodir dir: it makes the FIFO
// dir/.ftrig1:@STAMP:RANDOM (mode 0600), opens both ends, and renames it to
// dir/ftrig1:@STAMP:RANDOM, where notifiers find it. Close it to leave.
func Subscribe(dir string) (*Listener, error) {
	var tmp, name string
	for i := 0; ; i++ {
		name = listenerName()
		tmp = filepath.Join(dir, "."+name)
		err := unix.Mkfifo(tmp, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) || i == tries {
			return nil, fmt.Errorf("unable to mkfifo %s: %w", tmp, err)
		}
	}
	l, err := open(tmp)
	if err != nil {
		unix.Unlink(tmp)
		return nil, err
	}
	final := filepath.Join(dir, name)
	l.path = tmp
	if err := os.Rename(tmp, final); err != nil {
		l.Close()
		return nil, fmt.Errorf("unable to rename %s to %s: %w", tmp, final, sys.Errno(err))
	}
	l.path = final
	return l, nil
}

// open opens both ends of the FIFO path, read end first: a non-blocking
// open for writing fails with ENXIO while there is no reader.
func open(path string) (*Listener, error) {
	rfd, err := sys.Open(path, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("unable to open %s: %w", path, sys.Errno(err))
	}
	// A non-blocking fd given to os.NewFile goes to the Go poller, so
	// Read parks the goroutine, not a thread, and honours deadlines.
	r := os.NewFile(uintptr(rfd), path)
	wfd, err := sys.Open(path, unix.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("unable to open %s: %w", path, sys.Errno(err))
	}
	return &Listener{r: r, w: os.NewFile(uintptr(wfd), path)}, nil
}

// listenerName returns a fresh "ftrig1:@STAMP:RANDOM" name.
func listenerName() string {
	b := make([]byte, 0, NameLen)
	b = append(b, Prefix...)
	b = append(b, tai.Now().String()...)
	b = append(b, ':')
	for range randLen {
		b = append(b, randChars[rand.IntN(len(randChars))])
	}
	return string(b)
}

// Path returns the listener's FIFO as notifiers see it.
func (l *Listener) Path() string { return l.path }

// Read reads the event bytes available, waiting for some until deadline (a
// zero deadline waits forever). Each notification is one atomic write, so
// one Read returns whole notifications, several if they queued up. After
// the deadline it returns an error for which errors.Is(err,
// os.ErrDeadlineExceeded) holds; after Close, os.ErrClosed.
func (l *Listener) Read(p []byte, deadline time.Time) (int, error) {
	// SetReadDeadline fails on a closed file too, with an error that
	// is not os.ErrClosed; Read then returns that one.
	if err := l.r.SetReadDeadline(deadline); errors.Is(err, os.ErrNoDeadline) {
		return 0, err
	}
	return l.r.Read(p)
}

// Close unlinks the listener's FIFO and closes both ends; notifiers stop
// seeing it at once. A blocked Read returns os.ErrClosed. Close may be
// called more than once; it returns the first result each time.
func (l *Listener) Close() error {
	l.close.Do(func() {
		if err := unix.Unlink(l.path); err != nil && !errors.Is(err, unix.ENOENT) {
			l.err = fmt.Errorf("unable to unlink %s: %w", l.path, err)
		}
		l.w.Close()
		l.r.Close()
	})
	return l.err
}

// Notify writes events, in one non-blocking write, to every listener FIFO
// of the fifodir dir, and returns how many listeners got them. It never
// blocks: a FIFO without a reader (ENXIO at open, EPIPE at write) is
// unlinked, and a full one (EAGAIN) drops the events for that listener,
// as s6's ftrigw_notifyb_nosig does. Only an unreadable dir is an error.
// len(events) should stay at most PIPE_BUF (4096) for the write to be
// atomic.
//
// Listeners may write into a fifodir (it is group-writable), so an entry
// with a listener's name may be something else they planted: it is
// opened with O_NOFOLLOW (a symbolic link is never followed) and written
// to only if fstat(2) says it is a FIFO.
//
// Notify is [Notifier.Notify] with a fresh Notifier: a caller that
// notifies often keeps one.
func Notify(dir string, events []byte) (int, error) {
	var n Notifier
	return n.Notify(dir, events)
}

// Notifier is [Notify] with its buffers kept across calls: once they
// exist, a notification allocates nothing (a supervisor emits several
// events at every death of a service, issue 20 item 7). The zero value is
// ready to use; it is not safe for concurrent use.
type Notifier struct {
	path sys.CPath
	dirs sys.DirReader
}

// Notify is [Notify].
func (n *Notifier) Notify(dir string, events []byte) (int, error) {
	sent := 0
	err := n.each(dir, func(dfd int, name *byte) {
		fd, ok := openListener(dfd, name)
		if !ok {
			return
		}
		// One write: a short one only happens on error with a pipe
		// and len(events) <= PIPE_BUF. EPIPE does not kill us: the Go
		// runtime ignores SIGPIPE for fds other than 1 and 2.
		_, err := sys.WriteOnce(fd, events)
		unix.Close(fd)
		switch {
		case err == nil:
			sent++
		case errors.Is(err, unix.EPIPE):
			_ = sys.Unlinkat(dfd, name, 0)
		}
	})
	return sent, err
}

// each calls fn for every listener FIFO name of the fifodir dir (open at
// dfd), as the directory is read. If reading dir fails part way, the
// names read until then were handed to fn.
func (n *Notifier) each(dir string, fn func(dfd int, name *byte)) error {
	dfd, err := sys.Openat(unix.AT_FDCWD, n.path.Make(dir), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("unable to open %s: %w", dir, err)
	}
	defer unix.Close(dfd)
	if n.dirs.Size == 0 {
		// A fifodir holds a few listeners: 1 KiB lists 14 per getdents
		// call, and is what a supervisor keeps for life.
		n.dirs.Size = 1024
	}
	err = n.dirs.Each(dfd, func(name []byte) {
		if isListenerName(name) {
			fn(dfd, &name[0])
		}
	})
	if err != nil {
		return fmt.Errorf("unable to read directory %s: %w", dir, sys.Errno(err))
	}
	return nil
}

// isListenerName is [IsListenerName] of a name in a directory buffer.
func isListenerName(name []byte) bool {
	return len(name) == NameLen && string(name[:len(Prefix)+1]) == Prefix+"@"
}

// openListener opens the listener FIFO name (in the fifodir open at dfd)
// for writing without blocking and without following a symbolic link,
// and checks that it is a FIFO. A FIFO without a reader (ENXIO) is
// unlinked; anything else that is not a FIFO is left alone and reported
// as not ok.
func openListener(dfd int, name *byte) (int, bool) {
	fd, err := sys.Openat(dfd, name, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, unix.ENXIO) {
			_ = sys.Unlinkat(dfd, name, 0)
		}
		return -1, false
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		unix.Close(fd)
		return -1, false
	}
	return fd, true
}

// Clean unlinks every listener FIFO of the fifodir dir that has no reader
// left (its listener died without cleaning up), as s6-supervise does at
// startup (s6 ftrigw_clean). Only an unreadable dir is an error.
func Clean(dir string) error {
	var n Notifier
	return n.each(dir, func(dfd int, name *byte) {
		if fd, ok := openListener(dfd, name); ok {
			unix.Close(fd)
		}
	})
}

// FifodirMode is the mode of a new fifodir: setgid and sticky, writable by
// its group (so group members may subscribe) but not listable by them.
const FifodirMode = os.ModeSetgid | os.ModeSticky | 0o730

// MkFifodir makes the fifodir dir (s6 ftrigw_fifodir_make) unless it
// exists, and reports whether it did. Only a new one is given the
// effective gid and mode 03730; an existing directory, or a symbolic link
// to one, is used as it is. A dangling symbolic link gets its target made
// (one level, as s6-supervise does); any other non-directory is an error
// wrapping ENOTDIR.
func MkFifodir(dir string) (created bool, err error) {
	target := dir
	err = unix.Mkdir(dir, 0o700)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		switch serr := unix.Stat(dir, &st); {
		case serr == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
			return false, nil
		case serr == nil:
			return false, fmt.Errorf("%s exists and is not a directory: %w", dir, unix.ENOTDIR)
		case !errors.Is(serr, unix.ENOENT):
			return false, fmt.Errorf("unable to stat %s: %w", dir, serr)
		}
		// A dangling symbolic link: make what it points to.
		link, lerr := os.Readlink(dir)
		if lerr != nil {
			return false, fmt.Errorf("unable to readlink %s: %w", dir, sys.Errno(lerr))
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(dir), link)
		}
		target = link
		err = unix.Mkdir(target, 0o700)
	}
	if err != nil {
		return false, fmt.Errorf("unable to mkdir %s: %w", target, err)
	}
	// chmod after chown: chown may clear the setgid bit.
	if err := unix.Chown(target, -1, unix.Getegid()); err != nil {
		return true, fmt.Errorf("unable to chown %s: %w", target, err)
	}
	if err := unix.Chmod(target, 0o3730); err != nil {
		return true, fmt.Errorf("unable to chmod %s: %w", target, err)
	}
	return true, nil
}
