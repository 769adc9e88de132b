//go:build linux

package fdholder

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/gotools-dev/gotools/lib/tai"
)

func TestLimitEncoding(t *testing.T) {
	now := tai.Stamp{Sec: tai.Offset + 1_700_000_000, Nsec: 5}
	never := NeverLimit(now)
	if never != (tai.Stamp{Sec: now.Sec + 1<<61, Nsec: 5}) {
		t.Errorf("NeverLimit(%v) = %v; want now + 2^61 s", now, never)
	}
	for _, tc := range []struct {
		name  string
		limit tai.Stamp
		want  bool
	}{
		{"never", never, true},
		{"exactly 2^60", tai.Stamp{Sec: now.Sec + 1<<60, Nsec: 5}, true},
		{"1 ns short of 2^60", tai.Stamp{Sec: now.Sec + 1<<60, Nsec: 4}, false},
		{"an hour", tai.Stamp{Sec: now.Sec + 3600}, false},
		{"past", tai.Stamp{Sec: now.Sec - 1}, false},
	} {
		if got := NoExpiry(tc.limit, now); got != tc.want {
			t.Errorf("%s: NoExpiry(%v) = %v; want %v", tc.name, tc.limit, got, tc.want)
		}
	}
	if got := apiLimit(never, now); !got.IsZero() {
		t.Errorf("apiLimit(never) = %v; want zero", got)
	}
	if w := wireLimit(tai.Stamp{}); !NoExpiry(w, tai.Now()) {
		t.Errorf("wireLimit(zero) = %v; want no expiry", w)
	}
	if got := addNano(tai.Stamp{Sec: 7, Nsec: 999999999}); got != (tai.Stamp{Sec: 8}) {
		t.Errorf("addNano carries to %v", got)
	}
	if !LimitAfter(0).IsZero() {
		t.Error("LimitAfter(0) is not never")
	}
}

func TestCheckID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"a", true}, {strings.Repeat("x", 255), true}, {"", false},
		{strings.Repeat("x", 256), false}, {"a\x00b", false}, {"tcp:0.0.0.0:80", true},
	} {
		if err := CheckID(tc.id); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidID)) {
			t.Errorf("CheckID(%q) = %v; want ok %v", tc.id, err, tc.ok)
		}
	}
}

func TestParseRequest(t *testing.T) {
	lim := tai.Stamp{Sec: tai.Offset + 100, Nsec: 7}
	l := lim.Append(nil)
	cat := func(bs ...[]byte) []byte { return slices.Concat(bs...) }
	for _, tc := range []struct {
		name string
		p    []byte
		nfds int
		want *Request // nil: protocol error
	}{
		{"store", cat([]byte("S"), l, []byte("\x02ab\x00")), 1, &Request{Op: 'S', ID: "ab", Limit: lim}},
		{"store no fd", cat([]byte("S"), l, []byte("\x02ab\x00")), 0, nil},
		{"store 2 fds", cat([]byte("S"), l, []byte("\x02ab\x00")), 2, nil},
		{"store bad nsec", cat([]byte("S"), tai.Stamp{Nsec: 1e9}.Append(nil), []byte("\x01a\x00")), 1, nil},
		{"store empty id", cat([]byte("S"), l, []byte("\x00\x00")), 1, nil},
		{"delete", []byte("D\x01a\x00"), 0, &Request{Op: 'D', ID: "a"}},
		{"delete no NUL", []byte("D\x01ab"), 0, nil},
		{"delete trailing", []byte("D\x01a\x00\x00"), 0, nil},
		{"delete embedded NUL", []byte("D\x03a\x00b\x00"), 0, nil},
		{"retrieve", []byte("R\x00\x01a\x00"), 0, &Request{Op: 'R', ID: "a"}},
		{"retrieve delete", []byte("R\x01\x01a\x00"), 0, &Request{Op: 'R', ID: "a", Delete: true}},
		{"retrieve with fd", []byte("R\x01\x01a\x00"), 1, nil},
		{"list", []byte("L"), 0, &Request{Op: 'L'}},
		{"list trailing", []byte("L\x00"), 0, nil},
		{"getdump", []byte("?"), 0, &Request{Op: '?'}},
		{"setdump", []byte("!\x00\x00\x02\x58"), 0, &Request{Op: '!', N: 600}},
		{"setdump short", []byte("!\x00\x02\x58"), 0, nil},
		{"dot", cat([]byte("."), l, []byte("\x01a\x00"), l, []byte("\x02bc\x00")), 2,
			&Request{Op: '.', Entries: []WireEntry{{lim, "a"}, {lim, "bc"}}}},
		{"dot count mismatch", cat([]byte("."), l, []byte("\x01a\x00")), 2, nil},
		{"dot trailing", cat([]byte("."), l, []byte("\x01a\x00x")), 1, nil},
		{"dot no fds", []byte("."), 0, nil},
		{"unknown", []byte("Z"), 0, nil},
		{"empty", nil, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRequest(tc.p, tc.nfds)
			if tc.want == nil {
				if !errors.Is(err, ErrProtocol) {
					t.Errorf("ParseRequest(%q, %d) = %+v, %v; want ErrProtocol", tc.p, tc.nfds, r, err)
				}
				return
			}
			if err != nil || r.Op != tc.want.Op || r.ID != tc.want.ID || r.Limit != tc.want.Limit ||
				r.Delete != tc.want.Delete || r.N != tc.want.N || !slices.Equal(r.Entries, tc.want.Entries) {
				t.Errorf("ParseRequest(%q, %d) = %+v, %v; want %+v", tc.p, tc.nfds, r, err, *tc.want)
			}
		})
	}
}

