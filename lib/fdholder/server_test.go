//go:build linux

package fdholder

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/tai"
)

func TestStoreRetrieveListDelete(t *testing.T) {
	d := startDaemon(t, Config{})
	c := d.dial(t)
	a, _ := socketPair(t)
	if err := c.Store(a, "tcp:80", tai.Stamp{}); err != nil {
		t.Fatalf("Store = %v", err)
	}
	err := c.Store(a, "tcp:80", tai.Stamp{})
	var re *RefusedError
	if !errors.As(err, &re) || re.Errno != unix.EBUSY || !errors.Is(err, unix.EBUSY) {
		t.Fatalf("second Store = %v; want EBUSY", err)
	}
	if err.Error() != "device or resource busy" {
		t.Errorf("Error() = %q", err.Error())
	}
	if err := c.Store(a, "b", tai.Stamp{}); err != nil {
		t.Fatal(err)
	}
	ids, err := c.List()
	if err != nil || !slices.Equal(ids, []string{"b", "tcp:80"}) {
		t.Fatalf("List = %q, %v", ids, err)
	}
	fd, err := c.Retrieve("tcp:80", false)
	if err != nil {
		t.Fatalf("Retrieve = %v", err)
	}
	if inode(t, fd) != inode(t, a) || !cloexec(t, fd) {
		t.Errorf("retrieved fd: inode %d cloexec %v; want inode %d, cloexec", inode(t, fd), cloexec(t, fd), inode(t, a))
	}
	unix.Close(fd)
	fd, err = c.Retrieve("tcp:80", true)
	if err != nil {
		t.Fatalf("Retrieve(delete) = %v", err)
	}
	if inode(t, fd) != inode(t, a) {
		t.Errorf("Retrieve(delete) gave inode %d; want %d", inode(t, fd), inode(t, a))
	}
	unix.Close(fd)
	if _, err := c.Retrieve("tcp:80", false); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Retrieve after delete = %v; want ENOENT", err)
	}
	if err := c.Delete("b"); err != nil {
		t.Errorf("Delete = %v", err)
	}
	if err := c.Delete("b"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("second Delete = %v; want ENOENT", err)
	}
	if ids, err := c.List(); err != nil || len(ids) != 0 {
		t.Errorf("List = %q, %v; want none", ids, err)
	}
	if err := c.Store(a, "", tai.Stamp{}); !errors.Is(err, ErrInvalidID) {
		t.Errorf("Store(\"\") = %v; want ErrInvalidID", err)
	}
	if r := d.stop(t); r.status != 2 || r.err != nil {
		t.Errorf("Serve = %d, %v; want 2 (a client left, no fd)", r.status, r.err)
	}
}

