// Package decimal reads the plain unsigned decimal numbers of s6 command
// lines and files: ASCII digits only, no sign, no base prefix, no
// underscores, no spaces. Leading zeros are allowed, as skalibs'
// uint_scan allows them. (strconv with base 0, which kong uses, would read
// "010" as 8 and accept "0x10".)
//
// It deliberately knows nothing of lines or files: callers cut the digits
// out first.
package decimal

// Parse reads s as 1 to maxDigits ASCII digits (0: any number of digits)
// whose value is at most max.
func Parse[T ~string | ~[]byte](s T, maxDigits int, max uint64) (uint64, bool) {
	if len(s) == 0 || (maxDigits > 0 && len(s) > maxDigits) {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if d > max || v > (max-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}
