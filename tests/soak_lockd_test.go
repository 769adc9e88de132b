//go:build soak

package tests

import (
	"testing"
	"time"
)

// Long fault and load runs of lockd (issue 20 items 2 and 3); quick
// versions are in lockd_robust_test.go.

// TestSoakLockdIdleConnections: 10,000 silent connections.
func TestSoakLockdIdleConnections(t *testing.T) {
	idleFlood(t, 10000)
}

// TestSoakLockdLoad: 200 clients on 10 locks for 30 s.
func TestSoakLockdLoad(t *testing.T) {
	lockLoad(t, 200, 10, 30*time.Second)
}
