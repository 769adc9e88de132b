package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/fdrestore"
)

// The fd numbers at which roleDumptopo puts its files.
const (
	topoPipeW    = 10 // write end of a pipe whose read end is the child's fd 3
	topoEvent    = 11 // eventfd at 5
	topoEventDup = 12 // dup of 11
	topoOpen1    = 13 // DIR/file opened once (position 4)
	topoOpen2    = 14 // DIR/file opened again
	topoPair0    = 15 // socketpair end 0
	topoPair1    = 16 // socketpair end 1
	topoListen   = 17 // unix listener at DIR/sock
	topoClient   = 18 // a client queued on 17
	topoMaster   = 19 // pty master
	topoSlave    = 20 // its slave
	topoEpoll    = 21 // epoll: 11 (in, data 0x1234) and 15 (in|out, data 7)
	topoMemfd    = 22 // memfd "state" holding "hello"
	topoUring    = 23 // io_uring (raw io_uring_setup), or userfaultfd
	topoShared   = 24 // DIR/shared, also the child's fd 4 (fork-inherited)
	topoFIFO     = 25 // DIR/fifo opened read-write, holding "xy"
	topoDeleted  = 26 // DIR/gone, unlinked after the open
	topoTCP      = 27 // tcp listener on 127.0.0.1 (port chosen by the kernel)
)

