package fdholder

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
)

func find(t *testing.T, name string) command {
	t.Helper()
	for _, c := range commands {
		if c.Name == name || c.Alias == name {
			return c
		}
	}
	t.Fatalf("no command %q", name)
	return command{}
}

// TestTranslate checks the `fdrestore hold` command line each s6 command
// line becomes: options in skalibs' getopt forms, numbers re-spelled in
// decimal, operands after "--" so that none is read as an option.
func TestTranslate(t *testing.T) {
	for _, tt := range []struct {
		name string
		argv []string
		want []string
	}{
		{"store", []string{"s6-fdholder-store", "/s", "id"}, []string{"hold", "store", "--", "/s", "id"}},
		{"store options", []string{"s6-fdholder-store", "-d", "3", "-t", "100", "-T", "5000", "/s", "id"},
			[]string{"hold", "store", "-d", "3", "-t", "100", "-T", "5000", "--", "/s", "id"}},
		{"store attached values", []string{"s6-fdholder-store", "-d3", "-t100", "/s", "id"}, []string{"hold", "store", "-d", "3", "-t", "100", "--", "/s", "id"}},
		{"store leading zeros", []string{"s6-fdholder-store", "-t", "010", "/s", "id"}, []string{"hold", "store", "-t", "10", "--", "/s", "id"}},
		{"store last wins", []string{"s6-fdholder-store", "-t", "1", "-t", "2", "/s", "id"}, []string{"hold", "store", "-t", "2", "--", "/s", "id"}},
		{"store id like an option", []string{"s6-fdholder-store", "/s", "-x"}, []string{"hold", "store", "--", "/s", "-x"}},
		{"store -- ends options", []string{"s6-fdholder-store", "--", "-s", "id"}, []string{"hold", "store", "--", "-s", "id"}},
		{"store extra operands ignored", []string{"s6-fdholder-store", "/s", "id", "more"}, []string{"hold", "store", "--", "/s", "id"}},
		{"retrieve", []string{"s6-fdholder-retrieve", "/s", "tcp:80", "prog", "-x"},
			[]string{"hold", "retrieve", "--fd=0=tcp:80", "--", "/s", "--", "prog", "-x"}},
		{"retrieve cluster", []string{"s6-fdholder-retrieve", "-Dt", "100", "/s", "id", "prog"},
			[]string{"hold", "retrieve", "-t", "100", "-D", "--fd=0=id", "--", "/s", "--", "prog"}},
		{"retrieve cluster attached", []string{"s6-fdholder-retrieve", "-Dt100", "/s", "id", "prog"},
			[]string{"hold", "retrieve", "-t", "100", "-D", "--fd=0=id", "--", "/s", "--", "prog"}},
		{"retrieve prog options stay", []string{"s6-fdholder-retrieve", "/s", "id", "prog", "-D", "--help", "--"},
			[]string{"hold", "retrieve", "--fd=0=id", "--", "/s", "--", "prog", "-D", "--help", "--"}},
		{"delete", []string{"s6-fdholder-delete", "-t", "0", "/s", "id"}, []string{"hold", "delete", "-t", "0", "--", "/s", "id"}},
		{"list", []string{"s6-fdholder-list", "/s"}, []string{"hold", "list", "--", "/s"}},
		{"getdump", []string{"s6-fdholder-getdump", "-t", "5", "/s", "prog", "--help"}, []string{"hold", "getdump", "-t", "5", "--", "/s", "prog", "--help"}},
		{"setdump", []string{"s6-fdholder-setdump", "/s"}, []string{"hold", "setdump", "--", "/s"}},
		{"transferdump", []string{"s6-fdholder-transferdump", "/a", "/b"}, []string{"hold", "transferdump", "--", "/a", "/b"}},
		{"transferdump equal", []string{"s6-fdholder-transferdump", "-t", "7:7", "/a", "/b"}, []string{"hold", "transferdump", "-t", "7", "--to-timeout", "7", "--", "/a", "/b"}},
		{"transferdump each its own", []string{"s6-fdholder-transferdump", "-t", "7:70", "/a", "/b"}, []string{"hold", "transferdump", "-t", "7", "--to-timeout", "70", "--", "/a", "/b"}},
		{"transferdump from only", []string{"s6-fdholder-transferdump", "-t", "7", "/a", "/b"}, []string{"hold", "transferdump", "-t", "7", "--to-timeout", "0", "--", "/a", "/b"}},
		{"transferdump to only", []string{"s6-fdholder-transferdump", "-t", ":7", "/a", "/b"}, []string{"hold", "transferdump", "-t", "0", "--to-timeout", "7", "--", "/a", "/b"}},
		{"transferdump colon", []string{"s6-fdholder-transferdump", "-t", ":", "/a", "/b"}, []string{"hold", "transferdump", "-t", "0", "--to-timeout", "0", "--", "/a", "/b"}},
		{"transferdump trailing colon", []string{"s6-fdholder-transferdump", "-t", "7:", "/a", "/b"}, []string{"hold", "transferdump", "-t", "7", "--to-timeout", "0", "--", "/a", "/b"}},
		{"fdholderd", []string{"s6-fdholderd"}, []string{"hold", "daemon", "--", "-"}},
		{"retrieve --allow-dirfd", []string{"s6-fdholder-retrieve", "--allow-dirfd", "-D", "/s", "id", "prog"},
			[]string{"hold", "retrieve", "-D", "--allow-dirfd", "--fd=0=id", "--", "/s", "--", "prog"}},
		{"getdump --allow-dirfd", []string{"s6-fdholder-getdump", "--allow-dirfd", "/s", "prog"}, []string{"hold", "getdump", "--allow-dirfd", "--", "/s", "prog"}},
		{"transferdump each its own, to 0", []string{"s6-fdholder-transferdump", "-t", "500:0", "/a", "/b"}, []string{"hold", "transferdump", "-t", "500", "--to-timeout", "0", "--", "/a", "/b"}},
		{"fdholderd last of -i and -x", []string{"s6-fdholderd", "-i", "/d", "-x", "/c"}, []string{"hold", "daemon", "-x", "/c", "--", "-"}},
		{"fdholderd -x then -i", []string{"s6-fdholderd", "-x", "/c", "-i", "/d"}, []string{"hold", "daemon", "-i", "/d", "--", "-"}},
		{"fdholder-daemon", []string{"s6-fdholder-daemon", "-1", "-c", "4", "-u", "65534", "-i", "/d", "/s"}, []string{"hold", "daemon", "-1", "-c", "4", "-i", "/d", "--", "-"}},
		{"fdholderd options", []string{"s6-fdholderd", "-1v2", "-c", "4", "-n", "10", "-t", "100", "-T", "200"},
			[]string{"hold", "daemon", "-1", "-c", "4", "-n", "10", "-t", "100", "-T", "200", "--", "-"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := find(t, tt.argv[0]).translate(tt.argv[1:])
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("translate(%q) = %q, %v; want %q", tt.argv, got, err, tt.want)
			}
		})
	}
}

