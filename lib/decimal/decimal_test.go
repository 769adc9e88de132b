package decimal

import (
	"math"
	"strconv"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name      string
		in        string
		maxDigits int
		max       uint64
		want      uint64
		ok        bool
	}{
		{"zero", "0", 0, 10, 0, true},
		{"leading zeros", "0010", 0, math.MaxUint32, 10, true},
		{"max", "4294967295", 10, math.MaxUint32, math.MaxUint32, true},
		{"over max", "4294967296", 10, math.MaxUint32, 0, false},
		{"many zeros, any length", "000000000000042", 0, math.MaxUint32, 42, true},
		{"too many digits", "00000000042", 10, math.MaxUint32, 0, false},
		{"uint64 max", "18446744073709551615", 0, math.MaxUint64, math.MaxUint64, true},
		{"uint64 overflow", "18446744073709551616", 0, math.MaxUint64, 0, false},
		{"empty", "", 0, 10, 0, false},
		{"sign", "+1", 0, 10, 0, false},
		{"minus", "-1", 0, 10, 0, false},
		{"hex", "0x1", 0, 10, 0, false},
		{"underscore", "1_0", 0, 100, 0, false},
		{"space", " 1", 0, 10, 0, false},
		{"max 0", "1", 0, 0, 0, false},
	} {
		got, ok := Parse(tt.in, tt.maxDigits, tt.max)
		if ok != tt.ok || got != tt.want {
			t.Errorf("%s: Parse(%q, %d, %d) = %d, %v; want %d, %v", tt.name, tt.in, tt.maxDigits, tt.max, got, ok, tt.want, tt.ok)
		}
		if gb, okb := Parse([]byte(tt.in), tt.maxDigits, tt.max); gb != got || okb != ok {
			t.Errorf("%s: Parse([]byte) disagrees with Parse(string)", tt.name)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "4294967295", "4294967296", "0x10", "007"} {
		f.Add(s, uint64(math.MaxUint32))
	}
	f.Fuzz(func(t *testing.T, s string, max uint64) {
		v, ok := Parse(s, 0, max)
		u, err := strconv.ParseUint(s, 10, 64)
		want := err == nil && u <= max && s[0] != '+'
		if ok != want || (ok && v != u) {
			t.Errorf("Parse(%q, max %d) = %d, %v; strconv says %d, %v", s, max, v, ok, u, err)
		}
	})
}
