package tests

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Acceptance tests of `fdrestore restore -f` (spec/fdrestore.md section
// 12): conflicts, many fds, epoll, runtime fds, ctty, --allow-dirfd, leaks
// and bad input. Programs that must not touch their own fd table are
// inspected from outside through /proc: /bin/sleep opens nothing beyond
// stdio, so its table is exactly what fdrestore left it.

// fdState is one fd of a process as /proc shows it.
type fdState struct {
	Link  string // readlink of /proc/PID/fd/N
	Flags int    // fdinfo "flags:": access mode, status flags, O_CLOEXEC
	Pos   int64  // fdinfo "pos:"
}

// fdStates reads every fd of pid with its fdinfo.
func fdStates(t testing.TB, pid int) map[int]fdState {
	t.Helper()
	m := map[int]fdState{}
	for n, link := range openFDs(t, pid) {
		st := fdState{Link: link}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, n))
		if err != nil {
			t.Fatalf("fdinfo of fd %d of pid %d: %v", n, pid, err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			v = strings.TrimSpace(v)
			switch k {
			case "flags":
				f, err := strconv.ParseInt(v, 8, 64)
				if err != nil {
					t.Fatalf("fdinfo of fd %d of pid %d: flags %q", n, pid, v)
				}
				st.Flags = int(f)
			case "pos":
				st.Pos, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		m[n] = st
	}
	return m
}

// showFDs renders a table, one "N -> TARGET" per line, ascending.
func showFDs(m map[int]string) string {
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%d -> %s\n", n, m[n])
	}
	return b.String()
}

// wantFDs fails the test unless got is want.
func wantFDs(t testing.TB, what string, got, want map[int]string) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s: table\n%s; want\n%s", what, showFDs(got), showFDs(want))
	}
}

// sleepProbe starts argv, a command line that ends in "sleep 1000" after
// any number of in-place execs (fdrestore, prlimit), and returns it once
// sleep runs at the same pid and is asleep, so that its table is final.
// It fails the test, with fdrestore's messages, if the process exits.
func sleepProbe(t testing.TB, o Opts, argv ...string) *Proc {
	t.Helper()
	p := startIn(t, o, argv...)
	waitFor(t, fmt.Sprintf("%q to become sleep", argv), func() bool {
		if !p.Running() {
			r := p.Wait(t)
			t.Fatalf("%q = %s, stdout %q, stderr %q; want sleep running", argv, r.Status(), r.Stdout, r.Stderr)
		}
		a := procArgv(p.Pid)
		return len(a) > 0 && a[0] == "sleep" && sleeping(p.Pid)
	})
	return p
}

// restoreSleep is sleepProbe of `fdrestore restore ARGS... -- sleep 1000`.
func restoreSleep(t testing.TB, o Opts, args ...string) *Proc {
	t.Helper()
	argv := append(append([]string{"fdrestore", "restore"}, args...), "--", "sleep", "1000")
	return sleepProbe(t, o, argv...)
}

// nonblockPipe returns a pipe whose read end is O_NONBLOCK, both ends
// closed when the test ends. os.NewFile keeps a descriptor that is already
// non-blocking as it is, and os/exec passes an *os.File stdin on unchanged.
func nonblockPipe(t testing.TB) (r, w *os.File) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(p[0]), "nonblock-r"), os.NewFile(uintptr(p[1]), "nonblock-w")
	t.Cleanup(func() {
		r.Close()
		w.Close()
	})
	return r, w
}

// wantNoLeftovers fails the test if the process group of p, whose leader
// has exited, still holds a process: a stage process or a zombie left by a
// failing fdrestore.
func wantNoLeftovers(t testing.TB, p *Proc) {
	t.Helper()
	if m := groupMembers(p.Pid); len(m) != 0 {
		t.Errorf("%q left %v in its process group", p.Argv, m)
	}
}

// wantAbsent fails the test if path exists.
func wantAbsent(t testing.TB, path, why string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Lstat(%s) %s = %v; want it absent", path, why, err)
	}
}

// touchProg is a program that creates marker: proof that it ran.
func touchProg(marker string) []string {
	return []string{"sh", "-c", `: > "$0"`, marker}
}

