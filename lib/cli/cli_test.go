package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

// testCmd is a small grammar in the shape the applets use (STYLE.md grammar
// B): two decimal options and a passthrough operand list. Its Run records
// that it ran and returns whatever the test asked for.
type testCmd struct {
	Timeout Millis   `short:"t" name:"timeout" help:"Milliseconds."`
	Count   *Uint    `short:"n" name:"count" help:"A count."`
	Args    []string `arg:"" passthrough:"partial" name:"file prog" help:"Operands."`

	rec *record
}

// record is what one run of testCmd saw.
type record struct {
	ran     bool
	name    string
	timeout Millis
	count   *Uint
	args    []string
	ret     error
}

func (c *testCmd) Run(env *Env) error {
	c.rec.ran = true
	c.rec.name = env.Name
	c.rec.timeout = c.Timeout
	c.rec.count = c.Count
	c.rec.args = Operands(c.Args)
	return c.rec.ret
}

const testUsage = "[ -t timeout ] [ -n count ] file prog..."

// testApplet returns an applet whose runs are recorded in rec.
func testApplet(rec *record) Applet {
	return Applet{
		Name:    "testapp",
		Aliases: []string{"s6-testapp"},
		Summary: "an applet for tests",
		Usage:   testUsage,
		New:     func() Command { return &testCmd{rec: rec} },
	}
}

// otherApplet has no aliases, so --list --aliases prints it alone.
func otherApplet(rec *record) Applet {
	return Applet{
		Name:    "other",
		Summary: "another applet",
		Usage:   "file",
		New:     func() Command { return &testCmd{rec: rec} },
	}
}

