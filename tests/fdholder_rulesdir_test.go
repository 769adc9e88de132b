package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// writeRules builds an s6 access rules directory by hand (the layout of
// s6-accessrules-fs-from-cdb): path -> contents, relative to a new
// directory, which it returns.
func writeRules(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rules")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestFdholderDaemonRulesDirMatchesS6: the real s6-fdholder-* clients,
// as root and as uid 65534, get the same answers (exit code, stdout,
// stderr) from gotools' `s6-fdholder-daemon -i RULESDIR` (and -x with the
// cdb s6-accessrules-cdb-from-fs makes of it) as from the real
// s6-fdholder-daemon with the same rules: separate store and
// retrieve regexes, list without getdump, delete under the store regex,
// a uid without a rule refused, and root refused when no rule names it.
func TestFdholderDaemonRulesDirMatchesS6(t *testing.T) {
	t.Parallel()
	s6c := s6HoldClient(t)
	realDaemon := requireS6(t, "s6-fdholder-daemon")[0]
	farmIsGotools(t, "s6-fdholder-daemon")
	bin, asNobody := nobodyFarm(t)
	rules := writeRules(t, map[string]string{
		"uid/0/allow":                              "",
		"uid/0/env/S6_FDHOLDER_STORE_REGEX":        "^(root|pub):\n",
		"uid/0/env/S6_FDHOLDER_RETRIEVE_REGEX":     "^root:\n",
		"uid/0/env/S6_FDHOLDER_LIST":               "\n",
		"uid/0/env/S6_FDHOLDER_GETDUMP":            "", // empty file: unset
		"uid/65534/allow":                          "",
		"uid/65534/env/S6_FDHOLDER_STORE_REGEX":    "^nob:",
		"uid/65534/env/S6_FDHOLDER_RETRIEVE_REGEX": "^pub:\n",
	})
	noRoot := writeRules(t, map[string]string{"uid/65534/allow": "", "uid/default/deny": ""})
	// The same rules in a cdb, made by s6's own tool.
	cdbFromFS := requireS6(t, "s6-accessrules-cdb-from-fs")[0]
	cdb := filepath.Join(t.TempDir(), "rules.cdb")
	if r := run(t, cdbFromFS, cdb, rules); r.Code != 0 {
		t.Fatalf("s6-accessrules-cdb-from-fs = %s, stderr %q", r.Status(), r.Stderr)
	}
	policies := [][2]string{{"-i", rules}, {"-i", noRoot}, {"-x", cdb}}

	scenario := func(t *testing.T, daemon string) []string {
		var out []string
		for k, policy := range policies {
			sock := filepath.Join(bin, fmt.Sprintf("%s-%d", filepath.Base(daemon), k))
			p := start(t, daemon, "-1", policy[0], policy[1], sock)
			p.WaitLine(t, "^$")
			// The socket is made with the umask: let every uid connect.
			if err := os.Chmod(sock, 0o777); err != nil {
				t.Fatal(err)
			}
			f, _ := socketEnd(t)
			do := func(who string, stdin *os.File, argv ...string) {
				if who == "nobody" {
					argv = append(append([]string{}, asNobody...), argv...)
				}
				r := runIn(t, Opts{StdinFile: stdin}, argv...)
				// gotools lists in byte order (a documented difference);
				// a refused connection is EPIPE or ECONNRESET by timing.
				l := lines(r.Stdout)
				slices.Sort(l)
				r.Stdout = strings.Join(l, ",")
				r.Stderr = strings.ReplaceAll(r.Stderr, "Connection reset by peer", "Broken pipe")
				line := fmt.Sprintf("%s %q: %s, stdout %q, stderr %q", who, argv[len(argv)-2:], r.Status(), r.Stdout, r.Stderr)
				out = append(out, strings.ReplaceAll(line, sock, "SOCK"))
			}
			do("root", f, s6c.s6["store"], sock, "root:a")
			do("root", f, s6c.s6["store"], sock, "pub:x")
			do("root", f, s6c.s6["store"], sock, "other")
			do("root", f, s6c.s6["store"], sock, "root:a")
			do("root", nil, s6c.s6["list"], sock)
			do("root", nil, s6c.s6["retrieve"], sock, "root:a", "echo")
			do("root", nil, s6c.s6["retrieve"], sock, "pub:x", "echo")
			do("root", nil, s6c.s6["getdump"], sock, "echo")
			do("nobody", f, s6c.s6["store"], sock, "nob:1")
			do("nobody", f, s6c.s6["store"], sock, "root:z")
			do("nobody", nil, s6c.s6["retrieve"], sock, "pub:x", "echo")
			do("nobody", nil, s6c.s6["retrieve"], sock, "nob:1", "echo")
			do("nobody", nil, s6c.s6["list"], sock)
			do("nobody", nil, s6c.s6["delete"], sock, "nob:1")
			do("nobody", nil, s6c.s6["delete"], sock, "nob:1")
			p.KillGroup(t)
		}
		return out
	}
	want := scenario(t, realDaemon)
	got := scenario(t, "s6-fdholder-daemon")
	if len(got) != len(want) {
		t.Fatalf("gotools gave %d answers, s6 %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("answer %d differs:\n gotools: %s\n s6:      %s", i, got[i], want[i])
		}
	}
	// The answers are not all alike: the rules did something.
	if !strings.Contains(strings.Join(want, "\n"), "Operation not permitted") || !strings.Contains(strings.Join(want, "\n"), "exit 0") {
		t.Errorf("s6's answers %q show no refusal or no success: the scenario proves nothing", want)
	}
}

// stuckHolder is a listening unix socket that never accepts: a holder
// that does not answer.
func stuckHolder(t *testing.T, path string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		t.Fatal(err)
	}
}

