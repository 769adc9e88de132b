//go:build linux

package fdholder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/gotools-dev/gotools/lib/tai"
)

// Protocol limits (skalibs unixmessage.h).
const (
	// MaxFDsPerMessage is skalibs' UNIXMESSAGE_MAXFDS, the most fds one
	// message carries; it is the kernel's SCM_MAX_FD (include/net/scm.h),
	// the most one sendmsg(2) may pass.
	MaxFDsPerMessage = 253
	// MaxIDLen is S6_FDHOLDER_ID_SIZE: an id is 1 to 255 bytes.
	MaxIDLen = 255
	// MaxPayload is UNIXMESSAGE_MAXSIZE, the largest payload a reader
	// accepts (2^28 bytes).
	MaxPayload = 1 << 28
	// HeaderSize is the length of the frame header: payload length
	// (uint32 big-endian) and fd count (uint16 big-endian).
	HeaderSize = 6
)

// Request opcodes, the first payload byte of every request
// (s6-fdholderd.c parse_protocol: "SDRL?!.").
const (
	OpStore       = 'S'
	OpDelete      = 'D'
	OpRetrieve    = 'R'
	OpList        = 'L'
	OpGetDump     = '?'
	OpSetDump     = '!'
	OpSetDumpData = '.'
)

// entrySize is the smallest encoding of one dump entry: limit, id length,
// a 1-byte id and its NUL.
const entrySize = tai.Size + 3

// maxRequest is the longest valid request: a '.' with 253 entries of
// 255-byte ids. The daemon refuses any longer frame at once instead of
// buffering up to MaxPayload bytes for a client.
const maxRequest = 1 + MaxFDsPerMessage*(tai.Size+2+MaxIDLen)

// ErrProtocol reports bytes or fds that do not follow the protocol. The
// daemon closes a connection that sends one; a client gives up.
var ErrProtocol = errors.New("protocol error")

// ErrInvalidID reports an id that is empty, longer than [MaxIDLen] bytes,
// or holds a NUL byte.
var ErrInvalidID = errors.New("invalid id")

// never and noExpiry are s6's "infinite" limits, as offsets from now:
// clients send now+2^61 s (tain_infinite_relative) for "never", and a
// limit at or beyond now+2^60 s (half of it) counts as no expiry
// (s6-fdholder-getdumpc.c).
const (
	neverSecs    = 1 << 61
	noExpirySecs = 1 << 60
)

// NeverLimit returns the wire limit for "never expires" as of now:
// now + 2^61 seconds, what s6's clients send.
func NeverLimit(now tai.Stamp) tai.Stamp {
	return tai.Stamp{Sec: now.Sec + neverSecs, Nsec: now.Nsec}
}

// NoExpiry reports whether limit counts as "never" as of now: it is at
// least 2^60 seconds ahead.
func NoExpiry(limit, now tai.Stamp) bool {
	return !less(limit, tai.Stamp{Sec: now.Sec + noExpirySecs, Nsec: now.Nsec})
}

// wireLimit turns the API's limit (zero = never) into the wire's.
func wireLimit(l tai.Stamp) tai.Stamp {
	if l.IsZero() {
		return NeverLimit(tai.Now())
	}
	return l
}

// apiLimit turns a wire limit into the API's (zero = never).
func apiLimit(l, now tai.Stamp) tai.Stamp {
	if NoExpiry(l, now) {
		return tai.Stamp{}
	}
	return l
}

// LimitAfter returns the limit d from now, or the zero Stamp ("never")
// when d is 0, as s6-fdholder-store's -T reads it.
func LimitAfter(d time.Duration) tai.Stamp {
	if d <= 0 {
		return tai.Stamp{}
	}
	return tai.FromTime(time.Now().Add(d))
}

func less(a, b tai.Stamp) bool {
	return a.Sec < b.Sec || (a.Sec == b.Sec && a.Nsec < b.Nsec)
}

// addNano returns s plus 1 ns.
func addNano(s tai.Stamp) tai.Stamp {
	s.Nsec++
	if s.Nsec > 999999999 {
		s.Nsec = 0
		s.Sec++
	}
	return s
}

// CheckID returns [ErrInvalidID] unless id is 1 to 255 bytes without NUL.
func CheckID(id string) error {
	if id == "" || len(id) > MaxIDLen || bytes.IndexByte([]byte(id), 0) >= 0 {
		return fmt.Errorf("%w %q", ErrInvalidID, id)
	}
	return nil
}

// AppendHeader appends a frame header for a payload of n bytes carrying
// nfds fds.
func AppendHeader(b []byte, n, nfds int) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	return binary.BigEndian.AppendUint16(b, uint16(nfds))
}

