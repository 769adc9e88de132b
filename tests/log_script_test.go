package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLogScriptErrors checks each error of the command line and the script:
// exit 100, one exact line, nothing created (§12 test 1).
func TestLogScriptErrors(t *testing.T) {
	const u = "usage: log [ -d notif ] [ -q | -v ] [ -b ] [ -p ] [ -l linelimit ] [ -t lastlinetimeout ] [ -- ] logging_script"
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{nil, u},
		{[]string{"-x", "1"}, u},
		{[]string{"-l"}, u},
		{[]string{"-l", "0x10", "1"}, u},
		{[]string{"-q"}, u},
		{[]string{"./d", "n-1", "1"}, "fatal: unrecognized directive: n-1"},
		{[]string{"./d", "x"}, "fatal: unrecognized directive: x"},
		{[]string{"./d", ""}, "fatal: unrecognized directive: "},
		{[]string{"ff", "./d"}, "fatal: syntax error at directive: ff"},
		{[]string{"tT", "./d"}, "fatal: syntax error at directive: tT"},
		{[]string{"=", "./d"}, "fatal: syntax error at directive: ="},
		{[]string{"+a"}, "fatal: no action directive specified"},
		{[]string{"n4294967296", "./d"}, "fatal: unrecognized directive: n4294967296"},
		{[]string{"s4096", "l2049", "./d"}, "fatal: directive l2049 conflicts with previous s directive"},
		{[]string{"./d", "+a{1", "1"}, "fatal: unrecognized directive: +a{1"},
		{[]string{"./d", "+(a)\\1", "1"}, "fatal: unsupported regular expression in directive +(a)\\1: backreferences are not supported"},
		{[]string{"./d", "+a{1001}", "1"}, "fatal: unsupported regular expression in directive +a{1001}: repetition count above 1000"},
		{[]string{"./d", "+\\<[a-z]", "1"}, "fatal: unsupported regular expression in directive +\\<[a-z]: \\< not before a literal word character"},
		{[]string{"./d", "./d/"}, "fatal: logdir ./d/ is the same as ./d"},
		{[]string{"-d", "2", "./d"}, "fatal: notification fd must be 3 or more"},
		{[]string{"-d", "9", "./d"}, "fatal: invalid notification fd: Bad file descriptor"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			r := runIn(t, Opts{Dir: dir}, append([]string{"log"}, tt.args...)...)
			if r.Code != 100 || r.Stderr != "log: "+tt.msg+"\n" {
				t.Errorf("log %q = %s %q; want exit 100 %q", tt.args, r.Status(), r.Stderr, "log: "+tt.msg+"\n")
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("log %q left %v", tt.args, ents[0].Name())
			}
		})
	}
	// !X without execlineb in PATH: 100, nothing created.
	dir := t.TempDir()
	r := runIn(t, Opts{Dir: dir, Env: []string{"PATH=/nonexistent"}}, lookPath(t, "log"), "!cat", "./d")
	if r.Code != 100 || r.Stderr != "log: fatal: unable to find execlineb in PATH for directive: !cat\n" {
		t.Errorf("log !cat without execlineb = %s %q", r.Status(), r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "d")); err == nil {
		t.Errorf("log !cat without execlineb created ./d")
	}
	// Accepted; the warnings.
	for _, tt := range []struct {
		args []string
		warn bool
	}{
		{[]string{"--", "-", "+x", "1"}, false},
		{[]string{"--", "-x", "1"}, false},
		{[]string{"n4294967295", "1"}, false},
		{[]string{"l2049", "s4096", "1"}, false},
		{[]string{"1", "+foo"}, true},
		{[]string{"1", "n5"}, true},
		{[]string{"-q", "1", "+foo"}, false},
	} {
		r := runIn(t, Opts{Stdin: "a\n"}, append([]string{"log"}, tt.args...)...)
		want := ""
		if tt.warn {
			want = "log: warning: ignoring extraneous non-action directives\n"
		}
		if r.Code != 0 || r.Stderr != want {
			t.Errorf("log %q = %s %q; want exit 0 %q", tt.args, r.Status(), r.Stderr, want)
		}
	}
	// The s6 name prints upstream's prefix.
	if r := run(t, "s6-log", "E5", "2"); r.Code != 0 {
		t.Errorf("s6-log E5 2 = %s", r.Status())
	}
	if r := runIn(t, Opts{Stdin: "abcdefghi\nabcdefgh\n"}, "s6-log", "E5", "2"); r.Stderr != "s6-log: alert: abcde...\ns6-log: alert: abcdefgh\n" {
		t.Errorf("s6-log E5 2 alerts %q", r.Stderr)
	}
}

