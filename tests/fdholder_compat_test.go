package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// End-to-end tests of the s6-fdholder-* and s6-fdholderd names of gotools
// (applets/fdholder): s6's command lines, run through the farm's s6-named
// symlinks (gotools), against the real s6-fdholder-daemon and against
// gotools' daemon; and gotools' s6-fdholderd under the real
// s6-ipcserver-socketbinder, serving the real s6 clients. The assertions
// are on exit codes, stderr lines, list output, and the socket inode a
// retrieved fd has (fdlist: /proc/self/fd).

// farmIsGotools fails the test unless name, looked up in $PATH, is the
// farm's link to gotools: the s6 names must not reach /usr/bin here.
func farmIsGotools(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		p := filepath.Join(binDir, name)
		r, err := filepath.EvalSymlinks(p)
		if err != nil || r != gotoolsBin {
			t.Fatalf("%s in the farm = %q, %v; want a link to %s", name, r, err, gotoolsBin)
		}
	}
}

// compatDaemons are the two holders the gotools clients talk to.
var compatDaemons = []struct {
	name  string
	start func(t testing.TB, sock string) *holdd
}{
	{"s6-fdholder-daemon", startS6Hold},
	{"fdrestore hold daemon", func(t testing.TB, sock string) *holdd { return startHold(t, sock) }},
}

// TestFdholderCompatClients drives every s6-fdholder-* name of gotools with
// s6's argv against both daemons: what comes back is the stored socket, at
// fd 0; list, delete, -D, getdump/setdump and transferdump do what s6's
// do; the refusals exit 1 with the errno's text and the connection
// failures 111, as the real clients do.
func TestFdholderCompatClients(t *testing.T) {
	t.Parallel()
	farmIsGotools(t, "s6-fdholder-store", "s6-fdholder-retrieve", "s6-fdholder-delete", "s6-fdholder-list",
		"s6-fdholder-getdump", "s6-fdholder-setdump", "s6-fdholder-transferdump")
	s6c := s6HoldClient(t) // the real clients, by absolute path
	for _, d := range compatDaemons {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			h := d.start(t, holdSock(t))
			f, ino := socketEnd(t)
			g, inoG := socketEnd(t)

			// store: fd 0, then -d 3 with an expiry, options clustered.
			wantStatus(t, "s6-fdholder-store", runIn(t, Opts{StdinFile: f}, "s6-fdholder-store", "-t", "5000", h.sock, "tcp:web"), 0, "")
			r := runIn(t, Opts{ExtraFiles: []*os.File{g}}, "s6-fdholder-store", "-d3", "-t5000", "-T", "3600000", "--", h.sock, "-dash")
			wantStatus(t, "s6-fdholder-store -d3 -T", r, 0, "")
			r = runIn(t, Opts{StdinFile: f}, "s6-fdholder-store", h.sock, "tcp:web")
			wantStatus(t, "second s6-fdholder-store tcp:web", r, 1,
				fmt.Sprintf("s6-fdholder-store: fatal: unable to store fd 0 as tcp:web in %s: Device or resource busy\n", h.sock))
			if real := runIn(t, Opts{StdinFile: f}, s6c.s6["store"], h.sock, "tcp:web"); real.Code != r.Code {
				t.Errorf("real s6-fdholder-store of a held id = %s; gotools' = %s", real.Status(), r.Status())
			}

			// list: the same ids as the real client prints.
			r = run(t, "s6-fdholder-list", "-t", "010", h.sock)
			wantStatus(t, "s6-fdholder-list", r, 0, "")
			real := run(t, s6c.s6["list"], h.sock)
			got, want := lines(r.Stdout), lines(real.Stdout)
			slices.Sort(want)
			if !slices.Equal(got, []string{"-dash", "tcp:web"}) || !slices.Equal(got, want) {
				t.Errorf("s6-fdholder-list = %q; want [-dash tcp:web], as the real client (%q, %s)", got, want, real.Status())
			}

			// getdump: both fds, S6_FDLIMIT only for the one with -T.
			dump := getdumpEnv(t, "s6-fdholder-getdump", h.sock)
			if len(dump) != 2 || dump["tcp:web"] != "" || !strings.HasPrefix(dump["-dash"], "@") {
				t.Errorf("s6-fdholder-getdump ids and limits = %q; want tcp:web without limit, -dash with one", dump)
			}

			// retrieve: the same socket at fd 0, prog's own options untouched.
			r = run(t, "s6-fdholder-retrieve", "-t", "5000", h.sock, "tcp:web", "fdlist")
			if tgt := fdlistTarget(r.Stdout, 0); r.Code != 0 || tgt != socketName(ino) {
				t.Errorf("s6-fdholder-retrieve tcp:web fdlist = %s, fd 0 -> %q, stderr %q; want exit 0, %s", r.Status(), tgt, r.Stderr, socketName(ino))
			}
			r = run(t, "s6-fdholder-retrieve", h.sock, "tcp:web", "sh", "-c", `echo "$@"; readlink /proc/self/fd/0`, "sh", "-D", "--help")
			if l := lines(r.Stdout); r.Code != 0 || !slices.Equal(l, []string{"-D --help", socketName(ino)}) {
				t.Errorf("s6-fdholder-retrieve ... sh -c ... -D --help = %s, stdout %q, stderr %q; want the args and %s", r.Status(), l, r.Stderr, socketName(ino))
			}

			// retrieve -D (clustered with -t): retrieved, then gone.
			r = run(t, "s6-fdholder-retrieve", "-Dt", "5000", h.sock, "-dash", "fdlist")
			if tgt := fdlistTarget(r.Stdout, 0); r.Code != 0 || tgt != socketName(inoG) {
				t.Errorf("s6-fdholder-retrieve -Dt 5000 -dash = %s, fd 0 -> %q, stderr %q; want %s", r.Status(), tgt, r.Stderr, socketName(inoG))
			}
			r = run(t, "s6-fdholder-retrieve", h.sock, "-dash", "fdlist")
			wantStatus(t, "s6-fdholder-retrieve of a deleted id", r, 1,
				fmt.Sprintf("s6-fdholder-retrieve: fatal: unable to retrieve -dash from %s for fd 0: No such file or directory\n", h.sock))
			if real := run(t, s6c.s6["retrieve"], h.sock, "-dash", "fdlist"); real.Code != r.Code {
				t.Errorf("real s6-fdholder-retrieve of a deleted id = %s; gotools' = %s", real.Status(), r.Status())
			}

			// getdump | setdump into a second holder of the same kind, then
			// transferdump back into a third: the socket travels intact.
			h2 := d.start(t, holdSock(t))
			r = run(t, "s6-fdholder-getdump", h.sock, "s6-fdholder-setdump", "-t", "5000", h2.sock)
			wantStatus(t, "s6-fdholder-getdump | s6-fdholder-setdump", r, 0, "")
			h3 := d.start(t, holdSock(t))
			r = run(t, "s6-fdholder-transferdump", "-t", "5000:5000", h2.sock, h3.sock)
			wantStatus(t, "s6-fdholder-transferdump", r, 0, "")
			r = run(t, s6c.s6["retrieve"], h3.sock, "tcp:web", "fdlist")
			if tgt := fdlistTarget(r.Stdout, 0); r.Code != 0 || tgt != socketName(ino) {
				t.Errorf("real retrieve after getdump|setdump|transferdump = %s, fd 0 -> %q, stderr %q; want %s", r.Status(), tgt, r.Stderr, socketName(ino))
			}

			// delete: 0, then ENOENT (1) as the real client.
			wantStatus(t, "s6-fdholder-delete", run(t, "s6-fdholder-delete", h.sock, "tcp:web"), 0, "")
			r = run(t, "s6-fdholder-delete", h.sock, "tcp:web")
			wantStatus(t, "second s6-fdholder-delete", r, 1,
				fmt.Sprintf("s6-fdholder-delete: fatal: unable to delete tcp:web from %s: No such file or directory\n", h.sock))
			if real := run(t, s6c.s6["delete"], h.sock, "tcp:web"); real.Code != r.Code {
				t.Errorf("real second s6-fdholder-delete = %s; gotools' = %s", real.Status(), r.Status())
			}
			if r := run(t, "s6-fdholder-list", h.sock); r.Code != 0 || r.Stdout != "" {
				t.Errorf("s6-fdholder-list after delete = %s, stdout %q; want exit 0, nothing", r.Status(), r.Stdout)
			}
		})
	}
}

