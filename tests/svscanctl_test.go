package tests

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func mkfifo(t *testing.T, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(name, 0o600); err != nil {
		t.Fatal(err)
	}
}

// listenFIFO opens name as svscan does: read end non-blocking, kept open
// for writing too (one O_RDWR fd), closed when the test ends.
func listenFIFO(t *testing.T, name string) int {
	t.Helper()
	fd, err := unix.Open(name, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// drain returns what the FIFO fd holds.
func drain(t *testing.T, fd int) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 256)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return string(out)
		}
		if err != nil {
			t.Fatalf("read control FIFO: %v", err)
		}
		out = append(out, buf[:n]...)
	}
}

var (
	listening = func(t *testing.T, dir string) (string, int) {
		mkfifo(t, filepath.Join(dir, ".s6-svscan", "control"))
		return dir, listenFIFO(t, filepath.Join(dir, ".s6-svscan", "control"))
	}
	noReader = func(t *testing.T, dir string) (string, int) {
		mkfifo(t, filepath.Join(dir, ".s6-svscan", "control"))
		return dir, -1
	}
)

// TestSvscanctlWrites: the letters go in command-line order, in one
// write; at most 64; operands after SCANDIR are ignored.
func TestSvscanctlWrites(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{name: "all letters", args: []string{"-zabhitqnN"}, want: "zabhitqnN"},
		{name: "order kept", args: []string{"-n", "-a"}, want: "na"},
		{name: "repeats", args: []string{"-aa", "-a"}, want: "aaa"},
		{name: "long options", args: []string{"--scan", "--nuke-loggers", "--reap"}, want: "aNz"},
		{name: "no letters", want: ""},
		{name: "64 letters", args: []string{"-" + strings.Repeat("z", 64)}, want: strings.Repeat("z", 64)},
		{name: "--", args: []string{"-a", "--"}, want: "a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, fd := listening(t, t.TempDir())
			argv := append(append([]string{"svscanctl"}, tt.args...), dir, "ignored")
			if r := run(t, argv...); r.Code != 0 || r.Stderr != "" || r.Stdout != "" {
				t.Fatalf("run(%q) = %s, stdout %q, stderr %q; want exit 0, no output", argv, r.Status(), r.Stdout, r.Stderr)
			}
			if got := drain(t, fd); got != tt.want {
				t.Errorf("run(%q) wrote %q; want %q", argv, got, tt.want)
			}
		})
	}
}

// TestSvscanctlErrors checks each failure's code and line, and that real
// s6-svscanctl, when installed, exits with the same code.
func TestSvscanctlErrors(t *testing.T) {
	t.Parallel()
	usage := "svscanctl: usage: svscanctl [ -zabhitqnN ] SCANDIR\n"
	for _, tt := range []struct {
		name   string
		setup  func(t *testing.T, dir string) (string, int)
		args   []string
		code   int
		stderr string // @DIR@ stands for the scan directory
	}{
		{name: "no scandir", code: 100, stderr: usage},
		{name: "unknown letter", setup: listening, args: []string{"-x"}, code: 100, stderr: usage},
		{name: "65 letters", setup: listening, args: []string{"-" + strings.Repeat("a", 65)}, code: 100,
			stderr: "svscanctl: fatal: too many commands\n"},
		{name: "not listening", setup: noReader, args: []string{"-a"}, code: 100,
			stderr: "svscanctl: fatal: unable to control @DIR@: supervisor not listening\n"},
		{name: "not listening, no letters", setup: noReader, code: 100,
			stderr: "svscanctl: fatal: unable to control @DIR@: supervisor not listening\n"},
		{name: "no .s6-svscan", setup: func(t *testing.T, dir string) (string, int) { return dir, -1 }, args: []string{"-a"}, code: 100,
			stderr: "svscanctl: fatal: unable to control @DIR@: supervisor not listening\n"},
		{name: "no control FIFO", setup: func(t *testing.T, dir string) (string, int) {
			if err := os.Mkdir(filepath.Join(dir, ".s6-svscan"), 0o700); err != nil {
				t.Fatal(err)
			}
			return dir, -1
		}, args: []string{"-a"}, code: 100,
			stderr: "svscanctl: fatal: something is wrong with the @DIR@/.s6-svscan directory. errno reported: No such file or directory\n"},
		{name: ".s6-svscan a file", setup: func(t *testing.T, dir string) (string, int) {
			if err := os.WriteFile(filepath.Join(dir, ".s6-svscan"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return dir, -1
		}, args: []string{"-a"}, code: 100,
			stderr: "svscanctl: fatal: something is wrong with the @DIR@/.s6-svscan directory. errno reported: Not a directory\n"},
		{name: "missing scandir", setup: func(t *testing.T, dir string) (string, int) { return dir + "/nosuch", -1 }, args: []string{"-a"}, code: 111,
			stderr: "svscanctl: fatal: unable to control @DIR@: No such file or directory\n"},
		{name: "scandir a file", setup: func(t *testing.T, dir string) (string, int) {
			f := filepath.Join(dir, "file")
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return f, -1
		}, args: []string{"-a"}, code: 111,
			stderr: "svscanctl: fatal: unable to control @DIR@: Not a directory\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var args []string
			dir := ""
			if tt.setup != nil {
				dir, _ = tt.setup(t, t.TempDir())
				args = append(append(args, tt.args...), dir)
			}
			want := strings.ReplaceAll(tt.stderr, "@DIR@", dir)
			r := run(t, append([]string{"svscanctl"}, args...)...)
			ok := r.Stderr == want
			if want == usage { // then the bad word, if any
				ok = isUsageLine(r.Stderr, want, "svscanctl")
			}
			if r.Code != tt.code || !ok || r.Stdout != "" {
				t.Errorf("run(svscanctl %q) = %s, stdout %q, stderr %q; want exit %d, stderr %q", args, r.Status(), r.Stdout, r.Stderr, tt.code, want)
			}
			if real, ok := realLookPath("s6-svscanctl"); ok {
				if rr := run(t, append([]string{real}, args...)...); rr.Code != tt.code {
					t.Errorf("real s6-svscanctl %q = %s, stderr %q; gotools expects exit %d", args, rr.Status(), rr.Stderr, tt.code)
				}
			}
		})
	}
}

// TestSvscanctlInteropS6: real s6-svscanctl and gotools svscanctl write
// the same bytes.
func TestSvscanctlInteropS6(t *testing.T) {
	t.Parallel()
	real := requireS6(t, "s6-svscanctl")[0]
	for _, args := range [][]string{{"-zabhitqnN"}, {"-n", "-a"}, {}} {
		var got [2]string
		for i, prog := range []string{"svscanctl", real} {
			dir, fd := listening(t, t.TempDir())
			if r := run(t, append(append([]string{prog}, args...), dir)...); r.Code != 0 {
				t.Fatalf("%s %q = %s, stderr %q", prog, args, r.Status(), r.Stderr)
			}
			got[i] = drain(t, fd)
		}
		if got[0] != got[1] {
			t.Errorf("svscanctl %q wrote %q; s6-svscanctl wrote %q", args, got[0], got[1])
		}
	}
}
