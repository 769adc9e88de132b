// Package lockproto is gotools' lock protocol (spec/locks.md, "The
// protocol"): the frame codec that lockd, setlock and the client share,
// and a client for Go programs.
//
// Every message is a frame: a 4-byte big-endian length, then 1 to 4096
// payload bytes. The client speaks first with [ClientBanner]; lockd
// answers with a [Hello]. Requests ([Request]) go one way, messages
// ([Message]) the other. Decoding never allocates more than one frame.
package lockproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"
)

// The handshake banners, 21 bytes each; a future version changes both.
const (
	ClientBanner = "gotools-lockd v1 (c)\n"
	ServerBanner = "gotools-lockd v1 (s)\n"
)

// Protocol limits.
const (
	MaxPayload   = 4096       // largest frame payload, both directions
	MaxName      = 1024       // longest lock name
	MaxComponent = 255        // longest component of a lock name
	Forever      = 0xFFFFFFFF // acquire timeout: wait forever; entry left_ms: no deadline
	HelloSize    = 33         // the server's handshake answer
	// KilledByLockd is the hstatus of a helper lockd killed itself.
	KilledByLockd = 0xFFFF
)

// Request ops.
const (
	OpAcquire = 'A'
	OpRelease = 'R'
	OpList    = 'L'
)

// Acquire flags.
const (
	FlagExclusive = 1 // bit 0: an exclusive lock (else shared)
	// FlagPassFD (bit 1) asks lockd to pass the locked file itself with
	// the grant: a [MsgGrantedFD] frame carrying one fd (SCM_RIGHTS). The
	// client then holds the lock on that open file description, so the
	// lock outlives lockd; lockd keeps its own copy until the release or
	// the client's disconnect. Only on a Unix socket; a lock lockd cannot
	// pass (held by an external helper) is granted with a plain
	// [MsgGranted].
	FlagPassFD = 2
)

// Message types.
const (
	MsgReply   = 'r'
	MsgGranted = 'g'
	// MsgGrantedFD is [MsgGranted] with the locked file's fd attached to
	// the frame (SCM_RIGHTS on the frame's first byte).
	MsgGrantedFD = 'G'
	MsgFailed    = 'f'
	MsgLost      = 'x'
	MsgEntry     = 'e'
)

// ErrProto is wrapped by every decoding error: a bad frame length, an
// unknown op or type, a payload of the wrong length.
var ErrProto = syscall.EPROTO

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrProto)
}

// Mode is a lock's kind: flags bit 0 of an acquire.
type Mode uint8

// The modes.
const (
	Shared    Mode = 0
	Exclusive Mode = 1
)

func (m Mode) String() string {
	if m == Exclusive {
		return "ex"
	}
	return "sh"
}

// AppendFrame appends payload as one frame to dst.
func AppendFrame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// SplitFrame finds the first frame in b: its payload and the number of
// bytes it takes. n == 0 with a nil error means b holds no whole frame
// yet. A length of 0 or over [MaxPayload] is an [ErrProto] error.
func SplitFrame(b []byte) (payload []byte, n int, err error) {
	if len(b) < 4 {
		return nil, 0, nil
	}
	l := binary.BigEndian.Uint32(b)
	if l == 0 || l > MaxPayload {
		return nil, 0, protoErr("frame length %d", l)
	}
	if uint32(len(b)-4) < l {
		return nil, 0, nil
	}
	return b[4 : 4+l], int(4 + l), nil
}

// ReadFrame reads one frame from r into buf (which must hold
// [MaxPayload] bytes) and returns its payload, a slice of buf.
func ReadFrame(r io.Reader, buf []byte) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	l := binary.BigEndian.Uint32(h[:])
	if l == 0 || l > MaxPayload {
		return nil, protoErr("frame length %d", l)
	}
	if len(buf) < int(l) {
		return nil, fmt.Errorf("lockproto: ReadFrame buffer of %d bytes", len(buf))
	}
	if _, err := io.ReadFull(r, buf[:l]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf[:l], nil
}

// Hello is lockd's answer to the client's banner.
type Hello struct {
	Status     syscall.Errno // 0 admitted; EPERM, EPROTO, EUSERS: refused
	MaxPayload uint32
	MaxName    uint16
	MaxLocks   uint32 // this client's lock limit (-n)
}

