//go:build linux

package fdrestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"golang.org/x/sys/unix"
)

// countFDs returns how many fds this process has open.
func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // the directory's own fd
}

func openPlan(t *testing.T, flags ...string) (*Plan, *Masters) {
	t.Helper()
	p, err := NewFlagsPlan(FlagsConfig{Flags: flags})
	if err != nil {
		t.Fatalf("NewFlagsPlan(%q) = %v", flags, err)
	}
	m, err := OpenMasters(p)
	if err != nil {
		t.Fatalf("OpenMasters(%q) = %v", flags, err)
	}
	t.Cleanup(func() { m.Close() })
	if len(m.FDs) != len(p.Masters()) {
		t.Fatalf("OpenMasters(%q): %d fds for %d masters", flags, len(m.FDs), len(p.Masters()))
	}
	for i, fd := range m.FDs {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || fl&unix.FD_CLOEXEC == 0 {
			t.Errorf("master %d (fd %d): F_GETFD = %#x, %v; want FD_CLOEXEC", i, fd, fl, err)
		}
	}
	return p, m
}

// masterAt is the master fd placed at target.
func masterAt(t *testing.T, p *Plan, m *Masters, target int) int {
	t.Helper()
	for _, e := range p.Entries {
		if e.Target == target {
			if fd := m.FD(e.Object, e.End); fd >= 0 {
				return fd
			}
		}
	}
	t.Fatalf("no master for target %d", target)
	return -1
}

func fstat(t *testing.T, fd int) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatalf("Fstat(%d) = %v", fd, err)
	}
	return st
}

func sockopt(t *testing.T, fd, level, opt int) int {
	t.Helper()
	v, err := unix.GetsockoptInt(fd, level, opt)
	if err != nil {
		t.Fatalf("GetsockoptInt(%d, %d, %d) = %v", fd, level, opt, err)
	}
	return v
}

func TestOpenMastersFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("hello world"), 0o644); err != nil {
		t.Fatal(err)
	}
	created := filepath.Join(dir, "new")
	p, m := openPlan(t, "3=file:"+path+"@6", "4=file:"+created+":wronly,creat,excl,mode=600", "5=null")

	fd := masterAt(t, p, m, 3)
	if st := fstat(t, fd); st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Errorf("fd 3 mode = %#o; want a regular file", st.Mode)
	}
	buf := make([]byte, 16)
	if n, err := unix.Read(fd, buf); string(buf[:max(n, 0)]) != "world" {
		t.Errorf("Read(fd 3) = %q, %v; want %q (position 6)", buf[:max(n, 0)], err, "world")
	}

	fd = masterAt(t, p, m, 4)
	if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); fl&unix.O_ACCMODE != unix.O_WRONLY {
		t.Errorf("fd 4 F_GETFL = %#x; want O_WRONLY", fl)
	}
	var st unix.Stat_t
	if err := unix.Stat(created, &st); err != nil || st.Mode&0o777 != 0o600 {
		t.Errorf("Stat(%q) = %#o, %v; want mode 0600", created, st.Mode, err)
	}
	if len(m.Paths) != 1 || m.Paths[0] != created {
		t.Errorf("Paths = %q; want [%q]", m.Paths, created)
	}

	fd = masterAt(t, p, m, 5)
	if st := fstat(t, fd); st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("fd 5: mode %#o rdev %d:%d; want /dev/null (1:3)", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); fl&unix.O_ACCMODE != unix.O_RDWR {
		t.Errorf("fd 5 F_GETFL = %#x; want O_RDWR", fl)
	}

	// Close removes the file it created (creat,excl), not the other one.
	if err := m.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if _, err := os.Lstat(created); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Lstat(%q) after Close = %v; want not exist", created, err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("Lstat(%q) after Close = %v; want it kept", path, err)
	}
}