// SplitFrame reads one frame from the start of b: its payload, its fd
// count and the bytes it takes. n == 0 with a nil error means b holds no
// whole frame yet. A length above max or an fd count above
// [MaxFDsPerMessage] is [ErrProtocol] as soon as the header is there.
func SplitFrame(b []byte, max int) (payload []byte, nfds, n int, err error) {
	if len(b) < HeaderSize {
		return nil, 0, 0, nil
	}
	size := binary.BigEndian.Uint32(b)
	nfds = int(binary.BigEndian.Uint16(b[4:]))
	if uint64(size) > uint64(max) || nfds > MaxFDsPerMessage {
		return nil, 0, 0, fmt.Errorf("%w: frame of %d bytes and %d fds", ErrProtocol, size, nfds)
	}
	if len(b)-HeaderSize < int(size) {
		return nil, 0, 0, nil
	}
	end := HeaderSize + int(size)
	return b[HeaderSize:end], nfds, end, nil
}

// appendID appends idlen, id and its NUL.
func appendID(b []byte, id string) []byte {
	b = append(b, byte(len(id)))
	b = append(b, id...)
	return append(b, 0)
}

// AppendDumpEntry appends one entry of a getdump answer or a '.' request:
// limit[12] idlen[1] id NUL.
func AppendDumpEntry(b []byte, limit tai.Stamp, id string) []byte {
	return appendID(limit.Append(b), id)
}

// Request is one decoded request.
type Request struct {
	Op      byte
	ID      string      // S, D, R
	Limit   tai.Stamp   // S
	Delete  bool        // R
	N       uint32      // !: how many fds the dump will bring
	Entries []WireEntry // .: one per fd, in order
}

// WireEntry is an id and limit as the wire carries them (no fd).
type WireEntry struct {
	Limit tai.Stamp
	ID    string
}

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// parseID reads idlen id NUL filling exactly b (s6-fdholderd.c do_delete:
// idlen + 2 == len, NUL at the end). Unlike s6, an embedded NUL is
// refused (spec 8.6).
func parseID(b []byte) (string, error) {
	if len(b) < 3 {
		return "", protoErr("id field of %d bytes", len(b))
	}
	n := int(b[0])
	if n+2 != len(b) || b[n+1] != 0 {
		return "", protoErr("id length %d in a field of %d bytes", n, len(b))
	}
	id := b[1 : n+1]
	if bytes.IndexByte(id, 0) >= 0 {
		return "", protoErr("id with an embedded NUL")
	}
	return string(id), nil
}

// ParseRequest decodes a request payload that came with nfds fds. Every
// error is [ErrProtocol]: the daemon closes the connection.
func ParseRequest(p []byte, nfds int) (Request, error) {
	if len(p) == 0 {
		return Request{}, protoErr("empty request")
	}
	r := Request{Op: p[0]}
	rest := p[1:]
	var err error
	switch r.Op {
	case OpStore:
		if nfds != 1 || len(rest) < entrySize {
			return Request{}, protoErr("store with %d fds and %d bytes", nfds, len(rest))
		}
		if r.Limit, err = tai.Unpack(rest); err != nil {
			return Request{}, protoErr("store limit: %v", err)
		}
		if r.ID, err = parseID(rest[tai.Size:]); err != nil {
			return Request{}, err
		}
	case OpDelete:
		if nfds != 0 {
			return Request{}, protoErr("delete with %d fds", nfds)
		}
		if r.ID, err = parseID(rest); err != nil {
			return Request{}, err
		}
	case OpRetrieve:
		if nfds != 0 || len(rest) < 4 {
			return Request{}, protoErr("retrieve with %d fds and %d bytes", nfds, len(rest))
		}
		r.Delete = rest[0] != 0
		if r.ID, err = parseID(rest[1:]); err != nil {
			return Request{}, err
		}
	case OpList, OpGetDump:
		if nfds != 0 || len(rest) != 0 {
			return Request{}, protoErr("%c with %d fds and %d bytes", r.Op, nfds, len(rest))
		}
	case OpSetDump:
		if nfds != 0 || len(rest) != 4 {
			return Request{}, protoErr("setdump with %d fds and %d bytes", nfds, len(rest))
		}
		r.N = binary.BigEndian.Uint32(rest)
	case OpSetDumpData:
		if nfds == 0 {
			return Request{}, protoErr("setdump data without fds")
		}
		if r.Entries, err = ParseDumpEntries(rest, nfds); err != nil {
			return Request{}, err
		}
	default:
		return Request{}, protoErr("unknown opcode %q", r.Op)
	}
	return r, nil
}

