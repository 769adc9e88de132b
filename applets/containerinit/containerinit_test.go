package containerinit

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
)

func TestParseResult(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0\n", 0, true}, {"", 0, true}, {"\n", 0, true}, {" 7 \nignored", 7, true}, {"255", 255, true},
		{"256\n", 0, false}, {"-1\n", 0, false}, {"+3\n", 0, false}, {"0x10", 0, false}, {"abc", 0, false}, {"3 4", 0, false},
	} {
		if got, ok := parseResult([]byte(tt.in)); got != tt.want || ok != tt.ok {
			t.Errorf("parseResult(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseResult(f *testing.F) {
	f.Add([]byte("0\n"))
	f.Add([]byte(" 255 \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, ok := parseResult(b); ok && (n < 0 || n > 255) {
			t.Fatalf("parseResult(%q) = %d, true: out of range", b, n)
		}
	})
}

// TestExitCodePrecedence is spec §6's rule order.
func TestExitCodePrecedence(t *testing.T) {
	exited := func(c int) unix.WaitStatus { return unix.WaitStatus(c << 8) }
	for _, tt := range []struct {
		name string
		b    boot
		want int
	}{
		{"poweroff", boot{end: endPoweroff, explicit: true}, 130},
		{"reboot", boot{end: endReboot, explicit: true}, 129},
		{"CMD", boot{cmdRan: true, cmdDone: true, cmdWS: exited(3)}, 3},
		{"CMD killed", boot{cmdRan: true, cmdDone: true, cmdWS: unix.WaitStatus(unix.SIGTERM)}, 143},
	} {
		tt.b.loop = &loop{o: &options{env: &cli.Env{Name: "init"}}}
		if got := tt.b.exitCode(); got != tt.want {
			t.Errorf("%s: exitCode() = %d; want %d", tt.name, got, tt.want)
		}
	}
}

// TestFastParseMatchesKong checks that the fast path builds the command
// kong builds, for every command line it takes, and leaves the others to
// kong.
func TestFastParseMatchesKong(t *testing.T) {
	for _, tt := range []struct {
		args []string
		fast bool
	}{
		{[]string{"--", "sh", "-c", "exit 3"}, true},
		{[]string{"sh", "-c", "x"}, true},
		{[]string{"-s", "-g", "--", "prog", "--help"}, true},
		{[]string{"-c", "-w", "-v", "-v", "prog", "-s"}, true},
		{[]string{"--", "--", "prog"}, true},
		{[]string{"--", "-x"}, true},
		{[]string{"-s", "--"}, true},
		{[]string{"--"}, true},
		{[]string{}, true},
		{[]string{"-s"}, true},
		{[]string{"-sg", "--", "prog"}, false},
		{[]string{"-e", "3", "--", "prog"}, false},
		{[]string{"--help"}, false},
		{[]string{"-x", "prog"}, false},
		{[]string{"--simple", "--", "prog"}, true},
		{[]string{"--overlay", "-v", "prog", "--overlay"}, true},
		{[]string{"--overlay"}, true},
		{[]string{"--pause"}, false},
	} {
		got, ok := fastParse(tt.args)
		if ok != tt.fast {
			t.Errorf("fastParse(%q) ok = %v; want %v", tt.args, ok, tt.fast)
			continue
		}
		if !ok {
			continue
		}
		want := new(command)
		k, err := cli.NewParser(Applet, &cli.Env{Name: "init"}, want)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Parse(tt.args); err != nil {
			t.Fatalf("kong.Parse(%q): %v", tt.args, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("fastParse(%q) = %+v; kong: %+v", tt.args, got, want)
		}
	}
}
