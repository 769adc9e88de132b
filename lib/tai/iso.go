package tai

import (
	"encoding/binary"
	"os"
	"strings"
	"time"
)

// ISOSize is the length of an ISO time: "YYYY-MM-DD HH:MM:SS.nnnnnnnnn".
const ISOSize = 29

const hexDigits = "0123456789abcdef"

// AppendText appends s's text form, "@" and 24 lowercase hex digits,
// without allocating.
func (s Stamp) AppendText(b []byte) []byte {
	b = append(b, '@')
	for i := 60; i >= 0; i -= 4 {
		b = append(b, hexDigits[(s.Sec>>uint(i))&15])
	}
	for i := 28; i >= 0; i -= 4 {
		b = append(b, hexDigits[(s.Nsec>>uint(i))&15])
	}
	return b
}

// ParseText reads the 25-byte text form at the start of b, hex digits of
// either case; ok is false if b does not begin with one (or its
// nanoseconds are 10^9 or more).
func ParseText(b []byte) (s Stamp, ok bool) {
	if len(b) < TextSize || b[0] != '@' {
		return Stamp{}, false
	}
	var v [2]uint64
	for i := 1; i < TextSize; i++ {
		c := b[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return Stamp{}, false
		}
		k := 0
		if i > 16 {
			k = 1
		}
		v[k] = v[k]<<4 | uint64(d)
	}
	if v[1] > 999999999 {
		return Stamp{}, false
	}
	return Stamp{Sec: v[0], Nsec: uint32(v[1])}, true
}

// FakeClock reads the test hook GOTOOLS_FAKE_CLOCK=@<24 hex>: nil if it
// is unset; ok is false if it is invalid.
func FakeClock() (s *Stamp, ok bool) {
	v, set := os.LookupEnv("GOTOOLS_FAKE_CLOCK")
	if !set {
		return nil, true
	}
	st, ok := ParseText([]byte(v))
	if !ok || len(v) != TextSize {
		return nil, false
	}
	return &st, true
}

// AppendISO appends t as "YYYY-MM-DD HH:MM:SS.nnnnnnnnn" (29 bytes) in t's
// location, without allocating.
func AppendISO(b []byte, t time.Time) []byte {
	return t.AppendFormat(b, "2006-01-02 15:04:05.000000000")
}

// leaps holds, for the k-th inserted leap second, U_k + k where U_k is the
// Unix time of the midnight that follows it (skalibs' leap table).
var leaps = [...]int64{
	78796800, 94694401, 126230402, 157766403, 189302404, 220924805, 252460806,
	283996807, 315532808, 362793609, 394329610, 425865611, 489024012, 567993613,
	631152014, 662688015, 709948816, 741484817, 773020818, 820454419, 867715220,
	915148821, 1136073622, 1230768023, 1341100824, 1435708825, 1483228826,
}

// UTC converts a TAI64N stamp to Unix seconds as skalibs does: t = seconds
// - 2^62 - 10, minus the leap seconds below it. leap is true when the stamp
// is an inserted leap second itself (printed as second 60 of the minute
// before).
func (s Stamp) UTC() (sec int64, leap bool) {
	t := int64(s.Sec - (1<<62 + 10))
	d := int64(0)
	for _, e := range leaps {
		if e == t {
			leap = true
		}
		if e < t {
			d++
		}
	}
	if leap {
		return t - d - 1, true
	}
	return t - d, false
}

// LocalZone returns the zone of TZ as glibc reads it: unset, the system's
// (/etc/localtime, else UTC); empty, UTC; a zone file name (a leading ':'
// dropped) or an absolute path; otherwise a POSIX TZ rule.
func LocalZone() *time.Location {
	tz, set := os.LookupEnv("TZ")
	if !set {
		return time.Local
	}
	name := strings.TrimPrefix(tz, ":")
	if name == "" {
		return time.UTC
	}
	if strings.HasPrefix(name, "/") {
		if b, err := os.ReadFile(name); err == nil {
			if loc, err := time.LoadLocationFromTZData(name, b); err == nil {
				return loc
			}
		}
	} else if loc, err := time.LoadLocation(name); err == nil {
		return loc
	}
	if loc, err := time.LoadLocationFromTZData(tz, ruleTZif(tz)); err == nil {
		return loc
	}
	return time.UTC
}

// ruleTZif builds a version 2 TZif file whose only transition lies in the
// far past and whose footer is rule: Go then applies the POSIX rule to
// every time (with no transition at all it would use the first type only).
func ruleTZif(rule string) []byte {
	header := func(b []byte, timecnt uint32) []byte {
		b = append(b, "TZif2"...)
		b = append(b, make([]byte, 15)...)
		for _, n := range []uint32{0, 0, 0, timecnt, 1, 4} { // isut, isstd, leap, time, type, char
			b = binary.BigEndian.AppendUint32(b, n)
		}
		return b
	}
	b := header(nil, 0)
	b = append(b, 0, 0, 0, 0, 0, 0) // v1: one ttinfo (UTC)
	b = append(b, "UTC\x00"...)
	b = header(b, 1)
	b = binary.BigEndian.AppendUint64(b, uint64(1)<<63) // the earliest time
	b = append(b, 0)
	b = append(b, 0, 0, 0, 0, 0, 0)
	b = append(b, "UTC\x00"...)
	b = append(b, '\n')
	b = append(b, rule...)
	return append(b, '\n')
}
