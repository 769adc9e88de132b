package tests

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gotools-dev/gotools/applets"
)

// snapshot describes every entry under root: type, permissions, inode,
// link target or content hash. Two equal snapshots are the same tree, down
// to files that were rewritten with the same contents.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v inode %d", info.Mode(), info.Sys().(*syscall.Stat_t).Ino)
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case info.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256 %x", sha256.Sum256(b))
		}
		snap[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot(%s): %v", root, err)
	}
	return snap
}

// checkLinks checks that dir holds exactly gotools (if exe is "") or
// nothing else, plus one relative symlink per applet (and per alias if
// aliases) that resolves to exe (dir/gotools if exe is ""), and that each
// link runs its applet.
func checkLinks(t *testing.T, dir, exe string, aliases bool) {
	t.Helper()
	want := map[string]bool{}
	if exe == "" {
		exe = filepath.Join(dir, "gotools")
		want["gotools"] = true
		st, err := os.Lstat(exe)
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			t.Fatalf("%s: %v, %v; want an executable regular file", exe, st, err)
		}
		b, _ := os.ReadFile(exe)
		orig, _ := os.ReadFile(gotoolsBin)
		if !bytes.Equal(b, orig) {
			t.Errorf("%s differs from %s", exe, gotoolsBin)
		}
	}
	realExe, err := filepath.EvalSymlinks(exe)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range applets.All {
		names := []string{a.Name}
		if aliases {
			names = append(names, a.Aliases...)
		}
		for _, name := range names {
			want[name] = true
			link := filepath.Join(dir, name)
			target, err := os.Readlink(link)
			if err != nil || filepath.IsAbs(target) {
				t.Errorf("readlink(%s) = %q, %v; want a relative symlink", link, target, err)
				continue
			}
			if r, err := filepath.EvalSymlinks(link); err != nil || r != realExe {
				t.Errorf("%s resolves to %q, %v; want %s", link, r, err, realExe)
			}
			// Dispatch through the installed name: a usage error naming it.
			// (TestCLIAliases checks the whole line.) Not where no
			// arguments is a valid command line (svscan would scan ".").
			if noArgsValid[name] {
				continue
			}
			if r := run(t, link); r.Code != 100 || !strings.HasPrefix(r.Stderr, name+": usage: "+name+" ") {
				t.Errorf("run(%s) = %s, stderr %q; want exit 100, %q...", link, r.Status(), r.Stderr, name+": usage: "+name+" ")
			}
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !want[e.Name()] {
			t.Errorf("%s holds %s; want only gotools and its links", dir, e.Name())
		}
		delete(want, e.Name())
	}
	for name := range want {
		t.Errorf("%s has no %s", dir, name)
	}
}

// oneLine checks that s is exactly one line.
func oneLine(s string) bool {
	return strings.HasSuffix(s, "\n") && strings.Count(s, "\n") == 1
}