// TestHeldFDIsClosed checks, through the peer of a held socket, that the
// daemon closes what it deletes and what expires.
func TestHeldFDIsClosed(t *testing.T) {
	d := startDaemon(t, Config{})
	c := d.dial(t)
	for _, tc := range []struct {
		name string
		op   func(id string, fd int) error
	}{
		{"delete", func(id string, fd int) error {
			if err := c.Store(fd, id, tai.Stamp{}); err != nil {
				return err
			}
			return c.Delete(id)
		}},
		{"expiry", func(id string, fd int) error {
			return c.Store(fd, id, LimitAfter(200*time.Millisecond))
		}},
		{"retrieve-delete", func(id string, fd int) error {
			if err := c.Store(fd, id, tai.Stamp{}); err != nil {
				return err
			}
			r, err := c.Retrieve(id, true)
			if err == nil {
				unix.Close(r)
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(p[1])
			start := time.Now()
			if err := tc.op(tc.name, p[0]); err != nil {
				t.Fatal(err)
			}
			unix.Close(p[0])
			waitEOF(t, p[1])
			if tc.name == "expiry" {
				if el := time.Since(start); el < 200*time.Millisecond {
					t.Errorf("expired after %v; want >= 200ms", el)
				}
				if ids, err := c.List(); err != nil || len(ids) != 0 {
					t.Errorf("List = %q, %v; want none", ids, err)
				}
			}
		})
	}
}

func TestMaxFDsENFILE(t *testing.T) {
	d := startDaemon(t, Config{MaxFDs: 2})
	c := d.dial(t)
	a, _ := socketPair(t)
	for i, want := range []error{nil, nil, unix.ENFILE} {
		err := c.Store(a, fmt.Sprint(i), tai.Stamp{})
		if (want == nil && err != nil) || (want != nil && !errors.Is(err, want)) {
			t.Errorf("Store #%d = %v; want %v", i, err, want)
		}
	}
	if err := c.SetDump([]Entry{{FD: a, ID: "x"}}); !errors.Is(err, unix.ENFILE) {
		t.Errorf("SetDump over -n = %v; want ENFILE", err)
	}
	if r := d.stop(t); r.status != 3 {
		t.Errorf("status = %d; want 3 (fds held, client left)", r.status)
	}
}

func TestClamps(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{0, 16}, {-1, 1}, {1, 1}, {256, 256}, {257, 256}, {1000, 256}} {
		if got := ClampMaxConn(tc.in); got != tc.want {
			t.Errorf("ClampMaxConn(%d) = %d; want %d", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   int
		soft uint64
		want int
	}{
		{0, 4096, 1000}, {0, 1024, 1000}, {0, 1006, 1000}, {0, 1005, 999}, {5000, 1024, 1018},
		{0, unix.RLIM_INFINITY, 1000}, {7, 3, 1}, {1, 1 << 20, 1},
	} {
		if got := ClampMaxFDs(tc.in, tc.soft); got != tc.want {
			t.Errorf("ClampMaxFDs(%d, %d) = %d; want %d", tc.in, tc.soft, got, tc.want)
		}
	}
}

func TestLameDuckStatus(t *testing.T) {
	for _, tc := range []struct {
		name           string
		store, connect bool
		want           int
	}{
		{"empty", false, false, 0},
		{"fds", true, false, 1},
		{"client", false, true, 2},
		{"both", true, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDaemon(t, Config{})
			c, err := Dial(d.path, 0)
			if err != nil {
				t.Fatal(err)
			}
			if tc.store {
				a, _ := socketPair(t)
				if err := c.Store(a, "x", tai.Stamp{}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.connect {
				defer c.Close()
				if _, err := c.List(); err != nil { // accepted for sure
					t.Fatal(err)
				}
			} else {
				c.Close()
				poll(t, "the daemon to see the client go", func() bool {
					c2 := d.dial(t)
					ok := true
					if _, err := c2.List(); err != nil {
						ok = false
					}
					c2.Close()
					return ok
				})
			}
			if r := d.stop(t); r.status != tc.want || r.err != nil {
				t.Errorf("Serve = %d, %v; want %d", r.status, r.err, tc.want)
			}
		})
	}
}

// TestLameDuckDeadline: a client that does not read what it is owed
// keeps the daemon in lame duck until -T.
func TestLameDuckDeadline(t *testing.T) {
	const lame = 300 * time.Millisecond
	d := startDaemon(t, Config{LameDuck: lame})
	c := d.dial(t)
	a, _ := socketPair(t)
	if err := c.Store(a, strings.Repeat("x", MaxIDLen), tai.Stamp{}); err != nil {
		t.Fatal(err)
	}
	s := rawConn(t, d.path)
	var reqs []byte
	for range 3000 { // 800 kB of answers: more than a socket holds
		reqs = append(AppendHeader(reqs, 1, 0), OpList)
	}
	if _, err := unix.Write(s, reqs); err != nil {
		t.Fatal(err)
	}
	poll(t, "the daemon to read the requests", func() bool {
		n, err := unix.IoctlGetInt(s, unix.SIOCOUTQ)
		return err == nil && n == 0
	})
	start := time.Now()
	r := d.stop(t)
	if el := time.Since(start); el < lame {
		t.Errorf("Serve returned %v after the stop; want >= %v", el, lame)
	}
	if r.status != 3 {
		t.Errorf("status = %d; want 3", r.status)
	}
}

func TestIdleTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	d := startDaemon(t, Config{Timeout: timeout})
	idle := d.dial(t)
	if _, err := idle.List(); err != nil {
		t.Fatal(err)
	}
	s := rawConn(t, d.path)
	start := time.Now()
	if _, err := unix.Write(s, []byte{0, 0, 0}); err != nil { // half a header
		t.Fatal(err)
	}
	waitEOF(t, s)
	if el := time.Since(start); el < timeout {
		t.Errorf("dropped after %v; want >= %v", el, timeout)
	}
	// Negative control: the client idle between requests stays.
	if _, err := idle.List(); err != nil {
		t.Errorf("List on the idle client = %v; want it kept", err)
	}
	// A client that never sends anything is dropped too.
	s2 := rawConn(t, d.path)
	waitEOF(t, s2)
}

func TestMaxConn(t *testing.T) {
	d := startDaemon(t, Config{MaxConn: 1})
	a := d.dial(t)
	if _, err := a.List(); err != nil {
		t.Fatal(err)
	}
	b, err := Dial(d.path, 10*time.Second) // waits in the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.send([]byte{OpList}, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := a.List(); err != nil {
			t.Fatal(err)
		}
	}
	fds := []unix.PollFd{{Fd: int32(b.FD()), Events: unix.POLLIN}}
	if n, _ := unix.Poll(fds, 0); n != 0 {
		t.Fatal("the second client was answered while the first was connected")
	}
	a.Close()
	p, rfds, err := b.recv(time.Now().Add(10 * time.Second))
	if ids, e, err2 := ParseList(p, len(rfds)); err != nil || err2 != nil || e != 0 || len(ids) != 0 {
		t.Errorf("second client's list = %q, %v, %v, %v", ids, e, err, err2)
	}
}

