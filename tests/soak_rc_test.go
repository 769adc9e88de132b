//go:build soak

package tests

import "testing"

// TestSoakRcCrashRecovery is spec/rc.md test 11 in full: rc is killed
// after each of its first 20 state writes on the 20-service diamond.
func TestSoakRcCrashRecovery(t *testing.T) {
	files, _ := diamondTree()
	e := newRcEnv(t, files)
	e.init()
	for n := 1; n <= 20; n++ {
		crashAndRecover(t, e, n)
	}
	checkNoOverlap(t, e.events())
}
