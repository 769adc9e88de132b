//go:build linux

// Package sig names Linux signals the way s6 does and catches every signal
// a gotools process can catch, for the applets that stand in for a child
// (background-watch, supervise) and forward what they receive.
//
// [Parse] reads s6's forms (skalibs sig0_scan: "TERM", "SIGTERM", "term",
// "15") plus the realtime names of kill(1); [Name] prints the canonical
// "SIGTERM" form; [Catchable] and [NotifyAll] register, through os/signal,
// every signal the Go runtime will deliver to a channel.
//
// It deliberately does not use signalfd(2) (the Go runtime keeps signals
// unblocked on its own threads, so a signalfd misses them), does not touch
// the signal mask or dispositions of children (lib/proc does that at spawn
// time), and does not forward anything itself: it has no goroutines and no
// package-level signal state.
package sig
