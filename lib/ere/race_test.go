//go:build race

package ere

// raceEnabled: sync.Pool drops items at random under -race, so regexp
// allocates its matcher now and then.
const raceEnabled = true
