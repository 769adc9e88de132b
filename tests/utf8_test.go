package tests

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// notUTF8 is a name byte that is not valid UTF-8: a JSON or rune round trip
// turns it into "\xef\xbf\xbd" (U+FFFD).
const notUTF8 = "\xff"

// TestBytesServiceDirName supervises a service whose directory name is
// not valid UTF-8, under real s6-supervise and under gotools' supervise,
// and drives it with svok, svstat, svc and svwait: each finds the
// directory by its bytes.
func TestBytesServiceDirName(t *testing.T) {
	t.Parallel()
	for _, sup := range []string{"s6-supervise", "supervise"} {
		t.Run(sup, func(t *testing.T) {
			t.Parallel()
			prog := sup
			if sup == "s6-supervise" {
				prog = requireS6(t, "s6-supervise")[0]
			}
			dir := filepath.Join(t.TempDir(), "sv"+notUTF8)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := writeExecutable(filepath.Join(dir, "run"), []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			p := start(t, prog, dir)
			t.Cleanup(func() { sweepSessions(t, p) })
			// Bounded waits: a client that cannot find the directory
			// would otherwise keep the test until its deadline.
			soon := time.Now().Add(10 * time.Second)
			var r Result
			if !poll(soon, func() bool { r = run(t, "svok", dir); return r.Code == 0 }) {
				t.Fatalf("svok %q under %s = %s, stderr %q; want exit 0", dir, sup, r.Status(), r.Stderr)
			}
			if !poll(soon, func() bool {
				r = run(t, "svstat", "-o", "up", dir)
				return r.Code == 0 && r.Stdout == "true\n"
			}) {
				t.Fatalf("svstat -o up %q under %s = %s, %q, stderr %q; want true", dir, sup, r.Status(), r.Stdout, r.Stderr)
			}
			if r := run(t, "svc", "-d", dir); r.Code != 0 || r.Stderr != "" {
				t.Fatalf("svc -d %q = %s, stderr %q; want exit 0", dir, r.Status(), r.Stderr)
			}
			if r := run(t, "svwait", "-d", "-t", "20000", dir); r.Code != 0 || r.Stderr != "" {
				t.Errorf("svwait -d %q = %s, stderr %q; want exit 0", dir, r.Status(), r.Stderr)
			}
			if r := run(t, "svstat", "-o", "up,wantedup", dir); r.Code != 0 || r.Stdout != "false false\n" {
				t.Errorf("svstat -o up,wantedup %q after svc -d = %s, %q, stderr %q; want false false", dir, r.Status(), r.Stdout, r.Stderr)
			}
			if r := run(t, "svc", "-x", dir); r.Code != 0 || r.Stderr != "" {
				t.Fatalf("svc -x %q = %s, stderr %q; want exit 0", dir, r.Status(), r.Stderr)
			}
			if r := p.Wait(t); r.Code != 0 {
				t.Errorf("%s after svc -x = %s, stderr %q; want exit 0", sup, r.Status(), r.Stderr)
			}
		})
	}
}

// TestBytesProgArgv runs programs through setlock, setlock's s6 name and
// fdrestore restore with a lock name, a path and arguments that are not
// valid UTF-8: the lock file and the opened file get exactly those names,
// and prog gets exactly those bytes.
func TestBytesProgArgv(t *testing.T) {
	t.Parallel()
	arg := "a" + notUTF8 + "b"
	// prog writes its first argument to the file named by its second.
	prog := []string{"/bin/sh", "-c", `printf '%s' "$1" > "$2"`, "sh", arg}
	for _, tt := range []struct {
		name    string
		argv    func(dir, out string) []string
		created string // a file the applet itself creates, by name
	}{
		{name: "setlock", created: "lock" + notUTF8, argv: func(dir, out string) []string {
			return append(append([]string{"setlock", filepath.Join(dir, "lock"+notUTF8)}, prog...), out)
		}},
		{name: "s6-setlock -n", created: "lock" + notUTF8, argv: func(dir, out string) []string {
			return append(append([]string{"s6-setlock", "-n", filepath.Join(dir, "lock"+notUTF8)}, prog...), out)
		}},
		{name: "fdrestore restore", created: "file" + notUTF8, argv: func(dir, out string) []string {
			return append(append([]string{"fdrestore", "restore", "-f", "3=file:" + filepath.Join(dir, "file"+notUTF8) + ":wronly,creat", "--"}, prog...), out)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			out := filepath.Join(dir, "out"+notUTF8)
			argv := tt.argv(dir, out)
			if r := run(t, argv...); r.Code != 0 || r.Stderr != "" {
				t.Fatalf("run(%q) = %s, stderr %q; want exit 0", argv, r.Status(), r.Stderr)
			}
			if b, err := os.ReadFile(out); err != nil || string(b) != arg {
				t.Errorf("run(%q): prog's argument = %q, %v; want %q", argv, b, err, arg)
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if len(names) != 2 || (names[0] != tt.created && names[1] != tt.created) {
				t.Errorf("run(%q) left %q in its directory; want %q and the output file", argv, names, tt.created)
			}
		})
	}
}
