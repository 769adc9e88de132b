//go:build linux

package fdrestore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
)

// MaxBatch is the most fds [SendFiles] puts in one message: one below the
// kernel's SCM_MAX_FD (253), as section 6.4 says.
const MaxBatch = 252

// scmMaxFD is the kernel's limit of fds in one SCM_RIGHTS message; the
// receiver's control buffer has room for that many.
const scmMaxFD = 253

// A batch is one sendmsg: the data is the header, a little-endian uint32
// count followed by count uint32 file indexes, and the control message
// carries count fds in the same order.
func header(idx []uint32) []byte {
	b := make([]byte, 4+4*len(idx))
	binary.LittleEndian.PutUint32(b, uint32(len(idx)))
	for i, x := range idx {
		binary.LittleEndian.PutUint32(b[4+4*i:], x)
	}
	return b
}

// SendFiles sends fds over the unix socket sock (SOCK_SEQPACKET, or stream),
// fds[i] as file idx[i], in batches of at most [MaxBatch] fds per sendmsg.
// The fds stay open in the sender. ETOOMANYREFS (too many fds in flight) is
// an error like any other: exit 111.
func SendFiles(sock int, idx []uint32, fds []int) error {
	if len(idx) != len(fds) {
		return exitcode.Errorf(exitcode.Internal, "SendFiles: %d indexes for %d fds", len(idx), len(fds))
	}
	for start := 0; start < len(fds); start += MaxBatch {
		end := min(start+MaxBatch, len(fds))
		data, oob := header(idx[start:end]), unix.UnixRights(fds[start:end]...)
		err := retry(func() error {
			n, err := unix.SendmsgN(sock, data, oob, nil, unix.MSG_NOSIGNAL)
			if err == nil && n != len(data) {
				err = fmt.Errorf("short write (%d of %d bytes)", n, len(data))
			}
			return err
		})
		if err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to send files %d to %d of %d: %w", start, end-1, len(fds), err)
		}
	}
	return nil
}

// RecvFiles receives want fds sent by [SendFiles] on sock, with
// MSG_CMSG_CLOEXEC, and returns them with their file indexes, in the order
// sent. A truncated control message (MSG_CTRUNC), a header that does not
// match the fds that came with it, a file index given twice, more files than
// want or an early EOF is an error, and every fd received so far is closed.
// The caller checks that each index names a file it expects.
func RecvFiles(sock int, want int) (idx []uint32, fds []int, err error) {
	defer func() {
		if err != nil {
			fd.CloseAll(fds)
			idx, fds = nil, nil
			err = exitcode.Errorf(exitcode.Sys, "unable to receive files: %w", err)
		}
	}()
	if want < 0 {
		return nil, nil, fmt.Errorf("negative count %d", want)
	}
	data := make([]byte, 4+4*scmMaxFD)
	oob := make([]byte, unix.CmsgSpace(4*scmMaxFD))
	seen := make(map[uint32]bool, want)
	for len(fds) < want {
		var n, oobn, flags int
		err = retry(func() (e error) {
			n, oobn, flags, _, e = unix.Recvmsg(sock, data, oob, unix.MSG_CMSG_CLOEXEC)
			return e
		})
		if err != nil {
			return idx, fds, err
		}
		got, perr := parseRights(oob[:oobn])
		fds = append(fds, got...) // closed on error, whatever comes next
		switch {
		case flags&unix.MSG_CTRUNC != 0:
			return idx, fds, errors.New("control message truncated (MSG_CTRUNC)")
		case perr != nil:
			return idx, fds, perr
		case flags&unix.MSG_TRUNC != 0:
			return idx, fds, errors.New("header truncated (MSG_TRUNC)")
		case n == 0 && len(got) == 0:
			return idx, fds, fmt.Errorf("connection closed after %d of %d files", len(fds), want)
		case n < 4:
			return idx, fds, fmt.Errorf("bad header: %d bytes", n)
		}
		count := int(binary.LittleEndian.Uint32(data))
		switch {
		case count == 0 || count > scmMaxFD:
			return idx, fds, fmt.Errorf("bad header: count %d", count)
		case n != 4+4*count:
			return idx, fds, fmt.Errorf("bad header: %d bytes for %d files", n, count)
		case count != len(got):
			return idx, fds, fmt.Errorf("header lists %d files, message carries %d fds", count, len(got))
		case len(fds) > want:
			return idx, fds, fmt.Errorf("received %d files, want %d", len(fds), want)
		}
		for i := range count {
			x := binary.LittleEndian.Uint32(data[4+4*i:])
			if seen[x] {
				return idx, fds, fmt.Errorf("file index %d received twice", x)
			}
			seen[x] = true
			idx = append(idx, x)
		}
	}
	return idx, fds, nil
}

// parseRights returns every fd in the SCM_RIGHTS messages of oob. On a
// malformed buffer it still returns the fds it could read, so that the
// caller closes them.
func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("bad control message: %w", err)
	}
	var fds []int
	var bad error
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			bad = fmt.Errorf("unexpected control message (level %d, type %d)", m.Header.Level, m.Header.Type)
			continue
		}
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			bad = fmt.Errorf("bad control message: %w", err)
			continue
		}
		fds = append(fds, got...)
	}
	return fds, bad
}