// TestFdrestoreConflictTables builds tables whose sources sit on other
// targets (swap, cycle), stdio made of one pipe, targets where the
// coordinator's own pipe2 and socketpair land, more targets than one
// SCM_RIGHTS batch with holes and one far above, and the close of an
// inherited fd: each ends with exactly the planned table in sleep.
func TestFdrestoreConflictTables(t *testing.T) {
	t.Parallel()
	files, names := tempFiles(t, 3)
	far := []string{"-C"}
	wantFar := map[int]string{}
	for n := 3; n <= 257; n++ {
		if n%10 == 7 {
			continue // a hole
		}
		far = append(far, "-f", fmt.Sprintf("%d=memfd:f%d", n, n))
		wantFar[n] = fmt.Sprintf("/memfd:f%d (deleted)", n)
	}
	far = append(far, "-f", "1000=memfd:f1000")
	wantFar[1000] = "/memfd:f1000 (deleted)"
	for _, tt := range []struct {
		name  string
		extra []*os.File
		args  []string
		want  map[int]string // beyond stdio
	}{
		{name: "swap", extra: files[:2], args: []string{"-f", "3=fd:4", "-f", "4=fd:3"},
			want: map[int]string{3: names[1], 4: names[0]}},
		{name: "cycle", extra: files, args: []string{"-f", "3=fd:4", "-f", "4=fd:5", "-f", "5=fd:3"},
			want: map[int]string{3: names[1], 4: names[2], 5: names[0]}},
		{name: "close inherited", extra: files[:2], args: []string{"-f", "3=close", "-f", "6=null"},
			want: map[int]string{4: names[1], 6: "/dev/null"}},
		{name: "pass-through", extra: files[:2], args: []string{"-f", "4=null"},
			want: map[int]string{3: names[0], 4: "/dev/null"}},
		{name: "close others", extra: files, args: []string{"-C", "-f", "4=fd:5"},
			want: map[int]string{4: names[2]}},
		{name: "3..257 with holes and 1000", args: far, want: wantFar},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := restoreSleep(t, Opts{ExtraFiles: tt.extra}, tt.args...)
			all := openFDs(t, p.Pid)
			wantFDs(t, tt.name, beyondStdio(all), tt.want)
			for n := range 3 {
				if _, ok := all[n]; !ok {
					t.Errorf("%s: fd %d is closed; want stdio untouched", tt.name, n)
				}
			}
		})
	}
}

// TestFdrestoreStdioFromOnePipe: -f 0=pipe:p:r -f 1=pipe:p:w makes the
// program's stdout feed its own stdin.
func TestFdrestoreStdioFromOnePipe(t *testing.T) {
	t.Parallel()
	p := restoreSleep(t, Opts{}, "-f", "0=pipe:p:r", "-f", "1=pipe:p:w")
	st := fdStates(t, p.Pid)
	if !strings.HasPrefix(st[0].Link, "pipe:[") || st[0].Link != st[1].Link {
		t.Errorf("fds 0 and 1 are %q and %q; want the two ends of one pipe", st[0].Link, st[1].Link)
	}
	if st[0].Flags&unix.O_ACCMODE != unix.O_RDONLY || st[1].Flags&unix.O_ACCMODE != unix.O_WRONLY {
		t.Errorf("fd 0 flags %o, fd 1 flags %o; want the read end at 0, the write end at 1", st[0].Flags, st[1].Flags)
	}
	if got := beyondStdio(openFDs(t, p.Pid)); len(got) != 0 {
		t.Errorf("fds beyond stdio:\n%s; want none", showFDs(got))
	}
	r := run(t, "fdrestore", "restore", "-f", "0=pipe:p:r", "-f", "1=pipe:p:w", "--",
		"sh", "-c", `echo hi; read x; echo "got $x" >&2`)
	if r.Code != 0 || r.Stdout != "" || r.Stderr != "got hi\n" {
		t.Errorf("sh reading its own stdout = %s, stdout %q, stderr %q; want exit 0, stderr %q", r.Status(), r.Stdout, r.Stderr, "got hi\n")
	}
}

