//go:build linux

package fdholder

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type serveResult struct {
	status int
	err    error
}

// testDaemon is an in-process Serve on a socket in t.TempDir().
type testDaemon struct {
	path    string
	lfd     int
	stopW   int
	stopR   int
	done    chan serveResult
	stopped bool
	res     serveResult
}

func listenUnix(t testing.TB, path string) int {
	t.Helper()
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(s, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatalf("bind %s: %v", path, err)
	}
	if err := unix.Listen(s, unix.SOMAXCONN); err != nil {
		t.Fatal(err)
	}
	return s
}

func startDaemon(t testing.TB, cfg Config) *testDaemon {
	t.Helper()
	d := &testDaemon{path: filepath.Join(t.TempDir(), "s"), done: make(chan serveResult, 1)}
	d.lfd = listenUnix(t, d.path)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	d.stopR, d.stopW = p[0], p[1]
	go func() {
		st, err := Serve(d.lfd, cfg, d.stopR)
		d.done <- serveResult{st, err}
	}()
	t.Cleanup(func() {
		if !d.stopped {
			d.stop(t)
		}
		unix.Close(d.lfd)
		unix.Close(d.stopR)
		unix.Close(d.stopW)
	})
	return d
}

// stop sends SIGTERM's byte and waits for Serve to return.
func (d *testDaemon) stop(t testing.TB) serveResult {
	t.Helper()
	if d.stopped {
		return d.res
	}
	if _, err := unix.Write(d.stopW, []byte{byte(unix.SIGTERM)}); err != nil {
		t.Fatal(err)
	}
	select {
	case d.res = <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return 20 s after the stop request")
	}
	d.stopped = true
	return d.res
}

func (d *testDaemon) dial(t testing.TB) *Client {
	t.Helper()
	c, err := Dial(d.path, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a plain connected socket to path, for hand-made frames.
func rawConn(t testing.TB, path string) int {
	t.Helper()
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(s, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(s) })
	return s
}

// waitEOF polls s until a read returns end of file (or ECONNRESET),
// skipping data, for at most 10 s.
func waitEOF(t testing.TB, s int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 4096)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(s), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 100); err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatal(err)
		}
		if fds[0].Revents == 0 {
			continue
		}
		n, _, _, _, err := unix.Recvmsg(s, buf, make([]byte, unix.CmsgSpace(253*4)), unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		if n == 0 && err == nil || errors.Is(err, unix.ECONNRESET) {
			return
		}
	}
	t.Fatal("the daemon did not close the connection within 10 s")
}

// socketPair returns a connected pair of unix stream sockets.
func socketPair(t testing.TB) (int, int) {
	t.Helper()
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0], p[1]
}

func inode(t testing.TB, fd int) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatalf("fstat %d: %v", fd, err)
	}
	return st.Ino
}

func cloexec(t testing.TB, fd int) bool {
	t.Helper()
	f, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f&unix.FD_CLOEXEC != 0
}

// poll runs cond every 10 ms until it is true, for at most 10 s.
func poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// requireS6 returns the path of an upstream s6 tool; missing, it skips
// the test, or fails it when GOTOOLS_REQUIRE_S6=1.
func requireS6(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		p := filepath.Join("/usr/bin", tool)
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("GOTOOLS_REQUIRE_S6") == "1" {
				t.Fatalf("%s not found, and GOTOOLS_REQUIRE_S6=1", p)
			}
			t.Skipf("%s not found (GOTOOLS_REQUIRE_S6=1 makes this a failure)", p)
		}
	}
}