// TestTranslateUsage checks the command lines s6 rejects with its usage
// line (exit 100).
func TestTranslateUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		argv []string
	}{
		{"store no args", []string{"s6-fdholder-store"}},
		{"store one operand", []string{"s6-fdholder-store", "/s"}},
		{"store unknown option", []string{"s6-fdholder-store", "-x", "/s", "id"}},
		{"store long option", []string{"s6-fdholder-store", "--no-such-flag", "/s", "id"}},
		{"store -t at the end", []string{"s6-fdholder-store", "-t"}},
		{"store hexadecimal", []string{"s6-fdholder-store", "-t", "0x10", "/s", "id"}},
		{"store negative", []string{"s6-fdholder-store", "-d", "-1", "/s", "id"}},
		{"store plus", []string{"s6-fdholder-store", "-d", "+1", "/s", "id"}},
		{"store empty", []string{"s6-fdholder-store", "-T", "", "/s", "id"}},
		{"store too big", []string{"s6-fdholder-store", "-t", "4294967296", "/s", "id"}},
		{"retrieve no prog", []string{"s6-fdholder-retrieve", "/s", "id"}},
		{"retrieve -d", []string{"s6-fdholder-retrieve", "-d", "0", "/s", "id", "prog"}},
		{"delete one operand", []string{"s6-fdholder-delete", "/s"}},
		{"list no operand", []string{"s6-fdholder-list", "-t", "5"}},
		{"getdump no prog", []string{"s6-fdholder-getdump", "/s"}},
		{"setdump no socket", []string{"s6-fdholder-setdump"}},
		{"transferdump one socket", []string{"s6-fdholder-transferdump", "/a"}},
		{"transferdump empty -t", []string{"s6-fdholder-transferdump", "-t", "", "/a", "/b"}},
		{"transferdump garbage", []string{"s6-fdholder-transferdump", "-t", "5x", "/a", "/b"}},
		{"transferdump garbage after colon", []string{"s6-fdholder-transferdump", "-t", "5:x", "/a", "/b"}},
		{"transferdump two colons", []string{"s6-fdholder-transferdump", "-t", "5:6:7", "/a", "/b"}},
		{"fdholderd bad -c", []string{"s6-fdholderd", "-c", "x"}},
		{"fdholderd bad -v", []string{"s6-fdholderd", "-v", "-1"}},
		{"fdholderd unknown option", []string{"s6-fdholderd", "-r"}},
		{"store --allow-dirfd", []string{"s6-fdholder-store", "--allow-dirfd", "/s", "id"}},
		{"retrieve -+", []string{"s6-fdholder-retrieve", "-+", "/s", "id", "prog"}},
		{"fdholder-daemon bad -u", []string{"s6-fdholder-daemon", "-u", "x", "-i", "/d", "/s"}},
		{"fdholder-daemon bad -G", []string{"s6-fdholder-daemon", "-G", "1,x", "-i", "/d", "/s"}},
		{"fdholder-daemon no path", []string{"s6-fdholder-daemon", "-i", "/d"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := find(t, tt.argv[0]).translate(tt.argv[1:]); !errors.Is(err, errUsage) {
				t.Errorf("translate(%q) = %q, %v; want %v", tt.argv, got, err, errUsage)
			}
		})
	}
}