// TestFdrestoreTargetsWhereMastersLand: with no inherited fd, the
// coordinator's pipe2 and socketpair land at 3 and 4, then 5 and 6 (or
// above): targets that want them the other way round are a swap the
// engine must not get wrong.
func TestFdrestoreTargetsWhereMastersLand(t *testing.T) {
	t.Parallel()
	args := []string{"-C", "-f", "4=pipe:p:r", "-f", "3=pipe:p:w", "-f", "6=socketpair:s:0", "-f", "5=socketpair:s:1"}
	p := restoreSleep(t, Opts{}, args...)
	st := fdStates(t, p.Pid)
	if len(st) != 7 || st[3].Link != st[4].Link || !strings.HasPrefix(st[3].Link, "pipe:[") ||
		st[3].Flags&unix.O_ACCMODE != unix.O_WRONLY || st[4].Flags&unix.O_ACCMODE != unix.O_RDONLY {
		t.Errorf("table %v; want the write end at 3, the read end at 4", st)
	}
	if !strings.HasPrefix(st[5].Link, "socket:[") || !strings.HasPrefix(st[6].Link, "socket:[") || st[5].Link == st[6].Link {
		t.Errorf("fds 5 and 6 are %q and %q; want the two sockets of a pair", st[5].Link, st[6].Link)
	}
	argv := append(append([]string{"fdrestore", "restore"}, args...), "--",
		"sh", "-c", `echo a >&3; read x <&4; echo b >&5; read y <&6; echo c >&6; read z <&5; echo "$x $y $z"`)
	if r := run(t, argv...); r.Code != 0 || r.Stdout != "a b c\n" || r.Stderr != "" {
		t.Errorf("pipe and socketpair = %s, stdout %q, stderr %q; want exit 0, %q", r.Status(), r.Stdout, r.Stderr, "a b c\n")
	}
}

// TestFdrestoreManyFDs places 300 fds (150 pipes) into one process: each
// end at its number, with its access mode, pairs sharing a pipe and no two
// pairs sharing one.
func TestFdrestoreManyFDs(t *testing.T) {
	t.Parallel()
	var args []string
	for k := range 150 {
		args = append(args, "-f", fmt.Sprintf("%d=pipe:p%d:r", 3+2*k, k), "-f", fmt.Sprintf("%d=pipe:p%d:w", 4+2*k, k))
	}
	p := restoreSleep(t, Opts{}, args...)
	st := fdStates(t, p.Pid)
	if len(st) != 303 {
		t.Errorf("sleep has %d fds; want 303 (stdio and 300 placed)", len(st))
	}
	seen := map[string]int{}
	for k := range 150 {
		r, w := st[3+2*k], st[4+2*k]
		if !strings.HasPrefix(r.Link, "pipe:[") || r.Link != w.Link ||
			r.Flags&unix.O_ACCMODE != unix.O_RDONLY || w.Flags&unix.O_ACCMODE != unix.O_WRONLY {
			t.Errorf("fds %d and %d are %+v and %+v; want the read and write ends of pipe p%d", 3+2*k, 4+2*k, r, w, k)
			continue
		}
		if prev, ok := seen[r.Link]; ok {
			t.Errorf("fds %d and %d hold the same %s; want pipes p%d and p%d distinct", 2*prev+3, 3+2*k, r.Link, prev, k)
		}
		seen[r.Link] = k
	}
}

// TestFdrestoreLowSoftLimit: with the soft RLIMIT_NOFILE at 1024 and the
// hard at 20000, a target at 5000 is placed (fdrestore may raise its own
// soft limit), and the program still runs with the soft limit 1024.
func TestFdrestoreLowSoftLimit(t *testing.T) {
	t.Parallel()
	if _, ok := realLookPath("prlimit"); !ok {
		t.Skip("prlimit (util-linux) not found")
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Max < 20000 && os.Geteuid() != 0 {
		t.Skipf("hard RLIMIT_NOFILE is %d, and raising it to 20000 needs root", rl.Max)
	}
	p := sleepProbe(t, Opts{}, "prlimit", "--nofile=1024:20000", "fdrestore", "restore", "-f", "5000=null", "-f", "memfd:m",
		"--", "sleep", "1000")
	wantFDs(t, "restore -f 5000=null under soft limit 1024", beyondStdio(openFDs(t, p.Pid)),
		map[int]string{3: "/memfd:m (deleted)", 5000: "/dev/null"})
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Max open files"); ok {
			got = strings.Fields(rest)
		}
	}
	if len(got) < 2 || got[0] != "1024" || got[1] != "20000" {
		t.Errorf("sleep's open-file limits are %q; want soft 1024, hard 20000\n%s", got, b)
	}
}

