//go:build linux

// Package envdir reads an environment directory the way s6-envdir does
// (skalibs envdir_internal): one variable per file, named after the file,
// its value the file's first line or, verbatim, the whole file. init reads
// /run/s6/container_environment with it, with-contenv and the envdir applet
// too.
//
// It deliberately does not touch the process environment: [Read] returns
// the changes and [Merge] applies them to an environment list, so that a
// caller can hand the result to exec or spawn.
package envdir
