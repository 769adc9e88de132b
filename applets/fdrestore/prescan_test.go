package fdrestore

import (
	"slices"
	"testing"
)

func TestPrescan(t *testing.T) {
	for _, tt := range []struct {
		name      string
		args      []string
		rest, pre []string
	}{
		{"forms", []string{"restore", "-f", "3=null", "--fd", "4=null", "-f5=null", "--fd=6=null", "-v", "--", "prog", "-f", "x"},
			[]string{"restore", "-v", "--", "prog", "-f", "x"}, []string{"3=null", "4=null", "5=null", "6=null"}},
		{"values of other options", []string{"restore", "--name", "3=x", "-f", "null", "--ctty", "3", "--check"},
			[]string{"restore", "--name", "3=x", "--ctty", "3", "--check"}, []string{"null"}},
		{"stops at prog", []string{"restore", "-f", "null", "prog", "-f", "y"},
			[]string{"restore", "prog", "-f", "y"}, []string{"null"}},
		{"cluster left to kong", []string{"restore", "-f", "null", "-Cf", "null", "--", "p"},
			[]string{"restore", "-f", "null", "-Cf", "null", "--", "p"}, nil},
		{"missing value left to kong", []string{"restore", "-f"}, []string{"restore", "-f"}, nil},
		{"other subcommands untouched", []string{"grab", "-f", "1"}, []string{"grab", "-f", "1"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := new(command)
			rest := prescan(cmd, slices.Clone(tt.args))
			if !slices.Equal(rest, tt.rest) || !slices.Equal(cmd.Restore.pre, tt.pre) {
				t.Errorf("prescan(%q) = %q, pre %q; want %q, pre %q", tt.args, rest, cmd.Restore.pre, tt.rest, tt.pre)
			}
		})
	}
}
