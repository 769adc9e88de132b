//go:build !race

package ftrig

// raceOn: see race_test.go.
const raceOn = false
