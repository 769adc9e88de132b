package setlock

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/lockproto"
)

func TestScanLastWins(t *testing.T) {
	for _, tt := range []struct {
		args        []string
		kind        lock.Kind
		wait, moved bool
	}{
		{[]string{"f", "true"}, lock.Exclusive, true, false},
		{[]string{"-r", "f", "true"}, lock.Shared, true, false},
		{[]string{"-rw", "f", "true"}, lock.Exclusive, true, false},
		{[]string{"-w", "-r", "-n", "f", "true"}, lock.Shared, false, false},
		{[]string{"-nN", "-d", "3", "f", "true"}, lock.Exclusive, true, true},
		{[]string{"-d3", "-Nn", "f", "true"}, lock.Exclusive, false, true},
		{[]string{"-t", "100", "--shared", "--nb", "f"}, lock.Shared, false, false},
		{[]string{"--", "-r", "true"}, lock.Exclusive, true, false},
		{[]string{"f", "-r", "-n"}, lock.Exclusive, true, false},
	} {
		kind, wait, moved := scan(tt.args)
		if kind != tt.kind || wait != tt.wait || moved != tt.moved {
			t.Errorf("scan(%q) = %v, %v, %v; want %v, %v, %v", tt.args, kind, wait, moved, tt.kind, tt.wait, tt.moved)
		}
	}
}

// fakeLockd listens on a Unix socket in a temporary directory and serves
// one connection with serve; it returns the socket's path and a function
// that waits until serve returned.
func fakeLockd(t *testing.T, serve func(c net.Conn)) (string, func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lockd")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer c.Close()
		serve(c)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return path, func() { <-done }
}

func frames(ms ...lockproto.Message) []byte {
	var b []byte
	for _, m := range ms {
		b = lockproto.AppendFrame(b, m.Marshal())
	}
	return b
}

// TestFromLockd runs setlock's side of the protocol against a fake lockd
// that answers each case as scripted, and checks the request, the message
// and the exit code.
func TestFromLockd(t *testing.T) {
	hello := func(status unix.Errno) []byte {
		return lockproto.Hello{Status: status, MaxPayload: 4096, MaxName: 1024, MaxLocks: 1024}.Marshal()
	}
	r := func(errno unix.Errno) lockproto.Message {
		return lockproto.Message{Type: lockproto.MsgReply, ID: 1, Errno: errno}
	}
	g := lockproto.Message{Type: lockproto.MsgGranted, ID: 1}
	f := func(errno unix.Errno) lockproto.Message {
		return lockproto.Message{Type: lockproto.MsgFailed, ID: 1, Errno: errno, HStatus: lockproto.KilledByLockd}
	}
	const sock = "SOCK"
	for _, tt := range []struct {
		name     string
		hello    []byte // nil: the fake closes after reading the banner
		answer   []byte // after the request; then the fake closes
		shared   bool
		wait     bool
		deadline bool
		code     int
		msg      string
	}{
		{name: "granted", hello: hello(0), answer: frames(r(0), g), wait: true},
		{name: "granted shared", hello: hello(0), answer: frames(r(0), g), shared: true, wait: true},
		{name: "try busy", hello: hello(0), answer: frames(r(0), f(unix.EBUSY)), code: 1, msg: "unable to lock db: Device or resource busy"},
		{name: "timed out", hello: hello(0), answer: frames(r(0), f(unix.ETIMEDOUT)), wait: true, deadline: true, code: 1, msg: "lock db: timed out"},
		{name: "bad name", hello: hello(0), answer: frames(r(unix.EINVAL)), wait: true, code: 1, msg: "unable to lock db: Invalid argument"},
		{name: "limit", hello: hello(0), answer: frames(r(unix.ENOLCK)), wait: true, code: 1, msg: "unable to lock db: No locks available"},
		{name: "not admitted", hello: hello(unix.EPERM), wait: true, code: 111, msg: "unable to talk to lockd at SOCK: Operation not permitted"},
		{name: "not lockd", hello: bytes.Repeat([]byte{'x'}, lockproto.HelloSize), wait: true, code: 111, msg: "unable to talk to lockd at SOCK: Protocol error"},
		{name: "no hello", wait: true, code: 111, msg: "unable to talk to lockd at SOCK: Connection reset by peer"},
		{name: "closed while pending", hello: hello(0), answer: frames(r(0)), wait: true, code: 111, msg: "unable to talk to lockd at SOCK: Connection reset by peer"},
		{name: "protocol error", hello: hello(0), answer: frames(lockproto.Message{Type: lockproto.MsgReply, Errno: unix.EPROTO}), wait: true, code: 111, msg: "unable to talk to lockd at SOCK: Protocol error"},
		{name: "g before r", hello: hello(0), answer: frames(g), wait: true, code: 111, msg: "unable to talk to lockd at SOCK: Protocol error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var banner []byte
			var req lockproto.Request
			path, served := fakeLockd(t, func(c net.Conn) {
				banner = make([]byte, len(lockproto.ClientBanner))
				if _, err := io.ReadFull(c, banner); err != nil || tt.hello == nil {
					return
				}
				c.Write(tt.hello)
				if !bytes.Equal(tt.hello, hello(0)) {
					return
				}
				p, err := lockproto.ReadFrame(c, make([]byte, lockproto.MaxPayload))
				if err != nil {
					t.Errorf("read request: %v", err)
					return
				}
				if req, err = lockproto.ParseRequest(p); err != nil {
					t.Errorf("ParseRequest: %v", err)
				}
				c.Write(tt.answer)
			})
			kind := lock.Exclusive
			if tt.shared {
				kind = lock.Shared
			}
			var deadline time.Time
			if tt.deadline {
				deadline = time.Now().Add(500 * time.Millisecond)
			}
			fd, err := fromLockd(path, "db", kind, tt.wait, deadline)
			if fd >= 0 {
				unix.Close(fd)
			}
			served()
			if string(banner) != lockproto.ClientBanner {
				t.Errorf("banner = %q; want %q", banner, lockproto.ClientBanner)
			}
			if code := exitcode.Of(err); code != tt.code {
				t.Errorf("fromLockd = %d, %v (exit %d); want exit %d", fd, err, code, tt.code)
			}
			if err != nil {
				if got, want := cli.Message(err), strings.ReplaceAll(tt.msg, sock, path); got != want {
					t.Errorf("message = %q; want %q", got, want)
				}
				if fd != -1 {
					t.Errorf("fd = %d on failure; want -1", fd)
				}
			}
			if req.Op == 0 {
				return
			}
			// setlock always asks for the locked file (FlagPassFD).
			want := lockproto.Request{Op: lockproto.OpAcquire, ID: 1, Flags: lockproto.FlagExclusive | lockproto.FlagPassFD, Timeout: lockproto.Forever, Name: "db"}
			if tt.shared {
				want.Flags = lockproto.FlagPassFD
			}
			if !tt.wait {
				want.Timeout = 0
			}
			if tt.deadline {
				if req.Timeout < 1 || req.Timeout > 500 {
					t.Errorf("timeout = %d; want 1..500", req.Timeout)
				}
				want.Timeout = req.Timeout
			}
			if req != want {
				t.Errorf("request = %+v; want %+v", req, want)
			}
		})
	}
}

