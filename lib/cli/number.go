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
	var s string
	if err := ctx.Scan.PopValueInto(what, &s); err != nil {
		return 0, err
	}
	v, err := ParseDecimal(s)
	if err != nil {
		return 0, fmt.Errorf("invalid %s %q", what, s)
	}
	return v, nil
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