// TestFdrestoreEpollCtlOnFinalNumbers: the restored program's
// EPOLL_CTL_MOD and EPOLL_CTL_DEL on the final target numbers succeed
// (ENOENT, an item keyed by a pre-placement number, is the regression), and
// the events carry the target numbers as data. The re-exec path (a
// non-blocking stdin) must give the same.
func TestFdrestoreEpollCtlOnFinalNumbers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		// The write end is writable (4, out) and the eventfd readable (5,
		// in); the empty read end (3) is not ready.
		{name: "pipe and eventfd",
			args: []string{"-f", "3=pipe:a:r", "-f", "4=pipe:a:w", "-f", "5=eventfd:1", "-f", "6=epoll:3,4/out,5", "--", "epollprobe", "6", "3", "4", "5"},
			want: "ready 4 5\nmod 3 ok\nmod 4 ok\nmod 5 ok\ndel 3 ok\ndel 4 ok\ndel 5 ok\n"},
		// Epoll below its targets, targets given in reverse.
		{name: "epoll first",
			args: []string{"-f", "3=epoll:9/out,8", "-f", "9=pipe:b:w", "-f", "8=eventfd:2", "--", "epollprobe", "3", "8", "9"},
			want: "ready 8 9\nmod 8 ok\nmod 9 ok\ndel 8 ok\ndel 9 ok\n"},
		// An epoll watching an epoll: the inner one is ready when its
		// eventfd is.
		{name: "nested",
			args: []string{"-f", "3=eventfd:1", "-f", "4=epoll:3", "-f", "5=epoll:4", "--", "epollprobe", "5", "4"},
			want: "ready 4\nmod 4 ok\ndel 4 ok\n"},
	} {
		for _, nonblock := range []bool{false, true} {
			name := tt.name
			if nonblock {
				name += " re-exec"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				var o Opts
				if nonblock {
					o.StdinFile, _ = nonblockPipe(t)
				}
				argv := append([]string{"fdrestore", "restore"}, tt.args...)
				r := runIn(t, o, argv...)
				if r.Code != 0 || r.Stdout != tt.want || r.Stderr != "" {
					t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 0, stdout %q", argv, r.Status(), r.Stdout, r.Stderr, tt.want)
				}
			})
		}
	}
}

// TestFdrestorePlacementPath: with a non-blocking stdin the Go runtime of
// fdrestore holds fds 3 and 4 (its netpoller); targets there are placed
// through the re-exec path (-v says so), and the program gets the planned
// files, not [eventpoll] or [eventfd], at the same pid, with its stdin
// still the same non-blocking pipe. With blocking stdio: in place.
func TestFdrestorePlacementPath(t *testing.T) {
	t.Parallel()
	for _, nonblock := range []bool{false, true} {
		path := "in place"
		if nonblock {
			path = "re-exec"
		}
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			var o Opts
			var stdin *os.File
			if nonblock {
				stdin, _ = nonblockPipe(t)
				o.StdinFile = stdin
			}
			p := restoreSleep(t, o, "-v", "-f", "3=null", "-f", "4=memfd:m")
			st := fdStates(t, p.Pid)
			got := map[int]string{}
			for n, s := range st {
				if n > 2 {
					got[n] = s.Link
				}
			}
			wantFDs(t, "fds beyond stdio", got, map[int]string{3: "/dev/null", 4: "/memfd:m (deleted)"})
			if nonblock {
				var fst unix.Stat_t
				if err := unix.Fstat(int(stdin.Fd()), &fst); err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("pipe:[%d]", fst.Ino); st[0].Link != want || st[0].Flags&unix.O_NONBLOCK == 0 {
					t.Errorf("sleep's fd 0 is %q, flags %o; want %s, O_NONBLOCK", st[0].Link, st[0].Flags, want)
				}
			}
			want := "fdrestore: info: placement path: " + path
			var n int
			for _, l := range lines(p.Stderr()) {
				// The re-exec line may say why: "re-exec (the Go runtime holds ...)".
				if l == want || strings.HasPrefix(l, want+" (") {
					n++
				}
				if strings.Contains(l, "fatal") || strings.Contains(l, "warning") {
					t.Errorf("stderr line %q; want no fatal or warning", l)
				}
			}
			if n != 1 {
				t.Errorf("stderr %q; want one line %q", p.Stderr(), want)
			}
		})
	}
}

