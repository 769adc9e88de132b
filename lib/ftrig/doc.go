//go:build linux

// Package ftrig implements s6's event fifodirs (spec/supervise.md §2.4), the
// way a supervisor tells any number of listeners that something happened
// without ever blocking on them.
//
// A fifodir is a directory (a service's event/, made by [MkFifodir]) in
// which each listener owns one FIFO named "ftrig1:@<24 hex>:<6 chars>"
// (exactly 39 bytes). A listener ([Subscribe]) creates it under a dotted
// name, opens it for reading and for writing (so it never reads EOF), and
// only then renames it into place, so a notifier never sees a FIFO without
// its reader. A notifier ([Notify]) writes the event bytes once into every
// such FIFO, non-blocking: a FIFO without a reader (its listener died) is
// unlinked, a full one loses the event; a [Notifier] does the same with
// its buffers kept, allocating nothing. [Clean] removes dead listeners'
// FIFOs, as supervise does at startup. The names and modes are s6 2.11's
// (ftrigw_notifyb_nosig, ftrigw_clean, ftrigr's mkptemp), so real
// s6-ftrig-listen1, s6-ftrig-wait, s6-svwait and s6-supervise interoperate
// with this package in both directions.
//
// It deliberately does not interpret events (no up/down state machine, no
// regular expressions as s6-ftrig-listen1 has), does not talk to s6's
// s6-ftrigrd helper (a listener reads its FIFO itself), and does not take
// the service lock: those belong to svwait, svc -w and supervise.
package ftrig
