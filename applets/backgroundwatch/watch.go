package backgroundwatch

import (
	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
)

type watch struct {
	env     *cli.Env
	pidfile string
	prog    []string
	timeout cli.Millis
	notif   int
}

func (w *watch) run() error {
	return exitcode.Errorf(exitcode.Internal, "not implemented yet")
}
