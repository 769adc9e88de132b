package svc

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
)

// parse runs args through svc's kong grammar and then scan, as Run does.
func parse(t *testing.T, args []string) (*command, []byte, error) {
	t.Helper()
	cmd := new(command)
	env := &cli.Env{Name: Applet.Name, Stdout: new(bytes.Buffer), Stderr: new(bytes.Buffer)}
	k, err := cli.NewParser(Applet, env, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Parse(args); err != nil {
		return nil, nil, err
	}
	letters, err := scan(args)
	return cmd, letters, err
}

func TestLetterOrder(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
		dirs []string
	}{
		{"ud", []string{"-ud", "x"}, "ud", []string{"x"}},
		{"du", []string{"-du", "x"}, "du", []string{"x"}},
		{"separate", []string{"-d", "-u", "-x", "x"}, "dux", []string{"x"}},
		{"repeated", []string{"-uu", "-u", "x"}, "uuu", []string{"x"}},
		{"-s term", []string{"-s", "term", "x"}, "t", []string{"x"}},
		{"-sTERM", []string{"-sSIGTERM", "x"}, "t", []string{"x"}},
		{"-s number", []string{"-s", "10", "x"}, "1", []string{"x"}},
		{"-s in order", []string{"-d", "-s", "hup", "-u", "-s", "winch", "x"}, "dhuy", []string{"x"}},
		{"-s in a cluster", []string{"-ds", "kill", "-u", "x"}, "dku", []string{"x"}},
		{"--signal", []string{"-d", "--signal=usr2", "--signal", "STOP", "x"}, "d2p", []string{"x"}},
		{"long letters", []string{"--down", "-u", "--pgkill", "x"}, "duK", []string{"x"}},
		{"digits", []string{"-12", "-21", "x"}, "1221", []string{"x"}},
		{"every letter", []string{"-abqhkti12pcyrlPCKoduDUxOQ", "x"}, "abqhkti12pcyrlPCKoduDUxOQ", []string{"x"}},
		{"-T without -w", []string{"-T", "5", "-u", "x"}, "u", []string{"x"}},
		{"-T cluster", []string{"-uT5", "-d", "x"}, "ud", []string{"x"}},
		{"no letters", []string{"x", "y"}, "", []string{"x", "y"}},
		{"options end at the first DIR", []string{"-u", "x", "-d"}, "u", []string{"x", "-d"}},
		{"--", []string{"-u", "--", "-d"}, "u", []string{"-d"}},
		{"-", []string{"-u", "-", "-d"}, "u", []string{"-", "-d"}},
	} {
		cmd, letters, err := parse(t, tt.args)
		if err != nil {
			t.Errorf("%s: parse(%q) = %v", tt.name, tt.args, err)
			continue
		}
		dirs := cli.Operands(cmd.Dirs)
		if string(letters) != tt.want || strings.Join(dirs, "|") != strings.Join(tt.dirs, "|") {
			t.Errorf("%s: parse(%q) = %q, dirs %q; want %q, %q", tt.name, tt.args, letters, dirs, tt.want, tt.dirs)
		}
	}
}

// TestScanKnowsEveryFlag checks that scan and kong agree on every letter:
// the short and the long form of each give that letter.
func TestScanKnowsEveryFlag(t *testing.T) {
	f := strings.Fields(letters)
	for i := 0; i+1 < len(f); i += 2 {
		c, long := f[i], f[i+1]
		for _, args := range [][]string{{"-" + c, "x"}, {"--" + long, "x"}} {
			_, got, err := parse(t, args)
			if err != nil || string(got) != c {
				t.Errorf("parse(%q) = %q, %v; want %q", args, got, err, c)
			}
		}
	}
	if len(f) != 2*len("abqhkti12pcyrlPCKoduDUxOQ") {
		t.Errorf("%d letters; want 25", len(f)/2)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string // stderr
	}{
		{"no DIR", []string{"-u"}, "svc: usage: svc " + Applet.Usage + "\n" + "svc: fatal: missing operand dir...\n"},
		{"no args", nil, "svc: usage: svc " + Applet.Usage + "\n"},
		{"unknown letter", []string{"-z", "x"}, "svc: usage: svc " + Applet.Usage + "\n" + "svc: fatal: unknown option -z\n"},
		{"bad -w", []string{"-wx", "x"}, "svc: usage: svc " + Applet.Usage + "\n" + "svc: fatal: -w: \"x\" is not one of u U d D r R\n"},
		{"bad -T", []string{"-T", "0x10", "x"}, "svc: usage: svc " + Applet.Usage + "\n" + "svc: fatal: -T: \"0x10\" is not a decimal number\n"},
		{"invalid signal", []string{"-s", "FOO", "x"}, "svc: fatal: invalid signal: FOO\n"},
		{"signal not in the list", []string{"-s", "SEGV", "x"}, "svc: fatal: SEGV is not in the list of user-available signals\n"},
		{"signal 11", []string{"-s", "11", "x"}, "svc: fatal: 11 is not in the list of user-available signals\n"},
		{"63 letters", []string{"-" + strings.Repeat("u", 63), "x"}, "svc: fatal: too many commands\n"},
		{"empty DIR", []string{"-u", "x", ""}, "svc: fatal: invalid service path\n"},
		{"-w without DIR", []string{"-wU", "-T", "100", "-u"}, "svc: usage: svc " + Applet.Usage + "\n" + "svc: fatal: missing operand dir...\n"},
		{"--wait two letters", []string{"--wait=du", "x"}, "svc: usage: svc " + Applet.Usage + "\n" + "svc: fatal: -w: \"du\" is not one of u U d D r R\n"},
	} {
		var out, errb bytes.Buffer
		code := cli.Run(Applet, tt.args, &cli.Env{Stdout: &out, Stderr: &errb})
		if code != 100 || errb.String() != tt.want || out.Len() != 0 {
			t.Errorf("%s: Run(%q) = %d, stderr %q, stdout %q; want 100, %q", tt.name, tt.args, code, errb.String(), out.String(), tt.want)
		}
	}
	// 62 letters are fine.
	if _, got, err := parse(t, []string{"-" + strings.Repeat("u", 62), "x"}); err != nil || len(got) != 62 {
		t.Errorf("62 letters: %d, %v; want 62, nil", len(got), err)
	}
}

