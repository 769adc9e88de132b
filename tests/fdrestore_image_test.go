package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// writeImage writes an image into the test's directory and returns its path.
func writeImage(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// imageOf wraps processes and files (JSON fragments) into an image.
func imageOf(processes, files string, extra ...string) string {
	s := `{"format": "gotools-fdimage", "version": 1, "processes": [` + processes + `], "files": {` + files + `}`
	for _, e := range extra {
		s += ", " + e
	}
	return s + "}"
}

// exec renders argv as a JSON array.
func execJSON(argv ...string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = fmt.Sprintf("%q", a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// A byte written by restored process A is read by restored process B, and
// B reads EOF once A exits: neither the coordinator nor a stage kept a
// write end. The coordinator exits with the first process's status.
func TestFdrestoreImagePipeAcrossProcesses(t *testing.T) {
	t.Parallel()
	img := writeImage(t, imageOf(
		`{"id": "writer", "exec": `+execJSON("sh", "-c", "echo hi >&3; exit 7")+`, "fds": [{"fd": 3, "file": "pw"}]},
		 {"id": "reader", "exec": `+execJSON("sh", "-c", `read x <&5; echo "got $x"; cat <&5; echo eof`)+`, "fds": [{"fd": 5, "file": "pr"}]}`,
		`"pr": {"type": "pipe", "pipe": "p1", "end": "r"}, "pw": {"type": "pipe", "pipe": "p1", "end": "w"}`,
		`"pipes": {"p1": {"size": 65536}}`))
	r := run(t, "fdrestore", "restore", "-v", img)
	if r.Code != 7 || r.Stdout != "got hi\neof\n" || !strings.Contains(r.Stderr, "placement path: 2 stage processes") {
		t.Errorf("restore of a writer and a reader = %s, stdout %q, stderr %q; want exit 7 (the writer's), %q, the stage path",
			r.Status(), r.Stdout, r.Stderr, "got hi\neof\n")
	}
}

// One file shared by two processes is one description: its offset moves
// for both. Process a reads two bytes of the memfd, then tells b over a
// pipe; b reads the rest.
func TestFdrestoreImageSharedOffset(t *testing.T) {
	t.Parallel()
	img := writeImage(t, imageOf(
		`{"id": "a", "exec": `+execJSON("sh", "-c", "dd bs=1 count=2 <&4 2>/dev/null >/dev/null; echo >&3")+`, "fds": [{"fd": 3, "file": "pw"}, {"fd": 4, "file": "m"}]},
		 {"id": "b", "exec": `+execJSON("sh", "-c", "read x <&5; cat <&6")+`, "fds": [{"fd": 5, "file": "pr"}, {"fd": 6, "file": "m"}]}`,
		`"m": {"type": "memfd", "mname": "state", "size": 5, "data_b64": "aGVsbG8="},
		 "pr": {"type": "pipe", "pipe": "p1", "end": "r"}, "pw": {"type": "pipe", "pipe": "p1", "end": "w"}`,
		`"pipes": {"p1": {"size": 65536}}`))
	r := run(t, "fdrestore", "restore", img)
	if r.Code != 0 || r.Stdout != "llo" {
		t.Errorf("restore of a shared memfd = %s, stdout %q, stderr %q; want exit 0, %q (the offset moved for both)", r.Status(), r.Stdout, r.Stderr, "llo")
	}
}

// A one-process image execs in place: the program has fdrestore's pid,
// exactly the image's table (fds >= 3 not in it are closed), and -- PROG
// replaces the exec.
func TestFdrestoreImageOneProcess(t *testing.T) {
	t.Parallel()
	img := writeImage(t, imageOf(
		`{"id": "p", "exec": ["false"], "fds": [{"fd": 3, "file": "m"}, {"fd": 4, "file": "ev"}, {"fd": 7, "file": "m"}, {"fd": 9, "file": "pr"}]}`,
		`"m": {"type": "memfd", "mname": "state", "size": 2, "data_b64": "aGk="},
		 "ev": {"type": "eventfd", "count": "5"},
		 "pr": {"type": "pipe", "pipe": "p1", "end": "r"}`,
		`"pipes": {"p1": {"size": 65536}}`))
	extra, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	r := runIn(t, Opts{ExtraFiles: []*os.File{extra}}, "fdrestore", "restore", img, "--", "fdlist")
	got := regexp.MustCompile(`pipe:\[\d+\]`).ReplaceAllString(fdsAfterStdio(t, r.Stdout), "pipe")
	want := "3 -> /memfd:state (deleted)\n4 -> anon_inode:[eventfd]\n7 -> /memfd:state (deleted)\n9 -> pipe\n"
	if r.Code != 0 || got != want {
		t.Errorf("restore of a one-process image -- fdlist = %s, table %q, stderr %q; want exit 0, %q", r.Status(), got, r.Stderr, want)
	}
}

// --listen-fds sets LISTEN_FDS, LISTEN_FDNAMES (the image's names) and
// LISTEN_PID = the process's own pid in each process of an image.
func TestFdrestoreImageListenFDs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	show := `echo "$LISTEN_FDS $LISTEN_FDNAMES $([ "$LISTEN_PID" = $$ ] && echo own-pid)" > ` + dir + `/$0`
	img := writeImage(t, imageOf(
		`{"id": "a", "exec": `+execJSON("sh", "-c", show, "a")+`, "fds": [{"fd": 3, "file": "x"}, {"fd": 4, "file": "y"}]},
		 {"id": "b", "exec": `+execJSON("sh", "-c", show, "b")+`, "fds": [{"fd": 3, "file": "y"}]}`,
		`"x": {"type": "eventfd", "count": "0", "name": "http"}, "y": {"type": "memfd", "mname": "m", "name": "state"}`))
	r := run(t, "fdrestore", "restore", "--listen-fds", img)
	if r.Code != 0 {
		t.Fatalf("restore --listen-fds = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	for name, want := range map[string]string{"a": "2 http:state own-pid\n", "b": "1 state own-pid\n"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != want {
			t.Errorf("process %s saw %q (%v); want %q", name, b, err, want)
		}
	}
}

// 1000 fds across four processes: several SCM_RIGHTS batches per stage,
// every fd at its number.
func TestFdrestoreImageManyFDs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var procs, files []string
	for k := range 4 {
		var fds []string
		for i := range 250 {
			id := fmt.Sprintf("f%d_%d", k, i)
			fds = append(fds, fmt.Sprintf(`{"fd": %d, "file": %q}`, 3+i*2, id))
			files = append(files, fmt.Sprintf(`%q: {"type": "memfd", "mname": %q}`, id, id))
		}
		out := filepath.Join(dir, fmt.Sprint(k))
		procs = append(procs, fmt.Sprintf(`{"id": "p%d", "exec": %s, "fds": [%s]}`, k,
			execJSON("sh", "-c", "ls /proc/$$/fd > "+out), strings.Join(fds, ", ")))
	}
	img := writeImage(t, imageOf(strings.Join(procs, ", "), strings.Join(files, ", ")))
	r := run(t, "fdrestore", "restore", img)
	if r.Code != 0 {
		t.Fatalf("restore of 4 x 250 fds = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	for k := range 4 {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprint(k)))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range strings.Fields(string(b)) {
			if f != "0" && f != "1" && f != "2" {
				got = append(got, f)
			}
		}
		var want []string
		for i := range 250 {
			want = append(want, fmt.Sprint(3+i*2))
		}
		// ls sorts by name; compare as sets, plus ls's own directory fd.
		slices.Sort(got)
		slices.Sort(want)
		if len(got) != 251 || len(slices.DeleteFunc(slices.Clone(got), func(s string) bool { return slices.Contains(want, s) })) != 1 {
			t.Errorf("process p%d has %d fds besides 0-2 (%q...); want the 250 of the image and ls's own", k, len(got), got[:min(5, len(got))])
		}
	}
}

// All or nothing: the second process needs a missing file, so the first
// process's program (which would create a marker) never runs, the unix
// socket bound for it is removed, and no stage process is left.
func TestFdrestoreImageAtomicFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker, sock, conf := filepath.Join(dir, "marker"), filepath.Join(dir, "sock"), filepath.Join(dir, "sh.conf")
	img := writeImage(t, imageOf(
		`{"id": "first", "exec": `+execJSON("touch", marker)+`, "fds": [{"fd": 3, "file": "l"}]},
		 {"id": "sh", "exec": ["true"], "fds": [{"fd": 6, "file": "conf"}]}`,
		`"l": {"type": "unix", "socktype": "stream", "state": "listen", "path": "`+sock+`"}, "conf": {"type": "file", "path": "`+conf+`"}`))
	p := start(t, "fdrestore", "restore", img)
	r := p.Wait(t)
	want := "fdrestore: fatal: unable to open " + conf + " for fd 6 of process sh: No such file or directory\n"
	if r.Code != 111 || r.Stderr != want {
		t.Errorf("restore with a missing file = %s, stderr %q; want exit 111, %q", r.Status(), r.Stderr, want)
	}
	for _, path := range []string{marker, sock} {
		if _, err := os.Lstat(path); err == nil {
			t.Errorf("%s exists after the failed restore; want it absent", path)
		}
	}
	if m := groupMembers(p.Pid); len(m) != 0 {
		t.Errorf("processes left in the group after the failure: %+v", m)
	}
}

