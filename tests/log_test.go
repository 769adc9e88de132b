package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeClock is the spec's test stamp (spec/log.md §12).
const fakeClock = "@4000000069c2a8a312345678"

// logger is a running log (or real s6-log) fed through a pipe the test
// holds.
type logger struct {
	t testing.TB
	p *Proc
	w *os.File
}

// startLogger starts argv with a pipe on stdin, in dir.
func startLogger(t testing.TB, dir string, env []string, argv ...string) *logger {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startIn(t, Opts{StdinFile: r, Dir: dir, Env: env}, argv...)
	r.Close()
	t.Cleanup(func() { w.Close() })
	return &logger{t: t, p: p, w: w}
}

// drip writes one line and waits until the logger has read it (FIONREAD
// on the pipe is 0), so that each read holds one line.
func (l *logger) drip(line string) {
	l.t.Helper()
	if _, err := l.w.WriteString(line); err != nil {
		l.t.Fatal(err)
	}
	l.waitRead()
}

func (l *logger) waitRead() {
	l.t.Helper()
	for i := 0; ; i++ {
		n, err := unix.IoctlGetInt(int(l.w.Fd()), unix.TIOCINQ)
		if err != nil {
			l.t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if !l.p.Running() {
			l.t.Fatalf("%q exited: %s", l.p.Argv, l.p.Stderr())
		}
		if i < 100 {
			continue
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// end closes the pipe and waits for the logger's exit.
func (l *logger) end() Result {
	l.t.Helper()
	l.w.Close()
	return l.p.Wait(l.t)
}

// dirFile is one file of a logdir as the comparisons see it.
type dirFile struct {
	Name string // archives: "archive N" in name order
	Mode os.FileMode
	Data string
}

// readLogdir lists dir: archives in name order (their names replaced by
// their rank), then the other files by name.
func readLogdir(t *testing.T, dir string) []dirFile {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var arcs, others []dirFile
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		f := dirFile{Name: e.Name(), Mode: info.Mode(), Data: string(data)}
		if len(e.Name()) == 27 && e.Name()[0] == '@' {
			f.Name = e.Name()[25:]
			arcs = append(arcs, f)
		} else {
			others = append(others, f)
		}
	}
	for i := range arcs {
		arcs[i].Name = fmt.Sprintf("archive %d (%s)", i, arcs[i].Name)
	}
	return append(arcs, others...)
}

func diffLogdirs(t *testing.T, what string, got, want []dirFile) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d files, want %d (as real s6-log): got %v, want %v", what, len(got), len(want), names(got), names(want))
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Mode != w.Mode || g.Data != w.Data {
			t.Errorf("%s: file %d = %s %v %d bytes %q...; want %s %v %d bytes %q... (as real s6-log)",
				what, i, g.Name, g.Mode, len(g.Data), head(g.Data), w.Name, w.Mode, len(w.Data), head(w.Data))
		}
	}
}

func names(fs []dirFile) []string {
	var l []string
	for _, f := range fs {
		l = append(l, f.Name)
	}
	return l
}

func head(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return s
}

// fastDir is a directory where fsync is cheap: a tmpfs of its own when the
// test may mount one, else a temporary directory.
func fastDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64m"); err != nil {
		return dir
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// dripLines are the lines of the interop runs: varied lengths.
func dripLines(n int) []string {
	l := make([]string, n)
	for i := range l {
		l[i] = fmt.Sprintf("line %05d %s\n", i, strings.Repeat("abcdefghij", i%13))
	}
	return l
}

// settled waits until the line just dripped into logger l is on disk: at
// the end of current, or in a finished rotation (current empty, more
// archives than before, no previous or processed left). Then at most one
// line waits in a logger during a rotation, and real s6-log (which checks
// the size after each write) and log (which cuts at line ends) rotate at
// the same line.
func settled(t *testing.T, d, line string, before string) bool {
	b, err := os.ReadFile(filepath.Join(d, "current"))
	if err != nil {
		return false
	}
	if len(b) > 0 {
		return strings.HasSuffix(string(b), line)
	}
	for _, f := range []string{"previous", "processed"} {
		if _, err := os.Stat(filepath.Join(d, f)); err == nil {
			return false
		}
	}
	return newestArchive(t, d) > before
}

// newestArchive returns the greatest archive name in d, "" if none.
func newestArchive(t *testing.T, d string) string {
	ents, err := os.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	n := ""
	for _, e := range ents {
		if len(e.Name()) == 27 && e.Name()[0] == '@' {
			n = max(n, e.Name())
		}
	}
	return n
}

// TestLogInteropLogdir drips the same lines through real s6-log and log
// with rotation scripts: the logdirs hold the same archives (contents in
// name order, modes), current and state (§12 test 7).
func TestLogInteropLogdir(t *testing.T) {
	real := requireS6(t, "s6-log")[0]
	lines := dripLines(600)
	for _, tt := range []struct {
		name   string
		script []string
	}{
		{"n5 s4096", []string{"n5", "s4096", "./d"}},
		{"n3 S20000 s4096 l0", []string{"n3", "S20000", "s4096", "l0", "./d"}},
		{"s4096 gzip", []string{"s4096", "?gzip -n", "./d"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ls [2]*logger
			var dirs [2]string
			for i, bin := range []string{real, "log"} {
				dir := fastDir(t)
				dirs[i] = filepath.Join(dir, "d")
				ls[i] = startLogger(t, dir, []string{"GOTOOLS_FAKE_CLOCK=" + fakeClock}, append([]string{bin}, tt.script...)...)
			}
			for _, s := range lines {
				var before [2]string
				for i, l := range ls {
					if _, err := os.Stat(dirs[i]); err == nil {
						before[i] = newestArchive(t, dirs[i])
					}
					if _, err := l.w.WriteString(s); err != nil {
						t.Fatal(err)
					}
				}
				for i, l := range ls {
					l.waitRead()
					for !settled(t, dirs[i], s, before[i]) {
						if !l.p.Running() {
							t.Fatalf("%q exited: %s", l.p.Argv, l.p.Stderr())
						}
						time.Sleep(100 * time.Microsecond)
					}
				}
			}
			for i, l := range ls {
				if r := l.end(); r.Code != 0 || r.Stderr != "" {
					t.Fatalf("%q: %s, stderr %q", l.p.Argv, r.Status(), r.Stderr)
				}
				_ = i
			}
			diffLogdirs(t, tt.name, readLogdir(t, dirs[1]), readLogdir(t, dirs[0]))
		})
	}
}

// TestLogInteropStdout runs scripts of selections and actions through real
// s6-log and log on one input: stdout, stderr and status files are
// byte-identical (§12 test 2).
func TestLogInteropStdout(t *testing.T) {
	real := requireS6(t, "s6-log")[0]
	var in strings.Builder
	words := []string{"fatal: disk full", "warning: low", "STAT up", "info: ok", "abcdefghijkl", "a", "", "ab", "xaby"}
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&in, "%s %d\n", words[i%len(words)], i)
	}
	for _, script := range [][]string{
		{"-", "+a", "1"},
		{"+a", "1"},
		{"--", "-a", "1", "f", "2"},
		{"-", "+a", "-ab", "1", "f", "=st"},
		{"E5", "2"},
		{"E0", "2"},
		{"E20", "-", "+fatal:", "2", "-", "+^STAT", "=status", "f", "1"},
		{"pX", "1", "p", "1"},
		{"p[x]", "-.*", "+[0-9]$", "1"},
		{"^20", "=st"},
		{"^5", "=st"},
		{"^0", "=st"},
		{"-", "+^[[:upper:]]+", "1", "f", "pother", "1"},
		{"+x", "1"},
		{"-", "+^a", "1", "+b", "1"},
		{"-", "1"},
		{"f", "1", "f", "1"},
		{"--", "-[0-9]{2}$", "1", "f", "pd", "1"},
		{"-", "+^(warning|info):", "p>", "1", "E3", "2"},
		{"-", "+\\bab\\b", "1", "-", "+y$", "=st"},
	} {
		t.Run(strings.Join(script, " "), func(t *testing.T) {
			t.Parallel()
			var res [2]Result
			var st [2]string
			for i, bin := range []string{real, "log"} {
				dir := t.TempDir()
				res[i] = runIn(t, Opts{Stdin: in.String(), Dir: dir}, append([]string{bin}, script...)...)
				res[i].Stderr = strings.ReplaceAll(res[i].Stderr, "s6-log: ", "NAME: ")
				res[i].Stderr = strings.ReplaceAll(res[i].Stderr, "log: ", "NAME: ")
				for _, f := range []string{"st", "status"} {
					if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
						info, _ := os.Stat(filepath.Join(dir, f))
						st[i] += fmt.Sprintf("%s %v %q\n", f, info.Mode(), b)
					}
				}
				if ents, _ := os.ReadDir(dir); len(ents) > 0 {
					for _, e := range ents {
						if strings.HasSuffix(e.Name(), ".new") {
							t.Errorf("%s %q left %s", bin, script, e.Name())
						}
					}
				}
			}
			if res[1].Code != res[0].Code || res[1].Stdout != res[0].Stdout || res[1].Stderr != res[0].Stderr || st[1] != st[0] {
				t.Errorf("log %q = %s, stdout %q, stderr %q, status %q;\nreal s6-log: %s, stdout %q, stderr %q, status %q",
					script, res[1].Status(), head(res[1].Stdout), res[1].Stderr, st[1], res[0].Status(), head(res[0].Stdout), res[0].Stderr, st[0])
			}
		})
	}
}

