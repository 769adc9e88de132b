package tests

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fdsAfterStdio returns the lines of an fdlist output after fds 0, 1 and 2.
func fdsAfterStdio(t *testing.T, out string) string {
	t.Helper()
	var b strings.Builder
	for _, l := range lines(out) {
		if !strings.HasPrefix(l, "0 ") && !strings.HasPrefix(l, "1 ") && !strings.HasPrefix(l, "2 ") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// tempFiles creates n files in a temporary directory, open for reading,
// closed when the test ends.
func tempFiles(t *testing.T, n int) ([]*os.File, []string) {
	t.Helper()
	dir := t.TempDir()
	var files []*os.File
	var names []string
	for i := range n {
		name := filepath.Join(dir, fmt.Sprintf("f%d", i))
		if err := os.WriteFile(name, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
		names = append(names, name)
	}
	return files, names
}

func TestFdrestorePipeConnectivity(t *testing.T) {
	t.Parallel()
	r := run(t, "fdrestore", "restore", "-f", "3=pipe:p:w", "-f", "4=pipe:p:r", "--",
		"sh", "-c", `echo hi >&3 && exec 3>&- && read x <&4 && echo "got $x"`)
	if r.Code != 0 || r.Stdout != "got hi\n" || r.Stderr != "" {
		t.Errorf("restore pipe = %s, stdout %q, stderr %q; want exit 0, %q", r.Status(), r.Stdout, r.Stderr, "got hi\n")
	}
}

// TestFdrestorePlacesExactTable checks the program's whole table beyond
// stdio (fdlist prints every fd it inherited): numbering, replacement of
// stdin, swaps, -C and pass-through.
func TestFdrestorePlacesExactTable(t *testing.T) {
	t.Parallel()
	files, names := tempFiles(t, 2)
	for _, tt := range []struct {
		name  string
		extra []*os.File
		stdin string
		args  []string
		want  string // fdlist's lines after 0-2
		want0 string // fd 0's line, when checked
	}{
		{name: "auto numbering", args: []string{"-f", "null", "-f", "file:" + names[0], "-f", "6=null", "-f", "memfd:m"},
			want: "3 -> /dev/null\n4 -> " + names[0] + "\n5 -> /memfd:m (deleted)\n6 -> /dev/null\n"},
		{name: "stdin replaced", stdin: "data\n", args: []string{"-f", "0=file:" + names[1]},
			want0: "0 -> " + names[1]},
		{name: "pass-through", extra: files[:1], args: []string{"-f", "4=null"},
			want: "3 -> " + names[0] + "\n4 -> /dev/null\n"},
		{name: "close others", extra: files[:1], args: []string{"-C", "-f", "4=null"},
			want: "4 -> /dev/null\n"},
		{name: "close others, no target above", extra: files, args: []string{"-C", "-f", "3=fd:4"},
			want: "3 -> " + names[1] + "\n"},
		{name: "swap", extra: files, args: []string{"-f", "3=fd:4", "-f", "4=fd:3"},
			want: "3 -> " + names[1] + "\n4 -> " + names[0] + "\n"},
		{name: "cycle", extra: append(files, files[0]), args: []string{"-f", "3=fd:4", "-f", "4=fd:5", "-f", "5=fd:3"},
			want: "3 -> " + names[1] + "\n4 -> " + names[0] + "\n5 -> " + names[0] + "\n"},
		{name: "close", extra: files, args: []string{"-f", "3=close"},
			want: "4 -> " + names[1] + "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			argv := append(append([]string{"fdrestore", "restore"}, tt.args...), "--", "fdlist")
			r := runIn(t, Opts{ExtraFiles: tt.extra, Stdin: tt.stdin}, argv...)
			if r.Code != 0 || r.Stderr != "" {
				t.Fatalf("run(%q) = %s, stderr %q; want exit 0", argv, r.Status(), r.Stderr)
			}
			if tt.want0 != "" {
				if got := lines(r.Stdout)[0]; got != tt.want0 {
					t.Errorf("run(%q): fd 0 is %q; want %q", argv, got, tt.want0)
				}
				return
			}
			if got := fdsAfterStdio(t, r.Stdout); got != tt.want {
				t.Errorf("run(%q): fds after stdio\n%s; want\n%s", argv, got, tt.want)
			}
		})
	}
}

func TestFdrestoreListenFDs(t *testing.T) {
	t.Parallel()
	r := runIn(t, Opts{Env: []string{"LISTEN_PIDFDID=77", "LISTEN_FDS=9"}},
		"fdrestore", "restore", "--listen-fds", "--name", "3=web", "-f", "null", "-f", "null", "--",
		"sh", "-c", `echo "$LISTEN_FDS $LISTEN_FDNAMES $LISTEN_PID $$ ${LISTEN_PIDFDID-unset}"`)
	f := strings.Fields(r.Stdout)
	if r.Code != 0 || len(f) != 5 || f[0] != "2" || f[1] != "web:unknown" || f[2] != f[3] || f[4] != "unset" {
		t.Errorf("restore --listen-fds = %s, stdout %q, stderr %q; want 2 web:unknown PID PID unset",
			r.Status(), r.Stdout, r.Stderr)
	}
}

// TestFdrestoreListenerWorksInProg connects to a unix listener that only
// the exec'd program holds: the connection is queued while it runs, and
// refused once it is dead (no other process kept the socket).
func TestFdrestoreListenerWorksInProg(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "s")
	p := start(t, "fdrestore", "restore", "-f", "3=listen:unix:"+sock, "--", "sleep", "60")
	waitFor(t, "sleep with the listener at fd 3", func() bool {
		argv := procArgv(p.Pid)
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", p.Pid))
		return len(argv) > 0 && argv[0] == "sleep" && strings.HasPrefix(target, "socket:")
	})
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("Dial(%s) while prog runs = %v; want a connection", sock, err)
	}
	c.Close()
	p.KillGroup(t)
	if _, err := net.Dial("unix", sock); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("Dial(%s) after prog died = %v; want ECONNREFUSED", sock, err)
	}
}

