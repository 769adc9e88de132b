package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/applets"
	"github.com/gotools-dev/gotools/lib/cli"
)

// listedApplets returns the applets "gotools --list" names, each with its
// registry entry (for the usage synopsis), so the CLI tables below grow
// with the registry.
func listedApplets(t *testing.T) []cli.Applet {
	t.Helper()
	r := run(t, "gotools", "--list")
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("run(gotools --list) = %s, stderr %q; want exit 0, no stderr", r.Status(), r.Stderr)
	}
	var all []cli.Applet
	for _, name := range lines(r.Stdout) {
		a, ok := cli.Find(applets.All, name)
		if !ok || a.Name != name {
			t.Fatalf("gotools --list prints %q, which is no applet of the registry", name)
		}
		all = append(all, a)
	}
	if len(all) == 0 {
		t.Fatal("gotools --list prints no applet")
	}
	return all
}

// usageLine is the one stderr line of a usage error of a called as name.
func usageLine(name string, a cli.Applet) string {
	return fmt.Sprintf("%s: usage: %s %s\n", name, name, a.Usage)
}

func TestCLIListMatchesRegistry(t *testing.T) {
	t.Parallel()
	var names, withAliases strings.Builder
	for _, a := range applets.All {
		names.WriteString(a.Name + "\n")
		withAliases.WriteString(strings.Join(append([]string{a.Name}, a.Aliases...), "\t") + "\n")
	}
	for _, tt := range []struct {
		name string
		argv []string
		want string
	}{
		{name: "--list", argv: []string{"gotools", "--list"}, want: names.String()},
		{name: "--list --aliases", argv: []string{"gotools", "--list", "--aliases"}, want: withAliases.String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if r := run(t, tt.argv...); r.Code != 0 || r.Stdout != tt.want || r.Stderr != "" {
				t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 0, stdout %q", tt.argv, r.Status(), r.Stdout, r.Stderr, tt.want)
			}
		})
	}
}

// filters are the applets that read stdin when given no arguments, as
// their s6 counterparts do; tai64n ignores every argument.
var filters = map[string]bool{"tai64n": true, "tai64nlocal": true}

// TestCLIUsageErrors runs every applet, through its symlink and as
// "gotools APPLET", with a bad command line: exit 100, nothing on stdout,
// and exactly the line "APPLET: usage: APPLET SYNOPSIS" on stderr.
func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	for _, a := range listedApplets(t) {
		for _, tt := range []struct {
			name string
			args []string
		}{
			{name: "no args"},
			{name: "bad flag", args: []string{"--no-such-flag"}},
		} {
			if filters[a.Name] && (tt.args == nil || a.Name == "tai64n") {
				continue // a filter: no arguments means read stdin (spec/log.md §10)
			}
			t.Run(a.Name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				want := usageLine(a.Name, a)
				for _, argv := range [][]string{
					append([]string{a.Name}, tt.args...),
					append([]string{"gotools", a.Name}, tt.args...),
				} {
					r := run(t, argv...)
					if r.Code != 100 || r.Stdout != "" || r.Stderr != want {
						t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 100, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, want)
					}
				}
			})
		}
	}
}

// TestCLIHelp checks --help (exit 0, help on stdout only), and that
// "gotools APPLET --help" prints exactly what the APPLET symlink prints.
func TestCLIHelp(t *testing.T) {
	t.Parallel()
	for _, a := range listedApplets(t) {
		if a.Name == "lockd-helper" {
			continue // its argv is fixed (locks.md): "--help" is a lock mode
		}
		t.Run(a.Name, func(t *testing.T) {
			t.Parallel()
			link := run(t, a.Name, "--help")
			if link.Code != 0 || link.Stdout == "" || link.Stderr != "" {
				t.Errorf("run(%s --help) = %s, stdout %q, stderr %q; want exit 0, help on stdout, no stderr", a.Name, link.Status(), link.Stdout, link.Stderr)
			}
			multi := run(t, "gotools", a.Name, "--help")
			if multi.Code != link.Code || multi.Stdout != link.Stdout || multi.Stderr != link.Stderr {
				t.Errorf("run(gotools %s --help) = %s, stdout %q, stderr %q; want what the symlink gives: %s, %q, %q",
					a.Name, multi.Status(), multi.Stdout, multi.Stderr, link.Status(), link.Stdout, link.Stderr)
			}
		})
	}
}