// inNewGroup is the argv prefix that runs a command as a child of sh, in
// sh's process group: a process that does not lead its group, as
// setsid(2) needs (the harness makes every process it starts a leader).
var inNewGroup = []string{"sh", "-c", `"$@"; exit $?`, "sh"}

// TestFdrestoreSetsidCtty: --setsid makes the program a session leader;
// --ctty N makes the pty slave at N its controlling terminal (tty_nr is the
// slave's device, the terminal's foreground group is the program's, and
// /dev/tty opens); --setsid in a process-group leader exits 111.
func TestFdrestoreSetsidCtty(t *testing.T) {
	t.Parallel()
	pidLine := func(t *testing.T, line string) {
		t.Helper()
		var pid, pgrp, sid int
		if n, _ := fmt.Sscanf(line, "pid %d pgrp %d sid %d", &pid, &pgrp, &sid); n != 3 || pid != pgrp || pid != sid {
			t.Errorf("ttyprobe says %q; want a session and group leader (pid = pgrp = sid)", line)
		}
	}
	t.Run("setsid", func(t *testing.T) {
		t.Parallel()
		r := run(t, append(inNewGroup, "fdrestore", "restore", "--setsid", "-f", "3=null", "--", "ttyprobe")...)
		if l := lines(r.Stdout); r.Code != 0 || len(l) != 1 || r.Stderr != "" {
			t.Fatalf("restore --setsid = %s, stdout %q, stderr %q; want exit 0, one line", r.Status(), r.Stdout, r.Stderr)
		}
		pidLine(t, lines(r.Stdout)[0])
	})
	t.Run("ctty", func(t *testing.T) {
		t.Parallel()
		r := run(t, append(inNewGroup, "fdrestore", "restore", "--ctty", "3", "-f", "3=pty:t:slave", "-f", "4=pty:t:master",
			"--", "ttyprobe", "3")...)
		l := lines(r.Stdout)
		if r.Code != 0 || len(l) != 3 || r.Stderr != "" {
			t.Fatalf("restore --ctty 3 = %s, stdout %q, stderr %q; want exit 0, three lines", r.Status(), r.Stdout, r.Stderr)
		}
		pidLine(t, l[0])
		var tty, rdev string
		var tpgid, pgrp int
		fmt.Sscanf(l[0], "pid %d pgrp %d", new(int), &pgrp)
		if n, _ := fmt.Sscanf(l[1], "tty %s rdev %s tpgid %d", &tty, &rdev, &tpgid); n != 3 || tty != rdev || tty == "0:0" || tpgid != pgrp {
			t.Errorf("ttyprobe says %q; want tty_nr = the slave's rdev, tpgid = its pgrp %d", l[1], pgrp)
		}
		if l[2] != "devtty ok" {
			t.Errorf("ttyprobe says %q; want %q", l[2], "devtty ok")
		}
	})
	t.Run("setsid in a group leader", func(t *testing.T) {
		t.Parallel()
		marker := filepath.Join(t.TempDir(), "ran")
		r := run(t, append([]string{"fdrestore", "restore", "--setsid", "-f", "3=null", "--"}, touchProg(marker)...)...)
		if r.Code != 111 || !oneLine(r.Stderr) || !strings.HasPrefix(r.Stderr, "fdrestore: fatal: ") {
			t.Errorf("restore --setsid as a group leader = %s, stderr %q; want exit 111, one fatal line", r.Status(), r.Stderr)
		}
		wantAbsent(t, marker, "after a refused --setsid")
	})
}