func TestAccessRules(t *testing.T) {
	mustRule := func(s string) Rule {
		r, err := ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	d := startDaemon(t, Config{Rules: []Rule{mustRule("0,store,list:^ok")}})
	c := d.dial(t)
	a, _ := socketPair(t)
	if err := c.Store(a, "ok1", tai.Stamp{}); err != nil {
		t.Errorf("Store(ok1) = %v", err)
	}
	if err := c.Store(a, "no", tai.Stamp{}); !errors.Is(err, unix.EPERM) {
		t.Errorf("Store(no) = %v; want EPERM", err)
	}
	if _, err := c.Retrieve("ok1", false); !errors.Is(err, unix.EPERM) {
		t.Errorf("Retrieve without the right = %v; want EPERM", err)
	}
	if ids, err := c.List(); err != nil || !slices.Equal(ids, []string{"ok1"}) {
		t.Errorf("List = %q, %v", ids, err)
	}
	if _, err := c.GetDump(); !errors.Is(err, unix.EPERM) {
		t.Errorf("GetDump = %v; want EPERM", err)
	}
	if err := c.SetDump([]Entry{{FD: a, ID: "ok2"}}); !errors.Is(err, unix.EPERM) {
		t.Errorf("SetDump = %v; want EPERM", err)
	}
	if err := c.Delete("ok1"); err != nil {
		t.Errorf("Delete(ok1) = %v", err)
	}

	d2 := startDaemon(t, Config{Rules: []Rule{mustRule("0,retrieve")}})
	c2 := d2.dial(t)
	if err := c2.Store(a, "x", tai.Stamp{}); !errors.Is(err, unix.EPERM) {
		t.Errorf("Store with retrieve only = %v; want EPERM", err)
	}
	if _, err := c2.Retrieve("x", true); !errors.Is(err, unix.EPERM) {
		t.Errorf("Retrieve(delete) with retrieve only = %v; want EPERM", err)
	}
	if _, err := c2.Retrieve("x", false); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Retrieve with retrieve only = %v; want ENOENT", err)
	}
}