// TestLogFreshLogdir checks a new logdir's files and modes, while running
// and after each way of ending (§12 test 6).
func TestLogFreshLogdir(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  func(l *logger)
	}{
		{"EOF", func(l *logger) { l.w.Close() }},
		{"TERM", func(l *logger) { l.p.Signal(unix.SIGTERM) }},
		{"HUP", func(l *logger) { l.p.Signal(unix.SIGHUP) }},
		{"INT", func(l *logger) { l.p.Signal(unix.SIGINT) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := startLogger(t, dir, nil, "log", "./d")
			l.drip("hello\n")
			d := filepath.Join(dir, "d")
			waitFor(t, "current to hold the line", func() bool {
				b, _ := os.ReadFile(filepath.Join(d, "current"))
				return string(b) == "hello\n"
			})
			want := map[string]os.FileMode{"current": 0o644, "lock": 0o644, "state": 0o644}
			checkModes(t, d, want)
			if info, err := os.Stat(d); err != nil || info.Mode().Perm() != 0o700 {
				t.Errorf("logdir mode = %v, %v; want 0700", info.Mode(), err)
			}
			tt.end(l)
			if r := l.p.Wait(t); r.Code != 0 {
				t.Fatalf("log: %s, stderr %q", r.Status(), r.Stderr)
			}
			want["current"] = 0o744
			checkModes(t, d, want)
		})
	}
}