// Marshal returns the [HelloSize] bytes of h, banner included.
func (h Hello) Marshal() []byte {
	b := make([]byte, 0, HelloSize)
	b = append(b, ServerBanner...)
	b = binary.BigEndian.AppendUint16(b, uint16(h.Status))
	b = binary.BigEndian.AppendUint32(b, h.MaxPayload)
	b = binary.BigEndian.AppendUint16(b, h.MaxName)
	return binary.BigEndian.AppendUint32(b, h.MaxLocks)
}

// ParseHello decodes lockd's handshake answer. A wrong banner (another
// protocol or version) is an [ErrProto] error.
func ParseHello(b []byte) (Hello, error) {
	if len(b) != HelloSize || string(b[:len(ServerBanner)]) != ServerBanner {
		return Hello{}, protoErr("not a gotools-lockd v1 server")
	}
	b = b[len(ServerBanner):]
	return Hello{
		Status:     syscall.Errno(binary.BigEndian.Uint16(b)),
		MaxPayload: binary.BigEndian.Uint32(b[2:]),
		MaxName:    binary.BigEndian.Uint16(b[6:]),
		MaxLocks:   binary.BigEndian.Uint32(b[8:]),
	}, nil
}

// Request is a client's request. Flags is the raw acquire flags byte
// (bit 0: exclusive); other bits set are a request error (EINVAL) for
// lockd to answer, not a decoding error.
type Request struct {
	Op      byte
	ID      uint32
	Flags   byte
	Timeout uint32 // ms; 0 try once; Forever
	Name    string
}

// Mode is the mode bit of an acquire's flags.
func (r Request) Mode() Mode { return Mode(r.Flags & FlagExclusive) }

// Marshal returns r's payload (not framed).
func (r Request) Marshal() []byte {
	b := []byte{r.Op}
	b = binary.BigEndian.AppendUint32(b, r.ID)
	if r.Op == OpAcquire {
		b = append(b, r.Flags)
		b = binary.BigEndian.AppendUint32(b, r.Timeout)
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.Name)))
		b = append(b, r.Name...)
	}
	return b
}

// ParseRequest decodes a request payload. An unknown op or a payload of
// the wrong length is an [ErrProto] error.
func ParseRequest(p []byte) (Request, error) {
	if len(p) == 0 {
		return Request{}, protoErr("empty request")
	}
	r := Request{Op: p[0]}
	switch r.Op {
	case OpRelease, OpList:
		if len(p) != 5 {
			return Request{}, protoErr("%c request of %d bytes", r.Op, len(p))
		}
		r.ID = binary.BigEndian.Uint32(p[1:])
	case OpAcquire:
		if len(p) < 12 || int(binary.BigEndian.Uint16(p[10:])) != len(p)-12 {
			return Request{}, protoErr("acquire request of %d bytes", len(p))
		}
		r.ID = binary.BigEndian.Uint32(p[1:])
		r.Flags = p[5]
		r.Timeout = binary.BigEndian.Uint32(p[6:])
		r.Name = string(p[12:])
	default:
		return Request{}, protoErr("unknown op %#02x", r.Op)
	}
	return r, nil
}

// Entry is one row of a lock list.
type Entry struct {
	ID        uint32 // the acquire id of the lock, on its owner's connection
	PID, UID  int    // the owning client's, from SO_PEERCRED
	HelperPID int
	Name      string
	Mode      Mode
	Held      bool
	Age       time.Duration // since granted (held) or requested (pending)
	Left      time.Duration // before a pending request times out; -1: forever; 0 when held
}

// Message is what lockd sends: a reply, granted, failed, lost or entry.
type Message struct {
	Type    byte
	ID      uint32
	Errno   syscall.Errno // r, f, x
	HStatus uint16        // f, x: the helper's approximated exit status, or KilledByLockd
	Entry   Entry         // e
}

// Marshal returns m's payload (not framed).
func (m Message) Marshal() []byte {
	b := []byte{m.Type}
	b = binary.BigEndian.AppendUint32(b, m.ID)
	switch m.Type {
	case MsgReply:
		b = binary.BigEndian.AppendUint16(b, uint16(m.Errno))
	case MsgFailed, MsgLost:
		b = binary.BigEndian.AppendUint16(b, uint16(m.Errno))
		b = binary.BigEndian.AppendUint16(b, m.HStatus)
	case MsgEntry:
		e := m.Entry
		b = binary.BigEndian.AppendUint32(b, e.ID)
		b = binary.BigEndian.AppendUint32(b, uint32(e.PID))
		b = binary.BigEndian.AppendUint32(b, uint32(e.UID))
		b = binary.BigEndian.AppendUint32(b, uint32(e.HelperPID))
		var state byte
		if e.Held {
			state = 1
		}
		b = append(b, state, byte(e.Mode))
		b = binary.BigEndian.AppendUint64(b, uint64(e.Age.Milliseconds()))
		left := uint32(Forever)
		if e.Left >= 0 {
			left = uint32(min(e.Left.Milliseconds(), Forever-1))
		}
		b = binary.BigEndian.AppendUint32(b, left)
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.Name)))
		b = append(b, e.Name...)
	}
	return b
}