// TestMalformedFramesCloseOnlyTheirConnection sends each malformed
// request on its own connection while another client keeps working.
func TestMalformedFramesCloseOnlyTheirConnection(t *testing.T) {
	d := startDaemon(t, Config{})
	good := d.dial(t)
	a, _ := socketPair(t)
	if err := good.Store(a, "kept", tai.Stamp{}); err != nil {
		t.Fatal(err)
	}
	limit := NeverLimit(tai.Now()).Append(nil)
	frame := func(p []byte, nfds int) []byte { return append(AppendHeader(nil, len(p), nfds), p...) }
	cat := func(bs ...[]byte) []byte { return slices.Concat(bs...) }
	for _, tc := range []struct {
		name string
		data []byte
		fds  int // how many fds to attach
	}{
		{"empty payload", frame(nil, 0), 0},
		{"unknown opcode", frame([]byte("X"), 0), 0},
		{"huge length", AppendHeader(nil, 1<<28, 0), 0},
		{"too many fds announced", AppendHeader(nil, 1, 254), 0},
		{"store without fd", frame(cat([]byte{'S'}, limit, []byte{1, 'a', 0}), 0), 0},
		{"store fd count mismatch", frame(cat([]byte{'S'}, limit, []byte{1, 'a', 0}), 1), 0},
		{"extra fd", frame([]byte("L"), 0), 1},
		{"store missing NUL", frame(cat([]byte{'S'}, limit, []byte{1, 'a', 'b'}), 1), 1},
		{"store bad idlen", frame(cat([]byte{'S'}, limit, []byte{5, 'a', 0}), 1), 1},
		{"store embedded NUL", frame(cat([]byte{'S'}, limit, []byte{3, 'a', 0, 'b', 0}), 1), 1},
		{"delete empty id", frame([]byte{'D', 0, 0}, 0), 0},
		{"retrieve short", frame([]byte{'R', 0, 1, 0}, 0), 0},
		{"list with bytes", frame([]byte("Lx"), 0), 0},
		{"setdump short", frame([]byte("!\x00\x00\x01"), 0), 0},
		{"dot without bang", frame(cat([]byte{'.'}, limit, []byte{1, 'a', 0}), 1), 1},
		{"request during setdump", cat(frame([]byte("!\x00\x00\x00\x02"), 0), frame([]byte("L"), 0)), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := rawConn(t, d.path)
			var fds []int
			for range tc.fds {
				p, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				defer unix.Close(p[0])
				defer unix.Close(p[1])
				fds = append(fds, p[0])
			}
			if _, err := sendFrame(s, tc.data, fds); err != nil {
				t.Fatal(err)
			}
			waitEOF(t, s)
			if ids, err := good.List(); err != nil || !slices.Equal(ids, []string{"kept"}) {
				t.Errorf("List on the good client = %q, %v", ids, err)
			}
		})
	}
}