func checkModes(t *testing.T, dir string, want map[string]os.FileMode) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]os.FileMode{}
	for _, e := range ents {
		info, _ := e.Info()
		got[e.Name()] = info.Mode().Perm()
	}
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	}) {
		if got[n] != want[n] {
			t.Errorf("%s mode = %v; want %v", n, got[n], want[n])
		}
	}
	if len(got) != len(want) {
		t.Errorf("logdir holds %v; want %v", got, want)
	}
}

// TestLogFakeClockGolden checks labels, ISO times and prefixes under the
// fake clock in three zones (§12 test 4).
func TestLogFakeClockGolden(t *testing.T) {
	for _, tt := range []struct{ tz, want string }{
		{"UTC", "@4000000069c2a8a312345678 2026-03-24 15:06:38.305419896  X a\n"},
		{"Asia/Kolkata", "@4000000069c2a8a312345678 2026-03-24 20:36:38.305419896  X a\n"},
		{"CET-1CEST,M3.5.0,M10.5.0/3", "@4000000069c2a8a312345678 2026-03-24 16:06:38.305419896  X a\n"},
	} {
		r := runIn(t, Opts{Stdin: "a\n", Env: []string{"TZ=" + tt.tz, "GOTOOLS_FAKE_CLOCK=" + fakeClock}}, "log", "t", "T", "pX", "1")
		if r.Code != 0 || r.Stdout != tt.want {
			t.Errorf("TZ=%s log t T pX 1 = %s %q; want %q", tt.tz, r.Status(), r.Stdout, tt.want)
		}
	}
	r := runIn(t, Opts{Env: []string{"GOTOOLS_FAKE_CLOCK=@12"}}, "log", "1")
	if r.Code != 100 {
		t.Errorf("log with a bad GOTOOLS_FAKE_CLOCK = %s; want exit 100", r.Status())
	}
}

// TestLogLines checks line ends and the line limit (§12 test 5).
func TestLogLines(t *testing.T) {
	long := strings.Repeat("y", 100)
	for _, tt := range []struct {
		name string
		args []string
		in   string
		want string
	}{
		{"NUL ends a line", []string{"1"}, "ab\x00cd\n", "ab\ncd\n"},
		{"-l 48 cuts", []string{"-l", "48", "1"}, long + "\n", long[:48] + "\n" + long[:48] + "\n" + long[:4] + "\n"},
		{"48 bytes then newline", []string{"-l", "48", "1"}, long[:48] + "\n", long[:48] + "\n"},
		{"-l 10 acts as 48", []string{"-l10", "1"}, long + "\n", long[:48] + "\n" + long[:48] + "\n" + long[:4] + "\n"},
		{"-l 0 keeps a long line", []string{"-l", "0", "1"}, strings.Repeat("z", 1<<20) + "\n", strings.Repeat("z", 1<<20) + "\n"},
		{"partial last line", []string{"1"}, "a\npartial", "a\npartial\n"},
		{"prefix on every cut", []string{"-l", "48", "pP", "1"}, long[:60] + "\n", "P " + long[:48] + "\nP " + long[:12] + "\n"},
	} {
		r := runIn(t, Opts{Stdin: tt.in}, append([]string{"log"}, tt.args...)...)
		if r.Code != 0 || r.Stdout != tt.want {
			t.Errorf("%s: log %q = %s %q...; want %q...", tt.name, tt.args, r.Status(), head(r.Stdout), head(tt.want))
		}
		if len(r.Stdout) != len(tt.want) {
			t.Errorf("%s: %d bytes; want %d", tt.name, len(r.Stdout), len(tt.want))
		}
	}
}