func TestHelpIsNotH(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cli.Run(Applet, []string{"--help"}, &cli.Env{Stdout: &out, Stderr: &errb}); code != 0 || !strings.Contains(out.String(), "-wSTATE") || strings.Contains(out.String(), "NOT IMPLEMENTED") || errb.Len() != 0 {
		t.Errorf("Run(--help) = %d, stdout %q, stderr %q; want 0, help describing -wSTATE", code, out.String(), errb.String())
	}
	if _, got, err := parse(t, []string{"-h", "x"}); err != nil || string(got) != "h" {
		t.Errorf("parse(-h x) = %q, %v; want %q", got, err, "h")
	}
}

// service makes a service directory whose supervise/control is a FIFO the
// test reads, and returns the dir and the (non-blocking) read end.
func service(t *testing.T) (string, int) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "supervise"), 0o700); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "supervise", "control")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(r) })
	return dir, r
}

// readAll returns what the FIFO r holds ("" for nothing).
func readAll(t *testing.T, r int) string {
	t.Helper()
	b := make([]byte, 128)
	n, err := unix.Read(r, b)
	if errors.Is(err, unix.EAGAIN) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestControl(t *testing.T) {
	dir, r := service(t)
	if err := Control(dir, []byte("ud")); err != nil {
		t.Fatalf("Control(ud) = %v", err)
	}
	if got := readAll(t, r); got != "ud" {
		t.Errorf("FIFO got %q; want %q", got, "ud")
	}
	if err := Control(dir, nil); err != nil {
		t.Errorf("Control(probe) = %v", err)
	}
	if got := readAll(t, r); got != "" {
		t.Errorf("probe wrote %q; want nothing", got)
	}

	noReader, _ := service(t)
	os.Remove(filepath.Join(noReader, "supervise", "control"))
	if err := unix.Mkfifo(filepath.Join(noReader, "supervise", "control"), 0o600); err != nil {
		t.Fatal(err)
	}
	unsupervised := t.TempDir()
	broken := t.TempDir()
	os.Mkdir(filepath.Join(broken, "supervise"), 0o700)
	notFIFO := t.TempDir()
	os.Mkdir(filepath.Join(notFIFO, "supervise"), 0o700)
	os.WriteFile(filepath.Join(notFIFO, "supervise", "control"), nil, 0o600)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	for _, tt := range []struct {
		name string
		dir  string
		code int
		msg  string
	}{
		{"no reader", noReader, 102, "unable to control " + noReader + ": supervisor not listening"},
		{"no supervise", unsupervised, 102, "unable to control " + unsupervised + ": supervisor not listening"},
		{"no FIFO", broken, 1, "something is wrong with the " + broken + "/supervise directory"},
		{"control not a FIFO", notFIFO, 1, "something is wrong with the " + notFIFO + "/supervise directory"},
		{"missing DIR", broken + "/nosuch", 111, "unable to control " + broken + "/nosuch: No such file or directory"},
		{"DIR a file", file, 111, "unable to control " + file + ": Not a directory"},
	} {
		err := Control(tt.dir, []byte("u"))
		if exitcode.Of(err) != tt.code || err == nil || cli.Message(err) != tt.msg {
			t.Errorf("%s: Control = %v (code %d); want code %d, %q", tt.name, err, exitcode.Of(err), tt.code, tt.msg)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(notFIFO, "supervise", "control")); len(b) != 0 {
		t.Errorf("a regular supervise/control got %q written; want nothing", b)
	}
}

func TestRunKeepsGoing(t *testing.T) {
	a, ra := service(t)
	c, rc := service(t)
	b := t.TempDir()
	var out, errb bytes.Buffer
	code := cli.Run(Applet, []string{"-du", a, b, c}, &cli.Env{Stdout: &out, Stderr: &errb})
	want := "svc: warning: unable to control " + b + ": supervisor not listening\n"
	if code != 102 || errb.String() != want {
		t.Errorf("Run = %d, stderr %q; want 102, %q", code, errb.String(), want)
	}
	for i, r := range []int{ra, rc} {
		if got := readAll(t, r); got != "du" {
			t.Errorf("DIR #%d got %q; want %q", 2*i+1, got, "du")
		}
	}
	// The last failure's code wins.
	broken := t.TempDir()
	os.Mkdir(filepath.Join(broken, "supervise"), 0o700)
	errb.Reset()
	if code := cli.Run(Applet, []string{"-u", b, broken}, &cli.Env{Stdout: &out, Stderr: &errb}); code != 1 {
		t.Errorf("Run(unsupervised, broken) = %d, stderr %q; want 1", code, errb.String())
	}
	if code := cli.Run(Applet, []string{"-u", broken, b}, &cli.Env{Stdout: &out, Stderr: &errb}); code != 102 {
		t.Errorf("Run(broken, unsupervised) = %d; want 102", code)
	}
}