// ParseDumpEntries decodes exactly nfds entries (limit[12] idlen[1] id
// NUL) filling all of b: a getdump message or a '.' request.
func ParseDumpEntries(b []byte, nfds int) ([]WireEntry, error) {
	if len(b) < nfds*entrySize {
		return nil, protoErr("%d dump entries in %d bytes", nfds, len(b))
	}
	es := make([]WireEntry, 0, nfds)
	for range nfds {
		if len(b) < entrySize {
			return nil, protoErr("truncated dump entry")
		}
		l, err := tai.Unpack(b)
		if err != nil {
			return nil, protoErr("dump limit: %v", err)
		}
		n := int(b[tai.Size])
		end := tai.Size + 2 + n
		if n == 0 || len(b) < end {
			return nil, protoErr("dump id length %d", n)
		}
		id, err := parseID(b[tai.Size:end])
		if err != nil {
			return nil, err
		}
		es = append(es, WireEntry{Limit: l, ID: id})
		b = b[end:]
	}
	if len(b) != 0 {
		return nil, protoErr("%d bytes after the dump entries", len(b))
	}
	return es, nil
}

// Replies. Each parser takes a reply payload and its fd count, and
// returns the holder's errno (0 = success) or [ErrProtocol].

// ParseStatus decodes a one-byte errno answer (store, delete, '.').
func ParseStatus(p []byte, nfds int) (syscall.Errno, error) {
	if len(p) != 1 || nfds != 0 {
		return 0, protoErr("status answer of %d bytes and %d fds", len(p), nfds)
	}
	return syscall.Errno(p[0]), nil
}

// ParseRetrieve decodes a retrieve answer: 0 with one fd, or an errno
// without fds.
func ParseRetrieve(p []byte, nfds int) (syscall.Errno, error) {
	if len(p) != 1 {
		return 0, protoErr("retrieve answer of %d bytes", len(p))
	}
	want := 0
	if p[0] == 0 {
		want = 1
	}
	if nfds != want {
		return 0, protoErr("retrieve answer %d with %d fds", p[0], nfds)
	}
	return syscall.Errno(p[0]), nil
}

// ParseList decodes a list answer: 0, a big-endian count, then that many
// NUL-terminated ids; or an errno.
func ParseList(p []byte, nfds int) ([]string, syscall.Errno, error) {
	if len(p) == 0 || nfds != 0 {
		return nil, 0, protoErr("list answer of %d bytes and %d fds", len(p), nfds)
	}
	if p[0] != 0 {
		return nil, syscall.Errno(p[0]), nil
	}
	if len(p) < 5 {
		return nil, 0, protoErr("list answer of %d bytes", len(p))
	}
	n := binary.BigEndian.Uint32(p[1:])
	rest := p[5:]
	if uint64(bytes.Count(rest, []byte{0})) != uint64(n) || (len(rest) > 0 && rest[len(rest)-1] != 0) {
		return nil, 0, protoErr("list answer: %d ids announced", n)
	}
	ids := make([]string, 0, n)
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, 0)
		ids = append(ids, string(rest[:i]))
		rest = rest[i+1:]
	}
	return ids, 0, nil
}

// DumpMessages returns how many messages carry n fds: ceil(n/253).
func DumpMessages(n uint32) uint32 {
	if n == 0 {
		return 0
	}
	return 1 + (n-1)/MaxFDsPerMessage
}

// ParseGetDumpHead decodes the first getdump answer: 0, the number of
// messages to follow and the number of fds (both big-endian uint32), or
// an errno.
func ParseGetDumpHead(p []byte, nfds int) (nmsg, total uint32, e syscall.Errno, err error) {
	if len(p) == 0 || nfds != 0 {
		return 0, 0, 0, protoErr("getdump answer of %d bytes and %d fds", len(p), nfds)
	}
	if p[0] != 0 {
		return 0, 0, syscall.Errno(p[0]), nil
	}
	if len(p) != 9 {
		return 0, 0, 0, protoErr("getdump answer of %d bytes", len(p))
	}
	nmsg = binary.BigEndian.Uint32(p[1:])
	total = binary.BigEndian.Uint32(p[5:])
	if nmsg != DumpMessages(total) {
		return 0, 0, 0, protoErr("getdump: %d messages for %d fds", nmsg, total)
	}
	return nmsg, total, 0, nil
}

// ParseSetDumpHead decodes the answer to '!': 0 and the number of '.'
// messages expected (big-endian uint32), or an errno.
func ParseSetDumpHead(p []byte, nfds int) (trips uint32, e syscall.Errno, err error) {
	if len(p) == 0 || nfds != 0 {
		return 0, 0, protoErr("setdump answer of %d bytes and %d fds", len(p), nfds)
	}
	if p[0] != 0 {
		return 0, syscall.Errno(p[0]), nil
	}
	if len(p) != 5 {
		return 0, 0, protoErr("setdump answer of %d bytes", len(p))
	}
	return binary.BigEndian.Uint32(p[1:]), 0, nil
}