// TestLogStatusFiles checks ^N status files: size, mode, no .new left.
func TestLogStatusFiles(t *testing.T) {
	for _, tt := range []struct {
		pad  string
		want string
	}{
		{"^20", "P hello" + strings.Repeat("\n", 13)},
		{"^5", "P hel"},
		{"^0", "P hello\n"},
	} {
		dir := t.TempDir()
		r := runIn(t, Opts{Stdin: "first\nhello\n", Dir: dir}, "log", tt.pad, "pP", "=st")
		if r.Code != 0 {
			t.Fatalf("log %s: %s %q", tt.pad, r.Status(), r.Stderr)
		}
		b, err := os.ReadFile(filepath.Join(dir, "st"))
		info, _ := os.Stat(filepath.Join(dir, "st"))
		if err != nil || string(b) != tt.want || info.Mode().Perm() != 0o644 {
			t.Errorf("log %s pP =st: %q %v %v; want %q 0644", tt.pad, b, info.Mode(), err, tt.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "st.new")); err == nil {
			t.Errorf("st.new left behind")
		}
	}
}

// TestLogProcessor checks what a processor gets (fds 0 1 2 4 5, its cwd,
// stdin, state), its output archived, and the retry after a failure (§12
// test 12).
func TestLogProcessor(t *testing.T) {
	dir := t.TempDir()
	script := `pwd > ../cwd; cat <&4; echo next >&5; cat`
	l := startLogger(t, dir, nil, "log", "?"+script, "./d")
	l.drip("one\n")
	l.p.Signal(unix.SIGALRM)
	d := filepath.Join(dir, "d")
	waitFor(t, "the first archive", func() bool { return newestArchive(t, d) != "" })
	l.drip("two\n")
	first := newestArchive(t, d)
	l.p.Signal(unix.SIGALRM)
	waitFor(t, "the second archive", func() bool { return newestArchive(t, d) > first })
	if r := l.end(); r.Code != 0 || r.Stderr != "" {
		t.Fatalf("log: %s %q", r.Status(), r.Stderr)
	}
	cwd, _ := os.ReadFile(filepath.Join(dir, "cwd"))
	if want, _ := filepath.EvalSymlinks(d); strings.TrimSpace(string(cwd)) != want {
		t.Errorf("processor cwd = %q; want %q", cwd, want)
	}
	second, _ := os.ReadFile(filepath.Join(d, newestArchive(t, d)))
	if string(second) != "next\ntwo\n" {
		t.Errorf("second archive = %q; want the old state then the line", second)
	}
	state, _ := os.ReadFile(filepath.Join(d, "state"))
	if string(state) != "next\n" {
		t.Errorf("state = %q; want %q", state, "next\n")
	}
	checkNoProcessorFiles(t, d)

	// Exactly fds 0, 1, 2, 4 and 5 (the fdlist role prints its table into
	// the archive).
	dir = t.TempDir()
	l = startLogger(t, dir, nil, "log", "?exec fdlist", "./d")
	l.drip("one\n")
	l.p.Signal(unix.SIGALRM)
	d = filepath.Join(dir, "d")
	waitFor(t, "the fdlist archive", func() bool { return newestArchive(t, d) != "" })
	l.end()
	table, _ := os.ReadFile(filepath.Join(d, newestArchive(t, d)))
	var fds []string
	for _, line := range strings.Split(strings.TrimSpace(string(table)), "\n") {
		fds = append(fds, strings.Fields(line)[0])
	}
	if strings.Join(fds, " ") != "0 1 2 4 5" {
		t.Errorf("processor fds: %q; want 0 1 2 4 5", table)
	}

	// A failing processor is retried after the cooldown.
	dir = t.TempDir()
	l = startLogger(t, dir, nil, "log", "r300", `?echo x >> ../runs; cat; [ $(wc -l < ../runs) -ge 2 ]`, "./d")
	l.drip("one\n")
	start := time.Now()
	l.p.Signal(unix.SIGALRM)
	d = filepath.Join(dir, "d")
	waitFor(t, "the archive after a retry", func() bool { return newestArchive(t, d) != "" })
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("the processor was rerun after %v; want >= 300ms", el)
	}
	if r := l.end(); r.Code != 0 || r.Stderr != "log: warning: processor failed in ./d\n" {
		t.Errorf("log: %s %q; want one failure warning", r.Status(), r.Stderr)
	}
}

func checkNoProcessorFiles(t *testing.T, d string) {
	t.Helper()
	for _, f := range []string{"previous", "processed", "newstate"} {
		if _, err := os.Stat(filepath.Join(d, f)); err == nil {
			t.Errorf("%s left in the logdir", f)
		}
	}
}

