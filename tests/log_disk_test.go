package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// smallTmpfs mounts a tmpfs of size bytes on a new directory; skipped
// without mount rights.
func smallTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// vmHWM returns a process's peak resident set in KiB.
func vmHWM(t *testing.T, pid int) int {
	t.Helper()
	return procStatus(t, pid)["VmHWM"]
}

// TestLogManyRotationsBoundedMemory: 8,000 rotations (16 MiB from a file
// into s4096 n2 on a tmpfs) keep RssAnon bounded. The GC is off in log and
// each rotation allocates ~1 kB (paths, the directory listing): a logger
// rotating for weeks must collect them. Without it, this run peaked at
// 10 MB; with it, at ~3.7 MB, flat.
func TestLogManyRotationsBoundedMemory(t *testing.T) {
	dir := fastDir(t)
	in := filepath.Join(t.TempDir(), "in")
	var sb strings.Builder
	for i := 0; sb.Len() < 16<<20; i++ {
		fmt.Fprintf(&sb, "%010d %s\n", i, strings.Repeat("m", 68))
	}
	if err := os.WriteFile(in, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := startIn(t, Opts{StdinFile: f, Dir: dir}, "log", "s4096", "n2", "./d")
	peaks := samplePeaks(p)
	if r := p.Wait(t); r.Code != 0 {
		t.Fatalf("log: %s %q", r.Status(), r.Stderr)
	}
	m := <-peaks
	t.Logf("peak RssAnon %d kB, VmHWM %d kB", m.RssAnon, m.VmHWM)
	if m.RssAnon == 0 || m.RssAnon > 6<<10 {
		t.Errorf("peak RssAnon = %d kB over 8,000 rotations; want <= 6 MiB", m.RssAnon)
	}
	if b := readFile(t, filepath.Join(dir, "d", "current")); len(b) >= 4096 {
		t.Errorf("current holds %d bytes; want a rotation at least every 4096", len(b))
	}
}

// TestLogIdleAfterBurst: 8 MiB at once through the pipe into s4096 n5 (4,000
// rotations, buffers grown to the cap and dropped): once idle, RssAnon
// comes back under 3 MiB. With the GC off, freed pages went back to the
// kernel only if the loop's collections return them (it stayed at 5.5 MB;
// at 8 MB before rotations counted as garbage).
func TestLogIdleAfterBurst(t *testing.T) {
	dir := fastDir(t)
	l := startLogger(t, dir, nil, "log", "s4096", "n5", "./d")
	var sb strings.Builder
	for i := 0; sb.Len() < 8<<20; i++ {
		fmt.Fprintf(&sb, "%010d %s\n", i, strings.Repeat("b", 68))
	}
	if _, err := l.w.WriteString(sb.String()); err != nil {
		t.Fatal(err)
	}
	l.waitRead()
	rss := 0
	if !poll(time.Now().Add(5*time.Second), func() bool { rss = procStatus(t, l.p.Pid)["RssAnon"]; return rss <= 3<<10 }) {
		t.Errorf("RssAnon = %d kB once idle after an 8 MiB burst; want <= 3 MiB", rss)
	}
	t.Logf("RssAnon %d kB once idle", rss)
	if r := l.end(); r.Code != 0 {
		t.Fatalf("log: %s %q", r.Status(), r.Stderr)
	}
}

// TestLogDiskFullBlocking: with -b on a full tmpfs, lines wait; one warning;
// once space returns current equals the input byte for byte (§12 test 14).
func TestLogDiskFullBlocking(t *testing.T) {
	mnt := smallTmpfs(t, 64<<10)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 40000), 0o644); err != nil {
		t.Fatal(err)
	}
	l := startLogger(t, mnt, nil, "log", "-b", "r200", "s1000000", "./d")
	var sent bytes.Buffer
	go func() {
		for i := 0; sent.Len() < 25000; i++ {
			s := fmt.Sprintf("%06d %s\n", i, strings.Repeat("f", i%70))
			if _, err := l.w.WriteString(s); err != nil {
				return
			}
			sent.WriteString(s)
		}
	}()
	cur := filepath.Join(mnt, "d", "current")
	waitFor(t, "the disk-full warning", func() bool { return strings.Contains(l.p.Stderr(), "No space left on device") })
	time.Sleep(500 * time.Millisecond) // retries, still full: no second warning
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "current to hold the 25000 bytes", func() bool {
		info, err := os.Stat(cur)
		return err == nil && info.Size() >= 25000
	})
	res := l.end()
	if got := readFile(t, cur); got != sent.String() {
		t.Errorf("current (%d bytes) differs from the %d bytes sent", len(got), sent.Len())
	}
	want := "log: warning: unable to write to ./d/current: No space left on device\n"
	if res.Code != 0 || res.Stderr != want {
		t.Errorf("log: %s %q; want one warning %q", res.Status(), res.Stderr, want)
	}
}

// TestLogDiskFullBounded: without -b, 4 MiB offered to a full disk: the
// writer blocks once the cap and the pipe are full, memory stays bounded,
// and nothing is lost or doubled once space returns (§12 test 15, smaller).
func TestLogDiskFullBounded(t *testing.T) {
	mnt := smallTmpfs(t, 64<<10)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 60000), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "all")
	l := startLogger(t, mnt, nil, "log", "r100", "n0", "s16384", "?cat >> "+out, "./d")
	var in bytes.Buffer
	for i := 0; in.Len() < 4<<20; i++ {
		fmt.Fprintf(&in, "%07d %s\n", i, strings.Repeat("g", 70))
	}
	done := make(chan error, 1)
	go func() { _, err := l.w.Write(in.Bytes()); done <- err }()
	time.Sleep(time.Second)
	select {
	case err := <-done:
		t.Fatalf("the writer did not block on a full disk: %v", err)
	default:
	}
	if hwm := vmHWM(t, l.p.Pid); hwm > 8<<10 {
		t.Errorf("VmHWM = %d KiB on a full disk; want <= 8 MiB", hwm)
	}
	// Space returns. 64 KiB cannot keep 4 MiB: the processor ships every
	// rotated file out of the tmpfs.
	_ = os.Remove(filler)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	res := l.end()
	if res.Code != 0 {
		t.Fatalf("log: %s %q", res.Status(), res.Stderr)
	}
	if n := strings.Count(res.Stderr, "\n"); n != 1 {
		t.Errorf("log warned %d times: %q; want once", n, res.Stderr)
	}
	if got := readFile(t, out) + readFile(t, filepath.Join(mnt, "d", "current")); got != in.String() {
		t.Errorf("shipped + current = %d bytes; want the %d bytes sent, each once", len(got), in.Len())
	}
}
