//go:build linux

// Package proc starts and watches processes the way supervisors must:
// spawning with an exact fd table and a clean signal state ([Spawn]),
// becoming a child subreaper ([SetSubreaper]), reaping every dead child in
// one loop ([Reap]) and following a process that is not a child through a
// pidfd ([Pidfd]).
//
// It deliberately never calls wait on a single child behind the caller's
// back: a process that uses [Reap] owns wait(2) alone (STYLE.md rule 9).
// [Spawn] forks and execs by itself (no os.Process, no pidfd kept), and a
// [Spawner] that starts the same command again allocates nothing.
package proc
