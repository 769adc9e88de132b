package lockproto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSpecExample is the acquire example of spec/locks.md, byte for byte.
func TestSpecExample(t *testing.T) {
	r := Request{Op: OpAcquire, ID: 1, Flags: byte(Exclusive), Timeout: 500, Name: "db"}
	got := hex.EncodeToString(AppendFrame(nil, r.Marshal()))
	if want := "0000000e410000000101000001f4000264" + "62"; got != want {
		t.Errorf("frame = %s; want %s", got, want)
	}
	p, n, err := SplitFrame(AppendFrame(nil, r.Marshal()))
	if err != nil || n != 18 {
		t.Fatalf("SplitFrame = %d, %v", n, err)
	}
	back, err := ParseRequest(p)
	if err != nil || back != r {
		t.Errorf("ParseRequest = %+v, %v; want %+v", back, err, r)
	}
}

func TestHello(t *testing.T) {
	h := Hello{Status: syscall.EUSERS, MaxPayload: 4096, MaxName: 1024, MaxLocks: 3}
	b := h.Marshal()
	if len(b) != HelloSize || !bytes.HasPrefix(b, []byte(ServerBanner)) {
		t.Fatalf("Marshal = %q", b)
	}
	if got, err := ParseHello(b); err != nil || got != h {
		t.Errorf("ParseHello = %+v, %v; want %+v", got, err, h)
	}
	b[3] = 'X'
	if _, err := ParseHello(b); !errors.Is(err, syscall.EPROTO) {
		t.Errorf("ParseHello(bad banner) = %v; want EPROTO", err)
	}
}

func TestSplitFrame(t *testing.T) {
	for _, tt := range []struct {
		in      string
		payload string
		n       int
		proto   bool
	}{
		{in: "", n: 0},
		{in: "\x00\x00\x00", n: 0},
		{in: "\x00\x00\x00\x02a", n: 0},
		{in: "\x00\x00\x00\x02ab", payload: "ab", n: 6},
		{in: "\x00\x00\x00\x01abc", payload: "a", n: 5},
		{in: "\x00\x00\x00\x00", proto: true},
		{in: "\x00\x00\x10\x01", proto: true},
		{in: "\xff\xff\xff\xff", proto: true},
	} {
		p, n, err := SplitFrame([]byte(tt.in))
		if tt.proto != errors.Is(err, syscall.EPROTO) || n != tt.n || string(p) != tt.payload {
			t.Errorf("SplitFrame(%q) = %q, %d, %v; want %q, %d, proto %v", tt.in, p, n, err, tt.payload, tt.n, tt.proto)
		}
	}
	buf := make([]byte, MaxPayload)
	if p, err := ReadFrame(strings.NewReader("\x00\x00\x10\x00"+strings.Repeat("z", 4096)), buf); err != nil || len(p) != 4096 {
		t.Errorf("ReadFrame(4096) = %d bytes, %v", len(p), err)
	}
	if _, err := ReadFrame(strings.NewReader("\x00\x00\x10\x01"), buf); !errors.Is(err, syscall.EPROTO) {
		t.Errorf("ReadFrame(4097) = %v; want EPROTO", err)
	}
}

