//go:build linux

// Package pidfile reads, writes and removes the pid files of forking
// daemons, and checks through /proc that a pid read from one names a
// descendant of the caller (background-watch.md step 5, supervise.md
// §3.10).
//
// Reading is strict and bounded: at most [MaxSize] bytes of a regular file,
// one line of 1 to 10 decimal digits, a value in 1..2^31-1. Writing is
// atomic (a unique temporary file in the same directory, fsync, rename).
//
// It deliberately does not lock pid files, does not check that a pid is
// alive (the caller opens a pidfd and polls it: only that closes the
// pid-reuse race), never follows a pid file's contents anywhere but to a
// number, and prints nothing: errors carry a bare errno so the caller
// names the file once.
package pidfile