// TestFdholderCompatErrors: usage errors exit 100 with s6's usage line
// under the s6 name, as the real programs do; a missing socket is 111.
func TestFdholderCompatErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nosuch")
	for _, tt := range []struct {
		name   string
		argv   []string
		code   int
		stderr string
	}{
		{"store one operand", []string{"s6-fdholder-store", missing}, 100,
			"s6-fdholder-store: usage: s6-fdholder-store [ -d fd ] [ -t timeout ] [ -T fdtimeout ] socket id\n"},
		{"store unknown option", []string{"s6-fdholder-store", "-r", missing, "id"}, 100,
			"s6-fdholder-store: usage: s6-fdholder-store [ -d fd ] [ -t timeout ] [ -T fdtimeout ] socket id\n"},
		{"retrieve no prog", []string{"s6-fdholder-retrieve", "-D", missing, "id"}, 100,
			"s6-fdholder-retrieve: usage: s6-fdholder-retrieve [ -D ] [ -t timeout ] socket id prog...\n"},
		{"list bad timeout", []string{"s6-fdholder-list", "-t", "1x", missing}, 100,
			"s6-fdholder-list: usage: s6-fdholder-list [ -t timeout ] socket\n"},
		{"transferdump bad timeout", []string{"s6-fdholder-transferdump", "-t", "1:x", missing, missing}, 100,
			"s6-fdholder-transferdump: usage: s6-fdholder-transferdump [ -t timeoutfrom:timeoutto ] socketfrom socketto\n"},
		{"list missing socket", []string{"s6-fdholder-list", missing}, 111,
			fmt.Sprintf("s6-fdholder-list: fatal: unable to connect to %s: No such file or directory\n", missing)},
		{"delete missing socket", []string{"s6-fdholder-delete", missing, "id"}, 111,
			fmt.Sprintf("s6-fdholder-delete: fatal: unable to connect to %s: No such file or directory\n", missing)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tt.argv...)
			wantStatus(t, fmt.Sprintf("run(%q)", tt.argv), r, tt.code, tt.stderr)
			if p, ok := realLookPath(tt.argv[0]); ok {
				real := run(t, append([]string{p}, tt.argv[1:]...)...)
				if real.Code != r.Code {
					t.Errorf("real %q = %s, stderr %q; gotools' = %s", tt.argv, real.Status(), real.Stderr, r.Status())
				}
			}
		})
	}
}

