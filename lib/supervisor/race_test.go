//go:build race

package supervisor

// raceOn: the race detector instruments allocations (and allocates for
// its own bookkeeping), so allocation counts under -race say nothing
// about the code: tests that assert them only report.
const raceOn = true
