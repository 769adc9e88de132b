package tests

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// shmSlotWord returns the file offset of lock idx's 64-bit lock word in the
// segment file path (spec/shmlock.md, "Segment format, version 1": slots at
// the header's slots_off, 64 bytes each, the word at 16).
func shmSlotWord(t *testing.T, path string, idx int) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 48 {
		t.Fatalf("%s: %d bytes, no header", path, len(b))
	}
	return int64(binary.LittleEndian.Uint64(b[40:])) + 64*int64(idx) + 16
}

// writeLockWord stores a forged lock word (futex half, tag half) for lock
// idx of the segment file path, as a crashed or corrupted owner leaves it.
func writeLockWord(t *testing.T, path string, idx int, futex, tag uint32) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w [8]byte
	binary.LittleEndian.PutUint32(w[:], futex)
	binary.LittleEndian.PutUint32(w[4:], tag)
	if _, err := f.WriteAt(w[:], shmSlotWord(t, path, idx)); err != nil {
		t.Fatal(err)
	}
}

// deadPid returns the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

// TestShmlockDeadCoveredOwner (issue 20 item 6): a lock word naming a dead
// pid but marked kernel-covered (KCOVERED, bit 31 of the tag) is taken over
// as a dead owner's, with the warning and SHMLOCK_OWNER_DIED, instead of
// sleeping for ever; with -t it is too, before the timeout.
func TestShmlockDeadCoveredOwner(t *testing.T) {
	t.Parallel()
	dir := shmDir(t)
	shmRun(t, dir, 0, "", "", "create", "seg", "64")
	shmRun(t, dir, 0, "0\n", "", "alloc", "seg")
	shmRun(t, dir, 0, "1\n", "", "alloc", "seg")
	path := filepath.Join(dir, "seg")
	for _, tc := range []struct {
		idx  int
		args []string
	}{
		{0, nil},
		{1, []string{"-t", "60000"}},
	} {
		pid := deadPid(t)
		// A covered word: the owner's keeper thread (here the pid
		// itself), KCOVERED and the owner's pid in the tag.
		writeLockWord(t, path, tc.idx, uint32(pid), 1<<31|uint32(pid))
		args := append(append([]string{"lock"}, tc.args...), "seg", fmt.Sprint(tc.idx), "sh", "-c", `echo "died=$SHMLOCK_OWNER_DIED"`)
		p := start(t, shmArgv(dir, args...)...)
		// A recheck comes after a second of sleep; 10 s is the slack.
		if !poll(time.Now().Add(10*time.Second), func() bool { return !p.Running() }) {
			p.KillGroup(t)
			t.Fatalf("%q still waits after 10 s on a lock whose covered owner %d is dead", p.Argv, pid)
		}
		r := p.Wait(t)
		want := fmt.Sprintf("shmlock: warning: seg[%d]: previous owner (pid %d) died holding the lock\n", tc.idx, pid)
		if r.Code != 0 || r.Stdout != fmt.Sprintf("died=%d\n", pid) || r.Stderr != want {
			t.Errorf("%q = %s, stdout %q, stderr %q; want 0, died=%d, %q", p.Argv, r.Status(), r.Stdout, r.Stderr, pid, want)
		}
	}
}

// TestShmlockForeignOwner (issue 20 item 11): a segment that belongs to
// neither the caller nor root is refused, since its owner could hold or
// forge its locks; --any-owner accepts it, and status only reads it.
func TestShmlockForeignOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a segment to another user")
	}
	dir := shmDir(t)
	shmRun(t, dir, 0, "", "", "create", "seg", "64")
	shmRun(t, dir, 0, "0\n", "", "alloc", "seg")
	if err := os.Chown(filepath.Join(dir, "seg"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	refused := "shmlock: fatal: unable to open seg: Operation not permitted (owned by uid 65534, neither you nor root: --any-owner accepts it)\n"
	shmRun(t, dir, 111, "", refused, "lock", "seg", "0", "true")
	shmRun(t, dir, 111, "", refused, "alloc", "seg")
	shmRun(t, dir, 111, "", refused, "open", "seg")
	shmRun(t, dir, 0, "", "", "status", "seg")
	shmRun(t, dir, 0, "ok\n", "", "--any-owner", "lock", "seg", "0", "echo", "ok")
}

// TestShmlockTruncatedUnderHolder (issue 20 item 6): a segment truncated by
// someone else while shmlock holds one of its locks, and while another
// waits for it, makes both fail with EBADF (exit 111, one line), never die
// of SIGBUS; prog still ran to its end.
func TestShmlockTruncatedUnderHolder(t *testing.T) {
	t.Parallel()
	dir := shmDir(t)
	shmRun(t, dir, 0, "", "", "create", "seg", "64")
	shmRun(t, dir, 0, "0\n", "", "alloc", "seg")
	h := startHolder(t, dir, "seg", 0)
	w := start(t, shmArgv(dir, "lock", "seg", "0", "true")...)
	waitFor(t, "a waiter on seg[0]", func() bool {
		r := run(t, shmArgv(dir, "status", "seg", "0")...)
		st := parseStatus(t, r.Stdout)
		return len(st) == 1 && st[0].waiters > 0
	})
	if err := os.Truncate(filepath.Join(dir, "seg"), 0); err != nil {
		t.Fatal(err)
	}
	h.Signal(unix.SIGTERM) // forwarded to the sleeper, which dies of it
	r := h.Wait(t)
	if want := "shmlock: fatal: unable to unlock seg[0]: Bad file descriptor\n"; r.Code != 111 || r.Stderr != want {
		t.Errorf("holder of a truncated segment = %s, stderr %q; want exit 111, %q", r.Status(), r.Stderr, want)
	}
	if !poll(time.Now().Add(20*time.Second), func() bool { return !w.Running() }) {
		w.KillGroup(t)
		t.Fatalf("the waiter still waits 20 s after the truncation")
	}
	r = w.Wait(t)
	if want := "shmlock: fatal: unable to lock seg[0]: Bad file descriptor\n"; r.Code != 111 || r.Stderr != want {
		t.Errorf("waiter on a truncated segment = %s, stderr %q; want exit 111, %q", r.Status(), r.Stderr, want)
	}
}
