//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command linked links every applet, as gotools does, and runs none unless
// its first argument is --run: what a gotools process pays before its
// applet starts (the runtime's start on a 6 MB binary, every linked
// package's init). Its go:debug lines are main.go's.
package main

import (
	"os"

	"github.com/gotools-dev/gotools/applets"
	"github.com/gotools-dev/gotools/lib/cli"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--run" {
		os.Exit(cli.Main(applets.All, os.Args[1:], cli.StdEnv()))
	}
}