// An exec that fails after go (a file that resolves but is no program:
// ENOEXEC) kills the processes already exec'd and exits 126 with the
// process named.
func TestFdrestoreImageExecFailure(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "web")
	if err := writeExecutable(bad, []byte{0, 1, 2, 3}, 0o755); err != nil {
		t.Fatal(err)
	}
	img := writeImage(t, imageOf(
		`{"id": "first", "exec": ["sleep", "30"], "fds": []},
		 {"id": "web", "exec": ["`+bad+`"], "fds": []}`, ``))
	p := start(t, "fdrestore", "restore", img)
	r := p.Wait(t)
	want := "fdrestore: fatal: process web: unable to exec " + bad + ": Exec format error\n"
	if r.Code != 126 || r.Stderr != want {
		t.Errorf("restore with a program that cannot run = %s, stderr %q; want exit 126, %q", r.Status(), r.Stderr, want)
	}
	waitFor(t, "no process left in the group", func() bool { return len(groupMembers(p.Pid)) == 0 })
}

// A file the engine cannot create is refused (exit 1) unless --lossy,
// which leaves its fd closed with one warning.
func TestFdrestoreImageLossy(t *testing.T) {
	t.Parallel()
	img := writeImage(t, imageOf(
		`{"id": "sh", "exec": ["fdlist"], "fds": [{"fd": 3, "file": "m"}, {"fd": 9, "file": "x1"}]}`,
		`"m": {"type": "memfd", "mname": "m"}, "x1": {"type": "unsupported", "link": "anon_inode:[io_uring]", "reason": "rings live in process memory"}`))
	r := run(t, "fdrestore", "restore", img)
	want := "fdrestore: fatal: unable to restore fd 9 of process sh: file x1 (unsupported anon_inode:[io_uring]) is not restorable: this type is restorable from a live source only: give it a source or use --lossy\n"
	if r.Code != 1 || r.Stderr != want || r.Stdout != "" {
		t.Errorf("restore of an unsupported file = %s, stdout %q, stderr %q; want exit 1, %q", r.Status(), r.Stdout, r.Stderr, want)
	}
	r = run(t, "fdrestore", "restore", "--lossy", img)
	wantWarn := "fdrestore: warning: fd 9 of process sh left closed: file x1 (unsupported anon_inode:[io_uring]) is not restorable: this type is restorable from a live source only: give it a source or use --lossy\n"
	if r.Code != 0 || fdsAfterStdio(t, r.Stdout) != "3 -> /memfd:m (deleted)\n" || r.Stderr != wantWarn {
		t.Errorf("restore --lossy = %s, stdout %q, stderr %q; want exit 0, only fd 3, %q", r.Status(), r.Stdout, r.Stderr, wantWarn)
	}
}