// TestFromLockdGrantedFD: the fd setlock keeps is the connection, blocking
// and close-on-exec (Run clears the flag or moves it), and lockd sees it
// open until it is closed.
func TestFromLockdGrantedFD(t *testing.T) {
	closed := make(chan error, 1)
	path, _ := fakeLockd(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, len(lockproto.ClientBanner)))
		c.Write(lockproto.Hello{MaxPayload: 4096, MaxName: 1024, MaxLocks: 1}.Marshal())
		lockproto.ReadFrame(c, make([]byte, lockproto.MaxPayload))
		c.Write(frames(lockproto.Message{Type: lockproto.MsgReply, ID: 1}, lockproto.Message{Type: lockproto.MsgGranted, ID: 1}))
		_, err := c.Read(make([]byte, 1))
		closed <- err
	})
	fd, err := fromLockd(path, "db", lock.Exclusive, true, time.Time{})
	if err != nil {
		t.Fatalf("fromLockd = %v", err)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Errorf("F_GETFL = %#x, %v; want a blocking fd", fl, err)
	}
	if fdf, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fdf&unix.FD_CLOEXEC == 0 {
		t.Errorf("F_GETFD = %#x, %v; want close-on-exec", fdf, err)
	}
	select {
	case err := <-closed:
		t.Fatalf("the fake lockd saw the connection end (%v) while setlock holds it", err)
	default:
	}
	unix.Close(fd)
	if err := <-closed; !errors.Is(err, io.EOF) {
		t.Errorf("read after close = %v; want EOF", err)
	}
}

