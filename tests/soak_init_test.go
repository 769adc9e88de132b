//go:build soak

package tests

import "testing"

// TestSoakInitExitCodes is spec/init.md §11 test 1 in full: every exit
// code 0-255 through init, with and without -e.
func TestSoakInitExitCodes(t *testing.T) {
	all := make([]int, 256)
	for i := range all {
		all[i] = i
	}
	checkInitExitCodes(t, all, all)
}
