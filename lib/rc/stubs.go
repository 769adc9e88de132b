//go:build linux

package rc

import (
	"io"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

// Update switches a live directory to new sources (rc update).
func Update(sources []string, o Options) error {
	return exitcode.Errorf(exitcode.Internal, "update: not implemented yet")
}

// Script runs a script-mode file (spec/rc.md §8).
func Script(file string, args []string, stderr io.Writer) error {
	return exitcode.Errorf(exitcode.Internal, "script mode: not implemented yet")
}
