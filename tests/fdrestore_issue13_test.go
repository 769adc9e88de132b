package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotools-dev/gotools/lib/fdrestore"
)

// Issue 13, defect 1: a multi-process image keeps the unix socket path it
// bound while its programs run (the coordinator used to remove it right
// after they started). Both processes share one listener; a client
// connects by path once both run sleep.
func TestFdrestoreImageKeepsBoundSocketPath(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "sock")
	img := writeImage(t, imageOf(
		`{"id": "a", "exec": ["sleep", "30"], "fds": [{"fd": 3, "file": "l"}]},
		 {"id": "b", "exec": ["sleep", "30"], "fds": [{"fd": 3, "file": "l"}]}`,
		`"l": {"type": "unix", "socktype": "stream", "state": "listen", "path": "`+sock+`"}`))
	p := start(t, "fdrestore", "restore", img)
	waitFor(t, "both processes run sleep", func() bool {
		n := 0
		for _, c := range groupMembers(p.Pid) {
			if c.Comm == "sleep" {
				n++
			}
		}
		return n == 2
	})
	// The coordinator forgets (or, before the fix, removed) the paths once
	// both execs are confirmed, which it learns on its control sockets and
	// then closes them: wait for that, then give it a moment to unlink. The
	// sleep is a negative window (a kept path never goes away; only the
	// defect needs the time to show), so load cannot make the test fail.
	waitFor(t, "the coordinator to close its control sockets", func() bool {
		for _, target := range openFDs(t, p.Pid) {
			if strings.HasPrefix(target, "socket:") {
				return false
			}
		}
		return true
	})
	time.Sleep(100 * time.Millisecond)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("connect to %s while the restored programs run: %v; want the bound path kept", sock, err)
	}
	c.Close()
	p.KillGroup(t)
}

// Issue 13, defect 4: all exec'd or none. Process a would create a marker,
// process b names a missing program: the restore is refused at plan time
// (exit 127, naming the process) before any program runs, every time, and
// --check exits 1 naming it.
func TestFdrestoreImageMissingProgramRunsNone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(dir, "marker")
	img := writeImage(t, imageOf(
		`{"id": "a", "exec": `+execJSON("touch", marker)+`, "fds": []},
		 {"id": "b", "exec": ["/nonexistent/prog"], "fds": []}`, ``))
	want := "fdrestore: fatal: unable to exec /nonexistent/prog for process b: No such file or directory\n"
	for i := range 12 {
		r := run(t, "fdrestore", "restore", img)
		if r.Code != 127 || r.Stderr != want {
			t.Fatalf("run %d: restore with a missing program = %s, stderr %q; want exit 127, %q", i, r.Status(), r.Stderr, want)
		}
		if _, err := os.Lstat(marker); err == nil {
			t.Fatalf("run %d: %s exists: process a ran although process b could not", i, marker)
		}
	}
	r := run(t, "fdrestore", "restore", "--check", img)
	if r.Code != 1 || r.Stderr != want {
		t.Errorf("restore --check with a missing program = %s, stderr %q; want exit 1, %q", r.Status(), r.Stderr, want)
	}
}

