//go:build !race

package supervisor

// raceOn: see race_test.go.
const raceOn = false