// TestFdrestoreAllowDirfd: directory and O_PATH fds, created or live, are
// refused without --allow-dirfd (the program never runs) and placed with it.
func TestFdrestoreAllowDirfd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() }) // after the parallel subtests
	for _, tt := range []struct {
		name  string
		extra []*os.File
		src   string
		link  string
	}{
		{name: "directory flag", src: "5=file:" + dir + ":directory", link: dir},
		{name: "directory without flag", src: "5=file:" + dir, link: dir},
		{name: "O_PATH", src: "5=file:" + file + ":path", link: file},
		{name: "live directory", extra: []*os.File{d}, src: "5=fd:3", link: dir},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			marker := filepath.Join(t.TempDir(), "ran")
			argv := append([]string{"fdrestore", "restore", "-f", tt.src, "--"}, touchProg(marker)...)
			p := startIn(t, Opts{ExtraFiles: tt.extra}, argv...)
			r := p.Wait(t)
			if r.Code == 0 || !oneLine(r.Stderr) || !strings.HasPrefix(r.Stderr, "fdrestore: fatal: ") {
				t.Errorf("run(%q) = %s, stderr %q; want a failure, one fatal line", argv, r.Status(), r.Stderr)
			}
			wantAbsent(t, marker, "without --allow-dirfd")
			wantNoLeftovers(t, p)
			argv = []string{"fdrestore", "restore", "--allow-dirfd", "-C", "-f", tt.src, "--", "sleep", "1000"}
			p = sleepProbe(t, Opts{ExtraFiles: tt.extra}, argv...)
			wantFDs(t, "with --allow-dirfd", beyondStdio(openFDs(t, p.Pid)), map[int]string{5: tt.link})
		})
	}
}

// TestFdrestoreFailureLeavesNothing: when a source fails after others were
// created, fdrestore exits 111 with one line, the program never runs, no
// process is left in its group, and neither the bound unix socket path nor
// the file it created with creat,excl survives.
func TestFdrestoreFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // after the parallel subtests
	holder := start(t, "sleep", "1000")
	waitFor(t, "sleep to sleep", func() bool { return sleeping(holder.Pid) })
	for _, tt := range []struct {
		name string
		args func(dir string) []string
		want func(dir string) string
	}{
		{name: "missing file after a unix listener",
			args: func(dir string) []string {
				return []string{"-f", "3=listen:unix:" + dir + "/s", "-f", "4=file:" + dir + "/missing"}
			},
			want: func(dir string) string {
				return "fdrestore: fatal: unable to open " + dir + "/missing for fd 4: No such file or directory\n"
			}},
		{name: "missing file after creat,excl",
			args: func(dir string) []string {
				return []string{"-f", "3=file:" + dir + "/new:wronly,creat,excl", "-f", "4=file:" + dir + "/missing"}
			},
			want: func(dir string) string {
				return "fdrestore: fatal: unable to open " + dir + "/missing for fd 4: No such file or directory\n"
			}},
		{name: "bind in use after a unix listener",
			args: func(dir string) []string {
				return []string{"-f", "3=listen:unix:" + dir + "/s", "-f", "4=listen:tcp:" + busy.Addr().String()}
			},
			want: func(string) string {
				return "fdrestore: fatal: unable to bind " + busy.Addr().String() + " for fd 4: Address already in use\n"
			}},
		{name: "bad grab with a unix listener",
			args: func(dir string) []string {
				return []string{"-f", "3=listen:unix:" + dir + "/s", "-f", fmt.Sprintf("4=grab:%d:99", holder.Pid)}
			},
			want: func(string) string {
				return fmt.Sprintf("fdrestore: fatal: unable to grab fd 99 of pid %d for fd 4: pid %d has no fd 99\n", holder.Pid, holder.Pid)
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			argv := append(append([]string{"fdrestore", "restore"}, tt.args(dir)...), "--")
			argv = append(argv, touchProg(dir+"/ran")...)
			p := start(t, argv...)
			r := p.Wait(t)
			if want := tt.want(dir); r.Code != 111 || r.Stdout != "" || r.Stderr != want {
				t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 111, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, want)
			}
			wantNoLeftovers(t, p)
			for _, name := range []string{"ran", "s", "new"} {
				wantAbsent(t, filepath.Join(dir, name), "after the failure")
			}
		})
	}
}