// Issue 13, defect 5: --check checks on disk, creating nothing: a missing
// file, a dead grab: pid, a missing program and a missing holder id are
// each named, and it exits 1; with all of them present it exits 0.
func TestFdrestoreCheckFindsProblemsOnDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	created := filepath.Join(dir, "new")
	h := startHold(t, holdSock(t))
	mustStore(t, nil, h.sock, "there")
	// A pid that no longer exists: a child that has been reaped.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pid := dead.Process.Pid
	r := run(t, "fdrestore", "restore", "--check",
		"-f", "3=file:"+missing, "-f", "4=file:"+created+":wronly,creat",
		"-f", fmt.Sprintf("5=grab:%d:0", pid), "-f", "6=hold:"+h.sock+":absent",
		"-f", "7=hold:"+h.sock+":there", "--", "/nonexistent/prog")
	want := []string{
		"fdrestore: fatal: unable to exec /nonexistent/prog: No such file or directory",
		fmt.Sprintf("fdrestore: fatal: unable to grab fd 0 of pid %d for fd 5: pid %d does not exist", pid, pid),
		"fdrestore: fatal: unable to retrieve absent from " + h.sock + " for fd 6: No such file or directory",
		"fdrestore: fatal: unable to open " + missing + " for fd 3: No such file or directory",
	}
	got := lines(r.Stderr)
	slices.Sort(got)
	slices.Sort(want)
	if r.Code != 1 || !slices.Equal(got, want) {
		t.Errorf("restore --check with problems = %s, stderr %q; want exit 1, the lines %q", r.Status(), r.Stderr, want)
	}
	if _, err := os.Lstat(created); err == nil {
		t.Errorf("--check created %s", created)
	}
	if ids := holdList(t, h.sock); !slices.Equal(ids, []string{"there"}) {
		t.Errorf("holder after --check lists %q; want [there] (nothing retrieved or deleted)", ids)
	}
	r = run(t, "fdrestore", "restore", "--check", "-f", "3=file:"+dir, "-f", "4=file:"+created+":wronly,creat",
		"-f", "7=hold:"+h.sock+":there", "--", "true")
	if r.Code != 0 || r.Stderr != "" {
		t.Errorf("restore --check with everything present = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
}

// Issue 13, defect 8: a program that rewrote its argv (nginx's workers
// dump as "nginx: worker process") restores: dump records /proc/PID/exe
// apart from argv, and restore execs that file with the dumped argv.
func TestFdrestoreDumpRestoresRewrittenArgv(t *testing.T) {
	t.Parallel()
	orig := start(t, "bash", "-c", `exec -a "nginx: worker process" sleep 30`)
	sleepPath, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	sleepPath, _ = filepath.EvalSymlinks(sleepPath)
	waitFor(t, "the original runs sleep", func() bool {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", orig.Pid))
		return exe == sleepPath
	})
	img := filepath.Join(t.TempDir(), "img.json")
	if r := run(t, "fdrestore", "dump", "-o", img, strconv.Itoa(orig.Pid)); r.Code != 0 {
		t.Fatalf("dump = %s, stderr %q", r.Status(), r.Stderr)
	}
	p := start(t, "fdrestore", "restore", "--inherit-stdio", img)
	want := []string{"nginx: worker process", "30"}
	waitFor(t, "the restored process runs sleep with the dumped argv", func() bool {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.Pid))
		return exe == sleepPath && slices.Equal(procArgv(p.Pid), want) || !p.Running()
	})
	if !p.Running() {
		r := p.Wait(t)
		t.Fatalf("restore of a process with a rewritten argv = %s, stderr %q; want it to run %s as %q", r.Status(), r.Stderr, sleepPath, want)
	}
	p.KillGroup(t)
	orig.KillGroup(t)
}

// Issue 13, defect 6: a pipe gets the capacity its image records (1 MiB
// here, seen by dumping the restored process), and a capacity no pipe can
// have (3 bytes, 2 GiB, 1 TiB) is refused as an invalid image (exit 100).
func TestFdrestoreImagePipeCapacity(t *testing.T) {
	t.Parallel()
	img := writeImage(t, imageOf(
		`{"id": "p", "exec": ["sleep", "30"], "fds": [{"fd": 3, "file": "pr"}, {"fd": 4, "file": "pw"}]}`,
		`"pr": {"type": "pipe", "pipe": "p1", "end": "r"}, "pw": {"type": "pipe", "pipe": "p1", "end": "w"}`,
		`"pipes": {"p1": {"size": 1048576}}`))
	p, dumped := restoreAndDump(t, img)
	var sizes []int64
	for _, ps := range dumped.Pipes {
		sizes = append(sizes, ps.Size)
	}
	if !slices.Equal(sizes, []int64{1 << 20}) {
		t.Errorf("restored pipe capacities %v; want [1048576], as the image says", sizes)
	}
	p.KillGroup(t)

	for _, size := range []string{"3", "2147483648", "1099511627776"} {
		img := writeImage(t, imageOf(
			`{"id": "p", "exec": ["true"], "fds": [{"fd": 3, "file": "pr"}]}`,
			`"pr": {"type": "pipe", "pipe": "p1", "end": "r"}`,
			`"pipes": {"p1": {"size": `+size+`}}`))
		r := run(t, "fdrestore", "restore", img)
		want := "fdrestore: fatal: image: pipes.p1: size " + size + " is not a pipe capacity (a power of two from 4096 to 268435456)\n"
		if r.Code != 100 || r.Stderr != want {
			t.Errorf("restore of a pipe of size %s = %s, stderr %q; want exit 100, %q", size, r.Status(), r.Stderr, want)
		}
	}
}