func TestOpenMastersPipeAndSocketpair(t *testing.T) {
	p, m := openPlan(t, "3=pipe:a:r", "4=pipe:a:w", "5=socketpair:s:0:seqpacket", "6=socketpair:s:1:seqpacket")
	r, w := masterAt(t, p, m, 3), masterAt(t, p, m, 4)
	if _, err := unix.Write(w, []byte("ping")); err != nil {
		t.Fatalf("Write(pipe w) = %v", err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Read(r, buf); err != nil || string(buf[:n]) != "ping" {
		t.Errorf("Read(pipe r) = %q, %v; want %q", buf[:max(n, 0)], err, "ping")
	}
	if st := fstat(t, r); st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("pipe mode = %#o; want a FIFO", st.Mode)
	}
	for _, target := range []int{5, 6} {
		fd := masterAt(t, p, m, target)
		if typ := sockopt(t, fd, unix.SOL_SOCKET, unix.SO_TYPE); typ != unix.SOCK_SEQPACKET {
			t.Errorf("fd %d SO_TYPE = %d; want SOCK_SEQPACKET", target, typ)
		}
	}
	a, b := masterAt(t, p, m, 5), masterAt(t, p, m, 6)
	if _, err := unix.Write(a, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Read(b, buf); err != nil || string(buf[:n]) != "x" {
		t.Errorf("Read(socketpair 1) = %q, %v; want %q", buf[:max(n, 0)], err, "x")
	}
}

// acceptOne connects a new socket of family to sa and accepts it on ln.
func acceptOne(t *testing.T, family int, ln int, sa unix.Sockaddr) {
	t.Helper()
	c, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c)
	if err := unix.Connect(c, sa); err != nil {
		t.Fatalf("Connect(%v) = %v", sa, err)
	}
	nfd, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatalf("Accept4 = %v", err)
	}
	unix.Close(nfd)
}

func TestOpenMastersListenInet(t *testing.T) {
	p, m := openPlan(t, "3=listen:tcp:127.0.0.1:0", "4=listen:udp:127.0.0.1:0")
	tcp, udp := masterAt(t, p, m, 3), masterAt(t, p, m, 4)
	if v := sockopt(t, tcp, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); v != 1 {
		t.Errorf("tcp SO_ACCEPTCONN = %d; want 1", v)
	}
	if v := sockopt(t, tcp, unix.SOL_SOCKET, unix.SO_REUSEADDR); v != 1 {
		t.Errorf("tcp SO_REUSEADDR = %d; want 1", v)
	}
	sa, err := unix.Getsockname(tcp)
	if err != nil {
		t.Fatal(err)
	}
	in4, ok := sa.(*unix.SockaddrInet4)
	if !ok || in4.Addr != [4]byte{127, 0, 0, 1} || in4.Port == 0 {
		t.Fatalf("Getsockname(tcp) = %#v; want 127.0.0.1:port", sa)
	}
	acceptOne(t, unix.AF_INET, tcp, in4)

	if v := sockopt(t, udp, unix.SOL_SOCKET, unix.SO_TYPE); v != unix.SOCK_DGRAM {
		t.Errorf("udp SO_TYPE = %d; want SOCK_DGRAM", v)
	}
	if v := sockopt(t, udp, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); v != 0 {
		t.Errorf("udp SO_ACCEPTCONN = %d; want 0", v)
	}
	if v := sockopt(t, udp, unix.SOL_SOCKET, unix.SO_REUSEADDR); v != 1 {
		t.Errorf("udp SO_REUSEADDR = %d; want 1", v)
	}
}