// Issue 13, defect 10: a request that times out exits 1, as s6's clients
// do; transferdump -t FROM:TO gives up on a stuck source after FROM ms
// even with TO = 0; a holder socket path may contain ':'; several -a
// rules for one uid add up.
func TestFdholderLimitsMatchS6(t *testing.T) {
	t.Parallel()
	s6c := s6HoldClient(t)
	bin, asNobody := nobodyFarm(t) // a directory every uid may traverse
	dir := filepath.Join(bin, "a:b")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stuck := filepath.Join(dir, "stuck")
	stuckHolder(t, stuck)
	r := run(t, "s6-fdholder-list", "-t", "200", stuck)
	real := run(t, s6c.s6["list"], "-t", "200", stuck)
	if r.Code != 1 || real.Code != 1 {
		t.Errorf("s6-fdholder-list -t 200 on a stuck holder = %s (stderr %q), the real one %s; want exit 1 for both", r.Status(), r.Stderr, real.Status())
	}

	h := startHold(t, filepath.Join(dir, "s"), "-a", "65534,store:^s", "-a", "65534,retrieve:^r")
	p := start(t, "s6-fdholder-transferdump", "-t", "500:0", stuck, h.sock)
	if !poll(time.Now().Add(10*time.Second), func() bool { return !p.Running() }) {
		t.Errorf("s6-fdholder-transferdump -t 500:0 from a stuck holder still runs after 10 s; want it to give up after 500 ms")
	} else if r := p.Wait(t); r.Code != 1 {
		t.Errorf("s6-fdholder-transferdump -t 500:0 from a stuck holder = %s, stderr %q; want exit 1", r.Status(), r.Stderr)
	}
	p.KillGroup(t)

	// A socket path with ':' in it.
	f, ino := socketEnd(t)
	mustStore(t, f, h.sock, "r1")
	r = run(t, "s6-fdholder-retrieve", h.sock, "r1", "fdlist")
	if tgt := fdlistTarget(r.Stdout, 0); r.Code != 0 || tgt != socketName(ino) {
		t.Errorf("s6-fdholder-retrieve %s r1 fdlist = %s, fd 0 -> %q, stderr %q; want %s", h.sock, r.Status(), tgt, r.Stderr, socketName(ino))
	}

	// Two rules for 65534: store ids ^s, retrieve ids ^r.
	if err := os.Chmod(h.sock, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		argv []string
		code int
	}{
		{[]string{s6c.s6["store"], h.sock, "s1"}, 0},
		{[]string{s6c.s6["store"], h.sock, "r2"}, 1},
		{[]string{s6c.s6["retrieve"], h.sock, "r1", "true"}, 0},
		{[]string{s6c.s6["retrieve"], h.sock, "s1", "true"}, 1},
	} {
		r := run(t, append(slices.Clone(asNobody), tc.argv...)...)
		if r.Code != tc.code {
			t.Errorf("as uid 65534 under -a 65534,store:^s -a 65534,retrieve:^r: %q = %s, stderr %q; want exit %d", tc.argv[1:], r.Status(), r.Stderr, tc.code)
		}
	}
}

