//go:build linux

package ftrig

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var nameRE = regexp.MustCompile(`^ftrig1:@[0-9a-f]{24}:[A-Za-z0-9]{6}$`)

// entries returns the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func subscribe(t *testing.T, dir string) *Listener {
	t.Helper()
	l, err := Subscribe(dir)
	if err != nil {
		t.Fatalf("Subscribe(%s) = %v", dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// read reads what l got within a second.
func read(t *testing.T, l *Listener) string {
	t.Helper()
	b := make([]byte, 64)
	n, err := l.Read(b, time.Now().Add(time.Second))
	if err != nil {
		t.Fatalf("Read = %q, %v", b[:n], err)
	}
	return string(b[:n])
}

func TestSubscribeName(t *testing.T) {
	dir := t.TempDir()
	l := subscribe(t, dir)
	name := filepath.Base(l.Path())
	if NameLen != 39 || len(name) != 39 || !nameRE.MatchString(name) || !IsListenerName(name) {
		t.Errorf("Subscribe: name %q (%d bytes); want 39 bytes matching %s", name, len(name), nameRE)
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != name {
		t.Errorf("fifodir holds %q; want only %q", got, name)
	}
	var st unix.Stat_t
	if err := unix.Stat(l.Path(), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO || st.Mode&0o777 != 0o600 {
		t.Errorf("Stat(%s) = mode %o, %v; want a FIFO 0600", l.Path(), st.Mode, err)
	}
	// Two listeners never share a FIFO.
	if l2 := subscribe(t, dir); l2.Path() == l.Path() {
		t.Errorf("two listeners got the same FIFO %s", l.Path())
	}
}

func TestIsListenerName(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"ftrig1:@400000006000000000000000:abcdef", true},
		{"ftrig1:@400000006000000000000000:abcde", false},
		{".ftrig1:@400000006000000000000000:abcdef", false},
		{"ftrig1:x400000006000000000000000:abcdef", false},
		{"ftrig2:@400000006000000000000000:abcdef", false},
		{"", false},
	} {
		if got := IsListenerName(tt.name); got != tt.want {
			t.Errorf("IsListenerName(%q) = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestNotifyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	a, b := subscribe(t, dir), subscribe(t, dir)
	if n, err := Notify(dir, []byte("u")); n != 2 || err != nil {
		t.Fatalf("Notify(u) = %d, %v; want 2, nil", n, err)
	}
	if n, err := Notify(dir, []byte("dD")); n != 2 || err != nil {
		t.Fatalf("Notify(dD) = %d, %v; want 2, nil", n, err)
	}
	for _, l := range []*Listener{a, b} {
		if got := read(t, l); got != "udD" {
			t.Errorf("listener %s read %q; want %q", l.Path(), got, "udD")
		}
	}
}

func TestReadDeadline(t *testing.T) {
	l := subscribe(t, t.TempDir())
	start := time.Now()
	n, err := l.Read(make([]byte, 8), start.Add(50*time.Millisecond))
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read with no event = %d, %v; want 0, deadline exceeded", n, err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("Read gave up after %v; want >= 50ms", d)
	}
}

func TestCloseUnlinks(t *testing.T) {
	dir := t.TempDir()
	l := subscribe(t, dir)
	if err := l.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("after Close the fifodir holds %q; want nothing", got)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
	if _, err := l.Read(make([]byte, 8), time.Time{}); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close = %v; want os.ErrClosed", err)
	}
}

// deadFIFO makes a listener FIFO that nobody reads, as a killed listener
// leaves behind.
func deadFIFO(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "ftrig1:@400000006000000000000000:deadAA")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNotifyUnlinksDeadListener(t *testing.T) {
	dir := t.TempDir()
	dead := deadFIFO(t, dir)
	// Names that are not listeners' are left alone, reader or not.
	other := filepath.Join(dir, "ftrig1:@short")
	if err := unix.Mkfifo(other, 0o600); err != nil {
		t.Fatal(err)
	}
	live := subscribe(t, dir)
	if n, err := Notify(dir, []byte("s")); n != 1 || err != nil {
		t.Errorf("Notify = %d, %v; want 1, nil", n, err)
	}
	if _, err := os.Lstat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Lstat(%s) = %v; want the dead listener's FIFO unlinked", dead, err)
	}
	if _, err := os.Lstat(other); err != nil {
		t.Errorf("Lstat(%s) = %v; want it kept", other, err)
	}
	if got := read(t, live); got != "s" {
		t.Errorf("live listener read %q; want %q", got, "s")
	}
}

func TestClean(t *testing.T) {
	dir := t.TempDir()
	dead := deadFIFO(t, dir)
	live := subscribe(t, dir)
	if err := Clean(dir); err != nil {
		t.Fatalf("Clean = %v", err)
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != filepath.Base(live.Path()) {
		t.Errorf("after Clean the fifodir holds %q; want only %s (not %s)", got, live.Path(), dead)
	}
}

// TestNotifyNeverBlocks fills a listener's pipe: the next Notify must
// return at once, drop the event for it, and keep its FIFO.
func TestNotifyNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	l := subscribe(t, dir)
	fd, err := unix.Open(l.Path(), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	chunk := make([]byte, 4096)
	for {
		if _, err := unix.Write(fd, chunk); errors.Is(err, unix.EAGAIN) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// Fill the last bytes, so that not even one event byte fits.
	for {
		if _, err := unix.Write(fd, chunk[:1]); errors.Is(err, unix.EAGAIN) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	var n int
	go func() {
		n, err = Notify(dir, []byte("u"))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Notify blocked on a full FIFO")
	}
	if n != 0 || err != nil {
		t.Errorf("Notify on a full FIFO = %d, %v; want 0, nil", n, err)
	}
	if _, err := os.Lstat(l.Path()); err != nil {
		t.Errorf("Lstat(%s) = %v; want a full listener's FIFO kept", l.Path(), err)
	}
}

func TestMkFifodir(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "event")
	old := unix.Umask(0o077)
	created, err := MkFifodir(dir)
	unix.Umask(old)
	if !created || err != nil {
		t.Fatalf("MkFifodir(new) = %v, %v; want true, nil", created, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil || st.Mode&0o7777 != 0o3730 || st.Gid != uint32(unix.Getegid()) {
		t.Errorf("new fifodir: mode %o gid %d, %v; want 3730, gid %d", st.Mode&0o7777, st.Gid, err, unix.Getegid())
	}
	// An existing one is left as it is.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if created, err := MkFifodir(dir); created || err != nil {
		t.Errorf("MkFifodir(existing) = %v, %v; want false, nil", created, err)
	}
	if err := unix.Stat(dir, &st); err != nil || st.Mode&0o7777 != 0o755 {
		t.Errorf("existing fifodir: mode %o, %v; want 755 kept", st.Mode&0o7777, err)
	}
	// A dangling symlink gets its target made.
	link := filepath.Join(tmp, "link")
	if err := os.Symlink("target", link); err != nil {
		t.Fatal(err)
	}
	if created, err := MkFifodir(link); !created || err != nil {
		t.Errorf("MkFifodir(dangling link) = %v, %v; want true, nil", created, err)
	}
	if err := unix.Stat(filepath.Join(tmp, "target"), &st); err != nil || st.Mode&0o7777 != 0o3730 {
		t.Errorf("link target: mode %o, %v; want 3730", st.Mode&0o7777, err)
	}
	// A file is not a fifodir.
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := MkFifodir(file); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("MkFifodir(file) = %v; want ENOTDIR", err)
	}
}

// TestNotifierAllocatesNothing notifies through one Notifier, as a
// supervisor does at every event: the listeners get every event, a planted
// symbolic link and regular file under listener names get nothing and stay,
// and once its buffers exist a notification allocates nothing.
func TestNotifierAllocatesNothing(t *testing.T) {
	dir := t.TempDir()
	a, b := subscribe(t, dir), subscribe(t, dir)
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "ftrig1:@400000006000000000000000:linkAA")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "ftrig1:@400000006000000000000000:fileAA")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var nt Notifier
	if n, err := nt.Notify(dir, []byte("u")); n != 2 || err != nil {
		t.Fatalf("Notify(u) = %d, %v; want 2, nil", n, err)
	}
	sent := 0
	allocs := testing.AllocsPerRun(5, func() {
		n, _ := nt.Notify(dir, []byte("d"))
		sent += n
	})
	if allocs != 0 && !raceOn {
		t.Errorf("Notifier.Notify: %v allocations; want 0", allocs)
	}
	for _, l := range []*Listener{a, b} {
		// AllocsPerRun runs the function once more than asked.
		if got := read(t, l); got != "udddddd" {
			t.Errorf("listener %s read %q; want %q", l.Path(), got, "udddddd")
		}
	}
	if sent != 12 {
		t.Errorf("Notify reached %d listeners in 6 calls; want 12", sent)
	}
	for _, p := range []string{target, file} {
		if st, err := os.Stat(p); err != nil || st.Size() != 0 {
			t.Errorf("Stat(%s) = %v; want it kept and empty", p, err)
		}
	}
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("Lstat(%s) = %v; want the planted link kept", link, err)
	}
	missing := filepath.Join(dir, "none")
	if n, err := nt.Notify(missing, []byte("x")); n != 0 || err == nil || err.Error() != "unable to open "+missing+": no such file or directory" {
		t.Errorf("Notify(missing dir) = %d, %v; want 0, unable to open", n, err)
	}
}