func TestOpenMastersListenAnyIsDualStack(t *testing.T) {
	p, m := openPlan(t, "3=listen:tcp::0")
	fd := masterAt(t, p, m, 3)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet6:
		if sa.Addr != [16]byte{} {
			t.Errorf("Getsockname = %v; want [::]", sa.Addr)
		}
		if v := sockopt(t, fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); v != 0 {
			t.Errorf("IPV6_V6ONLY = %d; want 0", v)
		}
		// An IPv4 client reaches the [::] listener.
		acceptOne(t, unix.AF_INET, fd, &unix.SockaddrInet4{Port: sa.Port, Addr: [4]byte{127, 0, 0, 1}})
	case *unix.SockaddrInet4:
		t.Logf("no IPv6: listening on 0.0.0.0:%d", sa.Port)
		if sa.Addr != [4]byte{} {
			t.Errorf("Getsockname = %v; want 0.0.0.0", sa.Addr)
		}
	default:
		t.Fatalf("Getsockname = %#v", sa)
	}
}

func TestOpenMastersListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	abstract := fmt.Sprintf("@gotools-fdrestore-test-%d", os.Getpid())
	p, m := openPlan(t, "3=listen:unix:"+path, "4=listen:unix:"+abstract)
	for _, target := range []int{3, 4} {
		fd := masterAt(t, p, m, target)
		if v := sockopt(t, fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); v != 1 {
			t.Errorf("fd %d SO_ACCEPTCONN = %d; want 1", target, v)
		}
	}
	acceptOne(t, unix.AF_UNIX, masterAt(t, p, m, 3), &unix.SockaddrUnix{Name: path})
	acceptOne(t, unix.AF_UNIX, masterAt(t, p, m, 4), &unix.SockaddrUnix{Name: abstract})
	if len(m.Paths) != 1 || m.Paths[0] != path {
		t.Errorf("Paths = %q; want [%q] (an abstract name is no path)", m.Paths, path)
	}
	// CloseFDs keeps the path; Close (failure cleanup) removes it.
	fd := masterAt(t, p, m, 3)
	if err := m.CloseFDs(); err != nil {
		t.Fatalf("CloseFDs() = %v", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
		t.Errorf("fd %d still open after CloseFDs", fd)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("Lstat(%q) after CloseFDs = %v; want it kept", path, err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Lstat(%q) after Close = %v; want not exist", path, err)
	}
}

// bindUnix binds a unix stream socket at path; it listens if listen is set.
func bindUnix(t *testing.T, path string, listen bool) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if listen {
		if err := unix.Listen(fd, 1); err != nil {
			t.Fatal(err)
		}
	}
	return fd
}

func TestOpenMastersListenUnixStalePath(t *testing.T) {
	dir := t.TempDir()

	// A socket nobody listens on is replaced.
	stale := filepath.Join(dir, "stale")
	unix.Close(bindUnix(t, stale, true))
	p, m := openPlan(t, "3=listen:unix:"+stale)
	acceptOne(t, unix.AF_UNIX, masterAt(t, p, m, 3), &unix.SockaddrUnix{Name: stale})

	// A live listener and a regular file are left alone.
	live := filepath.Join(dir, "live")
	lfd := bindUnix(t, live, true)
	defer unix.Close(lfd)
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{live, regular} {
		p, err := NewFlagsPlan(FlagsConfig{Flags: []string{"3=listen:unix:" + path}})
		if err != nil {
			t.Fatal(err)
		}
		m, err := OpenMasters(p)
		if err == nil {
			m.Close()
			t.Errorf("OpenMasters(listen:unix:%s) = nil; want EADDRINUSE", path)
			continue
		}
		if !errors.Is(err, unix.EADDRINUSE) || exitcode.Of(err) != exitcode.Sys {
			t.Errorf("OpenMasters(listen:unix:%s) = %v (code %d); want EADDRINUSE, 111", path, err, exitcode.Of(err))
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("Lstat(%q) = %v; want it kept", path, err)
		}
	}
	acceptOne(t, unix.AF_UNIX, lfd, &unix.SockaddrUnix{Name: live})
}