// TestFdholderdRulesDir: gotools' s6-fdholderd -i RULESDIR under the real
// s6-ipcserver-socketbinder applies the directory: root may list but not
// store (no S6_FDHOLDER_STORE_REGEX), as the real daemon decides.
func TestFdholderdRulesDir(t *testing.T) {
	t.Parallel()
	farmIsGotools(t, "s6-fdholderd")
	binder := requireS6(t, "s6-ipcserver-socketbinder")[0]
	s6c := s6HoldClient(t)
	rules := writeRules(t, map[string]string{"uid/0/allow": "", "uid/0/env/S6_FDHOLDER_LIST": "\n"})
	sock := holdSock(t)
	p := start(t, binder, sock, "s6-fdholderd", "-1", "-i", rules)
	p.WaitLine(t, "^$")
	f, _ := socketEnd(t)
	if r := s6c.store(t, f, sock, "obj"); r.Code != 1 || !strings.HasSuffix(r.Stderr, ": Operation not permitted\n") {
		t.Errorf("real s6-fdholder-store under -i without a store regex = %s, stderr %q; want exit 1, EPERM", r.Status(), r.Stderr)
	}
	if r := run(t, s6c.s6["list"], sock); r.Code != 0 || r.Stdout != "" {
		t.Errorf("real s6-fdholder-list under -i with S6_FDHOLDER_LIST = %s, stdout %q, stderr %q; want exit 0, nothing", r.Status(), r.Stdout, r.Stderr)
	}
}

// Issue 13, defect 11: one directory-fd policy for every command that
// hands held fds to a program. A stored directory fd is refused (exit 1,
// naming --allow-dirfd) by s6-fdholder-retrieve and s6-fdholder-getdump
// alike, and the flag the message names is accepted by both and lets the
// fd through.
func TestFdholderDirFDPolicy(t *testing.T) {
	t.Parallel()
	h := startHold(t, holdSock(t))
	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	mustStore(t, dir, h.sock, "dir")
	for _, tc := range []struct {
		name string
		argv []string
	}{
		{"retrieve", []string{"s6-fdholder-retrieve", h.sock, "dir", "true"}},
		{"getdump", []string{"s6-fdholder-getdump", h.sock, "true"}},
	} {
		r := run(t, tc.argv...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "a directory") || !strings.HasSuffix(r.Stderr, "use --allow-dirfd\n") {
			t.Errorf("%s of a stored directory fd = %s, stderr %q; want exit 1, a refusal naming --allow-dirfd", tc.name, r.Status(), r.Stderr)
		}
		argv := append([]string{tc.argv[0], "--allow-dirfd"}, tc.argv[1:]...)
		if r := run(t, argv...); r.Code != 0 {
			t.Errorf("%q = %s, stderr %q; want exit 0: the flag the refusal names must work", argv, r.Status(), r.Stderr)
		}
	}
}

// TestFdholderDaemonDropsPrivileges: fdholder-daemon -u/-g binds as root,
// then serves as the given ids (s6-applyuidgid's part of
// s6-fdholder-daemon), still applying the rules to its clients.
func TestFdholderDaemonDropsPrivileges(t *testing.T) {
	t.Parallel()
	s6c := s6HoldClient(t)
	bin, _ := nobodyFarm(t)
	// The daemon, as 65534, reads the rules at each connection.
	rules := filepath.Join(bin, "rules")
	for name, content := range map[string]string{"uid/0/allow": "", "uid/0/env/S6_FDHOLDER_LIST": "\n"} {
		p := filepath.Join(rules, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(bin, "s")
	p := start(t, "s6-fdholder-daemon", "-1", "-u", "65534", "-g", "65534", "-G", "", "-i", rules, sock)
	p.WaitLine(t, "^$")
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, l := range lines(string(status)) {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	if fields["Uid"] != "65534 65534 65534 65534" || fields["Gid"] != "65534 65534 65534 65534" || fields["Groups"] != "" {
		t.Errorf("fdholder-daemon -u 65534 -g 65534 -G '' runs with Uid %q, Gid %q, Groups %q; want 65534 everywhere, no groups",
			fields["Uid"], fields["Gid"], fields["Groups"])
	}
	if err := os.Chmod(sock, 0o777); err != nil {
		t.Fatal(err)
	}
	if r := run(t, s6c.s6["list"], sock); r.Code != 0 {
		t.Errorf("real s6-fdholder-list as root against the daemon run as 65534 = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	f, _ := socketEnd(t)
	if r := s6c.store(t, f, sock, "x"); r.Code != 1 {
		t.Errorf("real s6-fdholder-store without a store regex = %s, stderr %q; want exit 1", r.Status(), r.Stderr)
	}
}