func TestParseReplies(t *testing.T) {
	if e, err := ParseStatus([]byte{16}, 0); e != syscall.EBUSY || err != nil {
		t.Errorf("ParseStatus(EBUSY) = %v, %v", e, err)
	}
	if _, err := ParseStatus([]byte{0, 0}, 0); !errors.Is(err, ErrProtocol) {
		t.Errorf("ParseStatus of 2 bytes = %v", err)
	}
	if e, err := ParseRetrieve([]byte{0}, 1); e != 0 || err != nil {
		t.Errorf("ParseRetrieve(ok) = %v, %v", e, err)
	}
	if _, err := ParseRetrieve([]byte{0}, 0); !errors.Is(err, ErrProtocol) {
		t.Errorf("ParseRetrieve(ok, no fd) = %v", err)
	}
	if _, err := ParseRetrieve([]byte{2}, 1); !errors.Is(err, ErrProtocol) {
		t.Errorf("ParseRetrieve(ENOENT, 1 fd) = %v", err)
	}
	ids, e, err := ParseList([]byte("\x00\x00\x00\x00\x02a\x00bc\x00"), 0)
	if err != nil || e != 0 || !slices.Equal(ids, []string{"a", "bc"}) {
		t.Errorf("ParseList = %q, %v, %v", ids, e, err)
	}
	if _, _, err := ParseList([]byte("\x00\x00\x00\x00\x03a\x00bc\x00"), 0); !errors.Is(err, ErrProtocol) {
		t.Errorf("ParseList with a wrong count = %v", err)
	}
	if _, e, _ := ParseList([]byte{1}, 0); e != syscall.EPERM {
		t.Errorf("ParseList(EPERM) = %v", e)
	}
	nmsg, total, e, err := ParseGetDumpHead([]byte("\x00\x00\x00\x00\x03\x00\x00\x02\x58"), 0)
	if nmsg != 3 || total != 600 || e != 0 || err != nil {
		t.Errorf("ParseGetDumpHead = %d %d %v %v", nmsg, total, e, err)
	}
	if _, _, _, err := ParseGetDumpHead([]byte("\x00\x00\x00\x00\x02\x00\x00\x02\x58"), 0); !errors.Is(err, ErrProtocol) {
		t.Errorf("ParseGetDumpHead(2 messages for 600) = %v", err)
	}
	if trips, e, err := ParseSetDumpHead([]byte("\x00\x00\x00\x00\x03"), 0); trips != 3 || e != 0 || err != nil {
		t.Errorf("ParseSetDumpHead = %d %v %v", trips, e, err)
	}
	for n, want := range map[uint32]uint32{0: 0, 1: 1, 253: 1, 254: 2, 506: 2, 507: 3, 600: 3} {
		if got := DumpMessages(n); got != want {
			t.Errorf("DumpMessages(%d) = %d; want %d", n, got, want)
		}
	}
}

func TestSplitFrame(t *testing.T) {
	f := append(AppendHeader(nil, 3, 2), "abcX"...)
	if string(f[:6]) != "\x00\x00\x00\x03\x00\x02" {
		t.Errorf("AppendHeader = %q; want big-endian length then fd count", f[:6])
	}
	p, nfds, n, err := SplitFrame(f, 100)
	if string(p) != "abc" || nfds != 2 || n != 9 || err != nil {
		t.Errorf("SplitFrame = %q %d %d %v", p, nfds, n, err)
	}
	if _, _, n, err := SplitFrame(f[:8], 100); n != 0 || err != nil {
		t.Errorf("SplitFrame(partial) = %d, %v", n, err)
	}
	if _, _, _, err := SplitFrame(AppendHeader(nil, 101, 0), 100); !errors.Is(err, ErrProtocol) {
		t.Errorf("SplitFrame(too long) = %v", err)
	}
	if _, _, _, err := SplitFrame(AppendHeader(nil, 1, 254), 100); !errors.Is(err, ErrProtocol) {
		t.Errorf("SplitFrame(254 fds) = %v", err)
	}
}