func TestOpenMastersPTY(t *testing.T) {
	p, m := openPlan(t, "3=pty:t:master", "4=pty:t:slave", "5=pty:u:master")
	master, slave := masterAt(t, p, m, 3), masterAt(t, p, m, 4)
	if _, err := unix.IoctlGetTermios(slave, unix.TCGETS); err != nil {
		t.Errorf("TCGETS(slave) = %v; want a tty", err)
	}
	if _, err := unix.IoctlGetInt(master, unix.TIOCGPTN); err != nil {
		t.Errorf("TIOCGPTN(master) = %v; want a pty master", err)
	}
	if _, err := unix.Write(master, []byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Read(slave, buf); err != nil || string(buf[:n]) != "hi\n" {
		t.Errorf("Read(slave) = %q, %v; want %q", buf[:max(n, 0)], err, "hi\n")
	}
	// pty u has no slave in the plan: one master only.
	if got := len(m.FDs); got != 3 {
		t.Errorf("len(FDs) = %d; want 3", got)
	}
}

func TestOpenMastersMemfdEventfdEpoll(t *testing.T) {
	p, m := openPlan(t, "3=memfd:data", "4=eventfd:7", "5=eventfd:2:semaphore:nonblock", "6=epoll:4")
	mem := masterAt(t, p, m, 3)
	if st := fstat(t, mem); st.Size != 0 {
		t.Errorf("memfd size = %d; want 0", st.Size)
	}
	if _, err := unix.FcntlInt(uintptr(mem), unix.F_ADD_SEALS, unix.F_SEAL_WRITE); err != nil {
		t.Errorf("F_ADD_SEALS(memfd) = %v; want sealable", err)
	}
	if link, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", mem)); !strings.HasPrefix(link, "/memfd:data") {
		t.Errorf("memfd link = %q; want /memfd:data", link)
	}

	buf := make([]byte, 8)
	readCount := func(fd int) uint64 {
		t.Helper()
		if n, err := unix.Read(fd, buf); n != 8 || err != nil {
			t.Fatalf("Read(eventfd) = %d, %v", n, err)
		}
		return uint64(buf[0]) | uint64(buf[1])<<8
	}
	if v := readCount(masterAt(t, p, m, 4)); v != 7 {
		t.Errorf("eventfd:7 read %d; want 7", v)
	}
	sem := masterAt(t, p, m, 5)
	if v := readCount(sem); v != 1 {
		t.Errorf("eventfd:2:semaphore read %d; want 1", v)
	}
	if fl, _ := unix.FcntlInt(uintptr(sem), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
		t.Errorf("eventfd nonblock F_GETFL = %#x; want O_NONBLOCK", fl)
	}

	ep := masterAt(t, p, m, 6)
	if link, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", ep)); link != "anon_inode:[eventpoll]" {
		t.Errorf("epoll link = %q; want anon_inode:[eventpoll]", link)
	}
	// Registration is for the stage: the epoll is empty.
	if n, err := unix.EpollWait(ep, make([]unix.EpollEvent, 1), 0); n != 0 || err != nil {
		t.Errorf("EpollWait = %d, %v; want an empty epoll", n, err)
	}
}

