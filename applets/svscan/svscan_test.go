package svscan

import "testing"

func TestClamp(t *testing.T) {
	for _, tt := range []struct{ v, lo, hi, want int }{
		{0, 4, 160000, 4}, {1000, 4, 160000, 1000}, {200000, 4, 160000, 160000}, {251, 11, 1019, 251}, {3, 11, 1019, 11},
	} {
		if got := clamp(tt.v, tt.lo, tt.hi); got != tt.want {
			t.Errorf("clamp(%d, %d, %d) = %d; want %d", tt.v, tt.lo, tt.hi, got, tt.want)
		}
	}
}