func TestGetoptStopsAtFirstOperand(t *testing.T) {
	opt, ops, err := getopt([]string{"-D", "a", "-t", "5"}, "Dt:")
	if err != nil || len(opt) != 1 || !slices.Equal(ops, []string{"a", "-t", "5"}) {
		t.Errorf("getopt = %v, %q, %v; want {D}, [a -t 5]", opt, ops, err)
	}
	// A lone "-" is an operand, as in skalibs.
	opt, ops, err = getopt([]string{"-", "x"}, "Dt:")
	if err != nil || len(opt) != 0 || !slices.Equal(ops, []string{"-", "x"}) {
		t.Errorf("getopt(- x) = %v, %q, %v; want {}, [- x]", opt, ops, err)
	}
}

// runApplet runs a registry entry as lib/cli does, with captured streams.
func runApplet(a cli.Applet, name string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	env := &cli.Env{Name: name, Stdout: &out, Stderr: &errb}
	code := cli.Run(a, args, env)
	return code, out.String(), errb.String()
}

// TestRunMessages checks the lines the applets print themselves: usage
// under the name they were called by, --help on stdout, and the -i/-x
// refusal of fdholderd.
func TestRunMessages(t *testing.T) {
	for _, tt := range []struct {
		name   string
		applet cli.Applet
		as     string
		args   []string
		code   int
		stdout string // wanted prefix
		stderr string
	}{
		{"usage as s6 name", StoreApplet, "s6-fdholder-store", nil, exitcode.Usage, "",
			"s6-fdholder-store: usage: s6-fdholder-store [ -d fd ] [ -t timeout ] [ -T fdtimeout ] socket id\n"},
		{"usage as gotools name", ListApplet, "fdholder-list", []string{"-q"}, exitcode.Usage, "",
			"fdholder-list: usage: fdholder-list [ -t timeout ] socket\n"},
		{"help", RetrieveApplet, "s6-fdholder-retrieve", []string{"--help"}, exitcode.OK,
			"Usage: s6-fdholder-retrieve [ -D ] [ -t timeout ] socket id prog...\n", ""},
		{"fdholder-daemon without rules", FullDaemonApplet, "s6-fdholder-daemon", []string{"/s"}, exitcode.Usage, "",
			"s6-fdholder-daemon: fatal: no access rights specified!\n"},
		{"hold's message under the s6 name", StoreApplet, "s6-fdholder-store", []string{"-t", "50", "/nonexistent/s", "id"}, exitcode.Sys, "",
			"s6-fdholder-store: fatal: unable to connect to /nonexistent/s: No such file or directory\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runApplet(tt.applet, tt.as, tt.args...)
			if code != tt.code || !strings.HasPrefix(out, tt.stdout) || errs != tt.stderr {
				t.Errorf("run(%s %q) = %d, stdout %q, stderr %q; want %d, stdout %q..., stderr %q",
					tt.as, tt.args, code, out, errs, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestRegistryEntries checks that each s6 program has a gotools name, its s6
// name as alias, a usage line and a Raw parser.
func TestRegistryEntries(t *testing.T) {
	for _, c := range commands {
		a := c.applet()
		if a.Raw == nil || a.Usage == "" || a.Summary == "" || a.Help == "" ||
			!strings.HasPrefix(c.Alias, "s6-") || strings.TrimPrefix(c.Alias, "s6-") != c.Name ||
			!slices.Equal(a.Aliases, []string{c.Alias}) {
			t.Errorf("applet %q (aliases %q): want Raw, Usage, Summary, Help and the alias s6-%s", a.Name, a.Aliases, a.Name)
		}
	}
}
