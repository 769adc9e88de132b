package svscanctl

import (
	"errors"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

func TestScanOrder(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{name: "bundle", args: []string{"-zabhitqnN", "dir"}, want: "zabhitqnN"},
		{name: "order", args: []string{"-n", "-a", "dir"}, want: "na"},
		{name: "long", args: []string{"--scan", "--nuke", "dir"}, want: "an"},
		{name: "help is no letter", args: []string{"--help"}, want: ""},
		{name: "stops at operand", args: []string{"dir", "-a"}, want: ""},
		{name: "stops at --", args: []string{"-a", "--", "-n"}, want: "a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scan(tt.args)
			if err != nil || string(got) != tt.want {
				t.Errorf("scan(%q) = %q, %v; want %q", tt.args, got, err, tt.want)
			}
		})
	}
}

func TestScanTooMany(t *testing.T) {
	if got, err := scan([]string{"-" + strings.Repeat("a", MaxCommands)}); err != nil || len(got) != MaxCommands {
		t.Errorf("scan(%d letters) = %d letters, %v; want all", MaxCommands, len(got), err)
	}
	_, err := scan([]string{"-" + strings.Repeat("a", MaxCommands+1)})
	var xe *exitcode.Error
	if !errors.As(err, &xe) || xe.Code != exitcode.Usage || err.Error() != "too many commands" {
		t.Errorf("scan(%d letters) = %v; want exit 100, too many commands", MaxCommands+1, err)
	}
}

func TestLetterNames(t *testing.T) {
	for _, l := range letters {
		c, name := l.c, l.name
		if got, ok := letterOf(name); !ok || got != c {
			t.Errorf("letterOf(%q) = %q, %v; want %q", name, got, ok, c)
		}
		if got, ok := letterOf(string(c)); !ok || got != c {
			t.Errorf("letterOf(%q) = %q, %v; want itself", string(c), got, ok)
		}
	}
	if _, ok := letterOf("x"); ok {
		t.Error("letterOf(x) accepted")
	}
}