// run calls f with a fresh Env and returns the code and both streams.
func run(f func(env *Env) int) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := f(&Env{Stdout: &stdout, Stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

// lines splits s into its lines; s must end in a newline unless empty.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestMainDispatch(t *testing.T) {
	for _, tt := range []struct {
		name     string
		argv     []string
		wantName string
		wantArgs []string
	}{
		{name: "argv0 basename", argv: []string{"/usr/local/bin/testapp", "pf", "prog"}, wantName: "testapp", wantArgs: []string{"pf", "prog"}},
		{name: "argv0 relative", argv: []string{"./testapp", "pf", "prog"}, wantName: "testapp", wantArgs: []string{"pf", "prog"}},
		{name: "argv0 alias", argv: []string{"/bin/s6-testapp", "pf", "prog"}, wantName: "s6-testapp", wantArgs: []string{"pf", "prog"}},
		{name: "argv1", argv: []string{"gotools", "testapp", "pf", "prog"}, wantName: "testapp", wantArgs: []string{"pf", "prog"}},
		{name: "argv1 after path", argv: []string{"/usr/local/bin/gotools", "testapp", "pf", "prog"}, wantName: "testapp", wantArgs: []string{"pf", "prog"}},
		{name: "argv1 alias", argv: []string{"gotools", "s6-testapp", "pf", "prog"}, wantName: "s6-testapp", wantArgs: []string{"pf", "prog"}},
		{name: "argv1 under another name", argv: []string{"/tmp/renamed", "testapp", "pf", "prog"}, wantName: "testapp", wantArgs: []string{"pf", "prog"}},
		{name: "argv0 wins over argv1", argv: []string{"testapp", "other", "prog"}, wantName: "testapp", wantArgs: []string{"other", "prog"}},
		{name: "operands after flags", argv: []string{"testapp", "-t", "5", "pf", "prog", "-t", "x"}, wantName: "testapp", wantArgs: []string{"pf", "prog", "-t", "x"}},
		{name: "one leading dash-dash dropped", argv: []string{"testapp", "--", "pf", "prog"}, wantName: "testapp", wantArgs: []string{"pf", "prog"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &record{}
			all := []Applet{testApplet(rec), otherApplet(&record{})}
			code, stdout, stderr := run(func(env *Env) int { return Main(all, tt.argv, env) })
			if code != 0 || stdout != "" || stderr != "" {
				t.Fatalf("Main(%q) = %d, stdout %q, stderr %q; want 0, nothing printed", tt.argv, code, stdout, stderr)
			}
			if !rec.ran {
				t.Fatalf("Main(%q) did not run testapp", tt.argv)
			}
			if rec.name != tt.wantName {
				t.Errorf("Main(%q): env.Name = %q; want %q", tt.argv, rec.name, tt.wantName)
			}
			if !slices.Equal(rec.args, tt.wantArgs) {
				t.Errorf("Main(%q): operands = %q; want %q", tt.argv, rec.args, tt.wantArgs)
			}
		})
	}
}

func TestMainUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		argv   []string
		prefix string
	}{
		{name: "no args", argv: []string{"gotools"}, prefix: "gotools: usage: gotools "},
		{name: "no argv at all", argv: nil, prefix: "gotools: usage: gotools "},
		{name: "full path no args", argv: []string{"/usr/local/bin/gotools"}, prefix: "gotools: usage: gotools "},
		{name: "unknown applet", argv: []string{"gotools", "nosuch"}, prefix: "gotools: fatal: unknown applet nosuch"},
		{name: "unknown applet under another name", argv: []string{"/tmp/x", "nosuch", "a"}, prefix: "gotools: fatal: unknown applet nosuch"},
		{name: "unknown option", argv: []string{"gotools", "--nosuch"}, prefix: "gotools: fatal: unknown applet --nosuch"},
		{name: "list bad option", argv: []string{"gotools", "--list", "--nosuch"}, prefix: "gotools: usage: gotools --list"},
		{name: "install no dir", argv: []string{"gotools", "--install"}, prefix: "gotools: usage: gotools --install"},
		{name: "install two dirs", argv: []string{"gotools", "--install", "a", "b"}, prefix: "gotools: usage: gotools --install"},
		{name: "install bad option", argv: []string{"gotools", "--install", "-x", "a"}, prefix: "gotools: usage: gotools --install"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &record{}
			all := []Applet{testApplet(rec), otherApplet(rec)}
			code, stdout, stderr := run(func(env *Env) int { return Main(all, tt.argv, env) })
			if code != exitcode.Usage {
				t.Errorf("Main(%q) = %d; want %d", tt.argv, code, exitcode.Usage)
			}
			if got := lines(stderr); len(got) != 1 || !strings.HasPrefix(got[0], tt.prefix) {
				t.Errorf("Main(%q) stderr = %q; want one line starting %q", tt.argv, stderr, tt.prefix)
			}
			if stdout != "" {
				t.Errorf("Main(%q) stdout = %q; want nothing", tt.argv, stdout)
			}
			if rec.ran {
				t.Errorf("Main(%q) ran an applet", tt.argv)
			}
		})
	}
}

