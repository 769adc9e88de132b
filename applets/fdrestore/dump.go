package fdrestore

import (
	"github.com/gotools-dev/gotools/lib/exitcode"
)

// dumpCmd is `fdrestore dump` (section 4). Not built yet.
type dumpCmd struct {
	Args []string `arg:"" optional:"" passthrough:"" help:"Ignored."`
}

func (d *dumpCmd) Run() error {
	return exitcode.Errorf(exitcode.Usage, "dump is not supported yet")
}