// TestFdholderCompatDaemonUnderSocketbinder: `s6-ipcserver-socketbinder
// SOCK s6-fdholderd -1` runs gotools' s6-fdholderd on the bound socket,
// the real s6 clients store, list, retrieve (the same inode at fd 0) and
// delete through it; SIGHUP leaves it serving, as s6-fdholderd; SIGTERM
// ends it with s6's status 1 (fds were held).
func TestFdholderCompatDaemonUnderSocketbinder(t *testing.T) {
	t.Parallel()
	farmIsGotools(t, "s6-fdholderd")
	binder := requireS6(t, "s6-ipcserver-socketbinder")[0]
	s6c := s6HoldClient(t)
	sock := holdSock(t)
	p := start(t, binder, sock, "s6-fdholderd", "-1", "-v", "2", "-c", "8", "-n", "100", "-t", "5000", "-T", "5000")
	p.WaitLine(t, "^$")
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.Pid)); err != nil || exe != gotoolsBin {
		t.Fatalf("the daemon under s6-ipcserver-socketbinder runs %q, %v; want %s", exe, err, gotoolsBin)
	}

	f, ino := socketEnd(t)
	if r := s6c.store(t, f, sock, "obj"); r.Code != 0 || r.Stderr != "" {
		t.Fatalf("real s6-fdholder-store = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	if r := s6c.store(t, f, sock, "obj"); r.Code != 1 || !strings.HasSuffix(r.Stderr, ": Device or resource busy\n") {
		t.Errorf("second real s6-fdholder-store = %s, stderr %q; want exit 1, EBUSY", r.Status(), r.Stderr)
	}
	if r, got := s6c.retrieve(t, sock, "obj"); r.Code != 0 || got != socketName(ino) {
		t.Errorf("real s6-fdholder-retrieve = %s, fd 0 -> %q, stderr %q; want %s", r.Status(), got, r.Stderr, socketName(ino))
	}

	// SIGHUP: s6-fdholderd traps it; the gotools daemon must not die of it.
	p.Signal(unix.SIGHUP)
	if got := s6c.list(t, sock); !slices.Equal(got, []string{"obj"}) {
		t.Errorf("real s6-fdholder-list after SIGHUP = %q; want [obj]", got)
	}
	if !p.Running() {
		t.Fatalf("s6-fdholderd died of SIGHUP: %s", p.result().Status())
	}

	if r := run(t, s6c.s6["delete"], sock, "obj"); r.Code != 0 {
		t.Errorf("real s6-fdholder-delete = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	if r := run(t, s6c.s6["retrieve"], sock, "obj", "true"); r.Code != 1 || !strings.HasSuffix(r.Stderr, ": No such file or directory\n") {
		t.Errorf("real retrieve of a deleted id = %s, stderr %q; want exit 1, ENOENT", r.Status(), r.Stderr)
	}
	g, _ := socketEnd(t)
	if r := s6c.store(t, g, sock, "kept"); r.Code != 0 {
		t.Fatalf("real s6-fdholder-store kept = %s, stderr %q", r.Status(), r.Stderr)
	}
	p.Signal(unix.SIGTERM)
	if r := p.Wait(t); r.Code != 1 || r.Stderr != "" {
		t.Errorf("s6-fdholderd after SIGTERM with an fd held = %s, stderr %q; want exit 1 (s6's status), no stderr", r.Status(), r.Stderr)
	}
}

// TestFdholderCompatDaemonRefusals: s6-fdholderd refuses a fd 0 that is
// no listening socket and bad numbers (exit 100, the usage line).
func TestFdholderCompatDaemonRefusals(t *testing.T) {
	t.Parallel()
	usage := "s6-fdholderd: usage: s6-fdholderd [ -v verbosity ] [ -1 ] [ -c maxconn ] [ -n maxfds ] [ -t timeout ] [ -T lameducktimeout ] [ -i rulesdir | -x rulesfile ]\n" // s6 2.11's synopsis
	for _, tt := range []struct {
		name   string
		argv   []string
		stderr string
	}{
		{"stdin not a socket", []string{"s6-fdholderd", "-1"}, usage},
		{"bad -c", []string{"s6-fdholderd", "-c", "-1"}, usage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantStatus(t, fmt.Sprintf("run(%q)", tt.argv), run(t, tt.argv...), 100, tt.stderr)
		})
	}
}