func TestMainInfo(t *testing.T) {
	old := Version
	Version = "v1.2.3-test"
	t.Cleanup(func() { Version = old })
	all := []Applet{testApplet(&record{}), otherApplet(&record{})}
	for _, tt := range []struct {
		name string
		argv []string
		want string // exact stdout, unless contains is set
		// contains lists substrings of stdout instead of an exact match.
		contains []string
	}{
		{name: "list", argv: []string{"gotools", "--list"}, want: "testapp\nother\n"},
		{name: "list aliases", argv: []string{"gotools", "--list", "--aliases"}, want: "testapp\ts6-testapp\nother\n"},
		{name: "version", argv: []string{"gotools", "--version"}, want: "gotools v1.2.3-test (" + runtime.Version() + ")\n"},
		{name: "help", argv: []string{"gotools", "--help"}, contains: []string{"Usage: gotools", "testapp", "an applet for tests", "other", "another applet", "--list"}},
		{name: "short help", argv: []string{"gotools", "-h"}, contains: []string{"Usage: gotools", "testapp"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(func(env *Env) int { return Main(all, tt.argv, env) })
			if code != 0 || stderr != "" {
				t.Errorf("Main(%q) = %d, stderr %q; want 0, nothing on stderr", tt.argv, code, stderr)
			}
			if tt.contains == nil && stdout != tt.want {
				t.Errorf("Main(%q) stdout = %q; want %q", tt.argv, stdout, tt.want)
			}
			for _, s := range tt.contains {
				if !strings.Contains(stdout, s) {
					t.Errorf("Main(%q) stdout = %q; want it to contain %q", tt.argv, stdout, s)
				}
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	for _, tt := range []struct {
		name string
		argv []string
	}{
		{name: "long", argv: []string{"testapp", "--help"}},
		{name: "short", argv: []string{"testapp", "-h"}},
		{name: "after a flag", argv: []string{"testapp", "-t", "5", "--help"}},
		{name: "through gotools", argv: []string{"gotools", "testapp", "--help"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &record{}
			code, stdout, stderr := run(func(env *Env) int { return Main([]Applet{testApplet(rec)}, tt.argv, env) })
			if code != 0 {
				t.Errorf("Main(%q) = %d; want 0", tt.argv, code)
			}
			if !strings.Contains(stdout, "Usage: testapp") || !strings.Contains(stdout, "--timeout") {
				t.Errorf("Main(%q) stdout = %q; want help for testapp", tt.argv, stdout)
			}
			if stderr != "" {
				t.Errorf("Main(%q) stderr = %q; want nothing", tt.argv, stderr)
			}
			// kong's help hook calls Exit(0) and then keeps parsing if Exit
			// returns; reaching Run would prove that it did.
			if rec.ran {
				t.Errorf("Main(%q) ran the applet after --help; kong.Exit returned", tt.argv)
			}
		})
	}
	t.Run("operand after the first is passed through", func(t *testing.T) {
		rec := &record{}
		argv := []string{"testapp", "pf", "prog", "--help"}
		code, stdout, _ := run(func(env *Env) int { return Main([]Applet{testApplet(rec)}, argv, env) })
		if code != 0 || stdout != "" || !rec.ran || !slices.Equal(rec.args, []string{"pf", "prog", "--help"}) {
			t.Errorf("Main(%q) = %d, stdout %q, ran %v, operands %q; want 0, no help, ran with [pf prog --help]", argv, code, stdout, rec.ran, rec.args)
		}
	})
}

func TestRunUsageError(t *testing.T) {
	for _, tt := range []struct {
		name   string
		invoke string // the name the applet is called by
		args   []string
		ret    error  // what Run returns, if it is reached
		reason string // the second line, after "APPLET: fatal: "; "" for none
	}{
		{name: "unknown long flag", invoke: "testapp", args: []string{"--nosuch", "pf", "prog"}, reason: "unknown option --nosuch"},
		{name: "unknown short flag", invoke: "testapp", args: []string{"-x", "pf", "prog"}, reason: "unknown option -x"},
		{name: "missing operand", invoke: "testapp", args: nil},
		{name: "missing flag value", invoke: "testapp", args: []string{"-t"}, reason: "-t: missing value"},
		{name: "negative looking value", invoke: "testapp", args: []string{"-t", "-5", "pf", "prog"}, reason: `-t: "-5" is not a decimal number`},
		{name: "bad number", invoke: "testapp", args: []string{"-t", "0x10", "pf", "prog"}, reason: `-t: "0x10" is not a decimal number`},
		{name: "long option, bad number", invoke: "testapp", args: []string{"--count=abc", "pf", "prog"}, reason: `-n: "abc" is not a decimal number`},
		{name: "number too large", invoke: "testapp", args: []string{"-t", "4294967296", "pf", "prog"}, reason: `-t: "4294967296" is too large (at most 4294967295)`},
		{name: "alias in the message", invoke: "s6-testapp", args: []string{"-x", "pf", "prog"}, reason: "unknown option -x"},
		{name: "applet returns ErrUsage", invoke: "testapp", args: []string{"pf"}, ret: exitcode.ErrUsage},
		{name: "applet wraps ErrUsage", invoke: "testapp", args: []string{"pf"}, ret: errors.Join(errors.New("one operand"), exitcode.ErrUsage)},
		{name: "applet returns Usagef", invoke: "testapp", args: []string{"pf"}, ret: Usagef("pf: bad operand"), reason: "pf: bad operand"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &record{ret: tt.ret}
			argv := append([]string{"/bin/" + tt.invoke}, tt.args...)
			code, stdout, stderr := run(func(env *Env) int { return Main([]Applet{testApplet(rec)}, argv, env) })
			want := tt.invoke + ": usage: " + tt.invoke + " " + testUsage + "\n"
			if tt.reason != "" {
				want += tt.invoke + ": fatal: " + tt.reason + "\n"
			}
			if code != exitcode.Usage || stderr != want || stdout != "" {
				t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want %d, nothing, %q", argv, code, stdout, stderr, exitcode.Usage, want)
			}
			if tt.ret == nil && rec.ran {
				t.Errorf("Main(%q) ran the applet despite a parse error", argv)
			}
		})
	}
}

// TestUpstreamUsage checks that under an upstream name the usage line is
// upstream's synopsis, and under gotools' name the applet's own.
func TestUpstreamUsage(t *testing.T) {
	a := Applet{Name: "svok", Aliases: []string{"s6-svok"}, Usage: "DIR", New: func() Command { return &testCmd{rec: &record{}} }}
	for _, tt := range []struct{ name, want string }{
		{name: "svok", want: "svok: usage: svok DIR\n"},
		{name: "s6-svok", want: "s6-svok: usage: s6-svok servicedir\n"},
	} {
		code, _, stderr := run(func(env *Env) int { return Main([]Applet{a}, []string{tt.name}, env) })
		if code != exitcode.Usage || stderr != tt.want {
			t.Errorf("Main(%q) = %d, stderr %q; want 100, %q", tt.name, code, stderr, tt.want)
		}
	}
}

func TestRunReport(t *testing.T) {
	for _, tt := range []struct {
		name       string
		ret        error
		wantCode   int
		wantStderr string
	}{
		{name: "success", ret: nil, wantCode: 0, wantStderr: ""},
		{
			name:       "errno capitalised",
			ret:        exitcode.Errorf(111, "unable to open %s: %w", "x", unix.ENOENT),
			wantCode:   111,
			wantStderr: "testapp: fatal: unable to open x: No such file or directory\n",
		},
		{
			name:       "errno in a plain error is 111",
			ret:        fmt.Errorf("unable to lock %s: %w", "y", unix.EBUSY),
			wantCode:   111,
			wantStderr: "testapp: fatal: unable to lock y: Device or resource busy\n",
		},
		{
			name:       "refusal with its code",
			ret:        exitcode.Errorf(exitcode.Refused, "locked"),
			wantCode:   1,
			wantStderr: "testapp: fatal: locked\n",
		},
		{
			name:       "message kept on one line",
			ret:        exitcode.Errorf(111, "two\nlines"),
			wantCode:   111,
			wantStderr: "testapp: fatal: two lines\n",
		},
		{name: "silent exit", ret: exitcode.Exit(42), wantCode: 42, wantStderr: ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &record{ret: tt.ret}
			args := []string{"pf", "prog"}
			code, stdout, stderr := run(func(env *Env) int { return Run(testApplet(rec), args, env) })
			if code != tt.wantCode || stderr != tt.wantStderr || stdout != "" {
				t.Errorf("Run(%q) returning %v = %d, stdout %q, stderr %q; want %d, nothing, %q", args, tt.ret, code, stdout, stderr, tt.wantCode, tt.wantStderr)
			}
			if !rec.ran {
				t.Errorf("Run(%q) did not run the applet", args)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{name: "plain", err: errors.New("plain words"), want: "plain words"},
		{name: "errno alone", err: unix.EACCES, want: "Permission denied"},
		{name: "errno at the end", err: exitcode.Errorf(111, "unable to read %s: %w", "f", unix.EINTR), want: "unable to read f: Interrupted system call"},
		{name: "errno then a note", err: exitcode.Errorf(111, "%w (while reading)", unix.EIO), want: "Input/output error (while reading)"},
		{name: "reason then a note", err: exitcode.Errorf(111, "unable to spawn ./run: %w (retrying in 60 seconds)", unix.EACCES), want: "unable to spawn ./run: Permission denied (retrying in 60 seconds)"},
		{name: "errno text inside a word is left alone", err: exitcode.Errorf(111, "xno such file or directory: %w", unix.EIO), want: "xno such file or directory: Input/output error"},
		{name: "newlines", err: errors.New("a\nb\nc"), want: "a b c"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Message(tt.err); got != tt.want {
				t.Errorf("Message(%q) = %q; want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestDecimalOptions(t *testing.T) {
	for _, tt := range []struct {
		name string
		arg  string
		want uint32
		ok   bool
	}{
		{name: "plain", arg: "10", want: 10, ok: true},
		{name: "leading zero is decimal", arg: "010", want: 10, ok: true},
		{name: "zero", arg: "0", want: 0, ok: true},
		{name: "max", arg: "4294967295", want: 4294967295, ok: true},
		{name: "hex", arg: "0x10"},
		{name: "octal prefix", arg: "0o10"},
		{name: "binary prefix", arg: "0b10"},
		{name: "negative", arg: "-5"},
		{name: "plus", arg: "+5"},
		{name: "underscore", arg: "1_000"},
		{name: "overflow", arg: "4294967296"},
		{name: "empty", arg: ""},
		{name: "leading space", arg: " 1"},
		{name: "trailing space", arg: "1 "},
		{name: "trailing garbage", arg: "1ms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, flag := range []string{"--timeout", "--count"} {
				rec := &record{}
				args := []string{flag + "=" + tt.arg, "pf", "prog"}
				code, _, stderr := run(func(env *Env) int { return Run(testApplet(rec), args, env) })
				if !tt.ok {
					if code != exitcode.Usage || rec.ran {
						t.Errorf("Run(%q) = %d, ran %v; want %d, not run", args, code, rec.ran, exitcode.Usage)
					}
					continue
				}
				if code != 0 {
					t.Fatalf("Run(%q) = %d, stderr %q; want 0", args, code, stderr)
				}
				var got uint32
				if flag == "--timeout" {
					got = uint32(rec.timeout)
				} else if rec.count != nil {
					got = uint32(*rec.count)
				} else {
					t.Fatalf("Run(%q): count not set", args)
				}
				if got != tt.want {
					t.Errorf("Run(%q): value = %d; want %d", args, got, tt.want)
				}
			}
		})
	}
	t.Run("short attached and repeated", func(t *testing.T) {
		rec := &record{}
		args := []string{"-t100", "-n", "07", "-t", "0200", "pf", "prog"}
		code, _, stderr := run(func(env *Env) int { return Run(testApplet(rec), args, env) })
		if code != 0 || rec.timeout != 200 || rec.count == nil || *rec.count != 7 {
			t.Errorf("Run(%q) = %d (stderr %q), timeout %d, count %v; want 0, 200, 7", args, code, stderr, rec.timeout, rec.count)
		}
	})
}

func TestParseDecimal(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want uint32
		ok   bool
	}{
		{name: "zero", in: "0", want: 0, ok: true},
		{name: "one", in: "1", want: 1, ok: true},
		{name: "leading zeros", in: "0007", want: 7, ok: true},
		{name: "octal-looking", in: "010", want: 10, ok: true},
		{name: "many leading zeros", in: "000000000000042", want: 42, ok: true},
		{name: "max uint32", in: "4294967295", want: 4294967295, ok: true},
		{name: "max plus one", in: "4294967296"},
		{name: "huge", in: "99999999999999999999999"},
		{name: "empty", in: ""},
		{name: "hex", in: "0x10"},
		{name: "upper hex", in: "0X10"},
		{name: "minus", in: "-1"},
		{name: "plus", in: "+1"},
		{name: "underscore", in: "1_000"},
		{name: "leading space", in: " 1"},
		{name: "trailing newline", in: "1\n"},
		{name: "trailing garbage", in: "12a"},
		{name: "decimal point", in: "1.5"},
		{name: "non-ASCII digit", in: "١"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDecimal(tt.in)
			if tt.ok && (err != nil || got != tt.want) {
				t.Errorf("ParseDecimal(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
			}
			if !tt.ok && err == nil {
				t.Errorf("ParseDecimal(%q) = %d, nil; want an error", tt.in, got)
			}
		})
	}
}

func TestOperands(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []string
		want []string
	}{
		{name: "nil", in: nil, want: nil},
		{name: "no dash-dash", in: []string{"pf", "prog"}, want: []string{"pf", "prog"}},
		{name: "leading dash-dash", in: []string{"--", "pf", "prog"}, want: []string{"pf", "prog"}},
		{name: "only dash-dash", in: []string{"--"}, want: []string{}},
		{name: "exactly one stripped", in: []string{"--", "--", "prog"}, want: []string{"--", "prog"}},
		{name: "later dash-dash kept", in: []string{"pf", "--", "prog"}, want: []string{"pf", "--", "prog"}},
		{name: "single dash kept", in: []string{"-", "prog"}, want: []string{"-", "prog"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Operands(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("Operands(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

// installFixture makes a fake gotools binary in root/libexec and returns its
// path and an empty bin directory.
func installFixture(t *testing.T) (exe, dir string) {
	t.Helper()
	root := t.TempDir()
	exe = filepath.Join(root, "libexec", "gotools")
	dir = filepath.Join(root, "bin")
	for _, d := range []string{filepath.Dir(exe), dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return exe, dir
}

// checkLink fails unless path is a relative symlink that resolves to exe.
func checkLink(t *testing.T, path, exe string) {
	t.Helper()
	target, err := os.Readlink(path)
	if err != nil {
		t.Fatalf("Readlink(%q) = %v; want a symlink", path, err)
	}
	if filepath.IsAbs(target) {
		t.Errorf("Readlink(%q) = %q; want a relative path", path, target)
	}
	got, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Stat(%q) = %v; want it to resolve", path, err)
	}
	want, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(got, want) {
		t.Errorf("Stat(%q) resolves to %q; want %q", path, target, exe)
	}
}

func testApplets() []Applet {
	return []Applet{testApplet(&record{}), otherApplet(&record{})}
}

func TestInstall(t *testing.T) {
	t.Run("relative symlinks", func(t *testing.T) {
		exe, dir := installFixture(t)
		if err := Install(testApplets(), exe, dir, false, false); err != nil {
			t.Fatalf("Install(%q, %q) = %v; want nil", exe, dir, err)
		}
		for _, name := range []string{"testapp", "other"} {
			checkLink(t, filepath.Join(dir, name), exe)
		}
		if _, err := os.Lstat(filepath.Join(dir, "s6-testapp")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Lstat(s6-testapp) = %v; want ErrNotExist without s6Names", err)
		}
	})

	t.Run("aliases with s6Names", func(t *testing.T) {
		exe, dir := installFixture(t)
		if err := Install(testApplets(), exe, dir, true, false); err != nil {
			t.Fatalf("Install(%q, %q, s6Names) = %v; want nil", exe, dir, err)
		}
		for _, name := range []string{"testapp", "s6-testapp", "other"} {
			checkLink(t, filepath.Join(dir, name), exe)
		}
	})

	t.Run("idempotent", func(t *testing.T) {
		exe, dir := installFixture(t)
		if err := Install(testApplets(), exe, dir, true, false); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "testapp")
		before, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := Install(testApplets(), exe, dir, true, false); err != nil {
			t.Fatalf("second Install(%q, %q) = %v; want nil", exe, dir, err)
		}
		after, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(before, after) {
			t.Errorf("second Install replaced %q; want it left alone", path)
		}
		checkLink(t, path, exe)
	})

	t.Run("refuses a regular file", func(t *testing.T) {
		exe, dir := installFixture(t)
		path := filepath.Join(dir, "other")
		if err := os.WriteFile(path, []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := Install(testApplets(), exe, dir, false, false)
		if code := exitcode.Of(err); code != exitcode.Refused {
			t.Fatalf("Install over a regular file = %v (code %d); want code %d", err, code, exitcode.Refused)
		}
		want := "refusing to replace " + path + ": not a symlink to gotools (use -f)"
		if got := Message(err); got != want {
			t.Errorf("Install over a regular file: Message(err) = %q; want %q", got, want)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "mine" {
			t.Errorf("ReadFile(%q) = %q, %v; want the file untouched", path, b, err)
		}
	})

	t.Run("refuses a symlink elsewhere", func(t *testing.T) {
		exe, dir := installFixture(t)
		path := filepath.Join(dir, "testapp")
		if err := os.Symlink("/bin/true", path); err != nil {
			t.Fatal(err)
		}
		err := Install(testApplets(), exe, dir, false, false)
		if code := exitcode.Of(err); code != exitcode.Refused {
			t.Fatalf("Install over a foreign symlink = %v (code %d); want code %d", err, code, exitcode.Refused)
		}
		if got, _ := os.Readlink(path); got != "/bin/true" {
			t.Errorf("Readlink(%q) = %q; want /bin/true untouched", path, got)
		}
	})

	t.Run("force replaces a regular file", func(t *testing.T) {
		exe, dir := installFixture(t)
		path := filepath.Join(dir, "other")
		if err := os.WriteFile(path, []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Install(testApplets(), exe, dir, false, true); err != nil {
			t.Fatalf("Install(force) = %v; want nil", err)
		}
		checkLink(t, path, exe)
	})

	t.Run("replaces a symlink to another gotools", func(t *testing.T) {
		exe, dir := installFixture(t)
		path := filepath.Join(dir, "testapp")
		if err := os.Symlink("/opt/old/bin/gotools", path); err != nil {
			t.Fatal(err)
		}
		if err := Install(testApplets(), exe, dir, false, false); err != nil {
			t.Fatalf("Install over a link to another gotools = %v; want nil", err)
		}
		checkLink(t, path, exe)
	})

	t.Run("relative exe path", func(t *testing.T) {
		exe, dir := installFixture(t)
		t.Chdir(filepath.Dir(filepath.Dir(exe)))
		if err := Install(testApplets(), filepath.Join("libexec", "gotools"), "bin", false, false); err != nil {
			t.Fatalf("Install(libexec/gotools, bin) = %v; want nil", err)
		}
		checkLink(t, filepath.Join(dir, "testapp"), exe)
	})

	t.Run("exe in the same directory", func(t *testing.T) {
		exe, _ := installFixture(t)
		dir := filepath.Dir(exe)
		if err := Install(testApplets(), exe, dir, false, false); err != nil {
			t.Fatalf("Install(%q, %q) = %v; want nil", exe, dir, err)
		}
		if got, _ := os.Readlink(filepath.Join(dir, "testapp")); got != "gotools" {
			t.Errorf("Readlink(testapp) = %q; want %q", got, "gotools")
		}
	})

	t.Run("gotools --install", func(t *testing.T) {
		dir := t.TempDir()
		argv := []string{"gotools", "--install", "--s6-names", dir}
		code, stdout, stderr := run(func(env *Env) int { return Main(testApplets(), argv, env) })
		if code != 0 || stdout != "" || stderr != "" {
			t.Fatalf("Main(%q) = %d, stdout %q, stderr %q; want 0, nothing printed", argv, code, stdout, stderr)
		}
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"testapp", "s6-testapp", "other"} {
			checkLink(t, filepath.Join(dir, name), exe)
		}
	})

	t.Run("gotools --install refusal", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "testapp")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		argv := []string{"gotools", "--install", dir}
		code, _, stderr := run(func(env *Env) int { return Main(testApplets(), argv, env) })
		want := "gotools: fatal: refusing to replace " + path + ": not a symlink to "
		if code != exitcode.Refused || len(lines(stderr)) != 1 || !strings.HasPrefix(stderr, want) {
			t.Errorf("Main(%q) = %d, stderr %q; want %d, one line starting %q", argv, code, stderr, exitcode.Refused, want)
		}
	})
}

// benchCmd is a 3-field grammar like background-watch's.
type benchCmd struct {
	Timeout Millis   `short:"t" name:"timeout-ready" help:"Milliseconds."`
	Notif   *Uint    `short:"d" name:"notification-fd" help:"An fd."`
	Args    []string `arg:"" passthrough:"partial" name:"pidfile prog" help:"Operands."`
}

func (c *benchCmd) Run(env *Env) error { return nil }

// BenchmarkRunParse measures what every applet start pays in lib/cli:
// building the kong parser and parsing a short command line.
func BenchmarkRunParse(b *testing.B) {
	a := Applet{
		Name:  "bench",
		Usage: "[ -t timeout ] [ -d notif ] pidfile prog...",
		New:   func() Command { return new(benchCmd) },
	}
	args := []string{"-t", "100", "-d", "3", "/run/x.pid", "prog", "-x", "arg"}
	env := &Env{Stdout: io.Discard, Stderr: io.Discard}
	b.ReportAllocs()
	for b.Loop() {
		if code := Run(a, args, env); code != 0 {
			b.Fatalf("Run(%q) = %d; want 0", args, code)
		}
	}
}

// bytesCmd has every shape of string field a grammar uses: an option, a
// plain positional and a passthrough list.
type bytesCmd struct {
	Name string   `short:"N" name:"name" help:"A name."`
	Dir  string   `arg:"" name:"dir" help:"A directory."`
	Prog []string `arg:"" passthrough:"partial" name:"prog" help:"A program."`

	got *bytesCmd
}

func (c *bytesCmd) Run(env *Env) error {
	*c.got = *c
	return nil
}

// TestRunKeepsBytes checks that arguments reach the grammar as the bytes
// they were (issue 20): kong's own string mapper goes through JSON, which
// turns a byte that is not UTF-8 into U+FFFD.
func TestRunKeepsBytes(t *testing.T) {
	var got bytesCmd
	a := Applet{Name: "bytes", Usage: "[ -N name ] dir prog...", New: func() Command { return &bytesCmd{got: &got} }}
	args := []string{"-N", "n\xff", "--", "d\xfe\x80", "p\xc3", "-x", "\xff\xff"}
	code, stdout, stderr := run(func(env *Env) int { return Run(a, args, env) })
	if code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("Run(%q) = %d, %q, %q; want 0", args, code, stdout, stderr)
	}
	if want := []string{"p\xc3", "-x", "\xff\xff"}; got.Name != "n\xff" || got.Dir != "d\xfe\x80" || !slices.Equal(got.Prog, want) {
		t.Errorf("Run(%q) parsed name %q, dir %q, prog %q; want %q, %q, %q", args, got.Name, got.Dir, got.Prog, "n\xff", "d\xfe\x80", want)
	}
}

func TestOneOperand(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
		ok   bool
	}{
		{[]string{"dir"}, "dir", true},
		{[]string{"--", "dir"}, "dir", true},
		{[]string{"--", "-dir"}, "", false},
		{[]string{"-t", "dir"}, "", false},
		{[]string{""}, "", false},
		{[]string{"a", "b"}, "", false},
		{nil, "", false},
	} {
		if got, ok := OneOperand(tt.args); got != tt.want || ok != tt.ok {
			t.Errorf("OneOperand(%q) = %q, %v; want %q, %v", tt.args, got, ok, tt.want, tt.ok)
		}
	}
}