// A process of an image with "setsid" and "ctty" gets the restored pty
// slave as its controlling terminal, its own group in the foreground,
// while another process holds the master.
func TestFdrestoreImageCtty(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "tty")
	img := writeImage(t, imageOf(
		`{"id": "term", "exec": ["sh", "-c", "read x <&4"], "fds": [{"fd": 3, "file": "tm"}, {"fd": 4, "file": "pr"}]},
		 {"id": "sh", "setsid": true, "ctty": "ts", "exec": `+execJSON("sh", "-c",
			`set -- $(cat /proc/$$/stat | sed 's/.*) //'); echo "sid=$4 self=$$ tpgid=$6 pgid=$3" > `+out+`; tty >> `+out+`; echo >&5`)+`,
		  "fds": [{"fd": 0, "file": "ts"}, {"fd": 1, "file": "ts"}, {"fd": 2, "file": "ts"}, {"fd": 5, "file": "pw"}]}`,
		`"tm": {"type": "pty", "pty": "t1", "end": "master"}, "ts": {"type": "pty", "pty": "t1", "end": "slave"},
		 "pr": {"type": "pipe", "pipe": "p1", "end": "r"}, "pw": {"type": "pipe", "pipe": "p1", "end": "w"}`,
		`"pipes": {"p1": {"size": 65536}}`, `"ptys": {"t1": {"index": 4, "winsize": [24, 80, 0, 0]}}`))
	r := run(t, "fdrestore", "restore", img)
	if r.Code != 0 {
		t.Fatalf("restore with a ctty = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	b, err := os.ReadFile(out)
	got := strings.Fields(string(b))
	if err != nil || len(got) != 5 {
		t.Fatalf("probe wrote %q (%v); want 5 fields", b, err)
	}
	self := strings.TrimPrefix(got[1], "self=")
	if got[0] != "sid="+self || got[2] != "tpgid="+self || got[3] != "pgid="+self || !strings.HasPrefix(got[4], "/dev/pts/") {
		t.Errorf("probe saw %q; want a session leader whose group owns the terminal, and tty naming /dev/pts/N", got)
	}
}

// An epoll of an image is registered by the process that holds its
// targets at the recorded numbers, with the recorded events and data: in
// that process epoll_wait reports the image's data, and EPOLL_CTL_MOD and
// DEL on the final numbers succeed (ENOENT is the regression), although
// another process holds the same epoll and eventfd at other numbers.
func TestFdrestoreImageEpoll(t *testing.T) {
	t.Parallel()
	img := writeImage(t, imageOf(
		`{"id": "a", "exec": ["epollprobe", "6", "4", "5"], "fds": [{"fd": 3, "file": "pr"}, {"fd": 4, "file": "pw"}, {"fd": 5, "file": "ev"}, {"fd": 6, "file": "ep"}]},
		 {"id": "b", "exec": ["true"], "fds": [{"fd": 3, "file": "ep"}, {"fd": 9, "file": "ev"}]}`,
		`"pr": {"type": "pipe", "pipe": "p1", "end": "r"}, "pw": {"type": "pipe", "pipe": "p1", "end": "w"},
		 "ev": {"type": "eventfd", "count": "1"},
		 "ep": {"type": "epoll", "targets": [{"fd": 4, "file": "pw", "events": "0x4", "data": "0x1234"}, {"fd": 5, "file": "ev", "events": "0x1", "data": "7"}]}`,
		`"pipes": {"p1": {"size": 65536}}`))
	r := run(t, "fdrestore", "restore", img)
	want := "ready 7 4660\nmod 4 ok\nmod 5 ok\ndel 4 ok\ndel 5 ok\n"
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("restore of an epoll image = %s, stdout %q, stderr %q; want exit 0, %q", r.Status(), r.Stdout, r.Stderr, want)
	}
}