func TestParseRequestErrors(t *testing.T) {
	for _, p := range []string{"", "Z\x00\x00\x00\x01", "R\x00\x00\x00", "R\x00\x00\x00\x01\x00", "L", "A\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00\x02d",
		"A\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00"} {
		if r, err := ParseRequest([]byte(p)); !errors.Is(err, syscall.EPROTO) {
			t.Errorf("ParseRequest(%q) = %+v, %v; want EPROTO", p, r, err)
		}
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{Type: MsgReply, ID: 7, Errno: syscall.ENOENT},
		{Type: MsgGranted, ID: 1},
		{Type: MsgFailed, ID: 2, Errno: syscall.ETIMEDOUT, HStatus: KilledByLockd},
		{Type: MsgLost, ID: 3, Errno: syscall.EOWNERDEAD, HStatus: 137},
		{Type: MsgEntry, ID: 9, Entry: Entry{ID: 4, PID: 100, UID: 65534, HelperPID: 101, Name: "a/b c", Mode: Exclusive, Held: true, Age: 1500 * time.Millisecond, Left: 0}},
		{Type: MsgEntry, ID: 9, Entry: Entry{ID: 5, PID: 1, Name: "x", Left: -1, Age: 0}},
		{Type: MsgEntry, ID: 9, Entry: Entry{ID: 6, PID: 1, Name: "y", Left: 250 * time.Millisecond}},
	} {
		got, err := ParseServerMessage(m.Marshal())
		if err != nil || got != m {
			t.Errorf("round trip of %+v = %+v, %v", m, got, err)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, want := range map[string]syscall.Errno{
		"db": 0, "a/b": 0, "a b\x01\xff": 0, "..x": 0, strings.Repeat("n", 255): 0,
		"": syscall.EINVAL, "/a": syscall.EINVAL, "a//b": syscall.EINVAL, "a/": syscall.EINVAL,
		".": syscall.EINVAL, "..": syscall.EINVAL, "a/../b": syscall.EINVAL, "a/./b": syscall.EINVAL, "a\x00b": syscall.EINVAL,
		strings.Repeat("n", 256):                        syscall.ENAMETOOLONG,
		strings.Repeat("a/", 512) + "b":                 syscall.ENAMETOOLONG,
		strings.Repeat("n", 256) + "/..":                syscall.EINVAL,
		strings.Repeat("abcd/", 204) + "abc" + "/" + "": syscall.EINVAL,
	} {
		if got := CheckName(name); got != want {
			t.Errorf("CheckName(%.40q) = %v; want %v", name, got, want)
		}
	}
}

func TestQuote(t *testing.T) {
	if got, want := Quote("a b\t\\\xff"), `a b\x09\\\xff`; got != want {
		t.Errorf("Quote = %q; want %q", got, want)
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add(Request{Op: OpAcquire, ID: 1, Flags: 1, Timeout: 500, Name: "db"}.Marshal())
	f.Add(Request{Op: OpAcquire, ID: 2, Flags: FlagExclusive | FlagPassFD, Timeout: Forever, Name: "a/b"}.Marshal())
	f.Add(Request{Op: OpRelease, ID: 3}.Marshal())
	f.Add(Request{Op: OpList, ID: 4}.Marshal())
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := ParseRequest(p)
		if err != nil {
			if !errors.Is(err, syscall.EPROTO) {
				t.Fatalf("error %v is not EPROTO", err)
			}
			return
		}
		if back := r.Marshal(); !bytes.Equal(back, p) {
			t.Fatalf("Marshal(ParseRequest(%x)) = %x", p, back)
		}
	})
}

func FuzzParseServerMessage(f *testing.F) {
	f.Add(Message{Type: MsgReply, ID: 1}.Marshal())
	f.Add(Message{Type: MsgLost, ID: 1, Errno: syscall.EOWNERDEAD, HStatus: 137}.Marshal())
	f.Add(Message{Type: MsgGrantedFD, ID: 7}.Marshal())
	f.Add(Message{Type: MsgEntry, ID: 1, Entry: Entry{Name: "db", Left: -1}}.Marshal())
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := ParseServerMessage(p)
		if err != nil {
			if !errors.Is(err, syscall.EPROTO) {
				t.Fatalf("error %v is not EPROTO", err)
			}
			return
		}
		if m.Type != MsgEntry {
			if back := m.Marshal(); !bytes.Equal(back, p) {
				t.Fatalf("Marshal(ParseServerMessage(%x)) = %x", p, back)
			}
		}
	})
}

func FuzzSplitFrame(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x02ab"))
	f.Add([]byte("\x00\x00\x10\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := SplitFrame(b)
		if err != nil {
			return
		}
		if n == 0 {
			if p != nil {
				t.Fatal("payload without a frame")
			}
			return
		}
		if n != len(p)+4 || len(p) == 0 || len(p) > MaxPayload || n > len(b) {
			t.Fatalf("SplitFrame(%x) = %d bytes, n %d", b, len(p), n)
		}
	})
}

func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"db", "a/b", "../x", "a//b", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if e := CheckName(name); e != 0 {
			if NameProblem(name) == "" {
				t.Fatalf("CheckName(%q) = %v with no NameProblem", name, e)
			}
			return
		}
		if why := NameProblem(name); why != "" {
			t.Fatalf("NameProblem(%q) = %q for a good name", name, why)
		}
		if name == "" || len(name) > MaxName || strings.HasPrefix(name, "/") || strings.Contains(name, "\x00") {
			t.Fatalf("CheckName(%q) accepted it", name)
		}
		for _, c := range strings.Split(name, "/") {
			if c == "" || c == "." || c == ".." || len(c) > MaxComponent {
				t.Fatalf("CheckName(%q) accepted component %q", name, c)
			}
		}
	})
}

// TestNameProblem: every name CheckName refuses gets a reason, and only
// those.
func TestNameProblem(t *testing.T) {
	for _, name := range []string{"", "a\x00b", "/abs", "a//b", "a/", "./a", "a/..", strings.Repeat("x", MaxName+1),
		strings.Repeat("y", MaxComponent+1), "ok", "a/b", "\xff\xfe", "sp ace"} {
		e, why := CheckName(name), NameProblem(name)
		if (e != 0) != (why != "") {
			t.Errorf("CheckName(%q) = %v but NameProblem = %q", name, e, why)
		}
	}
	if got := NameProblem("../escape"); got != `has a ".." component: it must stay inside lockd's directory` {
		t.Errorf("NameProblem(../escape) = %q", got)
	}
}
