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
	for _, args := range [][]string{
		{}, {"p"}, {"--", "p"}, {"-d", "1", "p", "prog"}, {"-d", "2", "p", "prog"},
		{"-t", "x", "p", "prog"}, {"-t", "0x10", "p", "prog"}, {"-t", "-5", "p", "prog"},
		{"-t", "4294967296", "p", "prog"}, {"-x", "p", "prog"},
	} {
		var out, errb bytes.Buffer
		env := &cli.Env{Stdout: &out, Stderr: &errb}
		code := cli.Run(Applet, args, env)
		// The synopsis line, then at most one line naming the bad word.
		want := "background-watch: usage: background-watch " + Applet.Usage + "\n"
		rest, ok := strings.CutPrefix(errb.String(), want)
		why := rest == "" || (strings.HasPrefix(rest, "background-watch: fatal: ") && strings.Count(rest, "\n") == 1 && strings.HasSuffix(rest, "\n"))
		if code != 100 || !ok || !why || out.Len() != 0 {
			t.Errorf("Run(%q) = %d, stderr %q, stdout %q; want 100, %q and at most one fatal line, nothing", args, code, errb.String(), out.String(), want)
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
