package shmlock

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/shm"
)

// parse runs the grammar on args and returns the selected command's path
// ("lock", "status", ...) and the parsed struct.
func parse(t *testing.T, args []string) (string, *command, error) {
	t.Helper()
	cmd := new(command)
	env := &cli.Env{Name: Applet.Name, Stdout: new(bytes.Buffer), Stderr: new(bytes.Buffer)}
	k, err := cli.NewParser(Applet, env, cmd)
	if err != nil {
		t.Fatalf("NewParser: %v", err)
	}
	kctx, err := k.Parse(args)
	if err != nil {
		return "", cmd, err
	}
	return kctx.Command(), cmd, nil
}

func TestGrammar(t *testing.T) {
	for _, tt := range []struct {
		name    string
		args    []string
		command string
		check   func(c *command) bool
	}{
		{name: "create", args: []string{"create", "-m", "0640", "--max", "1024", "n", "100"}, command: "create <name> <count>",
			check: func(c *command) bool {
				return c.Create.Mode == "0640" && c.Create.Max == 1024 && c.Create.Name == "n" && c.Create.Count == "100"
			}},
		{name: "dir before command", args: []string{"--dir", "/tmp/x", "open", "n"}, command: "open <name>",
			check: func(c *command) bool { return c.Dir == "/tmp/x" && c.Open.Name == "n" && c.Open.Count == "" }},
		{name: "open with count", args: []string{"open", "/n", "64"}, command: "open <name> <count>",
			check: func(c *command) bool { return c.Open.Count == "64" }},
		{name: "free list", args: []string{"free", "n", "1", "2"}, command: "free <name> <idx>",
			check: func(c *command) bool { return slices.Equal(c.Free.Idx, []string{"1", "2"}) }},
		{name: "free all", args: []string{"free", "--all", "n"}, command: "free <name>",
			check: func(c *command) bool { return c.Free.All }},
		{name: "lock", args: []string{"lock", "-n", "-k", "n", "3", "prog", "-t", "5", "--help"}, command: "lock <name idx prog>",
			check: func(c *command) bool {
				return c.Lock.NoWait && c.Lock.Kill && slices.Equal(c.Lock.Args, []string{"n", "3", "prog", "-t", "5", "--help"})
			}},
		{name: "lock timeout", args: []string{"lock", "-t", "010", "n", "3", "prog"}, command: "lock <name idx prog>",
			check: func(c *command) bool { return c.Lock.Timeout == 10 }},
		{name: "lock leading --", args: []string{"lock", "--", "n", "3", "prog"}, command: "lock <name idx prog>",
			check: func(c *command) bool { return slices.Equal(cli.Operands(c.Lock.Args), []string{"n", "3", "prog"}) }},
		{name: "status", args: []string{"status", "--json", "--all", "n"}, command: "status <name>",
			check: func(c *command) bool { return c.Status.JSON && c.Status.All }},
		{name: "gc", args: []string{"gc", "n"}, command: "gc <name>", check: func(c *command) bool { return c.GC.Name == "n" }},
		{name: "inspect", args: []string{"inspect", "--podman", "n"}, command: "inspect <name>", check: func(c *command) bool { return c.Inspect.Podman }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, c, err := parse(t, tt.args)
			if err != nil || got != tt.command || !tt.check(c) {
				t.Errorf("Parse(%q) = %q, %v, %+v; want %q and the fields checked", tt.args, got, err, c, tt.command)
			}
		})
	}
}