// TestInstallScript drives install.sh under every POSIX shell found (sh,
// dash): install into a DESTDIR, --s6-names, idempotence, refusal of a file
// in the way, and -f.
func TestInstallScript(t *testing.T) {
	t.Parallel()
	script, err := filepath.Abs("../install.sh")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("install.sh: %v", err)
	}
	first := applets.All[0].Name
	for _, shell := range []string{"sh", "dash"} {
		sh, ok := realLookPath(shell)
		if !ok {
			if shell == "sh" {
				t.Fatalf("sh not found in %s", realPath)
			}
			t.Logf("%s not found in %s: not tested", shell, realPath)
			continue
		}
		install := func(t *testing.T, dest string, flags ...string) Result {
			t.Helper()
			argv := append([]string{sh, script, "-d", dest, "-p", "/usr"}, flags...)
			return runIn(t, Opts{Env: []string{"PATH=" + toolsPATH(t)}}, append(argv, gotoolsBin)...)
		}
		t.Run(shell+"/--man", func(t *testing.T) {
			t.Parallel()
			dest := t.TempDir()
			if r := install(t, dest, "--man", "/usr/share/man"); r.Code != 0 || r.Stderr != "" {
				t.Fatalf("install.sh --man = %s, stderr %q; want exit 0, no stderr", r.Status(), r.Stderr)
			}
			for _, name := range append([]string{"gotools"}, listedNames()...) {
				b, err := os.ReadFile(filepath.Join(dest, "usr/share/man/man1", name+".1"))
				if err != nil || !bytes.HasPrefix(b, []byte(".TH "+strings.ToUpper(name)+" 1 ")) {
					t.Errorf("man page of %s: %.40q, %v; want a man page", name, b, err)
				}
			}
		})
		t.Run(shell+"/warns of same names in PATH", func(t *testing.T) {
			t.Parallel()
			dest, other := t.TempDir(), t.TempDir()
			plantFile(t, other, "svok")   // daemontools' svok, say
			plantFile(t, other, "s6-svc") // not installed without --s6-names
			env := []string{"PATH=" + toolsPATH(t) + ":" + other}
			r := runIn(t, Opts{Env: env}, sh, script, "-d", dest, "-p", "/usr", gotoolsBin)
			want := "install.sh: warning: " + filepath.Join(dest, "usr/bin/svok") + " is also " + filepath.Join(other, "svok") + ", another program"
			if r.Code != 0 || !oneLine(r.Stderr) || !strings.HasPrefix(r.Stderr, want) {
				t.Errorf("install.sh with another svok in PATH = %s, stderr %q; want exit 0, one line %q...", r.Status(), r.Stderr, want)
			}
			checkLinks(t, filepath.Join(dest, "usr/bin"), "", false)
		})
		t.Run(shell+"/installs", func(t *testing.T) {
			t.Parallel()
			dest := t.TempDir()
			if r := install(t, dest); r.Code != 0 || r.Stderr != "" {
				t.Fatalf("install.sh -d %s -p /usr = %s, stderr %q; want exit 0, no stderr", dest, r.Status(), r.Stderr)
			}
			checkLinks(t, filepath.Join(dest, "usr/bin"), "", false)
		})
		t.Run(shell+"/--s6-names", func(t *testing.T) {
			t.Parallel()
			dest := t.TempDir()
			if r := install(t, dest, "--s6-names"); r.Code != 0 || r.Stderr != "" {
				t.Fatalf("install.sh --s6-names = %s, stderr %q; want exit 0, no stderr", r.Status(), r.Stderr)
			}
			checkLinks(t, filepath.Join(dest, "usr/bin"), "", true)
		})
		t.Run(shell+"/idempotent", func(t *testing.T) {
			t.Parallel()
			dest := t.TempDir()
			for _, flags := range [][]string{nil, {"--s6-names"}} {
				var snaps []map[string]string
				for range 2 {
					if r := install(t, dest, flags...); r.Code != 0 || r.Stderr != "" {
						t.Fatalf("install.sh %q = %s, stderr %q; want exit 0, no stderr", flags, r.Status(), r.Stderr)
					}
					snaps = append(snaps, snapshot(t, dest))
				}
				if fmt.Sprint(snaps[0]) != fmt.Sprint(snaps[1]) {
					t.Errorf("install.sh %q twice: tree %v, then %v; want no change", flags, snaps[0], snaps[1])
				}
			}
			checkLinks(t, filepath.Join(dest, "usr/bin"), "", true)
		})
		t.Run(shell+"/refuses a file in the way", func(t *testing.T) {
			t.Parallel()
			dest := t.TempDir()
			bin := filepath.Join(dest, "usr/bin")
			plantFile(t, bin, first)
			before := snapshot(t, dest)
			if r := install(t, dest); r.Code != 1 || !oneLine(r.Stderr) || !strings.Contains(r.Stderr, filepath.Join(bin, first)) {
				t.Errorf("install.sh over a file = %s, stderr %q; want exit 1, one line naming %s", r.Status(), r.Stderr, filepath.Join(bin, first))
			}
			if after := snapshot(t, dest); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("install.sh changed the tree although it refused: %v, then %v", before, after)
			}
		})
		t.Run(shell+"/-f replaces a file in the way", func(t *testing.T) {
			t.Parallel()
			dest := t.TempDir()
			bin := filepath.Join(dest, "usr/bin")
			plantFile(t, bin, first)
			if r := install(t, dest, "-f"); r.Code != 0 || r.Stderr != "" {
				t.Fatalf("install.sh -f over a file = %s, stderr %q; want exit 0, no stderr", r.Status(), r.Stderr)
			}
			checkLinks(t, bin, "", false)
		})
	}
}

