//go:build linux

package fdholder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/tai"
)

// ErrClosed reports that the holder closed the connection: it denied the
// client at connect time (no rule matched), or it found a protocol error.
var ErrClosed = errors.New("connection closed by the fd holder")

// Cause sorts out an error of a request of this package's client for a
// one-line message: every failed request exits 1, as s6's clients do
// (s6-fdholder-store: diefu1sys(1, "store fd")): the holder's errno, a
// closed connection, a timeout (ETIMEDOUT) or a failed send alike; only
// the connect (the caller's own message) is 111. cause is what the
// message ends with: the errno when there is one.
func Cause(err error) (code int, cause error) {
	var refused *RefusedError
	var errno syscall.Errno
	switch {
	case errors.As(err, &refused):
		return exitcode.Refused, refused.Errno
	case errors.Is(err, ErrClosed):
		return exitcode.Refused, ErrClosed
	case errors.As(err, &errno):
		return exitcode.Refused, errno
	}
	return exitcode.Refused, err
}

// Entry is one held fd as getdump and setdump carry it.
type Entry struct {
	FD    int       // an fd of the calling process (close-on-exec when received)
	ID    string    // 1 to 255 bytes, no NUL
	Limit tai.Stamp // expiry; the zero Stamp means never (now+2^61 s on the wire)
}

// RefusedError is a holder's errno answer to a request.
type RefusedError struct {
	Op    string // "store", "delete", "retrieve", "list", "getdump", "setdump"
	ID    string // the id, for store, delete and retrieve
	Errno syscall.Errno
}

// Error returns the errno's text, e.g. "device or resource busy".
func (e *RefusedError) Error() string { return e.Errno.Error() }

// Unwrap returns the errno, so errors.Is(err, unix.EBUSY) works.
func (e *RefusedError) Unwrap() error { return e.Errno }

// Client is one blocking connection to an fd holder. It is not safe for
// concurrent use. It touches its socket only through x/sys/unix, never
// os.File or net (spec 6.3 rule 1).
type Client struct {
	s       int
	timeout time.Duration
	r       *reader
	wbuf    []byte
}

// Dial connects to the holder's socket at path with a SOCK_STREAM |
// SOCK_CLOEXEC unix socket. timeout, if not 0, bounds the connect and
// each later request's round trip.
func Dial(path string, timeout time.Duration) (*Client, error) {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("unable to create a socket: %w", err)
	}
	if timeout > 0 {
		// A unix connect(2) to a full backlog sleeps for SO_SNDTIMEO
		// (net/unix/af_unix.c unix_wait_for_peer), then fails EAGAIN.
		tv := unix.NsecToTimeval(timeout.Nanoseconds())
		_ = unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	}
	for {
		err = unix.Connect(s, &unix.SockaddrUnix{Name: path})
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(s)
		if errors.Is(err, unix.EAGAIN) {
			err = unix.ETIMEDOUT
		}
		return nil, fmt.Errorf("unable to connect to %s: %w", path, err)
	}
	c := NewClient(s)
	c.timeout = timeout
	return c, nil
}

// NewClient wraps a connected stream socket; the Client owns it from now
// on. Its requests have no timeout.
func NewClient(fd int) *Client {
	return &Client{s: fd, r: newReader(MaxPayload)}
}

// SetTimeout sets the bound of each later request's round trip (0: none).
func (c *Client) SetTimeout(d time.Duration) { c.timeout = d }

// FD returns the client's socket.
func (c *Client) FD() int { return c.s }

// Close closes the connection and any fd received and not handed out.
func (c *Client) Close() error {
	if c.s < 0 {
		return nil
	}
	c.r.close()
	err := unix.Close(c.s)
	c.s = -1
	return err
}

func (c *Client) deadline() time.Time {
	if c.timeout <= 0 {
		return time.Time{}
	}
	return time.Now().Add(c.timeout)
}