// TestFdrestoreBadInput produces the messages of section 10 that flags
// mode can give and TestFdrestoreErrors does not: fd out of range, no room
// above the highest target, --listen-fds holes, and grab: sources refused
// for permission, for a missing fd and for a dead pid.
func TestFdrestoreBadInput(t *testing.T) {
	t.Parallel()
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	_, havePrlimit := realLookPath("prlimit")
	limited := havePrlimit && (rl.Max >= 20000 || os.Geteuid() == 0)
	holder := start(t, "sleep", "1000")
	waitFor(t, "sleep to sleep", func() bool { return sleeping(holder.Pid) })
	gone := start(t, "true")
	gone.Wait(t)
	for _, tt := range []struct {
		name    string
		limited bool // run under prlimit --nofile=1024:20000
		args    []string
		code    int
		want    string
	}{
		{name: "out of range", limited: true, args: []string{"-f", "70000=null"}, code: 100,
			want: "fdrestore: fatal: fd 70000 is out of range: the hard open-file limit is 20000\n"},
		{name: "no room above", limited: true, args: []string{"-f", "19998=null"}, code: 100,
			want: "fdrestore: fatal: not enough fd numbers above fd 19998: raise the hard open-file limit or lower the targets\n"},
		{name: "listen-fds hole", args: []string{"--listen-fds", "-f", "3=null", "-f", "5=null"}, code: 100,
			want: "fdrestore: fatal: --listen-fds needs the targets from 3 on without holes: fd 4 is missing\n"},
		{name: "grab missing fd", args: []string{"-f", fmt.Sprintf("3=grab:%d:99", holder.Pid)}, code: 111,
			want: fmt.Sprintf("fdrestore: fatal: unable to grab fd 99 of pid %d for fd 3: pid %d has no fd 99\n", holder.Pid, holder.Pid)},
		{name: "grab dead pid", args: []string{"-f", fmt.Sprintf("3=grab:%d:0", gone.Pid)}, code: 111,
			want: fmt.Sprintf("fdrestore: fatal: unable to grab fd 0 of pid %d for fd 3: pid %d does not exist\n", gone.Pid, gone.Pid)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.limited && !limited {
				t.Skip("needs prlimit and a hard RLIMIT_NOFILE of 20000 (or root)")
			}
			marker := filepath.Join(t.TempDir(), "ran")
			argv := append(append([]string{"fdrestore", "restore"}, tt.args...), "--")
			argv = append(argv, touchProg(marker)...)
			if tt.limited {
				argv = append([]string{"prlimit", "--nofile=1024:20000"}, argv...)
			}
			r := run(t, argv...)
			if r.Code != tt.code || r.Stdout != "" || r.Stderr != tt.want {
				t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit %d, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, tt.code, tt.want)
			}
			wantAbsent(t, marker, "after the failure")
		})
	}
	t.Run("grab as another uid", func(t *testing.T) {
		t.Parallel()
		bin, asNobody := nobodyFarm(t, "fdrestore")
		argv := append(asNobody, filepath.Join(bin, "fdrestore"), "restore", "-f", fmt.Sprintf("3=grab:%d:0", holder.Pid), "--", "true")
		r := run(t, argv...)
		want := fmt.Sprintf("fdrestore: fatal: unable to grab fd 0 of pid %d for fd 3: Operation not permitted (needs CAP_SYS_PTRACE, or the same uid under a permissive ptrace scope)\n", holder.Pid)
		if r.Code != 111 || r.Stdout != "" || r.Stderr != want {
			t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 111, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, want)
		}
	})
}

// TestFdrestoreNoRuntimeFDRace places 1000 fds 25 times in a row. The Go
// runtime opens its netpoller fds when its first timer starts, from any
// thread; the GC's scavenger used to start one in the middle of
// placement, which then dup3'd onto the netpoller's new fds (about one run
// in 25 died of EBUSY or "netpoll failed"). fdrestore now runs without GC.
func TestFdrestoreNoRuntimeFDRace(t *testing.T) {
	t.Parallel()
	args := []string{"fdrestore", "restore"}
	for range 1000 {
		args = append(args, "-f", "null")
	}
	args = append(args, "--", "true")
	for i := range 25 {
		if r := run(t, args...); r.Code != 0 {
			t.Fatalf("run %d of restore -f null x 1000 = %s, stderr %.300q; want exit 0", i+1, r.Status(), r.Stderr)
		}
	}
}
