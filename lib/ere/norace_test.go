//go:build !race

package ere

const raceEnabled = false