func TestOpenMastersLiveSources(t *testing.T) {
	fds := make([]int, 2)
	if err := unix.Pipe2(fds, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	p, m := openPlan(t, fmt.Sprintf("3=fd:%d", fds[0]), fmt.Sprintf("4=grab:%d:%d", os.Getpid(), fds[1]), "5=dup:3", "6=close")
	if len(m.FDs) != 2 {
		t.Fatalf("len(FDs) = %d; want 2 (dup: and close have no master)", len(m.FDs))
	}
	for _, c := range []struct {
		target, orig int
	}{{3, fds[0]}, {4, fds[1]}} {
		fd := masterAt(t, p, m, c.target)
		if fd == c.orig {
			t.Errorf("fd %d master is fd %d itself; want a copy", c.target, fd)
		}
		if a, b := fstat(t, fd), fstat(t, c.orig); a.Ino != b.Ino || a.Dev != b.Dev {
			t.Errorf("fd %d master is inode %d; want %d", c.target, a.Ino, b.Ino)
		}
	}
	// Same description: a write through the grabbed copy reaches the reader.
	if _, err := unix.Write(masterAt(t, p, m, 4), []byte("g")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if n, err := unix.Read(fds[0], buf); err != nil || string(buf[:n]) != "g" {
		t.Errorf("Read = %q, %v; want %q", buf[:max(n, 0)], err, "g")
	}
}

func TestOpenMastersErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		flags []string
		code  int
		msg   string
	}{
		{"missing file", []string{"3=file:" + dir + "/nope"}, exitcode.Sys,
			"unable to open " + dir + "/nope for fd 3: no such file or directory"},
		{"closed fd", []string{"3=null", "4=fd:100000"}, exitcode.Sys,
			"unable to duplicate fd 100000 for fd 4: bad file descriptor"},
		{"grab missing fd", []string{fmt.Sprintf("3=grab:%d:100000", os.Getpid())}, exitcode.Sys,
			fmt.Sprintf("unable to grab fd 100000 of pid %d for fd 3: pid %d has no fd 100000", os.Getpid(), os.Getpid())},
		{"hold without a holder", []string{"3=null", "4=hold:" + dir + "/nofdh:tcp:80"}, exitcode.Sys,
			"unable to connect to " + dir + "/nofdh for fd 4: no such file or directory"},
		{"bind in use", []string{"3=listen:unix:" + dir}, exitcode.Sys,
			"unable to bind " + dir + " for fd 3: address already in use"},
		{"directory", []string{"3=null", "4=file:" + dir}, exitcode.Refused,
			"refusing to place a directory at fd 4 (file:" + dir + "): it can reach outside a container's root; use --allow-dirfd"},
		{"O_PATH", []string{"5=file:/dev/null:path"}, exitcode.Refused,
			"refusing to place an O_PATH fd at fd 5 (file:/dev/null:path): it can reach outside a container's root; use --allow-dirfd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewFlagsPlan(FlagsConfig{Flags: tc.flags})
			if err != nil {
				t.Fatal(err)
			}
			before := countFDs(t)
			m, err := OpenMasters(p)
			if err == nil {
				m.Close()
				t.Fatalf("OpenMasters(%q) = nil; want an error", tc.flags)
			}
			if err.Error() != tc.msg || exitcode.Of(err) != tc.code {
				t.Errorf("OpenMasters(%q) = %q (code %d); want %q (code %d)", tc.flags, err, exitcode.Of(err), tc.msg, tc.code)
			}
			if after := countFDs(t); after != before {
				t.Errorf("open fds %d before, %d after a failure; want no leak", before, after)
			}
		})
	}
}

func TestOpenMastersFailureClosesEverything(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	created := filepath.Join(dir, "created")
	flags := []string{
		"3=pipe:a:r", "4=pipe:a:w", "5=pty:t:master", "6=pty:t:slave", "7=memfd:m",
		"8=file:" + created + ":wronly,creat,excl", "9=socketpair:s:0", "10=eventfd:1", "11=epoll:",
		"12=file:" + dir + "/missing", "13=null", "14=listen:unix:" + sock,
	}
	p, err := NewFlagsPlan(FlagsConfig{Flags: flags})
	if err != nil {
		t.Fatal(err)
	}
	countFDs(t)
	before := countFDs(t)
	m, err := OpenMasters(p)
	if err == nil {
		m.Close()
		t.Fatal("OpenMasters = nil; want the missing file to fail")
	}
	if !errors.Is(err, unix.ENOENT) || exitcode.Of(err) != exitcode.Sys || strings.Contains(err.Error(), "\n") {
		t.Errorf("OpenMasters = %q (code %d); want one line, ENOENT, 111", err, exitcode.Of(err))
	}
	if after := countFDs(t); after != before {
		t.Errorf("open fds %d before, %d after a failure; want no leak", before, after)
	}
	// The listener (opened first) and the creat,excl file are gone.
	for _, path := range []string{sock, created} {
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Lstat(%q) after a failure = %v; want it removed", path, err)
		}
	}
}