// roleDumptopo builds the topology the dump tests inspect: "dumptopo DIR"
// puts the files above at their numbers (with raw fds only, so that the Go
// runtime adds none of its own), starts a child ("dumptopo -child") that
// gets the pipe's read end at fd 3 and the shared file at fd 4, prints
// "ready CHILDPID", and waits to be killed.
func roleDumptopo(args []string) int {
	if len(args) == 1 && args[0] == "-child" {
		for {
			unix.Pause()
		}
	}
	if len(args) != 1 {
		return usage("dumptopo", "DIR")
	}
	dir := args[0]
	at := func(fd, n int) error {
		if fd == n {
			return nil
		}
		if err := unix.Dup3(fd, n, unix.O_CLOEXEC); err != nil {
			return err
		}
		return unix.Close(fd)
	}
	var err error
	must := func(fd int, e error, n int) {
		if err != nil {
			return
		}
		if e != nil {
			err = fmt.Errorf("fd %d: %w", n, e)
			return
		}
		if e := at(fd, n); e != nil {
			err = fmt.Errorf("fd %d: %w", n, e)
		}
	}
	var p [2]int
	if e := unix.Pipe2(p[:], unix.O_CLOEXEC); e != nil {
		return fatal("dumptopo", e)
	}
	// Out of the way of the numbers below before anything lands there.
	pr, e1 := unix.FcntlInt(uintptr(p[0]), unix.F_DUPFD_CLOEXEC, 100)
	pw, e2 := unix.FcntlInt(uintptr(p[1]), unix.F_DUPFD_CLOEXEC, 100)
	if e1 != nil || e2 != nil {
		return fatal("dumptopo", fmt.Errorf("dup: %v %v", e1, e2))
	}
	unix.Close(p[0])
	unix.Close(p[1])
	must(pw, nil, topoPipeW)
	ev, e := unix.Eventfd(5, unix.EFD_CLOEXEC)
	must(ev, e, topoEvent)
	if err == nil {
		err = unix.Dup3(topoEvent, topoEventDup, unix.O_CLOEXEC)
	}
	file := filepath.Join(dir, "file")
	if e := os.WriteFile(file, []byte("0123456789"), 0o600); e != nil {
		return fatal("dumptopo", e)
	}
	f1, e := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	must(f1, e, topoOpen1)
	unix.Seek(topoOpen1, 4, 0)
	f2, e := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	must(f2, e, topoOpen2)
	sp, e := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if e == nil {
		must(sp[0], nil, topoPair0)
		must(sp[1], nil, topoPair1)
	} else if err == nil {
		err = e
	}
	sock := filepath.Join(dir, "sock")
	l, e := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if e == nil {
		e = unix.Bind(l, &unix.SockaddrUnix{Name: sock})
	}
	if e == nil {
		e = unix.Listen(l, 8)
	}
	must(l, e, topoListen)
	c, e := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if e == nil {
		e = unix.Connect(c, &unix.SockaddrUnix{Name: sock})
	}
	must(c, e, topoClient)
	m, e := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if e == nil {
		e = unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0)
	}
	must(m, e, topoMaster)
	if err == nil {
		s, _, errno := unix.Syscall(unix.SYS_IOCTL, topoMaster, unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
		var e error
		if errno != 0 {
			e = errno
		}
		must(int(s), e, topoSlave)
	}
	ep, e := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	must(ep, e, topoEpoll)
	if err == nil {
		err = unix.EpollCtl(topoEpoll, unix.EPOLL_CTL_ADD, topoEvent, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: 0x1234})
	}
	if err == nil {
		err = unix.EpollCtl(topoEpoll, unix.EPOLL_CTL_ADD, topoPair0, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT, Fd: 7})
	}
	mfd, e := unix.MemfdCreate("state", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if e == nil {
		_, e = unix.Write(mfd, []byte("hello"))
	}
	must(mfd, e, topoMemfd)
	var params [120]byte // struct io_uring_params
	u, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&params)), 0)
	if errno != 0 {
		u, _, errno = unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC, 0, 0)
	}
	if errno == 0 {
		must(int(u), nil, topoUring)
	}
	shared, e := unix.Open(filepath.Join(dir, "shared"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	must(shared, e, topoShared)
	fifo := filepath.Join(dir, "fifo")
	e = unix.Mkfifo(fifo, 0o600)
	if e == nil {
		var fd int
		if fd, e = unix.Open(fifo, unix.O_RDWR|unix.O_CLOEXEC, 0); e == nil {
			_, e = unix.Write(fd, []byte("xy"))
			must(fd, e, topoFIFO)
		}
	}
	if e != nil && err == nil {
		err = e
	}
	gone := filepath.Join(dir, "gone")
	g, e := unix.Open(gone, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if e == nil {
		e = unix.Unlink(gone)
	}
	must(g, e, topoDeleted)
	tcp, e := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if e == nil {
		e = unix.Bind(tcp, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	}
	if e == nil {
		e = unix.Listen(tcp, 16)
	}
	must(tcp, e, topoTCP)
	if err != nil {
		return fatal("dumptopo", err)
	}
	files, e := quietStdio()
	if e != nil {
		return fatal("dumptopo", e)
	}
	child, e := spawnRole("dumptopo", []string{"-child"}, append(files, uintptr(pr), topoShared), false)
	if e != nil {
		return fatal("dumptopo", e)
	}
	unix.Close(pr)
	unix.Close(int(files[0]))
	fmt.Printf("ready %d\n", child)
	for {
		unix.Pause()
	}
}

// startTopo starts roleDumptopo and returns it and its child's pid.
func startTopo(t *testing.T) (*Proc, int) {
	t.Helper()
	p := start(t, "dumptopo", t.TempDir())
	line := p.WaitLine(t, `^ready \d+$`)
	child, _ := strconv.Atoi(strings.Fields(line)[1])
	return p, child
}

// dumpImage runs fdrestore dump with args, expects exit code want, and
// decodes the image it wrote on stdout.
func dumpImage(t *testing.T, want int, args ...string) (*fdrestore.Image, string) {
	t.Helper()
	r := run(t, append([]string{"fdrestore", "dump"}, args...)...)
	if r.Code != want {
		t.Fatalf("fdrestore dump %q: %s, stderr %q; want exit %d", args, r.Status(), r.Stderr, want)
	}
	img, err := fdrestore.DecodeImage([]byte(r.Stdout))
	if err != nil {
		t.Fatalf("DecodeImage(dump %q) = %v", args, err)
	}
	return img, r.Stdout
}

// fileAt returns the id and file of fd in the image's process pid.
func fileAt(t *testing.T, img *fdrestore.Image, pid, fd int) (string, *fdrestore.File) {
	t.Helper()
	for _, p := range img.Processes {
		if p.PID != pid {
			continue
		}
		for _, e := range p.FDs {
			if e.FD == fd {
				return e.File, img.Files[e.File]
			}
		}
		t.Fatalf("image: fd %d of pid %d is missing", fd, pid)
	}
	t.Fatalf("image: pid %d is missing", pid)
	return "", nil
}

func TestFdrestoreDumpTopology(t *testing.T) {
	p, child := startTopo(t)
	img, _ := dumpImage(t, 0, "--tree", "--data", strconv.Itoa(p.Pid))
	if len(img.Processes) != 2 || img.Processes[0].PID != p.Pid || img.Processes[1].PID != child {
		t.Fatalf("processes = %+v; want %d and its child %d", img.Processes, p.Pid, child)
	}
	if got := img.Processes[0].Exec; len(got) != 2 || filepath.Base(got[0]) != "dumptopo" {
		t.Errorf("exec = %q; want [.../dumptopo DIR]", got)
	}
	// The role leads its process group (the harness's Setpgid); the child
	// is in it.
	if p0, p1 := img.Processes[0], img.Processes[1]; p0.Setsid || p0.Pgrp != "new" || p1.Setsid || p1.Pgrp != p0.ID {
		t.Errorf("processes %s: setsid %v pgrp %q; %s: setsid %v pgrp %q; want pgrp new, then %s",
			p0.ID, p0.Setsid, p0.Pgrp, p1.ID, p1.Setsid, p1.Pgrp, p0.ID)
	}
	// Pipe between the two processes.
	_, w := fileAt(t, img, p.Pid, topoPipeW)
	_, r := fileAt(t, img, child, 3)
	if w.Type != "pipe" || r.Type != "pipe" || w.Pipe != r.Pipe || w.End != "w" || r.End != "r" {
		t.Errorf("pipe = %+v / %+v; want the two ends of one pipe", w, r)
	}
	// Dup'ed and fork-inherited fds are one file; two opens are two.
	idEv, ev := fileAt(t, img, p.Pid, topoEvent)
	if id, _ := fileAt(t, img, p.Pid, topoEventDup); id != idEv {
		t.Errorf("dup'ed eventfd: files %s and %s; want one", idEv, id)
	}
	if ev.Type != "eventfd" || ev.Count != "5" {
		t.Errorf("eventfd = %+v; want count \"5\"", ev)
	}
	idS, _ := fileAt(t, img, p.Pid, topoShared)
	if id, _ := fileAt(t, img, child, 4); id != idS {
		t.Errorf("fork-inherited fd: files %s and %s; want one", idS, id)
	}
	id1, f1 := fileAt(t, img, p.Pid, topoOpen1)
	id2, f2 := fileAt(t, img, p.Pid, topoOpen2)
	if id1 == id2 || f1.Pos != 4 || f2.Pos != 0 || f1.Path != f2.Path || f1.Verify == nil || f2.Verify == nil || f1.Verify.Ino != f2.Verify.Ino {
		t.Errorf("two opens = %s %+v, %s %+v; want two files of one inode, pos 4 and 0", id1, f1, id2, f2)
	}
	// Peers.
	id0, s0 := fileAt(t, img, p.Pid, topoPair0)
	_, s1 := fileAt(t, img, p.Pid, topoPair1)
	if s0.Type != "unix" || s0.Pair == "" || s0.Pair != s1.Pair || s0.End == s1.End || s0.SockType != "stream" {
		t.Errorf("socketpair = %+v / %+v; want two ends of one stream pair", s0, s1)
	}
	idL, l := fileAt(t, img, p.Pid, topoListen)
	_, c := fileAt(t, img, p.Pid, topoClient)
	if l.State != "listen" || filepath.Base(l.Path) != "sock" || l.Pending != 1 || c.State != "connected" || c.Connect != idL {
		t.Errorf("listener %+v, client %+v; want the client queued on the listener (connect %s)", l, c, idL)
	}
	_, m := fileAt(t, img, p.Pid, topoMaster)
	_, s := fileAt(t, img, p.Pid, topoSlave)
	if m.Type != "pty" || s.Type != "pty" || m.PTY != s.PTY || m.End != "master" || s.End != "slave" {
		t.Errorf("pty = %+v / %+v; want master and slave of one pty", m, s)
	} else if st := img.Ptys[m.PTY]; st == nil || st.Termios == nil {
		t.Errorf("ptys[%s] = %+v; want termios", m.PTY, st)
	}
	// Epoll targets, resolved with events and data.
	_, ep := fileAt(t, img, p.Pid, topoEpoll)
	want := []fdrestore.EpollTarget{
		{FD: topoEvent, File: idEv, Events: "0x19", Data: "0x1234"},
		{FD: topoPair0, File: id0, Events: "0x1d", Data: "0x7"},
	}
	if fmt.Sprint(ep.Targets) != fmt.Sprint(want) {
		t.Errorf("epoll targets = %+v; want %+v", ep.Targets, want)
	}
	// memfd with its data.
	_, mf := fileAt(t, img, p.Pid, topoMemfd)
	if mf.Type != "memfd" || mf.MName != "state" || mf.Size != 5 || mf.DataB64 != "aGVsbG8=" {
		t.Errorf("memfd = %+v; want state, 5 bytes, aGVsbG8=", mf)
	}
	// A FIFO with its queued bytes; a deleted file.
	_, fifo := fileAt(t, img, p.Pid, topoFIFO)
	if fifo.Type != "fifo" || filepath.Base(fifo.Path) != "fifo" || fifo.Pending != 2 || fifo.DataB64 != "eHk=" {
		t.Errorf("fifo = %+v; want DIR/fifo, pending 2, data eHk=", fifo)
	}
	if _, del := fileAt(t, img, p.Pid, topoDeleted); del.Type != "file" || !del.Deleted || filepath.Base(del.Path) != "gone" {
		t.Errorf("deleted file = %+v; want DIR/gone, deleted", del)
	}
	if _, tcp := fileAt(t, img, p.Pid, topoTCP); tcp.Type != "tcp" || tcp.State != "listen" || !regexp.MustCompile(`^127\.0\.0\.1:[1-9]\d*$`).MatchString(tcp.Addr) {
		t.Errorf("tcp = %+v; want a listener on 127.0.0.1:PORT", tcp)
	}
	// io_uring (or userfaultfd): unsupported, with its link.
	_, u := fileAt(t, img, p.Pid, topoUring)
	if u.Type != "unsupported" || !regexp.MustCompile(`^anon_inode:\[(io_uring|userfaultfd)\]$`).MatchString(u.Link) || u.Reason == "" {
		t.Errorf("io_uring = %+v; want unsupported with its link and a reason", u)
	}
	// The inspection left the topology alone: the FIFO still holds its
	// bytes, the eventfd is still at 5, the client still queued.
	img2, _ := dumpImage(t, 0, "--data", strconv.Itoa(p.Pid))
	if _, ev2 := fileAt(t, img2, p.Pid, topoEvent); ev2.Count != "5" {
		t.Errorf("eventfd after a dump = %+v; want count 5", ev2)
	}
	if _, f := fileAt(t, img2, p.Pid, topoFIFO); f.DataB64 != "eHk=" {
		t.Errorf("fifo after a dump = %+v; want its data still there", f)
	}
	if _, l := fileAt(t, img2, p.Pid, topoListen); l.Pending != 1 {
		t.Errorf("listener after a dump = %+v; want its client still queued", l)
	}
}

// TestFdrestoreDumpLive checks the grab: sources of --live: the listener,
// the io_uring and nothing recreatable.
func TestFdrestoreDumpLive(t *testing.T) {
	p, _ := startTopo(t)
	img, _ := dumpImage(t, 0, "--live", strconv.Itoa(p.Pid))
	for _, tt := range []struct {
		fd   int
		want string
	}{
		{topoListen, fmt.Sprintf("grab:%d:%d", p.Pid, topoListen)},
		{topoUring, fmt.Sprintf("grab:%d:%d", p.Pid, topoUring)},
		{topoDeleted, fmt.Sprintf("grab:%d:%d", p.Pid, topoDeleted)},
		{topoTCP, fmt.Sprintf("grab:%d:%d", p.Pid, topoTCP)},
		{topoFIFO, ""},
		{topoPipeW, ""},
		{topoPair0, ""},
		{topoOpen1, ""},
	} {
		if _, f := fileAt(t, img, p.Pid, tt.fd); f.Source != tt.want {
			t.Errorf("fd %d (%s): source %q; want %q", tt.fd, f.Type, f.Source, tt.want)
		}
	}
}

// TestFdrestoreDumpStrict checks that --strict exits 1 after writing the
// image when a file is unsupported, and 0 (negative control) for a process
// whose files are all supported.
func TestFdrestoreDumpStrict(t *testing.T) {
	p, child := startTopo(t)
	r := run(t, "fdrestore", "dump", "--strict", strconv.Itoa(p.Pid))
	if r.Code != 1 || !strings.HasPrefix(r.Stderr, "fdrestore: fatal: image is incomplete: ") || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("dump --strict: %s, stderr %q; want exit 1 and one fatal line", r.Status(), r.Stderr)
	}
	if _, err := fdrestore.DecodeImage([]byte(r.Stdout)); err != nil {
		t.Errorf("dump --strict wrote no valid image: %v", err)
	}
	dumpImage(t, 0, "--strict", strconv.Itoa(child))
}

// TestFdrestoreDumpDeterministic checks that two dumps of the same
// processes are byte-equal but for "created", and that -o writes the same
// image with mode 0600 and leaves no FILE.new.
func TestFdrestoreDumpDeterministic(t *testing.T) {
	p, _ := startTopo(t)
	pid := strconv.Itoa(p.Pid)
	created := regexp.MustCompile(`(?m)^  "created": ".*",\n`)
	_, a := dumpImage(t, 0, "--tree", pid)
	out := filepath.Join(t.TempDir(), "img.json")
	if r := run(t, "fdrestore", "dump", "--tree", "-o", out, pid); r.Code != 0 || r.Stdout != "" {
		t.Fatalf("dump -o: %s, stdout %q, stderr %q; want exit 0 and no output", r.Status(), r.Stdout, r.Stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if x, y := created.ReplaceAllString(a, ""), created.ReplaceAllString(string(b), ""); x != y {
		t.Errorf("two dumps differ:\n%s\n----\n%s", x, y)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("stat(%s) = %v, %v; want mode 0600", out, st, err)
	}
	if _, err := os.Stat(out + ".new"); err == nil {
		t.Errorf("%s.new is left behind", out)
	}
}

// TestFdrestoreDumpDataMax checks that --data refuses a file holding more
// than --data-max bytes (the memfd holds 5), and takes one that fits.
func TestFdrestoreDumpDataMax(t *testing.T) {
	p, _ := startTopo(t)
	r := run(t, "fdrestore", "dump", "--data", "--data-max", "4", strconv.Itoa(p.Pid))
	want := fmt.Sprintf("fdrestore: fatal: unable to dump the data of fd %d of pid %d: memfd of 5 bytes, more than --data-max 4\n", topoMemfd, p.Pid)
	if r.Code != 1 || r.Stderr != want || r.Stdout != "" {
		t.Errorf("dump --data-max 4: %s, stdout %d bytes, stderr %q; want exit 1, nothing on stdout, %q", r.Status(), len(r.Stdout), r.Stderr, want)
	}
	img, _ := dumpImage(t, 0, "--data", "--data-max", "5", strconv.Itoa(p.Pid))
	if _, mf := fileAt(t, img, p.Pid, topoMemfd); mf.DataB64 != "aGVsbG8=" {
		t.Errorf("memfd with --data-max 5 = %+v; want its data", mf)
	}
}

// TestFdrestoreDumpErrors checks the exit codes of bad arguments and of a
// pid that does not exist.
func TestFdrestoreDumpErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		code int
		line string
	}{
		{"no pid", nil, 100, "fdrestore: usage: "},
		{"bad pid", []string{"12x"}, 100, `fdrestore: fatal: invalid pid "12x"`},
		{"zero pid", []string{"0"}, 100, `fdrestore: fatal: invalid pid "0"`},
		{"no such pid", []string{"4194304"}, 111, "fdrestore: fatal: unable to dump pid 4194304: No such process"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, append([]string{"fdrestore", "dump"}, tt.args...)...)
			lines := strings.Count(r.Stderr, "\n") == 1 || (tt.code == 100 && isUsageError(r.Stderr, "fdrestore"))
			if r.Code != tt.code || !strings.HasPrefix(r.Stderr, tt.line) || !lines {
				t.Errorf("dump %q: %s, stderr %q; want exit %d and one line %q", tt.args, r.Status(), r.Stderr, tt.code, tt.line)
			}
		})
	}
}