// ParseServerMessage decodes a message payload from lockd. An unknown
// type or a payload of the wrong length is an [ErrProto] error.
func ParseServerMessage(p []byte) (Message, error) {
	if len(p) < 5 {
		return Message{}, protoErr("message of %d bytes", len(p))
	}
	m := Message{Type: p[0], ID: binary.BigEndian.Uint32(p[1:])}
	want := 0
	switch m.Type {
	case MsgReply:
		want = 7
	case MsgGranted, MsgGrantedFD:
		want = 5
	case MsgFailed, MsgLost:
		want = 9
	case MsgEntry:
		if len(p) < 37 {
			return Message{}, protoErr("entry of %d bytes", len(p))
		}
		want = 37 + int(binary.BigEndian.Uint16(p[35:]))
	default:
		return Message{}, protoErr("unknown message type %#02x", m.Type)
	}
	if len(p) != want {
		return Message{}, protoErr("%c message of %d bytes", m.Type, len(p))
	}
	switch m.Type {
	case MsgReply:
		m.Errno = syscall.Errno(binary.BigEndian.Uint16(p[5:]))
	case MsgFailed, MsgLost:
		m.Errno = syscall.Errno(binary.BigEndian.Uint16(p[5:]))
		m.HStatus = binary.BigEndian.Uint16(p[7:])
	case MsgEntry:
		e := &m.Entry
		e.ID = binary.BigEndian.Uint32(p[5:])
		e.PID = int(binary.BigEndian.Uint32(p[9:]))
		e.UID = int(binary.BigEndian.Uint32(p[13:]))
		e.HelperPID = int(binary.BigEndian.Uint32(p[17:]))
		e.Held = p[21] == 1
		e.Mode = Mode(p[22] & 1)
		e.Age = time.Duration(min(binary.BigEndian.Uint64(p[23:]), uint64(1<<63-1)/uint64(time.Millisecond))) * time.Millisecond
		if left := binary.BigEndian.Uint32(p[31:]); left == Forever {
			e.Left = -1
		} else {
			e.Left = time.Duration(left) * time.Millisecond
		}
		e.Name = string(p[37:])
	}
	return m, nil
}

// CheckName checks the syntax of a lock name (spec/locks.md "Names"): it
// returns EINVAL for an empty name, a NUL, a leading "/", an empty, "."
// or ".." component; ENAMETOOLONG for a name over [MaxName] bytes or a
// component over [MaxComponent]; 0 for a good name. Whether the path
// exists and is a regular file is lockd's business.
func CheckName(name string) syscall.Errno {
	e, _ := checkName(name)
	return e
}

// NameProblem says what is wrong with a lock name that [CheckName]
// refuses, in words for a message ("has a \"..\" component"); "" for a
// good name.
func NameProblem(name string) string {
	_, why := checkName(name)
	return why
}

func checkName(name string) (syscall.Errno, string) {
	switch {
	case name == "":
		return syscall.EINVAL, "is empty"
	case strings.IndexByte(name, 0) >= 0:
		return syscall.EINVAL, "contains a NUL byte"
	case name[0] == '/':
		return syscall.EINVAL, "is absolute (starts with /): it must be relative to lockd's directory"
	case len(name) > MaxName:
		return syscall.ENAMETOOLONG, fmt.Sprintf("is longer than %d bytes", MaxName)
	}
	long := false
	for c := range strings.SplitSeq(name, "/") {
		switch {
		case c == "":
			return syscall.EINVAL, "has an empty component (// or a trailing /)"
		case c == "." || c == "..":
			return syscall.EINVAL, fmt.Sprintf("has a %q component: it must stay inside lockd's directory", c)
		case len(c) > MaxComponent:
			long = true
		}
	}
	if long {
		return syscall.ENAMETOOLONG, fmt.Sprintf("has a component longer than %d bytes", MaxComponent)
	}
	return 0, ""
}

// Quote renders a lock name for a line of text: printable ASCII as is
// (backslash doubled), every other byte as \xHH.
func Quote(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '\\':
			b.WriteString(`\\`)
		case c >= ' ' && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}
