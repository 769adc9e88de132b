//go:build linux

package fdholder

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/fd"
)

// queuedFD is an fd received on a stream, with the stream offset just
// past the bytes of the recvmsg(2) that carried it. The kernel hands the
// fds of a sendmsg(2) to the read that copies the first byte of that
// sendmsg (net/unix/af_unix.c unix_stream_read_generic, which also stops
// the read there), and skalibs attaches a message's fds to its header
// (unixmessage_sender_flush), so a frame's fds always arrive after its
// first byte and before the first byte of the next frame.
type queuedFD struct {
	fd int
	at int64
}

// reader buffers the bytes and fds read from one stream socket and cuts
// them into frames; one reader serves one connection, on either side.
type reader struct {
	buf  []byte // buf[off:] is unread
	off  int
	base int64 // stream offset of buf[0]
	fds  []queuedFD
	max  int    // largest payload accepted
	oob  []byte // control buffer with room for 253 fds
}

func newReader(max int) *reader {
	return &reader{max: max}
}

// fill does one non-blocking recvmsg(2) with MSG_CMSG_CLOEXEC. It returns
// unix.EAGAIN when nothing is there, [ErrClosed] at end of stream, and
// [ErrProtocol] for truncated or foreign control data.
func (r *reader) fill(s int) error {
	if r.off > 0 && (r.off == len(r.buf) || r.off > 64<<10) {
		n := copy(r.buf, r.buf[r.off:])
		r.base += int64(r.off)
		r.buf = r.buf[:n]
		r.off = 0
	}
	if cap(r.buf)-len(r.buf) < 16<<10 {
		nb := make([]byte, len(r.buf), 2*cap(r.buf)+32<<10)
		copy(nb, r.buf)
		r.buf = nb
	}
	if r.oob == nil {
		r.oob = make([]byte, unix.CmsgSpace(MaxFDsPerMessage*4))
	}
	space := r.buf[len(r.buf):cap(r.buf)]
	n, oobn, flags, _, err := unix.Recvmsg(s, space, r.oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE) {
			return ErrClosed
		}
		return err
	}
	fds, cerr := rights(r.oob[:oobn])
	if cerr == nil && flags&unix.MSG_CTRUNC != 0 {
		cerr = protoErr("control data truncated")
	}
	if cerr != nil {
		fd.CloseAll(fds)
		return cerr
	}
	r.buf = r.buf[:len(r.buf)+n]
	at := r.base + int64(len(r.buf))
	for _, fd := range fds {
		r.fds = append(r.fds, queuedFD{fd: fd, at: at})
	}
	if n == 0 {
		return ErrClosed
	}
	return nil
}

// rights returns the fds of the SCM_RIGHTS messages in oob; any other
// control message is [ErrProtocol] (its fds are still returned, to be
// closed).
func rights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, protoErr("control data: %v", err)
	}
	var fds []int
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			err = protoErr("control message %d/%d", m.Header.Level, m.Header.Type)
			continue
		}
		f, e := unix.ParseUnixRights(&m)
		if e != nil {
			err = protoErr("control data: %v", e)
		}
		fds = append(fds, f...)
	}
	return fds, err
}

// next returns the next whole frame, ok == false when more bytes are
// needed. The payload aliases the buffer until the next fill. A frame
// whose fds are missing, or followed by fds no frame claims, is
// [ErrProtocol].
func (r *reader) next() (payload []byte, fds []int, ok bool, err error) {
	p, nfds, n, err := SplitFrame(r.buf[r.off:], r.max)
	if err != nil || n == 0 {
		return nil, nil, false, err
	}
	start := r.base + int64(r.off)
	end := start + int64(n)
	if len(r.fds) < nfds {
		return nil, nil, false, protoErr("frame announces %d fds, %d came", nfds, len(r.fds))
	}
	for _, q := range r.fds[:nfds] {
		if q.at <= start {
			return nil, nil, false, protoErr("fds sent before their frame")
		}
	}
	if len(r.fds) > nfds && r.fds[nfds].at <= end {
		return nil, nil, false, protoErr("frame announces %d fds, more came", nfds)
	}
	if nfds > 0 {
		fds = make([]int, nfds)
		for i, q := range r.fds[:nfds] {
			fds[i] = q.fd
		}
		r.fds = r.fds[nfds:]
	}
	r.off += n
	return p, fds, true, nil
}

// pending reports whether bytes of an incomplete frame are buffered.
func (r *reader) pending() bool { return r.off < len(r.buf) }

// close closes every fd still queued.
func (r *reader) close() {
	for _, q := range r.fds {
		unix.Close(q.fd)
	}
	r.fds = nil
}

// sendFrame does one non-blocking sendmsg(2) of data, with fds as
// SCM_RIGHTS when there are any, and MSG_NOSIGNAL so that a gone peer is
// EPIPE, not a signal.
func sendFrame(s int, data []byte, fds []int) (int, error) {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	for {
		n, err := unix.SendmsgN(s, data, oob, nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return n, err
	}
}
