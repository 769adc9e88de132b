package tests

import (
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/applets"
	"github.com/gotools-dev/gotools/lib/cli"
)

// isUsageError reports whether stderr is a usage error of applet name as
// lib/cli prints it: one line "NAME: usage: ...", then at most one line
// "NAME: fatal: ..." naming the bad word (none for an empty command line).
func isUsageError(stderr, name string) bool {
	first, rest, ok := strings.Cut(stderr, "\n")
	if !ok || !strings.HasPrefix(first, name+": usage: ") {
		return false
	}
	return rest == "" || (strings.HasPrefix(rest, name+": fatal: ") && strings.Count(rest, "\n") == 1 && strings.HasSuffix(rest, "\n"))
}

// isUsageLine is [isUsageError] with the whole first line given (line ends
// in a newline).
func isUsageLine(stderr, line, name string) bool {
	return strings.HasPrefix(stderr, line) && isUsageError(stderr, name)
}

// svscanApplet is svscan's registry entry.
func svscanApplet(t testing.TB) cli.Applet {
	t.Helper()
	a, ok := cli.Find(applets.All, "svscan")
	if !ok {
		t.Fatal("svscan is not in the registry")
	}
	return a
}