// wait polls the socket for ev until the deadline; ETIMEDOUT after it.
func (c *Client) wait(ev int16, deadline time.Time) error {
	for {
		ms := -1
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return unix.ETIMEDOUT
			}
			ms = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		fds := []unix.PollFd{{Fd: int32(c.s), Events: ev}}
		n, err := unix.Poll(fds, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
}

// send writes one frame, its fds with the first bytes.
func (c *Client) send(payload []byte, fds []int, deadline time.Time) error {
	if c.s < 0 {
		return ErrClosed
	}
	c.wbuf = append(AppendHeader(c.wbuf[:0], len(payload), len(fds)), payload...)
	data := c.wbuf
	for len(data) > 0 {
		n, err := sendFrame(c.s, data, fds)
		switch {
		case errors.Is(err, unix.EAGAIN):
			if err := c.wait(unix.POLLOUT, deadline); err != nil {
				return err
			}
			continue
		case errors.Is(err, unix.EPIPE), errors.Is(err, unix.ECONNRESET):
			return ErrClosed
		case err != nil:
			return err
		}
		if n > 0 {
			fds = nil
		}
		data = data[n:]
	}
	return nil
}

// recv reads the next frame. The payload is valid until the next recv.
func (c *Client) recv(deadline time.Time) ([]byte, []int, error) {
	if c.s < 0 {
		return nil, nil, ErrClosed
	}
	for {
		p, fds, ok, err := c.r.next()
		if err != nil {
			return nil, nil, err
		}
		if ok {
			return p, fds, nil
		}
		err = c.r.fill(c.s)
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			if err := c.wait(unix.POLLIN, deadline); err != nil {
				return nil, nil, err
			}
		case errors.Is(err, ErrClosed) && c.r.pending():
			return nil, nil, protoErr("connection closed mid-frame")
		case err != nil:
			return nil, nil, err
		}
	}
}

// roundTrip sends a request and reads the first frame of its answer.
func (c *Client) roundTrip(req []byte, fds []int, deadline time.Time) ([]byte, []int, error) {
	if err := c.send(req, fds, deadline); err != nil {
		return nil, nil, err
	}
	return c.recv(deadline)
}

func refused(op, id string, e syscall.Errno) error {
	return &RefusedError{Op: op, ID: id, Errno: e}
}

// status reads a one-byte answer; fds that came with it are closed.
func status(op, id string, p []byte, fds []int) error {
	e, err := ParseStatus(p, len(fds))
	fd.CloseAll(fds)
	if err != nil {
		return err
	}
	if e != 0 {
		return refused(op, id, e)
	}
	return nil
}

// Store gives the holder a copy of fd under id, to be closed at limit
// (the zero Stamp: never). The caller keeps fd.
func (c *Client) Store(fd int, id string, limit tai.Stamp) error {
	if err := CheckID(id); err != nil {
		return err
	}
	req := AppendDumpEntry([]byte{OpStore}, wireLimit(limit), id)
	p, fds, err := c.roundTrip(req, []int{fd}, c.deadline())
	if err != nil {
		return err
	}
	return status("store", id, p, fds)
}

// Delete makes the holder close and forget id.
func (c *Client) Delete(id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	p, fds, err := c.roundTrip(appendID([]byte{OpDelete}, id), nil, c.deadline())
	if err != nil {
		return err
	}
	return status("delete", id, p, fds)
}

// Retrieve returns a copy of the fd held as id (close-on-exec); with del
// the holder forgets it (which needs the store right too).
func (c *Client) Retrieve(id string, del bool) (int, error) {
	if err := CheckID(id); err != nil {
		return -1, err
	}
	d := byte(0)
	if del {
		d = 1
	}
	p, fds, err := c.roundTrip(appendID([]byte{OpRetrieve, d}, id), nil, c.deadline())
	if err != nil {
		return -1, err
	}
	e, err := ParseRetrieve(p, len(fds))
	if err != nil {
		fd.CloseAll(fds)
		return -1, err
	}
	if e != 0 {
		return -1, refused("retrieve", id, e)
	}
	return fds[0], nil
}

// List returns the held ids in the order the holder sends them.
func (c *Client) List() ([]string, error) {
	p, fds, err := c.roundTrip([]byte{OpList}, nil, c.deadline())
	if err != nil {
		return nil, err
	}
	ids, e, err := ParseList(p, len(fds))
	fd.CloseAll(fds)
	if err != nil {
		return nil, err
	}
	if e != 0 {
		return nil, refused("list", "", e)
	}
	return ids, nil
}