// TestFromLockdPassedFD: a G frame carries the locked file (SCM_RIGHTS):
// setlock keeps that fd, close-on-exec, and closes the connection.
func TestFromLockdPassedFD(t *testing.T) {
	file := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	path, _ := fakeLockd(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, len(lockproto.ClientBanner)))
		c.Write(lockproto.Hello{MaxPayload: 4096, MaxName: 1024, MaxLocks: 1}.Marshal())
		lockproto.ReadFrame(c, make([]byte, lockproto.MaxPayload))
		c.Write(frames(lockproto.Message{Type: lockproto.MsgReply, ID: 1}))
		f, err := os.Open(file)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		g := frames(lockproto.Message{Type: lockproto.MsgGrantedFD, ID: 1})
		if _, _, err := c.(*net.UnixConn).WriteMsgUnix(g, unix.UnixRights(int(f.Fd())), nil); err != nil {
			t.Error(err)
		}
		_, err = c.Read(make([]byte, 1))
		closed <- err
	})
	fd, err := fromLockd(path, "db", lock.Exclusive, true, time.Time{})
	if err != nil {
		t.Fatalf("fromLockd = %v", err)
	}
	defer unix.Close(fd)
	if got, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); err != nil || got != file {
		t.Errorf("fd %d is %q, %v; want the passed file %s", fd, got, err, file)
	}
	if fdf, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fdf&unix.FD_CLOEXEC == 0 {
		t.Errorf("F_GETFD = %#x, %v; want close-on-exec", fdf, err)
	}
	if err := <-closed; !errors.Is(err, io.EOF) {
		t.Errorf("the fake lockd read %v; want EOF: setlock closes the connection", err)
	}
}

// TestFromLockdUnreachable: no lockd at the path gives 111 and "unable to
// connect".
func TestFromLockdUnreachable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none")
	fd, err := fromLockd(path, "db", lock.Exclusive, true, time.Time{})
	want := "unable to connect to " + path + ": No such file or directory"
	if fd != -1 || exitcode.Of(err) != 111 || err == nil || cli.Message(err) != want {
		t.Errorf("fromLockd(%s) = %d, %v; want -1, exit 111, %q", path, fd, err, want)
	}
}

// TestFromLockdSilentPeer: a peer that accepts and never answers the
// banner makes setlock give up after handshakeWait, not hang.
func TestFromLockdSilentPeer(t *testing.T) {
	old := handshakeWait
	handshakeWait = 200 * time.Millisecond
	t.Cleanup(func() { handshakeWait = old })
	release := make(chan struct{})
	path, _ := fakeLockd(t, func(c net.Conn) { <-release })
	defer close(release)
	start := time.Now()
	fd, err := fromLockd(path, "db", lock.Exclusive, true, time.Time{})
	want := "unable to talk to lockd at " + path + ": Connection timed out"
	if fd != -1 || exitcode.Of(err) != 111 || err == nil || cli.Message(err) != want {
		t.Errorf("fromLockd(silent peer) = %d, %v; want -1, exit 111, %q", fd, err, want)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("gave up after %v; want >= 200ms", el)
	}
}

// TestFastMatchesKong checks that the command lines the fast parser takes
// give the command kong gives, and that it leaves the rest to kong; the
// common forms must be taken, or the test proves nothing.
func TestFastMatchesKong(t *testing.T) {
	for _, tt := range []struct {
		args []string
		fast bool // parseFast must take it
	}{
		{[]string{"f", "true"}, true},
		{[]string{"-s", "/run/lockd", "name", "prog", "-x"}, true},
		{[]string{"-r", "-n", "-t", "100", "-d", "3", "f", "true"}, true},
		{[]string{"-w", "-N", "-t", "0100", "-s", "@abs", "--", "f", "true", "a"}, true},
		{[]string{"-t", "5", "-t", "7", "f", "true"}, true},
		{[]string{"--", "f", "-r"}, true},
		{[]string{"f", "-r", "true"}, true},
		{[]string{"f", ""}, true},
		{[]string{"-s", "s", "f", "", "x"}, true},
		{[]string{"-rn", "f", "true"}, false},
		{[]string{"-t100", "f", "true"}, false},
		{[]string{"-t", "0x10", "f", "true"}, false},
		{[]string{"-t", "4294967296", "f", "true"}, false},
		{[]string{"-d", "-3", "f", "true"}, false},
		{[]string{"-s", "", "f", "true"}, false},
		{[]string{"--shared", "f", "true"}, false},
		{[]string{"--help"}, false},
		{[]string{"-h", "f", "true"}, false},
		{[]string{"-x", "f", "true"}, false},
		{[]string{"f"}, false},
		{[]string{"-t", "5"}, false},
		{[]string{"", "true"}, false},
		{[]string{"-", "true"}, false},
		{[]string{"--", "-f", "true"}, false},
		{nil, false},
	} {
		got, ok := parseFast(tt.args)
		if ok != tt.fast {
			t.Errorf("parseFast(%q) took it: %v; want %v", tt.args, ok, tt.fast)
		}
		if !ok {
			continue
		}
		want := new(command)
		var sink bytes.Buffer
		k, err := cli.NewParser(Applet, &cli.Env{Name: "setlock", Stdout: &sink, Stderr: &sink}, want)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Parse(tt.args); err != nil {
			t.Errorf("parseFast(%q) took what kong refuses: %v", tt.args, err)
			continue
		}
		if fmt.Sprintf("%#v", *got) != fmt.Sprintf("%#v", *want) {
			t.Errorf("parseFast(%q) = %#v; kong gives %#v", tt.args, *got, *want)
		}
	}
}