// TestUsageErrors runs bad command lines that must fail before any
// segment is touched: exit 100 and the one usage line.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{}, {"nosuch"}, {"--dir"}, {"create", "n"}, {"create", "n", "x"}, {"create", "n", "0x10"},
		{"create", "n", "-1"}, {"create", "-m", "9", "n", "64"}, {"create", "--max", "x", "n", "64"},
		{"open"}, {"open", "n", "1", "2"}, {"open", "n", "1x"}, {"alloc"}, {"alloc", "--tag", "zz", "n"},
		{"alloc", "--index", "0x1", "n"}, {"free", "n"}, {"free", "--all", "n", "1"}, {"free", "n", "a"},
		{"lock", "n", "3"}, {"lock", "n", "x", "prog"}, {"lock", "-t", "x", "n", "3", "prog"},
		{"unlock", "n"}, {"unlock", "n", "-1"}, {"status", "n", "x"}, {"status", "--all", "n", "1"},
		{"grow", "n"}, {"grow", "n", "4294967296"}, {"gc"}, {"unlink"}, {"inspect"},
	} {
		var out, errb bytes.Buffer
		code := cli.Run(Applet, args, &cli.Env{Stdout: &out, Stderr: &errb})
		// A refusal prints the applet's usage line, or the command's
		// synopsis, and a line naming the bad word.
		want := "shmlock: usage: shmlock " + Applet.Usage + "\n"
		if len(args) > 0 && synopsis(args[0]) != "" {
			if syn, why, ok := strings.Cut(errb.String(), "\n"); ok && why != "" {
				want = syn + "\n" + why
				if syn != "shmlock: usage: shmlock "+synopsis(args[0]) ||
					!strings.HasPrefix(why, "shmlock: fatal: ") || strings.Count(why, "\n") != 1 {
					t.Errorf("Run(%q): stderr %q; want the command's synopsis and one line", args, errb.String())
				}
			}
		}
		if rest, ok := strings.CutPrefix(errb.String(), want); ok && strings.HasPrefix(rest, "shmlock: fatal: ") && strings.Count(rest, "\n") == 1 {
			want += rest // kong's refusal, named after the usage line
		}
		if code != 100 || errb.String() != want || out.Len() != 0 {
			t.Errorf("Run(%q) = %d, stderr %q, stdout %q; want 100, %q, nothing", args, code, errb.String(), out.String(), want)
		}
	}
}

// TestSynopsisTags checks that every command's synopsis tag, which lib/cli
// prints when kong refuses a command line, is the synopsis our own
// refusals print.
func TestSynopsisTags(t *testing.T) {
	ty := reflect.TypeOf(command{})
	for i := 0; i < ty.NumField(); i++ {
		f := ty.Field(i)
		if _, ok := f.Tag.Lookup("cmd"); !ok {
			continue
		}
		name := f.Tag.Get("name")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if got, want := name+" "+f.Tag.Get("synopsis"), synopsis(name); got != want {
			t.Errorf("command %s: tag synopsis gives %q; want %q", f.Name, got, want)
		}
	}
}

func TestParseTag(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"42", 42, true}, {"010", 10, true}, {"0x10", 16, true}, {"0xffffffffffffffff", 1<<64 - 1, true},
		{"18446744073709551615", 1<<64 - 1, true}, {"18446744073709551616", 0, false}, {"0x", 0, false},
		{"", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1_0", 0, false}, {"0X10", 0, false}, {"0x+1", 0, false}, {"1 ", 0, false},
	} {
		if got, ok := parseTag(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("parseTag(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestFail checks the exit codes of the spec's table and the message
// shape "unable to VERB WHAT: REASON", with the errno bare.
func TestFail(t *testing.T) {
	shmErr := func(e unix.Errno) error { return &shm.Error{Op: "lock", Name: "/x", Index: 3, Err: e} }
	for _, tt := range []struct {
		err     error
		refused []unix.Errno
		code    int
		msg     string
	}{
		{shmErr(unix.EINVAL), nil, 100, "unable to lock x[3]: Invalid argument"},
		{shmErr(unix.EEXIST), []unix.Errno{unix.EEXIST}, 1, "unable to lock x[3]: File exists"},
		{shmErr(unix.EEXIST), nil, 111, "unable to lock x[3]: File exists"},
		{shmErr(unix.EBADF), []unix.Errno{unix.EEXIST}, 111, "unable to lock x[3]: Bad file descriptor"},
		{errors.New("odd"), []unix.Errno{unix.EEXIST}, 111, "unable to lock x[3]: odd"},
	} {
		err := fail("lock", "x[3]", tt.err, tt.refused...)
		if code, msg := exitcode.Of(err), cli.Message(err); code != tt.code || msg != tt.msg {
			t.Errorf("fail(%v, %v) = %d %q; want %d %q", tt.err, tt.refused, code, msg, tt.code, tt.msg)
		}
	}
}
