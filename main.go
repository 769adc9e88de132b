//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command gotools is a multicall binary of process-supervision and locking
// tools. It dispatches on basename(argv[0]), then on argv[1]; everything
// else lives in applets/ and lib/.
package main

import (
	"os"

	"github.com/gotools-dev/gotools/applets"
	"github.com/gotools-dev/gotools/lib/cli"
)

func main() {
	os.Exit(cli.Main(applets.All, os.Args, cli.StdEnv()))
}