// TestCLIAliases calls each s6 alias without arguments: the usage line
// names the alias, through its symlink and through "gotools ALIAS".
func TestCLIAliases(t *testing.T) {
	t.Parallel()
	for _, a := range listedApplets(t) {
		for _, alias := range a.Aliases {
			if filters[a.Name] {
				continue
			}
			t.Run(alias, func(t *testing.T) {
				t.Parallel()
				want := usageLine(alias, a)
				for _, argv := range [][]string{{alias}, {"gotools", alias}} {
					if r := run(t, argv...); r.Code != 100 || r.Stdout != "" || r.Stderr != want {
						t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 100, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, want)
					}
				}
			})
		}
	}
}

// TestCLIBadNumbers feeds malformed numbers to the numeric options. s6
// reads decimal only (STYLE.md rule 11): no sign, no base prefix. ("-t 010"
// must read as 10, which cannot be seen without running the applet.)
func TestCLIBadNumbers(t *testing.T) {
	t.Parallel()
	registered := map[string]cli.Applet{}
	for _, a := range listedApplets(t) {
		registered[a.Name] = a
	}
	for _, tt := range []struct {
		name   string
		applet string
		args   []string
	}{
		{name: "-t not a number", applet: "background-watch", args: []string{"-t", "x", "a", "b"}},
		{name: "-t hexadecimal", applet: "background-watch", args: []string{"-t", "0x10", "a", "b"}},
		{name: "-t negative", applet: "background-watch", args: []string{"-t", "-5", "a", "b"}},
		{name: "-t underscore", applet: "background-watch", args: []string{"-t", "1_000", "a", "b"}},
		{name: "-t too big", applet: "background-watch", args: []string{"-t", "4294967296", "a", "b"}},
		{name: "-t empty", applet: "background-watch", args: []string{"--timeout-ready=", "a", "b"}},
		{name: "-d 1", applet: "background-watch", args: []string{"-d", "1", "a", "b"}},
		{name: "-d not a number", applet: "background-watch", args: []string{"-d", "x", "a", "b"}},
		{name: "one operand", applet: "background-watch", args: []string{"a"}},
	} {
		t.Run(tt.applet+"/"+tt.name, func(t *testing.T) {
			t.Parallel()
			a, ok := registered[tt.applet]
			if !ok {
				t.Fatalf("%s is not in gotools --list", tt.applet)
			}
			argv := append([]string{tt.applet}, tt.args...)
			want := usageLine(tt.applet, a)
			if r := run(t, argv...); r.Code != 100 || r.Stdout != "" || r.Stderr != want {
				t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 100, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, want)
			}
		})
	}
}

// TestCLIMulticall checks gotools' own command line.
func TestCLIMulticall(t *testing.T) {
	t.Parallel()
	// A link with a name that is no applet behaves as gotools itself.
	nosuch := filepath.Join(t.TempDir(), "nosuch")
	if err := os.Symlink(gotoolsBin, nosuch); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name        string
		argv        []string
		code        int
		stdout      string // wanted prefix
		stderr      string // wanted prefix of the only stderr line; "" for no stderr
		everyApplet bool   // stdout names every applet
	}{
		{name: "no args", argv: []string{"gotools"}, code: 100, stderr: "gotools: usage: gotools "},
		{name: "unknown applet", argv: []string{"gotools", "nosuch"}, code: 100, stderr: "gotools: fatal: unknown applet nosuch"},
		{name: "unknown link, no args", argv: []string{nosuch}, code: 100, stderr: "gotools: usage: gotools "},
		{name: "unknown link, unknown applet", argv: []string{nosuch, "nosuch2"}, code: 100, stderr: "gotools: fatal: unknown applet nosuch2"},
		{name: "--version", argv: []string{"gotools", "--version"}, code: 0, stdout: "gotools "},
		{name: "--help", argv: []string{"gotools", "--help"}, code: 0, stdout: "gotools ", everyApplet: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tt.argv...)
			bad := r.Code != tt.code || !strings.HasPrefix(r.Stdout, tt.stdout) || tt.stdout == "" && r.Stdout != ""
			if tt.stderr == "" {
				bad = bad || r.Stderr != ""
			} else {
				bad = bad || !strings.HasPrefix(r.Stderr, tt.stderr) || len(lines(r.Stderr)) != 1 || !strings.HasSuffix(r.Stderr, "\n")
			}
			if bad {
				t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit %d, stdout %q..., one stderr line %q...",
					tt.argv, r.Status(), r.Stdout, r.Stderr, tt.code, tt.stdout, tt.stderr)
			}
			if tt.code == 0 && len(lines(r.Stdout)) < 1 {
				t.Errorf("run(%q) stdout %q; want at least one line", tt.argv, r.Stdout)
			}
			if tt.everyApplet {
				for _, a := range applets.All {
					if !strings.Contains(r.Stdout, a.Name) {
						t.Errorf("run(%q) stdout does not name applet %s: %q", tt.argv, a.Name, r.Stdout)
					}
				}
			}
		})
	}
}
