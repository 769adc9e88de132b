package servicedir

import (
	"bytes"
	"errors"
	"math"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/decimal"
	"github.com/gotools-dev/gotools/lib/sig"
)

// ErrInvalid reports a configuration file whose content is not what it
// must hold; the caller warns `invalid FILE: "TEXT"` with [Quote].
var ErrInvalid = errors.New("invalid content")

// maxLine is how far into a number or signal file its first line must end
// (spec/supervise.md §0).
const maxLine = 64

// firstLine returns the bytes before the first newline, or all of b when
// there is none; a line that does not end within maxLine bytes is invalid.
func firstLine(b []byte) ([]byte, error) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) >= maxLine {
		return nil, ErrInvalid
	}
	return b, nil
}

// ParseNumber reads a number file (timeout-kill, notification-fd,
// max-death-tally...): only the first line counts, and it must be 1 to 10
// ASCII digits worth at most 2^32-1, with no sign, space or "\r".
func ParseNumber(b []byte) (uint32, error) {
	line, err := firstLine(b)
	if err != nil {
		return 0, ErrInvalid
	}
	v, ok := decimal.Parse(line, 10, math.MaxUint32)
	if !ok {
		return 0, ErrInvalid
	}
	return uint32(v), nil
}

// ParseSignal reads a signal file (down-signal, reload-signal): its first
// line is a signal as [sig.Parse] reads it ("TERM", "SIGTERM", "15").
func ParseSignal(b []byte) (unix.Signal, error) {
	line, err := firstLine(b)
	if err != nil {
		return 0, ErrInvalid
	}
	s, err := sig.Parse(string(line))
	if err != nil {
		return 0, ErrInvalid
	}
	return s, nil
}

// Quote renders the first 32 bytes of an invalid file for a warning:
// printable ASCII as is, anything else as \xNN, backslash and quote
// escaped.
func Quote(b []byte) string {
	if len(b) > 32 {
		b = b[:32]
	}
	var sb strings.Builder
	sb.WriteByte('"')
	const hex = "0123456789abcdef"
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		default:
			sb.WriteString(`\x`)
			sb.WriteByte(hex[c>>4])
			sb.WriteByte(hex[c&15])
		}
	}
	sb.WriteByte('"')
	return sb.String()
}
