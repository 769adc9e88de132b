// Package tai packs and unpacks TAI64N stamps, the time format of s6's
// status file, death tally and event fifo names (skalibs tai.h;
// cr.yp.to/libtai/tai64.html): 8 big-endian bytes of seconds, offset by
// 2^62, then 4 big-endian bytes of nanoseconds; as text, "@" and 24
// lowercase hex digits.
//
// It deliberately carries no leap-second table: every conversion uses
// TAI-UTC = 37 s, the value since 2017 and the one s6 uses for the present.
// Stamps of past times are therefore off by the leap seconds added since
// them, which no reader of a status file can notice.
package tai

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"
)

// Offset is what is added to a Unix time to get a TAI64 label: 2^62 plus
// TAI-UTC (10 s at 1972, plus the 27 leap seconds since: 37 s).
const Offset = 1<<62 + 37

// Size is the length of a packed TAI64N stamp.
const Size = 12

// TextSize is the length of a stamp's text form, "@" + 24 hex digits.
const TextSize = 1 + 2*Size

// ErrFormat reports bytes or text that are not a TAI64N stamp.
var ErrFormat = errors.New("malformed TAI64N stamp")

// Stamp is a TAI64N label.
type Stamp struct {
	Sec  uint64 // TAI64 seconds, Offset included
	Nsec uint32 // 0..999999999
}

// FromTime returns the stamp of t.
func FromTime(t time.Time) Stamp {
	return Stamp{Sec: uint64(t.Unix() + Offset), Nsec: uint32(t.Nanosecond())}
}

// Now returns the stamp of the wall clock's present.
func Now() Stamp { return FromTime(time.Now()) }

// Time returns the wall-clock time of s.
func (s Stamp) Time() time.Time {
	return time.Unix(int64(s.Sec-Offset), int64(s.Nsec))
}

// IsZero reports whether s is the all-zero stamp, which s6 writes for
// "never".
func (s Stamp) IsZero() bool { return s == Stamp{} }

// Append appends the 12 packed bytes of s to b.
func (s Stamp) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, s.Sec)
	return binary.BigEndian.AppendUint32(b, s.Nsec)
}

// Unpack reads a stamp from the first 12 bytes of b. Nanoseconds above
// 999999999 are [ErrFormat].
func Unpack(b []byte) (Stamp, error) {
	if len(b) < Size {
		return Stamp{}, ErrFormat
	}
	s := Stamp{Sec: binary.BigEndian.Uint64(b), Nsec: binary.BigEndian.Uint32(b[8:])}
	if s.Nsec > 999999999 {
		return Stamp{}, ErrFormat
	}
	return s, nil
}

// String returns the text form of s: "@" and 24 lowercase hex digits.
func (s Stamp) String() string {
	var b [TextSize]byte
	b[0] = '@'
	hex.Encode(b[1:], s.Append(make([]byte, 0, Size)))
	return string(b[:])
}

// Parse reads the text form of a stamp, "@" and exactly 24 hex digits
// (either case).
func Parse(text string) (Stamp, error) {
	if len(text) != TextSize || text[0] != '@' {
		return Stamp{}, ErrFormat
	}
	var b [Size]byte
	if _, err := hex.Decode(b[:], []byte(text[1:])); err != nil {
		return Stamp{}, ErrFormat
	}
	return Unpack(b[:])
}
