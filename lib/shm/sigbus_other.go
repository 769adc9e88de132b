//go:build linux && !amd64

package shm

// busPatch reports that this architecture has the SIGBUS handler: not yet
// (amd64 only); a segment truncated under a fast path faults as before.
const busPatch = false

func installBus() bool { return false }