func TestOpenMastersListenInetErrors(t *testing.T) {
	// A port in use by a listener: bind fails even with SO_REUSEADDR.
	p, m := openPlan(t, "3=listen:tcp:127.0.0.1:0")
	sa, err := unix.Getsockname(masterAt(t, p, m, 3))
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*unix.SockaddrInet4).Port
	p2, err := NewFlagsPlan(FlagsConfig{Flags: []string{fmt.Sprintf("3=listen:tcp:127.0.0.1:%d", port)}})
	if err != nil {
		t.Fatal(err)
	}
	before := countFDs(t)
	m2, err := OpenMasters(p2)
	if err == nil {
		m2.Close()
		t.Fatalf("OpenMasters(port %d in use) = nil; want EADDRINUSE", port)
	}
	want := fmt.Sprintf("unable to bind 127.0.0.1:%d for fd 3: address already in use", port)
	if err.Error() != want || exitcode.Of(err) != exitcode.Sys {
		t.Errorf("OpenMasters = %q (code %d); want %q (code 111)", err, exitcode.Of(err), want)
	}
	if after := countFDs(t); after != before {
		t.Errorf("open fds %d before, %d after a failure; want no leak", before, after)
	}
}

func TestOpenMastersListenIPv6Loopback(t *testing.T) {
	probe, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no IPv6: %v", err)
	}
	err = unix.Bind(probe, &unix.SockaddrInet6{Addr: [16]byte{15: 1}})
	unix.Close(probe)
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	p, m := openPlan(t, "3=listen:tcp:[::1]:0")
	fd := masterAt(t, p, m, 3)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	in6, ok := sa.(*unix.SockaddrInet6)
	if !ok || in6.Addr != [16]byte{15: 1} {
		t.Fatalf("Getsockname = %#v; want [::1]:port", sa)
	}
	acceptOne(t, unix.AF_INET6, fd, &unix.SockaddrInet6{Port: in6.Port, Addr: in6.Addr})
}

func TestVerifyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		check      FileCheck
		msg        string // "" for a match
	}{
		{"same inode", path, FileCheck{Dev: uint64(st.Dev), Ino: st.Ino, HasIno: true}, ""},
		{"other inode", path, FileCheck{Dev: uint64(st.Dev), Ino: st.Ino + 7, HasIno: true}, fmt.Sprintf("(inode %d, found %d)", st.Ino+7, st.Ino)},
		{"size without inode", path, FileCheck{Size: 3, HasSize: true}, ""},
		{"other size", path, FileCheck{Size: 4, HasSize: true}, "(size 4, found 3)"},
		{"size ignored with inode", path, FileCheck{Dev: uint64(st.Dev), Ino: st.Ino, HasIno: true, Size: 9, HasSize: true}, ""},
		{"device number", "/dev/null", FileCheck{RDev: unix.Mkdev(1, 3), HasRDev: true}, ""},
		{"other device number", "/dev/null", FileCheck{RDev: unix.Mkdev(1, 5), HasRDev: true}, "(device number 1:5, found 1:3)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewFlagsPlan(FlagsConfig{Flags: []string{"3=file:" + tc.path}})
			if err != nil {
				t.Fatal(err)
			}
			c := tc.check
			p.Objects[0].Source.Verify = &c
			m, err := OpenMasters(p)
			switch {
			case tc.msg == "" && err != nil:
				t.Errorf("OpenMasters = %v; want the file", err)
			case tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg) || exitcode.Of(err) != exitcode.Sys):
				t.Errorf("OpenMasters = %v; want exit 111 with %q", err, tc.msg)
			}
			if m != nil {
				m.Close()
			}
		})
	}
}