// TestPartialFrames feeds a request one byte at a time.
func TestPartialFrames(t *testing.T) {
	d := startDaemon(t, Config{})
	s := rawConn(t, d.path)
	a, _ := socketPair(t)
	req := append(AppendHeader(nil, 1+12+3, 1), AppendDumpEntry([]byte{OpStore}, NeverLimit(tai.Now()), "p")...)
	if _, err := sendFrame(s, req[:1], []int{a}); err != nil {
		t.Fatal(err)
	}
	for _, b := range req[1:] {
		if _, err := unix.Write(s, []byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	c := NewClient(s)
	p, fds, err := c.recv(time.Now().Add(10 * time.Second))
	if e, err2 := ParseStatus(p, len(fds)); err != nil || err2 != nil || e != 0 {
		t.Fatalf("store answer = %v, %v, %v", e, err, err2)
	}
	ids, err := d.dial(t).List()
	if err != nil || !slices.Equal(ids, []string{"p"}) {
		t.Errorf("List = %q, %v", ids, err)
	}
}

// TestDumpRoundTrip moves 600 fds (three messages each way) from one
// daemon to another with GetDump and SetDump.
func TestDumpRoundTrip(t *testing.T) {
	src, dst := startDaemon(t, Config{}), startDaemon(t, Config{})
	cs, cd := src.dial(t), dst.dial(t)
	const n = 600
	want := map[string]uint64{}
	limits := map[string]tai.Stamp{}
	base := tai.FromTime(time.Now().Add(time.Hour))
	for i := range n {
		p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("fd-%03d", i)
		var l tai.Stamp
		if i%2 == 0 {
			l = tai.Stamp{Sec: base.Sec + uint64(i), Nsec: uint32(i)}
		}
		if err := cs.Store(p[0], id, l); err != nil {
			t.Fatal(err)
		}
		want[id], limits[id] = inode(t, p[0]), l
		unix.Close(p[0])
		unix.Close(p[1])
	}
	es, err := cs.GetDump()
	if err != nil {
		t.Fatalf("GetDump = %v", err)
	}
	if len(es) != n {
		t.Fatalf("GetDump gave %d entries; want %d", len(es), n)
	}
	for _, e := range es {
		if inode(t, e.FD) != want[e.ID] || e.Limit != limits[e.ID] || !cloexec(t, e.FD) {
			t.Errorf("entry %s: inode %d limit %v; want %d %v", e.ID, inode(t, e.FD), e.Limit, want[e.ID], limits[e.ID])
		}
	}
	if err := cd.SetDump(es); err != nil {
		t.Fatalf("SetDump = %v", err)
	}
	for _, e := range es {
		unix.Close(e.FD)
	}
	es2, err := cd.GetDump()
	if err != nil || len(es2) != n {
		t.Fatalf("GetDump from the destination = %d entries, %v", len(es2), err)
	}
	for _, e := range es2 {
		if inode(t, e.FD) != want[e.ID] || e.Limit != limits[e.ID] {
			t.Errorf("moved entry %s: inode %d limit %v; want %d %v", e.ID, inode(t, e.FD), e.Limit, want[e.ID], limits[e.ID])
		}
		unix.Close(e.FD)
	}
	// setdump replaces an id that exists.
	a, _ := socketPair(t)
	if err := cd.SetDump([]Entry{{FD: a, ID: "fd-000"}}); err != nil {
		t.Fatal(err)
	}
	fd, err := cd.Retrieve("fd-000", false)
	if err != nil || inode(t, fd) != inode(t, a) {
		t.Errorf("Retrieve of a replaced id: %v, inode %d; want %d", err, inode(t, fd), inode(t, a))
	}
	unix.Close(fd)
}

// TestEqualLimitsMadeDistinct: a second fd with the same limit gets it
// plus 1 ns.
func TestEqualLimitsMadeDistinct(t *testing.T) {
	d := startDaemon(t, Config{})
	c := d.dial(t)
	a, _ := socketPair(t)
	l := tai.FromTime(time.Now().Add(time.Hour))
	l.Nsec = 999999999
	for _, id := range []string{"a", "b", "c"} {
		if err := c.Store(a, id, l); err != nil {
			t.Fatal(err)
		}
	}
	es, err := c.GetDump()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]tai.Stamp{}
	for _, e := range es {
		got[e.ID] = e.Limit
		unix.Close(e.FD)
	}
	want := map[string]tai.Stamp{
		"a": l, "b": {Sec: l.Sec + 1, Nsec: 0}, "c": {Sec: l.Sec + 1, Nsec: 1},
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("limit of %s = %v; want %v", id, got[id], w)
		}
	}
}

func TestClosedAtConnect(t *testing.T) {
	// A client the daemon closes at once sees ErrClosed: simulate a
	// denial by closing the server end of a pair.
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(p[1])
	c := NewClient(p[0])
	defer c.Close()
	if _, err := c.List(); !errors.Is(err, ErrClosed) {
		t.Errorf("List on a closed connection = %v; want ErrClosed", err)
	}
}
