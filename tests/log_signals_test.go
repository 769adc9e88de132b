package tests

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipeLogger starts argv on the read end of a pipe that the test keeps
// both ends of, so that a second logger can read what the first left.
func pipeLogger(t *testing.T, dir string, r *os.File, argv ...string) *Proc {
	t.Helper()
	return startIn(t, Opts{StdinFile: r, Dir: dir}, argv...)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLogTermPartialLine: TERM with a partial line waits for its end; the
// bytes after it stay in the pipe for the next logger (§12 tests 19, 20).
func TestLogTermPartialLine(t *testing.T) {
	dir := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	p := pipeLogger(t, dir, r, "log", "./d")
	l := &logger{t: t, p: p, w: w}
	l.drip("one\n")
	l.drip("two")
	p.Signal(unix.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	if !p.Running() {
		t.Fatalf("log exited with a partial line pending")
	}
	w.WriteString(" end\nthree\n")
	if res := p.Wait(t); res.Code != 0 {
		t.Fatalf("log: %s %q", res.Status(), res.Stderr)
	}
	d := filepath.Join(dir, "d")
	if got := readFile(t, filepath.Join(d, "current")); got != "one\ntwo end\n" {
		t.Errorf("current = %q; want %q", got, "one\ntwo end\n")
	}
	// The next logger gets "three".
	p2 := pipeLogger(t, dir, r, "log", "./d")
	w.Close()
	if res := p2.Wait(t); res.Code != 0 {
		t.Fatalf("second log: %s %q", res.Status(), res.Stderr)
	}
	if got := readFile(t, filepath.Join(d, "current")); got != "one\ntwo end\nthree\n" {
		t.Errorf("current after the second logger = %q", got)
	}
}

// TestLogLastLineTimeout: -t 300 writes a partial line with a newline no
// sooner than 300 ms after TERM.
func TestLogLastLineTimeout(t *testing.T) {
	dir := t.TempDir()
	l := startLogger(t, dir, nil, "log", "-t", "300", "./d")
	l.drip("part")
	start := time.Now()
	l.p.Signal(unix.SIGTERM)
	res := l.p.Wait(t)
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("log exited %v after TERM; want >= 300ms", el)
	}
	if res.Code != 0 {
		t.Fatalf("log: %s %q", res.Status(), res.Stderr)
	}
	if got := readFile(t, filepath.Join(dir, "d", "current")); got != "part\n" {
		t.Errorf("current = %q; want %q", got, "part\n")
	}
}

// TestLogTermNoPartial: TERM without a partial line exits at once, leaving
// unread bytes; -p ignores TERM, USR1 and QUIT, but not HUP or INT (§12
// test 20).
func TestLogTermNoPartial(t *testing.T) {
	dir := t.TempDir()
	l := startLogger(t, dir, nil, "log", "./d")
	l.drip("a\n")
	l.p.Signal(unix.SIGTERM)
	if res := l.p.Wait(t); res.Code != 0 {
		t.Fatalf("log: %s %q", res.Status(), res.Stderr)
	}
	for _, s := range []unix.Signal{unix.SIGHUP, unix.SIGINT} {
		dir := t.TempDir()
		l := startLogger(t, dir, nil, "log", "-p", "./d")
		l.drip("a\n")
		for _, ign := range []unix.Signal{unix.SIGTERM, unix.SIGUSR1, unix.SIGQUIT, unix.SIGUSR2} {
			l.p.Signal(ign)
		}
		time.Sleep(200 * time.Millisecond)
		if !l.p.Running() {
			t.Fatalf("log -p died of TERM, USR1, USR2 or QUIT: %s", l.p.Stderr())
		}
		l.drip("b\n")
		l.p.Signal(s)
		if res := l.p.Wait(t); res.Code != 0 {
			t.Fatalf("log -p after %s: %s %q", unix.SignalName(s), res.Status(), res.Stderr)
		}
		info, err := os.Stat(filepath.Join(dir, "d", "current"))
		if err != nil || info.Mode().Perm() != 0o744 {
			t.Errorf("current after %s: %v %v; want 0744", unix.SignalName(s), info.Mode(), err)
		}
		if got := readFile(t, filepath.Join(dir, "d", "current")); got != "a\nb\n" {
			t.Errorf("current = %q", got)
		}
	}
}

// TestLogReadiness: -d 3 writes a newline and closes fd 3 once the logdir
// is locked and recovered (§12 test 22).
func TestLogReadiness(t *testing.T) {
	dir := t.TempDir()
	nr, nw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer nr.Close()
	r, w, _ := os.Pipe()
	defer w.Close()
	p := startIn(t, Opts{StdinFile: r, Dir: dir, ExtraFiles: []*os.File{nw}}, "log", "-d3", "./d")
	r.Close()
	nw.Close()
	b, err := io.ReadAll(nr)
	if err != nil || string(b) != "\n" {
		t.Fatalf("fd 3 gave %q, %v; want a newline then EOF", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "d", "state")); err != nil {
		t.Errorf("state missing at readiness: %v", err)
	}
	res := runIn(t, Opts{Dir: dir}, "log", "./d")
	if res.Code != 111 || res.Stderr != "log: fatal: unable to lock ./d/lock: Device or resource busy\n" {
		t.Errorf("second log on ./d = %s %q", res.Status(), res.Stderr)
	}
	w.Close()
	if res := p.Wait(t); res.Code != 0 {
		t.Errorf("log: %s %q", res.Status(), res.Stderr)
	}
}

// TestLogLockInterop: real s6-log and log exclude each other on a logdir,
// both ways (§12 test 13).
func TestLogLockInterop(t *testing.T) {
	real := requireS6(t, "s6-log")[0]
	for _, tt := range []struct{ holder, second, want string }{
		{real, "log", "log: fatal: unable to lock ./d/lock: Device or resource busy\n"},
		{"log", real, "s6-log: fatal: unable to lock ./d/lock: Device or resource busy\n"},
	} {
		dir := t.TempDir()
		nr, nw, _ := os.Pipe()
		r, w, _ := os.Pipe()
		p := startIn(t, Opts{StdinFile: r, Dir: dir, ExtraFiles: []*os.File{nw}}, tt.holder, "-d3", "./d")
		r.Close()
		nw.Close()
		io.ReadAll(nr)
		nr.Close()
		res := runIn(t, Opts{Dir: dir}, tt.second, "./d")
		if res.Code != 111 || res.Stderr != tt.want {
			t.Errorf("%s on a logdir held by %s = %s %q; want 111 %q", tt.second, tt.holder, res.Status(), res.Stderr, tt.want)
		}
		w.Close()
		p.Wait(t)
	}
}

// TestLogStdoutClosed: a closed reader of stdout gives the closing warning
// once; the logdir goes on.
func TestLogStdoutClosed(t *testing.T) {
	dir := t.TempDir()
	or, ow, _ := os.Pipe()
	or.Close()
	r, w, _ := os.Pipe()
	p := startIn(t, Opts{StdinFile: r, Dir: dir, ExtraFiles: []*os.File{ow}}, "sh", "-c", `exec log 1 ./d >&3 3>&-`)
	r.Close()
	ow.Close()
	w.WriteString("a\nb\n")
	w.Close()
	res := p.Wait(t)
	want := "log: warning: unable to write to stdout, closing the stream - error was: Broken pipe\n"
	if res.Code != 0 || res.Stderr != want {
		t.Errorf("log 1 ./d with stdout closed = %s %q; want %q", res.Status(), res.Stderr, want)
	}
	if got := readFile(t, filepath.Join(dir, "d", "current")); got != "a\nb\n" {
		t.Errorf("current = %q", got)
	}
}

// TestLogStdoutBackpressure: a 1 action on a pipe its reader leaves full
// waits for room (EAGAIN, then POLLOUT) with the rest pending, while the
// logdir keeps up; once read, stdout holds every line once, in order.
func TestLogStdoutBackpressure(t *testing.T) {
	dir := t.TempDir()
	or, ow, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer or.Close()
	var in strings.Builder
	for i := 0; in.Len() < 512<<10; i++ {
		fmt.Fprintf(&in, "%07d %s\n", i, strings.Repeat("o", 40))
	}
	p := startIn(t, Opts{Stdin: in.String(), Dir: dir, ExtraFiles: []*os.File{ow}}, "sh", "-c", `exec log 1 s16777215 ./d >&3 3>&-`)
	ow.Close()
	// The pipe is full and current holds everything: log has met EAGAIN
	// and waits for POLLOUT with the rest of stdout pending.
	cur := filepath.Join(dir, "d", "current")
	waitFor(t, "a full stdout pipe and a full current", func() bool {
		n, _ := unix.IoctlGetInt(int(or.Fd()), unix.TIOCINQ)
		st, err := os.Stat(cur)
		return n >= 4096 && err == nil && st.Size() == int64(in.Len())
	})
	if !p.Running() {
		t.Fatalf("log exited before its stdout was read: %q", p.Stderr())
	}
	out, err := io.ReadAll(or)
	if err != nil {
		t.Fatal(err)
	}
	res := p.Wait(t)
	if res.Code != 0 || res.Stderr != "" {
		t.Errorf("log 1 s16777215 ./d = %s %q", res.Status(), res.Stderr)
	}
	if string(out) != in.String() {
		t.Errorf("stdout: %d bytes; want the %d bytes sent, in order", len(out), in.Len())
	}
}

// TestLogKill9Recovery: a logger killed while writing leaves current; the
// next one archives it as one .u holding every byte (§12 test 11).
func TestLogKill9Recovery(t *testing.T) {
	dir := t.TempDir()
	l := startLogger(t, dir, nil, "log", "./d")
	var sent strings.Builder
	for i := 0; i < 50; i++ {
		s := strings.Repeat("k", i) + "\n"
		sent.WriteString(s)
		l.drip(s)
	}
	d := filepath.Join(dir, "d")
	waitFor(t, "every line in current", func() bool { b, _ := os.ReadFile(filepath.Join(d, "current")); return len(b) == sent.Len() })
	l.p.Signal(unix.SIGKILL)
	l.p.Wait(t)
	res := runIn(t, Opts{Dir: dir}, "log", "./d")
	if res.Code != 0 {
		t.Fatalf("restart: %s %q", res.Status(), res.Stderr)
	}
	files := readLogdir(t, d)
	if len(files) != 4 || files[0].Name != "archive 0 (.u)" || files[0].Data != sent.String() || files[0].Mode.Perm() != 0o644 {
		t.Errorf("after kill -9 and a restart: %v; want one .u 0644 with every line", names(files))
	}
}

// TestLogKill9DuringProcessor: kill -9 during a processor run with -b; the
// restart archives previous as .u, drops processed, empties state; the
// files plus what the new logger reads hold every line once (§12 test 11).
func TestLogKill9DuringProcessor(t *testing.T) {
	dir := t.TempDir()
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	p := pipeLogger(t, dir, r, "log", "-b", "s4096", "?sleep 5; cat", "./d")
	var sent strings.Builder
	d := filepath.Join(dir, "d")
	// The processor's phase has begun once previous is 0744 (rotation
	// step 4): a kill between the rename and the chmod would rightly leave
	// a 0644 .u, and this test is about a kill during the processor.
	rotating := func() bool {
		st, err := os.Stat(filepath.Join(d, "previous"))
		return err == nil && st.Mode().Perm() == 0o744
	}
	for i := 0; !rotating(); i++ {
		s := strings.Repeat("p", 60) + " " + string(rune('a'+i%26)) + "\n"
		sent.WriteString(s)
		w.WriteString(s)
		// Until the logger read it, or stopped reading for the rotation.
		for !rotating() {
			n, _ := unix.IoctlGetInt(int(w.Fd()), unix.TIOCINQ)
			if n == 0 {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	for j := 0; j < 5; j++ {
		s := "after " + string(rune('0'+j)) + "\n"
		sent.WriteString(s)
		w.WriteString(s)
	}
	// Once the processor runs: a child between fork and exec still holds
	// the lock's open file description, and the restart would find the
	// lock busy (rightly, it exits 111 and its supervisor retries).
	waitFor(t, "the processor to run", func() bool {
		for _, c := range children(t, p.Pid) {
			if c.Comm == "sh" || c.Comm == "sleep" {
				return true
			}
		}
		return false
	})
	p.Signal(unix.SIGKILL)
	p.Wait(t)
	p2 := pipeLogger(t, dir, r, "log", "./d")
	w.Close()
	if res := p2.Wait(t); res.Code != 0 {
		t.Fatalf("restart: %s %q", res.Status(), res.Stderr)
	}
	checkNoProcessorFiles(t, d)
	if got := readFile(t, filepath.Join(d, "state")); got != "" {
		t.Errorf("state = %q; want empty", got)
	}
	files := readLogdir(t, d)
	var all strings.Builder
	for _, f := range files {
		if strings.HasPrefix(f.Name, "archive") || f.Name == "current" {
			all.WriteString(f.Data)
		}
	}
	if all.String() != sent.String() {
		t.Errorf("archives + current = %d bytes; want the %d bytes sent, once, in order", all.Len(), sent.Len())
	}
	if len(files) < 2 || files[0].Mode.Perm() != 0o744 || !strings.HasSuffix(files[0].Name, "(.u)") {
		t.Errorf("logdir after recovery: %v; want previous archived as .u 0744 first", files)
	}
}

// TestLogTermDuringProcessor: TERM while a processor runs: log exits 0
// once it is done, with its archive made (§12 test 21).
func TestLogTermDuringProcessor(t *testing.T) {
	dir := t.TempDir()
	l := startLogger(t, dir, nil, "log", "?sleep 2; cat", "./d")
	l.drip("a\n")
	l.p.Signal(unix.SIGALRM)
	d := filepath.Join(dir, "d")
	waitFor(t, "the processor to start", func() bool { _, err := os.Stat(filepath.Join(d, "previous")); return err == nil })
	start := time.Now()
	l.p.Signal(unix.SIGTERM)
	res := l.p.Wait(t)
	if res.Code != 0 || res.Stderr != "" {
		t.Fatalf("log: %s %q", res.Status(), res.Stderr)
	}
	if el := time.Since(start); el < 500*time.Millisecond {
		t.Errorf("log exited %v after TERM, before its processor ended", el)
	}
	checkNoProcessorFiles(t, d)
	if a := newestArchive(t, d); a == "" || readFile(t, filepath.Join(d, a)) != "a\n" {
		t.Errorf("no archive of the processor's output")
	}
}

// TestLogRecoversProcessed: a processed file with its x bit (the processor
// succeeded before a crash) is archived as .s and previous removed; a
// current without x becomes .u; state is emptied (§5.2, §12 test 11).
func TestLogRecoversProcessed(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "d")
	os.Mkdir(d, 0o700)
	for _, f := range []struct {
		name, data string
		mode       os.FileMode
	}{
		{"processed", "done\n", 0o744},
		{"previous", "raw\n", 0o744},
		{"current", "cur\n", 0o644},
		{"state", "old state\n", 0o644},
		{"newstate", "half\n", 0o644},
	} {
		if err := writeExecutable(filepath.Join(d, f.name), []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(d, f.name), f.mode)
	}
	if r := runIn(t, Opts{Dir: dir, Env: []string{"GOTOOLS_FAKE_CLOCK=" + fakeClock}}, "log", "./d"); r.Code != 0 {
		t.Fatalf("log: %s %q", r.Status(), r.Stderr)
	}
	files := readLogdir(t, d)
	want := []dirFile{
		{"archive 0 (.s)", 0o744, "done\n"},
		{"archive 1 (.u)", 0o644, "cur\n"},
		{"current", 0o744, ""},
		{"lock", 0o644, ""},
		{"state", 0o644, ""},
	}
	if len(files) != len(want) {
		t.Fatalf("logdir after recovery: %v; want %v", names(files), names(want))
	}
	for i := range want {
		if files[i].Name != want[i].Name || files[i].Mode.Perm() != want[i].Mode || files[i].Data != want[i].Data {
			t.Errorf("file %d = %s %v %q; want %s %v %q", i, files[i].Name, files[i].Mode, files[i].Data, want[i].Name, want[i].Mode, want[i].Data)
		}
	}
}