// GetDump returns a copy of every held fd with its id and limit (the
// zero Stamp for no expiry). The fds are close-on-exec; the caller closes
// them.
func (c *Client) GetDump() (entries []Entry, err error) {
	deadline := c.deadline()
	p, fds, err := c.roundTrip([]byte{OpGetDump}, nil, deadline)
	if err != nil {
		return nil, err
	}
	nmsg, total, e, err := ParseGetDumpHead(p, len(fds))
	fd.CloseAll(fds)
	if err != nil {
		return nil, err
	}
	if e != 0 {
		return nil, refused("getdump", "", e)
	}
	defer func() {
		if err != nil {
			for _, en := range entries {
				unix.Close(en.FD)
			}
			entries = nil
		}
	}()
	now := tai.Now()
	entries = make([]Entry, 0, total)
	for range nmsg {
		p, fds, err := c.recv(deadline)
		if err != nil {
			return entries, err
		}
		if uint64(len(entries))+uint64(len(fds)) > uint64(total) || len(fds) == 0 {
			fd.CloseAll(fds)
			return entries, protoErr("getdump: more fds than the %d announced", total)
		}
		ws, err := ParseDumpEntries(p, len(fds))
		if err != nil {
			fd.CloseAll(fds)
			return entries, err
		}
		for i, w := range ws {
			entries = append(entries, Entry{FD: fds[i], ID: w.ID, Limit: apiLimit(w.Limit, now)})
		}
	}
	if uint64(len(entries)) != uint64(total) {
		return entries, protoErr("getdump: %d fds announced, %d came", total, len(entries))
	}
	return entries, nil
}

// SetDump gives the holder copies of every entry's fd, in messages of at
// most [MaxFDsPerMessage] fds; an id already held is replaced. The caller
// keeps the fds.
func (c *Client) SetDump(entries []Entry) error {
	if len(entries) == 0 {
		return nil // as s6_fdholder_setdump: nothing is sent
	}
	for _, en := range entries {
		if err := CheckID(en.ID); err != nil {
			return err
		}
	}
	deadline := c.deadline()
	req := binary.BigEndian.AppendUint32([]byte{OpSetDump}, uint32(len(entries)))
	p, fds, err := c.roundTrip(req, nil, deadline)
	if err != nil {
		return err
	}
	trips, e, err := ParseSetDumpHead(p, len(fds))
	fd.CloseAll(fds)
	if err != nil {
		return err
	}
	if e != 0 {
		return refused("setdump", "", e)
	}
	// s6 2.11.3.2 on Debian (libskarnet 2.13) counts trips by 255 fds
	// though no message may carry more than 253; accept its count too
	// and send 253 per message: its daemon answers by fds, not trips.
	n := uint32(len(entries))
	if trips != DumpMessages(n) && trips != 1+(n-1)/255 {
		return protoErr("setdump: %d trips for %d fds", trips, len(entries))
	}
	trips = DumpMessages(n)
	for i := uint32(0); i < trips; i++ {
		batch := entries[i*MaxFDsPerMessage : min(len(entries), int(i+1)*MaxFDsPerMessage)]
		req := []byte{OpSetDumpData}
		bfds := make([]int, len(batch))
		for j, en := range batch {
			req = AppendDumpEntry(req, wireLimit(en.Limit), en.ID)
			bfds[j] = en.FD
		}
		p, fds, err := c.roundTrip(req, bfds, deadline)
		if err != nil {
			return err
		}
		e, err := ParseStatus(p, len(fds))
		fd.CloseAll(fds)
		if err != nil {
			return err
		}
		last := i == trips-1
		switch {
		case last && e == unix.EAGAIN, !last && e == 0:
			return protoErr("setdump: answer %d to message %d of %d", e, i+1, trips)
		case e != 0 && e != unix.EAGAIN:
			return refused("setdump", "", e)
		}
	}
	return nil
}