// A stage that fails after it received its files (here TIOCSCTTY on a
// file that is not a terminal) aborts the restore before go: the other
// process's program never runs, and the failure is one line naming the
// process.
func TestFdrestoreImageStageFailure(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "marker")
	img := writeImage(t, imageOf(
		`{"id": "first", "exec": `+execJSON("touch", marker)+`, "fds": []},
		 {"id": "sh", "exec": ["true"], "setsid": true, "ctty": "null", "fds": [{"fd": 0, "file": "null"}]}`,
		`"null": {"type": "file", "path": "/dev/null"}`))
	p := start(t, "fdrestore", "restore", img)
	r := p.Wait(t)
	want := "fdrestore: fatal: process sh: unable to make fd 0 the controlling terminal: Inappropriate ioctl for device\n"
	if r.Code != 111 || r.Stderr != want {
		t.Errorf("restore with a bad ctty = %s, stderr %q; want exit 111, %q", r.Status(), r.Stderr, want)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the first process ran (%s exists); want no program run", marker)
	}
	waitFor(t, "no process left in the group", func() bool { return len(groupMembers(p.Pid)) == 0 })
}

// A recreated file is checked against the identity the image recorded: a
// path swapped since the dump (another inode) is not restored (exit 111,
// nothing run); the right inode is.
func TestFdrestoreImageVerify(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "conf")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	image := func(ino uint64) string {
		return writeImage(t, imageOf(`{"id": "sh", "exec": ["fdlist"], "fds": [{"fd": 6, "file": "conf"}]}`,
			fmt.Sprintf(`"conf": {"type": "file", "path": %q, "verify": {"dev": %q, "ino": "%d"}}`, path, dev, ino)))
	}
	r := run(t, "fdrestore", "restore", image(st.Ino+1))
	want := fmt.Sprintf("fdrestore: fatal: unable to restore fd 6 of process sh: %s is not the dumped file (inode %d, found %d)\n", path, st.Ino+1, st.Ino)
	if r.Code != 111 || r.Stderr != want || r.Stdout != "" {
		t.Errorf("restore of a swapped file = %s, stdout %q, stderr %q; want exit 111, %q", r.Status(), r.Stdout, r.Stderr, want)
	}
	r = run(t, "fdrestore", "restore", image(st.Ino))
	if r.Code != 0 || fdsAfterStdio(t, r.Stdout) != "6 -> "+path+"\n" {
		t.Errorf("restore of the dumped file = %s, stdout %q, stderr %q; want exit 0, fd 6", r.Status(), r.Stdout, r.Stderr)
	}
}