// TestLogAlarm: SIGALRM archives a non-empty current, never an empty one
// (§12 test 10).
func TestLogAlarm(t *testing.T) {
	dir := t.TempDir()
	l := startLogger(t, dir, nil, "log", "./d")
	d := filepath.Join(dir, "d")
	l.drip("a\n")
	waitFor(t, "current", func() bool { b, _ := os.ReadFile(filepath.Join(d, "current")); return len(b) == 2 })
	l.p.Signal(unix.SIGALRM)
	waitFor(t, "an archive", func() bool { return newestArchive(t, d) != "" })
	l.p.Signal(unix.SIGALRM)
	// The signal travels through the runtime's relay: give it time to act
	// on the empty current before the next line comes.
	time.Sleep(500 * time.Millisecond)
	l.drip("b\n")
	if r := l.end(); r.Code != 0 {
		t.Fatalf("log: %s %q", r.Status(), r.Stderr)
	}
	files := readLogdir(t, d)
	if len(files) != 4 || files[0].Data != "a\n" || files[1].Name != "current" || files[1].Data != "b\n" {
		t.Errorf("logdir = %v; want one archive, current b", files)
	}
}

// TestLogProcessorSticky: ?X stays in force, with its interpreter, for a
// later logdir: /bin/sh runs for both.
func TestLogProcessorSticky(t *testing.T) {
	dir := t.TempDir()
	l := startLogger(t, dir, nil, "log", `?echo "$0"`, "./a", "./b")
	l.drip("x\n")
	l.p.Signal(unix.SIGALRM)
	for _, d := range []string{"a", "b"} {
		waitFor(t, d+"'s archive", func() bool { return newestArchive(t, filepath.Join(dir, d)) != "" })
		if got := readFile(t, filepath.Join(dir, d, newestArchive(t, filepath.Join(dir, d)))); got != "/bin/sh\n" {
			t.Errorf("%s: the processor printed %q; want /bin/sh", d, got)
		}
	}
	l.end()
}

// TestLogProcessorNoLeak: 100 rotations with a processor leave the
// logger's fd count unchanged and no zombie (§12 test 22).
func TestLogProcessorNoLeak(t *testing.T) {
	dir := fastDir(t)
	l := startLogger(t, dir, nil, "log", "n3", "s4096", "?cat", "./d")
	l.drip("first\n")
	fds := func() int { ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", l.p.Pid)); return len(ents) }
	before := fds()
	line := strings.Repeat("r", 99) + "\n"
	for i := 0; i < 100; i++ {
		// 4096-l = 2096 bytes trigger a rotation: 21 lines each.
		l.w.WriteString(strings.Repeat(line, 21))
		l.waitRead()
	}
	d := filepath.Join(dir, "d")
	waitFor(t, "the rotations to end", func() bool {
		_, e1 := os.Stat(filepath.Join(d, "previous"))
		return e1 != nil && len(zombiesUnder(t, l.p.Pid)) == 0
	})
	if newestArchive(t, d) == "" {
		t.Fatalf("no rotation happened")
	}
	// The last writes may start one more rotation after the wait above:
	// its processor holds fds until it ends, so wait for the count to
	// come back; a leak never does.
	if !poll(time.Now().Add(10*time.Second), func() bool { return fds() == before }) {
		t.Errorf("fds: %d before 100 rotations, %d after", before, fds())
	}
	if r := l.end(); r.Code != 0 || r.Stderr != "" {
		t.Errorf("log: %s %q", r.Status(), r.Stderr)
	}
}

// TestLogPeriodicRotation: R1 makes an archive about every second while
// lines arrive, and none while current stays empty (§12 test 10).
func TestLogPeriodicRotation(t *testing.T) {
	dir := t.TempDir()
	l := startLogger(t, dir, nil, "log", "R1", "./d")
	d := filepath.Join(dir, "d")
	start := time.Now()
	for time.Since(start) < 2500*time.Millisecond {
		l.drip("tick\n")
		time.Sleep(100 * time.Millisecond)
	}
	waitFor(t, "an R1 archive", func() bool { return newestArchive(t, d) != "" })
	// Idle: once current is empty, no more archives. A line read just
	// before a rotation reaches current just after it, and the next R1
	// archives it: let one period pass before taking the newest archive.
	emptyCurrent := func() bool {
		info, err := os.Stat(filepath.Join(d, "current"))
		return err == nil && info.Size() == 0
	}
	waitFor(t, "current to be archived", emptyCurrent)
	time.Sleep(1200 * time.Millisecond) // one R1 period: a quiet window
	waitFor(t, "current to be archived", emptyCurrent)
	last := newestArchive(t, d)
	time.Sleep(1500 * time.Millisecond)
	if got := newestArchive(t, d); got != last {
		t.Errorf("R1 archived an empty current: %s after %s", got, last)
	}
	l.end()
	files := readLogdir(t, d)
	n := 0
	for _, f := range files {
		if strings.HasPrefix(f.Name, "archive") {
			n++
		}
	}
	if n < 2 {
		t.Errorf("%d archives after 2.5 s of lines and R1; want at least 2", n)
	}
}
