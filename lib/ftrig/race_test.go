//go:build race

package ftrig

// raceOn: the race detector changes what allocates (closures and their
// captured variables move to the heap), so allocation counts under -race
// say nothing about the code: tests that assert them only report.
const raceOn = true