// TestFdrestoreEpollFinalNumbers reads the epoll's items in fdinfo: each is
// keyed by the final target number (tfd), which is what the program's
// EPOLL_CTL_MOD and DEL look up, and carries that number as data.
func TestFdrestoreEpollFinalNumbers(t *testing.T) {
	t.Parallel()
	r := run(t, "fdrestore", "restore", "-f", "3=pipe:p:r", "-f", "4=pipe:p:w", "-f", "7=epoll:3,4/out", "--",
		"sh", "-c", `cat /proc/$$/fdinfo/7`)
	if r.Code != 0 {
		t.Fatalf("restore epoll = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	re := regexp.MustCompile(`tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)`)
	var got []string
	for _, m := range re.FindAllStringSubmatch(r.Stdout, -1) {
		got = append(got, m[1]+" data "+m[3])
	}
	slices.Sort(got) // fdinfo lists items in the kernel's tree order
	want := []string{"3 data 3", "4 data 4"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("epoll items = %q (fdinfo %q); want %q", got, r.Stdout, want)
	}
}

func TestFdrestoreErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	missing := filepath.Join(dir, "missing")
	const usage = "fdrestore: usage: fdrestore restore [OPTIONS] -f [N=]SOURCE... -- PROG... | restore IMAGE [-- PROG...] | grab [OPTIONS] PID FD[=TARGET]... -- PROG... | dump [OPTIONS] PID... | hold COMMAND ...\n"
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "bad source", args: []string{"restore", "-f", "3=pipe:a:x", "--", "true"}, code: 100,
			want: "fdrestore: usage: fdrestore restore [OPTIONS] -f [N=]SOURCE... -- PROG... | restore [OPTIONS] IMAGE [-- PROG...]\n" +
				"fdrestore: fatal: invalid source for fd 3: pipe:a:x: pipe end must be r or w\n"},
		{name: "duplicate target", args: []string{"restore", "-f", "3=null", "-f", "3=null", "--", "true"}, code: 100,
			want: "fdrestore: fatal: fd 3 is given twice\n"},
		{name: "missing file", args: []string{"restore", "-f", "5=file:" + missing, "--", "true"}, code: 111,
			want: "fdrestore: fatal: unable to open " + missing + " for fd 5: No such file or directory\n"},
		{name: "missing prog", args: []string{"restore", "-f", "3=listen:unix:" + sock, "--", missing}, code: 127,
			want: "fdrestore: fatal: unable to exec " + missing + ": No such file or directory\n"},
		{name: "no prog", args: []string{"restore", "-f", "3=null"}, code: 100, want: usage},
		{name: "no subcommand", code: 100, want: usage},
		{name: "missing image", args: []string{"restore", missing}, code: 111,
			want: "fdrestore: fatal: unable to open image " + missing + ": No such file or directory\n"},
		{name: "bad image", args: []string{"restore", "-"}, code: 100,
			want: "fdrestore: fatal: image: line 1 column 1: unexpected end of JSON input\n"},
		{name: "grab bad pid", args: []string{"grab", "x1", "3", "--", "true"}, code: 100,
			want: "fdrestore: fatal: invalid pid \"x1\"\n"},
		{name: "grab bad fd", args: []string{"grab", "1", "3=x", "--", "true"}, code: 100,
			want: "fdrestore: fatal: invalid fd \"3=x\": it must be FD or FD=TARGET\n"},
		{name: "dump without pid", args: []string{"dump"}, code: 100, want: usage},
		{name: "hold daemon without socket", args: []string{"hold", "daemon"}, code: 100, want: usage},
		{name: "hold without command", args: []string{"hold"}, code: 100, want: usage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			argv := append([]string{"fdrestore"}, tt.args...)
			r := run(t, argv...)
			ok := r.Stderr == tt.want
			if tt.want == usage { // the command's synopsis, then the missing word
				ok = isUsageError(r.Stderr, "fdrestore")
			}
			if r.Code != tt.code || r.Stdout != "" || !ok {
				t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit %d, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, tt.code, tt.want)
			}
		})
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Lstat(%s) after the exec failure = %v; want the bound socket removed", sock, err)
	}
}

