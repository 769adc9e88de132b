package tests

import (
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

// usageLine is the first stderr line of a usage error of a called as name:
// upstream's synopsis under an upstream name, else a.Usage.
func usageLine(name string, a cli.Applet) string {
	return cli.UsageLine(name, a) + "\n"
}

// wantUsage reports whether stderr is the usage line want, then, if reason
// is set, exactly one line "NAME: fatal: ..." that contains reason.
func wantUsage(stderr, want, name, reason string) bool {
	if reason == "" {
		return stderr == want
	}
	rest, ok := strings.CutPrefix(stderr, want)
	return ok && len(lines(rest)) == 1 && strings.HasSuffix(rest, "\n") &&
		strings.HasPrefix(rest, name+": fatal: ") && strings.Contains(rest, reason)
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

// noArgsValid are the names (applets and aliases) whose empty command line
// is no usage error: the filters read stdin, and svscan scans "." as
// s6-svscan does (it would start supervising the test's directory).
var noArgsValid = map[string]bool{
	"tai64n": true, "tai64nlocal": true, "s6-tai64n": true, "s6-tai64nlocal": true,
	"svscan": true, "s6-svscan": true,
}

// TestCLIUsageErrors runs every applet, through its symlink and as
// "gotools APPLET", with a bad command line: exit 100, nothing on stdout,
// and exactly the line "APPLET: usage: APPLET SYNOPSIS" on stderr.
func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	for _, a := range listedApplets(t) {
		for _, tt := range []struct {
			name   string
			args   []string
			reason string // what the second line, "APPLET: fatal: ...", says
		}{
			{name: "no args"},
			{name: "bad flag", args: []string{"--no-such-flag"}, reason: "--no-such-flag"},
		} {
			if (filters[a.Name] || noArgsValid[a.Name]) && (tt.args == nil || a.Name == "tai64n") {
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
					if a.Raw != nil && tt.reason != "" {
						// A fixed argv (lockd-helper): upstream's one line.
						tt.reason = ""
					}
					if r.Code != 100 || r.Stdout != "" || !wantUsage(r.Stderr, want, a.Name, tt.reason) {
						t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 100, stderr %q then a line naming %q", argv, r.Status(), r.Stdout, r.Stderr, want, tt.reason)
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
			if filters[a.Name] || noArgsValid[alias] {
				continue // TestCLIUpstreamSynopses checks its line with a bad option
			}
			t.Run(alias, func(t *testing.T) {
				t.Parallel()
				want := usageLine(alias, a)
				for _, argv := range [][]string{{alias}, {"gotools", alias}} {
					checkUsageLine(t, alias, argv, run(t, argv...), want)
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
		reason string // the second line names this; "" for none
	}{
		{name: "-t not a number", applet: "background-watch", args: []string{"-t", "x", "a", "b"}, reason: `-t: "x" is not a decimal number`},
		{name: "-t hexadecimal", applet: "background-watch", args: []string{"-t", "0x10", "a", "b"}, reason: `-t: "0x10" is not a decimal number`},
		{name: "-t negative", applet: "background-watch", args: []string{"-t", "-5", "a", "b"}, reason: `-t: "-5" is not a decimal number`},
		{name: "-t underscore", applet: "background-watch", args: []string{"-t", "1_000", "a", "b"}, reason: `-t: "1_000" is not a decimal number`},
		{name: "-t too big", applet: "background-watch", args: []string{"-t", "4294967296", "a", "b"}, reason: `-t: "4294967296" is too large`},
		{name: "-t empty", applet: "background-watch", args: []string{"--timeout-ready=", "a", "b"}, reason: `-t: "" is not a decimal number`},
		{name: "-d 1", applet: "background-watch", args: []string{"-d", "1", "a", "b"}},
		{name: "-d not a number", applet: "background-watch", args: []string{"-d", "x", "a", "b"}, reason: `-d: "x" is not a decimal number`},
		{name: "one operand", applet: "background-watch", args: []string{"a"}},
		{name: "-T not a number", applet: "svc", args: []string{"-T", "abc", "-wu", "dir"}, reason: `-T: "abc" is not a decimal number`},
		{name: "-t hexadecimal", applet: "svwait", args: []string{"-t", "0x10", "dir"}, reason: `-t: "0x10" is not a decimal number`},
		{name: "-w unknown state", applet: "svc", args: []string{"-w", "q", "dir"}, reason: `-w: "q"`},
	} {
		t.Run(tt.applet+"/"+tt.name, func(t *testing.T) {
			t.Parallel()
			a, ok := registered[tt.applet]
			if !ok {
				t.Fatalf("%s is not in gotools --list", tt.applet)
			}
			argv := append([]string{tt.applet}, tt.args...)
			want := usageLine(tt.applet, a)
			if r := run(t, argv...); r.Code != 100 || r.Stdout != "" || !wantUsage(r.Stderr, want, tt.applet, tt.reason) {
				t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 100, stderr %q then one line naming %q", argv, r.Status(), r.Stdout, r.Stderr, want, tt.reason)
			}
		})
	}
}

// ownUsageLine lists the aliases of applets that parse their argv
// themselves (cli.Applet.Raw) and still print a usage line of their own
// rather than cli.UsageLine: each entry must go once its applet calls
// cli.UsageLine; the tests fail when an entry is no longer needed.
var ownUsageLine = map[string]string{}

// checkUsageLine fails t if got is not want, unless alias is listed in
// ownUsageLine, where it fails t if got is want (the entry is stale).
func checkUsageLine(t *testing.T, alias string, argv []string, r Result, want string) {
	t.Helper()
	if why, ok := ownUsageLine[alias]; ok {
		if r.Stderr == want {
			t.Errorf("run(%q) prints the upstream usage line now: remove %s from ownUsageLine", argv, alias)
		} else {
			t.Logf("run(%q): known difference: %s", argv, why)
		}
		return
	}
	if r.Code != 100 || r.Stdout != "" || r.Stderr != want {
		t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 100, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, want)
	}
}

// TestCLIUpstreamSynopses compares the usage line of every s6 alias with
// the one the real program prints (Debian's s6 2.11 in CI): a bad command
// line gives upstream's line, byte for byte, under upstream's name.
func TestCLIUpstreamSynopses(t *testing.T) {
	t.Parallel()
	requireS6(t, "s6-svc")
	for _, a := range listedApplets(t) {
		for _, alias := range a.Aliases {
			real, ok := realLookPath(alias)
			if !ok {
				real = filepath.Join("/usr/lib/x86_64-linux-gnu/s6", alias)
				if _, err := os.Stat(real); err != nil {
					continue // not in this s6 (s6-background-watch is newer)
				}
			}
			t.Run(alias, func(t *testing.T) {
				t.Parallel()
				// A bad option, except where upstream reads its first
				// argument as a directory whatever it is: no argument.
				args := []string{"-Z"}
				switch alias {
				case "s6-supervise", "s6lockd", "s6-svok", "s6lockd-helper":
					args = nil
				}
				o := Opts{Dir: t.TempDir()}
				upstream := runIn(t, o, append([]string{real}, args...)...)
				first, _, _ := strings.Cut(upstream.Stderr, "\n")
				if upstream.Code == 0 && upstream.Stderr == "" {
					// s6-tai64n ignores its arguments: no usage line to match.
					t.Logf("real %s %q exits 0 and prints no usage line", real, args)
					return
				}
				if upstream.Code != 100 || !strings.HasPrefix(first, alias+": usage: ") {
					t.Fatalf("real %s %q = %s, stderr %q; want exit 100 and a usage line", real, args, upstream.Status(), upstream.Stderr)
				}
				if mine := cli.UsageLine(alias, a); mine != first {
					t.Errorf("cli.UsageLine(%s) = %q; want the real one, %q", alias, mine, first)
				}
				argv := append([]string{alias}, args...)
				ours := runIn(t, o, argv...)
				// The first line only: a second one may say what was wrong.
				got, _, _ := strings.Cut(ours.Stderr, "\n")
				ours.Stderr = got + "\n"
				checkUsageLine(t, alias, argv, ours, first+"\n")
			})
		}
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

// TestCLIHelpManual checks "gotools help APPLET" (the text of APPLET
// --help) and "gotools help --man APPLET" (a man page holding that text).
func TestCLIHelpManual(t *testing.T) {
	t.Parallel()
	for _, a := range listedApplets(t) {
		t.Run(a.Name, func(t *testing.T) {
			t.Parallel()
			h := run(t, "gotools", "help", a.Name)
			if h.Code != 0 || h.Stderr != "" || !strings.HasPrefix(h.Stdout, "Usage: "+a.Name+" ") {
				t.Fatalf("gotools help %s = %s, stdout %q, stderr %q; want exit 0, help on stdout", a.Name, h.Status(), h.Stdout, h.Stderr)
			}
			if a.Raw == nil {
				if d := run(t, a.Name, "--help"); d.Stdout != h.Stdout {
					t.Errorf("gotools help %s = %q; want what %s --help prints, %q", a.Name, h.Stdout, a.Name, d.Stdout)
				}
			}
			m := run(t, "gotools", "help", "--man", a.Name)
			if m.Code != 0 || m.Stderr != "" || !strings.HasPrefix(m.Stdout, ".TH "+strings.ToUpper(a.Name)+" 1 ") {
				t.Fatalf("gotools help --man %s = %s, stdout %q, stderr %q; want exit 0, a man page", a.Name, m.Status(), m.Stdout, m.Stderr)
			}
			for _, want := range []string{".SH NAME\n" + a.Name + " \\- " + a.Summary + "\n", ".SH SYNOPSIS\n.nf\n" + a.Name + " " + a.Usage + "\n"} {
				if !strings.Contains(m.Stdout, want) {
					t.Errorf("gotools help --man %s lacks %q", a.Name, want)
				}
			}
			for _, l := range lines(h.Stdout) {
				if l != "" && !strings.Contains(m.Stdout, strings.ReplaceAll(l, `\`, `\e`)) {
					t.Errorf("gotools help --man %s lacks the help line %q", a.Name, l)
				}
			}
		})
	}
	for _, tt := range []struct {
		argv []string
		code int
	}{
		{[]string{"gotools", "help", "nosuch"}, 100},
		{[]string{"gotools", "help", "svc", "svok"}, 100},
		{[]string{"gotools", "help"}, 0},
	} {
		if r := run(t, tt.argv...); r.Code != tt.code {
			t.Errorf("run(%q) = %s, stderr %q; want exit %d", tt.argv, r.Status(), r.Stderr, tt.code)
		}
	}
}

// TestCLIHelpMatchesGrammar checks that what --help shows of the operands
// is what the parser takes (issue 14 item 8): svok takes one DIR, svstat
// and svc several.
func TestCLIHelpMatchesGrammar(t *testing.T) {
	t.Parallel()
	dir := svcDir(t, map[string]string{"run": "#!/bin/sh\n"}) // unsupervised
	for _, tt := range []struct {
		applet, usage string
		two           int // the exit code with two DIRs
	}{
		{"svok", "Usage: svok <dir>\n", 100},
		{"svstat", "Usage: svstat <dir> ...", 1},
		{"svc", "Usage: svc <dir> ...", 102},
	} {
		if r := run(t, tt.applet, "--help"); !strings.HasPrefix(r.Stdout, tt.usage) {
			t.Errorf("%s --help = %q; want it to start with %q", tt.applet, r.Stdout, tt.usage)
		}
		if r := run(t, tt.applet, dir, dir); r.Code != tt.two {
			t.Errorf("%s DIR DIR = %s, stderr %q; want exit %d", tt.applet, r.Status(), r.Stderr, tt.two)
		}
	}
}
