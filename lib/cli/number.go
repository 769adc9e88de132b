package cli

import (
	"fmt"
	"math"
	"strconv"

	"github.com/alecthomas/kong"

	"github.com/gotools-dev/gotools/lib/decimal"
)

// Uint is a decimal unsigned 32-bit option value. kong's own integers go
// through strconv with base 0, which reads "010" as 8 and accepts "0x10";
// s6 reads decimal only (STYLE.md rule 11).
type Uint uint32

// Decode implements kong.MapperValue.
func (u *Uint) Decode(ctx *kong.DecodeContext) error {
	v, err := decodeDecimal(ctx, "number")
	*u = Uint(v)
	return err
}

// Millis is a duration in milliseconds, decimal only, as s6 takes its -t
// and -T options. 0 conventionally means "no limit"; each applet says so.
type Millis uint32

// Decode implements kong.MapperValue.
func (m *Millis) Decode(ctx *kong.DecodeContext) error {
	v, err := decodeDecimal(ctx, "milliseconds")
	*m = Millis(v)
	return err
}

func decodeDecimal(ctx *kong.DecodeContext, what string) (uint32, error) {
	// The next word is the value whatever it looks like, as getopt takes
	// it: "-t -5" is a bad number, not a missing value.
	t := ctx.Scan.Pop()
	if t.IsEOL() {
		return 0, &usageDetail{msg: optName(ctx.Value) + ": missing value"}
	}
	s, ok := t.Value.(string)
	if !ok {
		s = fmt.Sprint(t.Value)
	}
	v, err := ParseDecimal(s)
	if err != nil {
		why := "is not a decimal number"
		if _, ok := decimal.Parse(s, 0, math.MaxUint64); ok || allDigits(s) {
			why = "is too large (at most 4294967295)"
		}
		return 0, &BadValue{Opt: optName(ctx.Value), Word: s, Why: why}
	}
	return v, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ParseDecimal reads s as a plain unsigned decimal that fits in 32 bits:
// ASCII digits only, no sign, no base prefix, no underscores, no spaces.
// Leading zeros are allowed in any number, as skalibs' uint32_scan allows
// them: only the value must fit.
func ParseDecimal(s string) (uint32, error) {
	v, ok := decimal.Parse(s, 0, math.MaxUint32)
	if !ok {
		return 0, strconv.ErrSyntax
	}
	return uint32(v), nil
}