// listedNames returns the applet names "gotools --list" printed.
func listedNames() []string {
	var n []string
	for _, l := range listed {
		name, _, _ := strings.Cut(l, "\t")
		n = append(n, name)
	}
	return n
}

// toolsPATH returns a directory holding only the commands install.sh runs
// (links to the real ones), for a $PATH in which no other program has an
// applet's name: the real s6 tools are in /usr/bin here.
func toolsPATH(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, c := range []string{"cp", "mv", "ln", "mkdir", "rm", "chmod", "readlink", "cmp", "dirname", "tr", "ls", "cat"} {
		p, ok := realLookPath(c)
		if !ok {
			t.Fatalf("%s not found in %s", c, realPath)
		}
		if err := os.Symlink(p, filepath.Join(dir, c)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// plantFile creates dir/name as a regular file that is not gotools.
func plantFile(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeExecutable(filepath.Join(dir, name), []byte("not gotools\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestInstallFromBinary covers "gotools --install DIR", the installer for
// images without a shell: links relative to the binary, idempotent, a file
// in the way refused unless -f.
func TestInstallFromBinary(t *testing.T) {
	t.Parallel()
	first := applets.All[0].Name
	for _, tt := range []struct {
		name    string
		flags   []string
		aliases bool
	}{
		{name: "applets"},
		{name: "--s6-names", flags: []string{"--s6-names"}, aliases: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			argv := append(append([]string{"gotools", "--install"}, tt.flags...), dir)
			var snaps []map[string]string
			for range 2 {
				if r := run(t, argv...); r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
					t.Fatalf("run(%q) = %s, stdout %q, stderr %q; want exit 0, no output", argv, r.Status(), r.Stdout, r.Stderr)
				}
				snaps = append(snaps, snapshot(t, dir))
			}
			if fmt.Sprint(snaps[0]) != fmt.Sprint(snaps[1]) {
				t.Errorf("run(%q) twice: tree %v, then %v; want no change", argv, snaps[0], snaps[1])
			}
			checkLinks(t, dir, gotoolsBin, tt.aliases)
			link := filepath.Join(dir, first)
			if r := run(t, link, "--help"); r.Code != 0 || r.Stdout == "" {
				t.Errorf("run(%s --help) = %s, stdout %q; want exit 0 and help", link, r.Status(), r.Stdout)
			}
		})
	}
	t.Run("refuses a file in the way", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		plantFile(t, dir, first)
		path := filepath.Join(dir, first)
		r := run(t, "gotools", "--install", dir)
		if r.Code != 1 || !oneLine(r.Stderr) || !strings.HasPrefix(r.Stderr, "gotools: fatal: ") || !strings.Contains(r.Stderr, path) {
			t.Errorf("run(gotools --install %s) over a file = %s, stderr %q; want exit 1, one line naming %s", dir, r.Status(), r.Stderr, path)
		}
		if b, err := os.ReadFile(path); string(b) != "not gotools\n" {
			t.Errorf("%s after a refusal: %q, %v; want it untouched", path, b, err)
		}
		if r := run(t, "gotools", "--install", "-f", dir); r.Code != 0 || r.Stderr != "" {
			t.Errorf("run(gotools --install -f %s) = %s, stderr %q; want exit 0", dir, r.Status(), r.Stderr)
		}
		checkLinks(t, dir, gotoolsBin, false)
	})
}