// Issue 13, defect 7: a signalfd is recreated with its mask (fdinfo's
// sigmask) and status flags; a file that cannot be restored is refused
// naming "fd N of process ID".
func TestFdrestoreImageSignalfd(t *testing.T) {
	t.Parallel()
	img := writeImage(t, imageOf(
		`{"id": "p", "exec": ["sleep", "30"], "fds": [{"fd": 3, "file": "sf"}]}`,
		`"sf": {"type": "signalfd", "sigmask": "0x4200", "flags": ["rdwr", "nonblock"]}`))
	p := start(t, "fdrestore", "restore", "--inherit-stdio", img)
	var info string
	waitFor(t, "the restored process runs sleep", func() bool {
		st, err := readStat(p.Pid)
		if err == nil && st.Comm == "sleep" {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/3", p.Pid))
			info = string(b)
			return true
		}
		return !p.Running()
	})
	if !p.Running() {
		r := p.Wait(t)
		t.Fatalf("restore of a signalfd = %s, stderr %q; want it restored", r.Status(), r.Stderr)
	}
	link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", p.Pid))
	if link != "anon_inode:[signalfd]" || !strings.Contains(info, "sigmask:\t0000000000004200\n") || !strings.Contains(info, "flags:\t04002\n") {
		t.Errorf("restored fd 3 is %q with fdinfo %q; want a signalfd of mask 0x4200 (SIGUSR1, SIGTERM), nonblocking", link, info)
	}
	p.KillGroup(t)

	img = writeImage(t, imageOf(
		`{"id": "sh", "exec": ["true"], "fds": [{"fd": 9, "file": "x1"}]}`,
		`"x1": {"type": "unsupported", "link": "anon_inode:[io_uring]", "reason": "rings live in process memory"}`))
	r := run(t, "fdrestore", "restore", img)
	want := "fdrestore: fatal: unable to restore fd 9 of process sh: file x1 (unsupported anon_inode:[io_uring]) is not restorable: this type is restorable from a live source only: give it a source or use --lossy\n"
	if r.Code != 1 || r.Stderr != want {
		t.Errorf("restore of an unsupported file = %s, stderr %q; want exit 1, %q", r.Status(), r.Stderr, want)
	}
}

// Issue 13, defect 9: a TCP listener's backlog is dumped (nginx uses 511)
// and restored: a listener restored from an image with backlog 511 dumps
// with backlog 511, not SOMAXCONN or nothing.
func TestFdrestoreTCPBacklogRoundTrip(t *testing.T) {
	t.Parallel()
	img := writeImage(t, imageOf(
		`{"id": "web", "exec": ["sleep", "30"], "fds": [{"fd": 3, "file": "l"}]}`,
		`"l": {"type": "tcp", "state": "listen", "addr": "127.0.0.1:0", "backlog": 511}`))
	p, dumped := restoreAndDump(t, img)
	var backlogs []int
	for _, f := range dumped.Files {
		if f.Type == "tcp" {
			backlogs = append(backlogs, f.Backlog)
		}
	}
	if !slices.Equal(backlogs, []int{511}) {
		t.Errorf("dumped tcp listener backlogs %v; want [511]", backlogs)
	}
	p.KillGroup(t)
}

// restoreAndDump restores a one-process image whose program is sleep,
// waits until it runs, and returns it and the image `fdrestore dump`
// makes of it: what the kernel says the restored files are.
func restoreAndDump(t *testing.T, img string) (*Proc, *fdrestore.Image) {
	t.Helper()
	p := start(t, "fdrestore", "restore", "--inherit-stdio", img)
	waitFor(t, "the restored process runs sleep", func() bool {
		st, err := readStat(p.Pid)
		return err == nil && st.Comm == "sleep" || !p.Running()
	})
	if !p.Running() {
		r := p.Wait(t)
		t.Fatalf("restore = %s, stderr %q; want sleep running", r.Status(), r.Stderr)
	}
	r := run(t, "fdrestore", "dump", strconv.Itoa(p.Pid))
	dumped, err := fdrestore.DecodeImage([]byte(r.Stdout))
	if err != nil {
		t.Fatalf("dump of the restored process = %s, stderr %q: %v", r.Status(), r.Stderr, err)
	}
	return p, dumped
}