// TestLogSizeRotation feeds 1 MB at once into s4096: every archive holds
// between s-l and s-l+one record, names are consecutive nanoseconds under
// the fake clock, and archives plus current equal the input (§12 test 8).
func TestLogSizeRotation(t *testing.T) {
	dir := fastDir(t)
	var in bytes.Buffer
	longest := 0
	for i := 0; in.Len() < 1<<20; i++ {
		s := fmt.Sprintf("%d %s\n", i, strings.Repeat("q", i%97))
		longest = max(longest, len(s))
		in.WriteString(s)
	}
	r := runIn(t, Opts{Stdin: in.String(), Dir: dir, Env: []string{"GOTOOLS_FAKE_CLOCK=" + fakeClock}}, "log", "n1000", "s4096", "./d")
	if r.Code != 0 {
		t.Fatalf("log: %s %q", r.Status(), r.Stderr)
	}
	files := readLogdir(t, filepath.Join(dir, "d"))
	var all strings.Builder
	ents, _ := os.ReadDir(filepath.Join(dir, "d"))
	var arcNames []string
	for _, e := range ents {
		if e.Name()[0] == '@' {
			arcNames = append(arcNames, e.Name())
		}
	}
	for i, f := range files {
		if strings.HasPrefix(f.Name, "archive") {
			if len(f.Data) < 2096 || len(f.Data) >= 2096+longest {
				t.Errorf("%s: %d bytes; want [2096, %d)", f.Name, len(f.Data), 2096+longest)
			}
			want := fmt.Sprintf("@4000000069c2a8a3%08x.s", 0x12345678+i)
			if arcNames[i] != want {
				t.Errorf("archive %d is %s; want %s", i, arcNames[i], want)
			}
		}
		if f.Name != "lock" && f.Name != "state" {
			all.WriteString(f.Data)
		}
	}
	if all.String() != in.String() {
		t.Errorf("archives + current: %d bytes, differ from the %d bytes of input", all.Len(), in.Len())
	}
}

// TestLogInteropResume: log and real s6-log take turns on one logdir. A
// clean stop leaves nothing to recover (no .u); after kill -9 the next
// logger, of either kind, archives current as one .u (§12 test 7).
func TestLogInteropResume(t *testing.T) {
	real := requireS6(t, "s6-log")[0]
	for _, pair := range [][2]string{{real, "log"}, {"log", real}} {
		dir := t.TempDir()
		d := filepath.Join(dir, "d")
		// A clean stop, then the other one resumes.
		if r := runIn(t, Opts{Stdin: "one\n", Dir: dir}, pair[0], "./d"); r.Code != 0 {
			t.Fatalf("%s: %s %q", pair[0], r.Status(), r.Stderr)
		}
		if r := runIn(t, Opts{Stdin: "two\n", Dir: dir}, pair[1], "./d"); r.Code != 0 {
			t.Fatalf("%s: %s %q", pair[1], r.Status(), r.Stderr)
		}
		if got := readFile(t, filepath.Join(d, "current")); got != "one\ntwo\n" || newestArchive(t, d) != "" {
			t.Errorf("%s after %s: current %q, archive %q; want both lines, no archive", pair[1], pair[0], got, newestArchive(t, d))
		}
		// kill -9, then the other one recovers.
		l := startLogger(t, dir, nil, pair[0], "./d")
		l.drip("three\n")
		waitFor(t, "three in current", func() bool {
			b, _ := os.ReadFile(filepath.Join(d, "current"))
			return strings.HasSuffix(string(b), "three\n")
		})
		l.p.Signal(unix.SIGKILL)
		l.p.Wait(t)
		if r := runIn(t, Opts{Stdin: "four\n", Dir: dir}, pair[1], "./d"); r.Code != 0 {
			t.Fatalf("%s: %s %q", pair[1], r.Status(), r.Stderr)
		}
		files := readLogdir(t, d)
		if len(files) != 4 || files[0].Name != "archive 0 (.u)" || files[0].Data != "one\ntwo\nthree\n" ||
			files[1].Name != "current" || files[1].Data != "four\n" {
			t.Errorf("%s after kill -9 of %s: %v; want one .u with the first three lines, current four", pair[1], pair[0], files)
		}
	}
}
