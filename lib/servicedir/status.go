package servicedir

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gotools-dev/gotools/lib/tai"
)

// Sizes of the status file: s6 2.11's layout, which gotools writes, and
// s6 2.13's, which it also reads (a pgid field after the pid).
const (
	StatusSize    = 35
	StatusSize213 = 43
)

// Status flag bits, byte 34 of the file (s6 s6_svstatus_pack).
const (
	FlagPaused    = 0x01
	FlagFinishing = 0x02
	FlagWantUp    = 0x04
	FlagReady     = 0x08
)

// ErrMalformed reports a status file of the wrong size or with a bad
// stamp; [MalformedError] says which.
var ErrMalformed = errors.New("malformed status file")

// MalformedError is a status file that cannot be read, with its size.
type MalformedError struct{ Size int }

func (e *MalformedError) Error() string {
	return fmt.Sprintf("malformed status file (%d bytes)", e.Size)
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

// Status is the content of supervise/status (spec/supervise.md §2.2).
type Status struct {
	Stamp      tai.Stamp // last up/down change
	ReadyStamp tai.Stamp // last readiness, or last "down and ready"
	PID        uint64    // run's (or finish's) pid; 0 when down
	PGID       uint64    // read from the 43-byte layout only; never written
	WStat      uint16    // raw wait status of the last run
	Flags      byte      // Flag* bits; others are ignored on read, 0 on write
}

// Up reports whether the service is up: a pid and not finishing.
func (s Status) Up() bool { return s.PID != 0 && s.Flags&FlagFinishing == 0 }

// Marshal returns the 35 bytes s6 2.11 reads.
func (s Status) Marshal() []byte {
	return s.Append(make([]byte, 0, StatusSize))
}

// Append appends the 35 bytes s6 2.11 reads to b.
func (s Status) Append(b []byte) []byte {
	b = s.Stamp.Append(b)
	b = s.ReadyStamp.Append(b)
	b = binary.BigEndian.AppendUint64(b, s.PID)
	b = binary.BigEndian.AppendUint16(b, s.WStat)
	return append(b, s.Flags&(FlagPaused|FlagFinishing|FlagWantUp|FlagReady))
}

// UnmarshalStatus reads a status file: exactly 35 bytes, or the 43-byte
// layout of s6 2.13 (pid@24, pgid@32, wstat@40, flags@42). Anything else
// is a [*MalformedError].
func UnmarshalStatus(b []byte) (Status, error) {
	if len(b) != StatusSize && len(b) != StatusSize213 {
		return Status{}, &MalformedError{Size: len(b)}
	}
	var s Status
	var err1, err2 error
	s.Stamp, err1 = tai.Unpack(b[0:])
	s.ReadyStamp, err2 = tai.Unpack(b[12:])
	if err1 != nil || err2 != nil {
		return Status{}, &MalformedError{Size: len(b)}
	}
	s.PID = binary.BigEndian.Uint64(b[24:])
	rest := b[32:]
	if len(b) == StatusSize213 {
		s.PGID = binary.BigEndian.Uint64(b[32:])
		rest = b[40:]
	}
	s.WStat = binary.BigEndian.Uint16(rest)
	s.Flags = rest[2] & (FlagPaused | FlagFinishing | FlagWantUp | FlagReady)
	return s, nil
}