func TestFdrestoreCheckCreatesNothing(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "s")
	r := run(t, "fdrestore", "restore", "--check", "-f", "3=listen:unix:"+sock, "-f", "null", "--", "true")
	want := "fd 3: listen:unix:" + sock + "\nfd 4: null\n"
	if r.Code != 0 || r.Stdout != want || r.Stderr != "" {
		t.Errorf("restore --check = %s, stdout %q, stderr %q; want exit 0, %q", r.Status(), r.Stdout, r.Stderr, want)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Lstat(%s) after --check = %v; want nothing created", sock, err)
	}
}

// TestFdrestoreReexecPath gives fdrestore a non-blocking stdin, so that the
// Go runtime opens its netpoller fds at 3 and 4 before main: placing there
// takes the re-exec path (6.3 rule 4), and the program sees the planned
// files, its stdin passed through, and no runtime fd. A target above them
// stays on the in-place path.
func TestFdrestoreReexecPath(t *testing.T) {
	t.Parallel()
	// /dev/null, which epoll refuses: os keeps its O_NONBLOCK when passing it
	// on (a pipe would be made blocking by File.Fd).
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := os.NewFile(uintptr(fd), "/dev/null")
	defer r.Close()
	got := runIn(t, Opts{StdinFile: r}, "fdrestore", "restore", "-v", "-f", "3=memfd:m", "-f", "4=pipe:p:w", "--", "fdlist")
	table := regexp.MustCompile(`(?m)^[12] .*\n`).ReplaceAllString(got.Stdout, "")
	table = regexp.MustCompile(`pipe:\[\d+\]`).ReplaceAllString(table, "pipe")
	want := "0 -> /dev/null\n3 -> /memfd:m (deleted)\n4 -> pipe\n"
	if got.Code != 0 || table != want || !strings.Contains(got.Stderr, "fdrestore: info: placement path: re-exec") {
		t.Errorf("restore -v with a non-blocking stdin = %s, stdout %q, stderr %q; want exit 0, table %q, the re-exec path",
			got.Status(), got.Stdout, got.Stderr, want)
	}
	got = runIn(t, Opts{StdinFile: r}, "fdrestore", "restore", "-v", "-f", "9=null", "--", "fdlist")
	if got.Code != 0 || fdsAfterStdio(t, got.Stdout) != "9 -> /dev/null\n" || !strings.Contains(got.Stderr, "placement path: in place") {
		t.Errorf("restore -f 9=null with a non-blocking stdin = %s, stdout %q, stderr %q; want exit 0, only fd 9, in place",
			got.Status(), got.Stdout, got.Stderr)
	}
}
