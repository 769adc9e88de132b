//go:build linux

package fdrestore

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"golang.org/x/sys/unix"
)

func TestParseSource(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tt := range []struct {
		name string
		in   string
		want Source
	}{
		{"file plain", "file:/etc/passwd", Source{Kind: KindFile, Path: "/etc/passwd"}},
		{"file relative", "file:x", Source{Kind: KindFile, Path: "x"}},
		{"file flags", "file:/x:wronly,append,creat", Source{Kind: KindFile, Path: "/x",
			Flags: unix.O_WRONLY | unix.O_APPEND | unix.O_CREAT, Mode: DefaultMode}},
		{"file mode", "file:/x:rdwr,creat,excl,mode=0600", Source{Kind: KindFile, Path: "/x",
			Flags: unix.O_RDWR | unix.O_CREAT | unix.O_EXCL, Mode: 0o600}},
		{"file mode short", "file:/x:wronly,creat,trunc,mode=644", Source{Kind: KindFile, Path: "/x",
			Flags: unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, Mode: 0o644}},
		{"file every flag", "file:/x:rdwr,nonblock,nofollow,noatime,sync,dsync,direct", Source{Kind: KindFile, Path: "/x",
			Flags: unix.O_RDWR | unix.O_NONBLOCK | unix.O_NOFOLLOW | unix.O_NOATIME | unix.O_SYNC | unix.O_DSYNC | unix.O_DIRECT}},
		{"file path flag", "file:/d:path,directory,nofollow", Source{Kind: KindFile, Path: "/d",
			Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW}},
		{"file directory", "file:/d:directory", Source{Kind: KindFile, Path: "/d", Flags: unix.O_DIRECTORY}},
		{"file pos", "file:/x@12", Source{Kind: KindFile, Path: "/x", Pos: 12, HasPos: true}},
		{"file flags and pos", "file:/x:rdonly@12", Source{Kind: KindFile, Path: "/x", Pos: 12, HasPos: true}},
		{"file empty flags keeps a flag word in the path", "file:/a:rdonly:", Source{Kind: KindFile, Path: "/a:rdonly"}},
		{"file colon path", "file:/a:b/c", Source{Kind: KindFile, Path: "/a:b/c"}},
		{"file colon path not flag-like", "file:/a:B1", Source{Kind: KindFile, Path: "/a:B1"}},
		{"file colon path empty flags", "file:/a:b:", Source{Kind: KindFile, Path: "/a:b"}},
		{"file unknown flag word ends in colon", "file:/a:rdonly,bogus:", Source{Kind: KindFile, Path: "/a:rdonly,bogus"}},
		{"file at not digits is path", "file:/a@b", Source{Kind: KindFile, Path: "/a@b"}},
		{"file at empty is path", "file:/a@", Source{Kind: KindFile, Path: "/a@"}},
		{"file two ats", "file:/a@1@2", Source{Kind: KindFile, Path: "/a@1", Pos: 2, HasPos: true}},
		{"file path with at and flags", "file:/a@1:wronly", Source{Kind: KindFile, Path: "/a@1", Flags: unix.O_WRONLY}},
		{"file big pos", "file:/a@9223372036854775807", Source{Kind: KindFile, Path: "/a", Pos: 1<<63 - 1, HasPos: true}},
		{"null", "null", Source{Kind: KindNull}},
		{"close", "close", Source{Kind: KindClose}},
		{"pipe r", "pipe:p:r", Source{Kind: KindPipe, Name: "p", End: PipeRead}},
		{"pipe w", "pipe:log:w", Source{Kind: KindPipe, Name: "log", End: PipeWrite}},
		{"socketpair 0", "socketpair:s:0", Source{Kind: KindSocketpair, Name: "s", End: 0, SockType: unix.SOCK_STREAM}},
		{"socketpair 1 dgram", "socketpair:s:1:dgram", Source{Kind: KindSocketpair, Name: "s", End: 1, SockType: unix.SOCK_DGRAM}},
		{"socketpair seqpacket", "socketpair:s:0:seqpacket", Source{Kind: KindSocketpair, Name: "s", SockType: unix.SOCK_SEQPACKET}},
		{"socketpair stream", "socketpair:s:1:stream", Source{Kind: KindSocketpair, Name: "s", End: 1, SockType: unix.SOCK_STREAM}},
		{"listen tcp v4", "listen:tcp:127.0.0.1:8080", Source{Kind: KindListen, Network: "tcp", Addr: ap("127.0.0.1:8080")}},
		{"listen tcp v6", "listen:tcp:[::1]:0", Source{Kind: KindListen, Network: "tcp", Addr: ap("[::1]:0")}},
		{"listen tcp any", "listen:tcp::80", Source{Kind: KindListen, Network: "tcp", Addr: netip.AddrPortFrom(netip.Addr{}, 80)}},
		{"listen udp", "listen:udp:0.0.0.0:53", Source{Kind: KindListen, Network: "udp", Addr: ap("0.0.0.0:53")}},
		{"listen tcp v6 zone", "listen:tcp:[fe80::1%lo]:9", Source{Kind: KindListen, Network: "tcp", Addr: ap("[fe80::1%lo]:9")}},
		{"listen unix", "listen:unix:/run/s.sock", Source{Kind: KindListen, Network: "unix", Path: "/run/s.sock"}},
		{"listen unix colon", "listen:unix:/run/a:b", Source{Kind: KindListen, Network: "unix", Path: "/run/a:b"}},
		{"listen unix abstract", "listen:unix:@name", Source{Kind: KindListen, Network: "unix", Path: "@name"}},
		{"listen unix 107 bytes", "listen:unix:/" + strings.Repeat("x", 106), Source{Kind: KindListen, Network: "unix", Path: "/" + strings.Repeat("x", 106)}},
		{"pty master", "pty:t:master", Source{Kind: KindPTY, Name: "t", End: PTYMaster}},
		{"pty slave", "pty:t:slave", Source{Kind: KindPTY, Name: "t", End: PTYSlave}},
		{"memfd", "memfd:data", Source{Kind: KindMemfd, Name: "data"}},
		{"memfd colon", "memfd:a:b", Source{Kind: KindMemfd, Name: "a:b"}},
		{"eventfd", "eventfd:0", Source{Kind: KindEventfd}},
		{"eventfd flags", "eventfd:7:semaphore:nonblock", Source{Kind: KindEventfd, Count: 7, EventfdFlags: unix.EFD_SEMAPHORE | unix.EFD_NONBLOCK}},
		{"eventfd flags reversed", "eventfd:4294967295:nonblock:semaphore", Source{Kind: KindEventfd, Count: 1<<32 - 1, EventfdFlags: unix.EFD_SEMAPHORE | unix.EFD_NONBLOCK}},
		{"epoll empty", "epoll:", Source{Kind: KindEpoll}},
		{"epoll default in", "epoll:3", Source{Kind: KindEpoll, Items: []EpollItem{{Target: 3, Events: unix.EPOLLIN}}}},
		{"epoll events", "epoll:3/in+et,4", Source{Kind: KindEpoll, Items: []EpollItem{{Target: 3, Events: unix.EPOLLIN | unix.EPOLLET}, {Target: 4, Events: unix.EPOLLIN}}}},
		{"epoll out", "epoll:5/out+rdhup+pri+oneshot", Source{Kind: KindEpoll, Items: []EpollItem{{Target: 5, Events: unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLPRI | unix.EPOLLONESHOT}}}},
		{"epoll et alone adds in", "epoll:6/et", Source{Kind: KindEpoll, Items: []EpollItem{{Target: 6, Events: unix.EPOLLIN | unix.EPOLLET}}}},
		{"fd", "fd:0", Source{Kind: KindFD, FD: 0}},
		{"fd leading zero is decimal", "fd:010", Source{Kind: KindFD, FD: 10}},
		{"dup", "dup:3", Source{Kind: KindDup, FD: 3}},
		{"grab", "grab:812:4", Source{Kind: KindGrab, PID: 812, FD: 4}},
		{"hold", "hold:/run/fdh:tcp:80", Source{Kind: KindHold, Socket: "/run/fdh", ID: "tcp:80"}},
		{"hold colons", "hold:/s:id:with:colons", Source{Kind: KindHold, Socket: "/s", ID: "id:with:colons"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Text = tt.in
			got, err := ParseSource(tt.in)
			if err != nil {
				t.Fatalf("ParseSource(%q) = %v; want %+v", tt.in, err, tt.want)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseSource(%q) = %+v; want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseSourceErrors(t *testing.T) {
	for _, tt := range []struct {
		in, msg string
	}{
		{"", "empty source"},
		{":x", "missing source type"},
		{"bogus", `unknown source type "bogus"`},
		{"bogus:1", `unknown source type "bogus"`},
		{"File:/x", `unknown source type "File"`},
		{"null:x", "null takes no arguments"},
		{"close:", "close takes no arguments"},
		{"file", "file needs arguments"},
		{"pipe", "pipe needs arguments"},
		{"file:", "missing path"},
		{"file:/a:w", `unknown file flag "w" (flags: ` + fileFlagNames + `; end the path with ':' if ":w" is part of it)`},
		{"file:/a:rdonly,bogus", `unknown file flag "bogus" (flags: ` + fileFlagNames + `; end the path with ':' if ":rdonly,bogus" is part of it)`},
		{"file::rdonly", "missing path"},
		{"file:@3", "missing path"},
		{"file:/x\x00y", "NUL byte in source"},
		{"file:/x@99999999999999999999", "position 99999999999999999999 is out of range"},
		{"file:/x:rdonly,wronly", "file flags rdonly and wronly conflict"},
		{"file:/x:path,rdwr", "file flags path and rdwr conflict"},
		{"file:/x:path,append", "file flag path allows only directory and nofollow"},
		{"file:/x:wronly,wronly", "file flag wronly is given twice"},
		{"file:/x:excl", "file flag excl needs creat"},
		{"file:/x:mode=600", "file flag mode= needs creat"},
		{"file:/x:creat,mode=9", "file flag mode=9: mode must be octal, at most 7777"},
		{"file:/x:creat,mode=", "file flag mode=: mode must be octal"},
		{"file:/x:creat,mode=17777", "mode must be octal, at most 7777"},
		{"file:/x:creat,mode=1,mode=2", "file flag mode is given twice"},
		{"file:/x:trunc", "file flag trunc needs wronly or rdwr"},
		{"file:/x:creat,directory", "file flags creat and directory conflict"},
		{"pipe:a:x", "pipe end must be r or w"},
		{"pipe:a", "pipe needs NAME:r or NAME:w"},
		{"pipe::r", "missing pipe name"},
		{"pipe:a:b:r", `pipe name "a:b" contains ':'`},
		{"socketpair:s", "socketpair needs NAME:0|1"},
		{"socketpair:s:2", "socketpair end must be 0 or 1"},
		{"socketpair:s:0:raw", `socketpair type "raw" must be stream, dgram or seqpacket`},
		{"socketpair:s:0:dgram:x", "socketpair needs NAME:0|1"},
		{"socketpair::0", "missing socketpair name"},
		{"listen:tcp", "listen needs tcp:ADDR"},
		{"listen:sctp:1.2.3.4:5", `listen type "sctp" must be tcp, udp or unix`},
		{"listen:tcp:80", `address "80" needs host:port`},
		{"listen:tcp:1.2.3.4:", `port "" is not a decimal number`},
		{"listen:tcp:1.2.3.4:http", `port "http" is not a decimal number`},
		{"listen:tcp:1.2.3.4:65536", "port 65536 is out of range"},
		{"listen:tcp:localhost:80", `host "localhost" is not an IP address`},
		{"listen:tcp:::1:80", `host "::1" is not an IP address (IPv6 goes in brackets)`},
		{"listen:tcp:[1.2.3.4]:80", `host "[1.2.3.4]" is not an IP address`},
		{"listen:unix:", "missing unix socket path"},
		{"listen:unix:@", "missing unix socket path"},
		{"listen:unix:/" + strings.Repeat("x", 107), "unix socket path is longer than 107 bytes"},
		{"pty:t:both", "pty end must be master or slave"},
		{"pty:t", "pty needs NAME:master or NAME:slave"},
		{"pty::slave", "missing pty name"},
		{"memfd:", "missing memfd name"},
		{"memfd:a/b", "memfd name contains '/'"},
		{"memfd:" + strings.Repeat("m", 250), "memfd name is longer than 249 bytes"},
		{"eventfd:", `eventfd count "" is not a decimal number`},
		{"eventfd:-1", `eventfd count "-1" is not a decimal number`},
		{"eventfd:4294967296", "eventfd count 4294967296 is out of range"},
		{"eventfd:1:fast", `eventfd option "fast" must be semaphore or nonblock`},
		{"eventfd:1:nonblock:nonblock", "eventfd option nonblock is given twice"},
		{"epoll:x", `epoll target "x" is not a decimal number`},
		{"epoll:3,", "missing epoll target"},
		{"epoll:3,3", "epoll target 3 is given twice"},
		{"epoll:3/", "missing events after 3/"},
		{"epoll:3/in+in", "epoll event in is given twice"},
		{"epoll:3/hup", `epoll event "hup" must be in, out, pri, rdhup, et or oneshot`},
		{"epoll:3/in,4/", "missing events after 4/"},
		{"fd:", "missing fd"},
		{"fd:-1", `fd "-1" is not a decimal number`},
		{"fd:+1", `fd "+1" is not a decimal number`},
		{"fd:0x10", `fd "0x10" is not a decimal number`},
		{"fd:2147483648", "fd 2147483648 is out of range"},
		{"dup:", "missing target"},
		{"dup:a", `target "a" is not a decimal number`},
		{"grab:1", "grab needs PID:FD"},
		{"grab:0:1", "pid 0 is out of range"},
		{"grab:x:1", `pid "x" is not a decimal number`},
		{"grab:2147483648:1", "pid 2147483648 is out of range"},
		{"grab:1:", "missing fd"},
		{"hold:/s", "hold needs SOCKET:ID"},
		{"hold::id", "missing holder socket path"},
		{"hold:/s:", "missing holder id"},
		{"hold:/s:" + strings.Repeat("i", 256), "holder id is longer than 255 bytes"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseSource(tt.in)
			if err == nil {
				t.Fatalf("ParseSource(%q) = nil error; want %q", tt.in, tt.msg)
			}
			if code := exitcode.Of(err); code != exitcode.Usage {
				t.Errorf("ParseSource(%q): code %d; want %d", tt.in, code, exitcode.Usage)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("ParseSource(%q) = %T; want a *SyntaxError", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("ParseSource(%q) = %q; want one line containing %q", tt.in, err, tt.msg)
			}
		})
	}
}

func TestParseFlag(t *testing.T) {
	for _, tt := range []struct {
		name      string
		in        string
		target    int
		hasTarget bool
		kind      Kind
		err       string
	}{
		{"no target", "null", 0, false, KindNull, ""},
		{"target", "3=null", 3, true, KindNull, ""},
		{"target zero", "0=pipe:p:r", 0, true, KindPipe, ""},
		{"leading zeros decimal", "010=null", 10, true, KindNull, ""},
		{"largest", "2147483647=close", 2147483647, true, KindClose, ""},
		{"not all digits before equals", "a=null", 0, false, 0, `-f a=null: "a" is not an fd number: N=SOURCE needs a decimal N`},
		{"equals in a path", "file:/a=b", 0, false, KindFile, ""},
		{"two equals", "1=2=3", 0, false, 0, `invalid source for fd 1: 2=3: unknown source type "2=3"`},
		{"empty before equals", "=null", 0, false, 0, `invalid source: =null: unknown source type "=null"`},
		{"bad source names fd", "3=pipe:a:x", 0, false, 0, "invalid source for fd 3: pipe:a:x: pipe end must be r or w"},
		{"bad source without fd", "pipe:a:x", 0, false, 0, "invalid source: pipe:a:x: pipe end must be r or w"},
		{"out of range", "2147483648=null", 0, false, 0, "fd 2147483648 is out of range"},
		{"empty source", "3=", 0, false, 0, "invalid source for fd 3: : empty source"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target, has, src, err := ParseFlag(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err || exitcode.Of(err) != exitcode.Usage {
					t.Fatalf("ParseFlag(%q) = %v (code %d); want %q (100)", tt.in, err, exitcode.Of(err), tt.err)
				}
				return
			}
			if err != nil || target != tt.target || has != tt.hasTarget || src.Kind != tt.kind {
				t.Errorf("ParseFlag(%q) = %d, %v, %v, %v; want %d, %v, %v", tt.in, target, has, src.Kind, err,
					tt.target, tt.hasTarget, tt.kind)
			}
		})
	}
}

// FuzzParseSource checks that ParseSource never panics, that a rejection is
// a one-line usage error, and that an accepted source keeps its invariants.
func FuzzParseSource(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src, err := ParseSource(s)
		if err != nil {
			if exitcode.Of(err) != exitcode.Usage || strings.Contains(err.Error(), "\n") && !strings.Contains(s, "\n") {
				t.Fatalf("ParseSource(%q) = %q (code %d); want a one-line usage error", s, err, exitcode.Of(err))
			}
			return
		}
		checkSource(t, s, src)
	})
}

// FuzzParseFlag checks ParseFlag the same way, plus the N= rule.
func FuzzParseFlag(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
		f.Add("3=" + s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		target, has, src, err := ParseFlag(s)
		if err != nil {
			if exitcode.Of(err) != exitcode.Usage {
				t.Fatalf("ParseFlag(%q) = %q (code %d); want a usage error", s, err, exitcode.Of(err))
			}
			return
		}
		n, rest, ok := strings.Cut(s, "=")
		if has != (ok && allDigits(n)) {
			t.Fatalf("ParseFlag(%q): hasTarget %v", s, has)
		}
		if has && (target < 0 || target > MaxFD || rest != src.Text) {
			t.Fatalf("ParseFlag(%q) = %d, %q", s, target, src.Text)
		}
		checkSource(t, src.Text, src)
	})
}

var fuzzSeeds = []string{
	"file:/a:b:", "file:/x:rdonly@12", "1=2=3", "epoll:3/in+et,4", "hold:/s:id:with:colons",
	"null", "close", "pipe:p:r", "socketpair:s:1:dgram", "listen:tcp:[::1]:80", "listen:unix:@x",
	"pty:t:slave", "memfd:m", "eventfd:3:semaphore", "fd:3", "dup:4", "grab:1:2",
	"file:/x:wronly,creat,mode=0644@0",
}

func checkSource(t *testing.T, s string, src Source) {
	t.Helper()
	if src.Text != s || src.Kind < KindFile || src.Kind > KindHold {
		t.Fatalf("ParseSource(%q) = %+v", s, src)
	}
	if !strings.HasPrefix(s, src.Kind.String()) {
		t.Fatalf("ParseSource(%q): kind %v", s, src.Kind)
	}
	switch src.Kind {
	case KindFile:
		if src.Path == "" || !strings.HasPrefix(s, "file:"+src.Path) || src.Pos < 0 {
			t.Fatalf("ParseSource(%q): path %q pos %d", s, src.Path, src.Pos)
		}
		// Reading from the right: the path is followed only by flags and @POS.
		tail := s[len("file:"+src.Path):]
		if tail != "" && tail[0] != ':' && tail[0] != '@' {
			t.Fatalf("ParseSource(%q): path %q leaves %q", s, src.Path, tail)
		}
	case KindPipe, KindSocketpair, KindPTY:
		if src.Name == "" || strings.Contains(src.Name, ":") || src.End < 0 || src.End > 1 {
			t.Fatalf("ParseSource(%q) = %+v", s, src)
		}
	case KindFD, KindDup, KindGrab:
		if src.FD < 0 || src.FD > MaxFD || src.Kind == KindGrab && src.PID <= 0 {
			t.Fatalf("ParseSource(%q) = %+v", s, src)
		}
	case KindHold:
		if src.Socket == "" || src.ID == "" || strings.Contains(src.Socket, ":") {
			t.Fatalf("ParseSource(%q) = %+v", s, src)
		}
	case KindEpoll:
		for _, it := range src.Items {
			if it.Events&(unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLPRI|unix.EPOLLRDHUP) == 0 {
				t.Fatalf("ParseSource(%q): item %+v waits for nothing", s, it)
			}
		}
	}
}
