//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command svok is the floor of "svok DIR" in Go: the same job (an
// F_OFD_GETLK on DIR/supervise/lock through lib/lock), the same exit codes,
// in a static program that links nothing else (kong too with the floorkong
// tag: kong.go). BenchmarkClientStartup measures gotools' svok against it
// and against an empty program.
package main

import (
	"os"

	"github.com/gotools-dev/gotools/lib/lock"
)

func main() {
	if len(os.Args) != 2 {
		os.Exit(100)
	}
	held, err := lock.Held(os.Args[1] + "/supervise/lock")
	switch {
	case err != nil:
		os.Stderr.WriteString("svok: fatal: unable to check " + os.Args[1] + ": " + err.Error() + "\n")
		os.Exit(111)
	case !held:
		os.Exit(1)
	}
}
