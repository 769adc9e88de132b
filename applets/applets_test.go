package applets

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/cli"
)

// TestGrammarsBuild builds every applet's kong grammar, so that a tag
// mistake fails here and not in a user's initramfs (STYLE.md gotcha 7).
func TestGrammarsBuild(t *testing.T) {
	for _, a := range All {
		if a.Raw != nil {
			continue // no grammar: its argv is fixed upstream
		}
		env := &cli.Env{Name: a.Name, Stdout: io.Discard, Stderr: io.Discard}
		if _, err := cli.NewParser(a, env, a.New()); err != nil {
			t.Errorf("NewParser(%s) = %v; want a grammar", a.Name, err)
		}
	}
}

func TestNamesAndAliasesUnique(t *testing.T) {
	seen := map[string]string{"gotools": "the multicall name"}
	for _, a := range All {
		for _, n := range append([]string{a.Name}, a.Aliases...) {
			if n == "" || strings.ContainsAny(n, "/ \t\n") {
				t.Errorf("applet %q: bad name or alias %q", a.Name, n)
			}
			if prev, dup := seen[n]; dup {
				t.Errorf("name %q used by %s and %s", n, prev, a.Name)
			}
			seen[n] = a.Name
		}
	}
}

func TestEveryAppletHasUsageAndSummary(t *testing.T) {
	for _, a := range All {
		if strings.TrimSpace(a.Usage) == "" || strings.Contains(a.Usage, "\n") {
			t.Errorf("applet %s: Usage = %q; want one synopsis line", a.Name, a.Usage)
		}
		if strings.TrimSpace(a.Summary) == "" {
			t.Errorf("applet %s: no Summary", a.Name)
		}
		if (a.New == nil) == (a.Raw == nil) {
			t.Errorf("applet %s: want exactly one of New and Raw", a.Name)
		}
	}
}

func TestListMatchesRegistry(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cli.Main(All, []string{"gotools", "--list"}, &cli.Env{Stdout: &out, Stderr: &errb}); code != 0 {
		t.Fatalf("gotools --list = %d (%s); want 0", code, errb.String())
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != len(All) {
		t.Fatalf("gotools --list printed %d names; want %d", len(got), len(All))
	}
	for i, a := range All {
		if got[i] != a.Name {
			t.Errorf("--list line %d = %q; want %q", i, got[i], a.Name)
		}
	}
}
