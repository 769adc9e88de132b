package applets

import (
	"io"
	"reflect"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/gotools-dev/gotools/lib/cli"
)

// TestSliceFlagsKeepBytes checks that no repeatable option of any grammar
// is split by kong: kong splits a slice option's value on a separator
// (',' unless the tag says sep:"none") rune by rune, which turns every byte
// that is not UTF-8 into U+FFFD, and a path holding the separator would be
// cut in two. Paths and argv are bytes (issue 20); lib/cli keeps them so
// for string fields, and sep:"none" does it for slices.
func TestSliceFlagsKeepBytes(t *testing.T) {
	for _, a := range All {
		if a.New == nil {
			continue
		}
		env := &cli.Env{Name: a.Name, Stdout: io.Discard, Stderr: io.Discard}
		k, err := cli.NewParser(a, env, a.New())
		if err != nil {
			t.Fatalf("NewParser(%s) = %v", a.Name, err)
		}
		var walk func(n *kong.Node)
		walk = func(n *kong.Node) {
			for _, f := range n.Flags {
				kind := f.Target.Kind()
				if (kind == reflect.Slice || kind == reflect.Map) && f.Tag.Sep != -1 {
					t.Errorf("%s: option --%s of %s is a %s without sep:\"none\"", a.Name, f.Name, n.Path(), kind)
				}
			}
			for _, c := range n.Children {
				walk(c)
			}
		}
		walk(k.Model.Node)
	}
}
