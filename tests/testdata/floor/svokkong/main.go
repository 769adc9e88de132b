//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
//go:debug decoratemappings=0

// Command svokkong is tests/testdata/floor/svok with kong linked and
// unused: the cost of its package inits (its own, and those of net/url,
// net/netip, regexp, go/doc, encoding/json, os/user, which it imports),
// which every process of a binary that links kong pays before main.
package main

import (
	"os"

	_ "github.com/alecthomas/kong"

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
