//go:build race

package proc

// raceEnabled: the race detector allocates on its own.
const raceEnabled = true
