package backgroundwatch

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/cli"
)

// TestGrammar checks what reaches Run: options before the first operand
// only, one leading "--" dropped, everything after pidfile untouched.
func TestGrammar(t *testing.T) {
	for _, tt := range []struct {
		name    string
		args    []string
		timeout cli.Millis
		notif   int
		pidfile string
		prog    []string
	}{
		{"plain", []string{"p", "prog"}, 0, -1, "p", []string{"prog"}},
		{"options", []string{"-t", "010", "-d3", "p", "prog", "-x"}, 10, 3, "p", []string{"prog", "-x"}},
		{"long options", []string{"--timeout-ready=5", "--notification-fd=4", "p", "prog"}, 5, 4, "p", []string{"prog"}},
		{"prog options untouched", []string{"p", "prog", "-t", "9", "--help"}, 0, -1, "p", []string{"prog", "-t", "9", "--help"}},
		{"flag after pidfile is prog", []string{"p", "-t", "5", "prog"}, 0, -1, "p", []string{"-t", "5", "prog"}},
		{"leading --", []string{"--", "p", "prog"}, 0, -1, "p", []string{"prog"}},
		{"-- after pidfile is prog", []string{"p", "--", "prog"}, 0, -1, "p", []string{"--", "prog"}},
	} {
		cmd := new(command)
		env := &cli.Env{Name: Applet.Name, Stdout: new(bytes.Buffer), Stderr: new(bytes.Buffer)}
		k, err := cli.NewParser(Applet, env, cmd)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Parse(tt.args); err != nil {
			t.Errorf("%s: Parse(%q) = %v", tt.name, tt.args, err)
			continue
		}
		w, err := cmd.watch(env)
		if err != nil {
			t.Errorf("%s: watch(%q) = %v", tt.name, tt.args, err)
			continue
		}
		if w.timeout != tt.timeout || w.notif != tt.notif || w.pidfile != tt.pidfile || !equal(w.prog, tt.prog) {
			t.Errorf("%s: Parse(%q) = t=%d d=%d %q %q; want t=%d d=%d %q %q", tt.name, tt.args,
				w.timeout, w.notif, w.pidfile, w.prog, tt.timeout, tt.notif, tt.pidfile, tt.prog)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args   []string
		reason string // the second line, after "background-watch: fatal: "
	}{
		{args: []string{}},
		{args: []string{"p"}},
		{args: []string{"--", "p"}},
		{args: []string{"-d", "1", "p", "prog"}},
		{args: []string{"-d", "2", "p", "prog"}},
		{args: []string{"-t", "x", "p", "prog"}, reason: `-t: "x" is not a decimal number`},
		{args: []string{"-t", "0x10", "p", "prog"}, reason: `-t: "0x10" is not a decimal number`},
		{args: []string{"-t", "-5", "p", "prog"}, reason: `-t: "-5" is not a decimal number`},
		{args: []string{"-t", "4294967296", "p", "prog"}, reason: `-t: "4294967296" is too large (at most 4294967295)`},
		{args: []string{"-x", "p", "prog"}, reason: "unknown option -x"},
	} {
		var out, errb bytes.Buffer
		env := &cli.Env{Stdout: &out, Stderr: &errb}
		code := cli.Run(Applet, tt.args, env)
		want := "background-watch: usage: background-watch " + Applet.Usage + "\n"
		got := errb.String()
		if tt.reason != "" {
			want += "background-watch: fatal: " + tt.reason + "\n"
		} else if first, rest, _ := strings.Cut(got, "\n"); rest != "" && strings.HasPrefix(rest, "background-watch: fatal: ") {
			got = first + "\n" // a reason line is allowed; what matters is the synopsis
		}
		if code != 100 || got != want || out.Len() != 0 {
			t.Errorf("Run(%q) = %d, stderr %q, stdout %q; want 100, %q, nothing", tt.args, code, errb.String(), out.String(), want)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
