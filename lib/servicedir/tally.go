package servicedir

import (
	"slices"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/tai"
)

// DeathSize is the size of one supervise/death_tally record.
const DeathSize = 14

// MaxDeathTally is the most records a tally keeps, whatever
// max-death-tally says (spec/supervise.md §1).
const MaxDeathTally = 4096

// Death is one death_tally record (spec/supervise.md §2.3), as s6-svdt
// reads it: when run died, its exit code or 128 + signal (no 128 cap), and
// the signal that killed it or 0.
type Death struct {
	Stamp tai.Stamp
	Code  byte
	Sig   byte
}

// DeathOf returns the record of a death with wait status ws at stamp.
func DeathOf(stamp tai.Stamp, ws unix.WaitStatus) Death {
	if ws.Signaled() {
		return Death{Stamp: stamp, Code: byte(128 + int(ws.Signal())), Sig: byte(ws.Signal())}
	}
	return Death{Stamp: stamp, Code: byte(ws.ExitStatus())}
}

// Append appends the 14 bytes of d to b.
func (d Death) Append(b []byte) []byte {
	return append(d.Stamp.Append(b), d.Code, d.Sig)
}

// ParseDeathTally reads a death_tally file, oldest record first. A size
// that is not a multiple of 14, or a record with a bad stamp, makes the
// whole tally count as empty, as upstream reads it.
func ParseDeathTally(b []byte) []Death {
	if len(b)%DeathSize != 0 {
		return nil
	}
	ds := make([]Death, 0, len(b)/DeathSize)
	for ; len(b) > 0; b = b[DeathSize:] {
		st, err := tai.Unpack(b)
		if err != nil {
			return nil
		}
		ds = append(ds, Death{Stamp: st, Code: b[12], Sig: b[13]})
	}
	return ds
}

// MarshalDeathTally returns the file holding the last max records of ds
// (max is capped at [MaxDeathTally]).
func MarshalDeathTally(ds []Death, max int) []byte {
	return AppendDeathTally(nil, ds, max)
}

// AppendDeathTally appends the file holding the last max records of ds
// (max is capped at [MaxDeathTally]) to dst: a supervisor rewriting the
// tally at every death reuses its buffer.
func AppendDeathTally(dst []byte, ds []Death, max int) []byte {
	max = min(max, MaxDeathTally)
	if len(ds) > max {
		ds = ds[len(ds)-max:]
	}
	dst = slices.Grow(dst, len(ds)*DeathSize)
	for _, d := range ds {
		dst = d.Append(dst)
	}
	return dst
}
