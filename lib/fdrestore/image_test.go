//go:build linux

package fdrestore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"golang.org/x/sys/unix"
)

func readExample(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "image", "example.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeImageSpecExample decodes the example of spec section 5, checks
// what it says, and round-trips it through the canonical encoding
// (testdata/image/example.golden.json).
func TestDecodeImageSpecExample(t *testing.T) {
	img, err := DecodeImage(readExample(t))
	if err != nil {
		t.Fatalf("DecodeImage(example) = %v", err)
	}
	sh := img.Process("sh")
	if len(img.Processes) != 2 || sh == nil || sh.Ctty != "ts" || !sh.Session() || len(sh.FDs) != 9 {
		t.Fatalf("processes = %+v", img.Processes)
	}
	if fd := img.Processes[0].FDs[2]; fd != (ImageFD{FD: 5, File: "ep", Cloexec: true}) {
		t.Errorf("term fd entry 2 = %+v", fd)
	}
	if got := img.Files["tm"].OpenFlags(); got != unix.O_RDWR|unix.O_NONBLOCK {
		t.Errorf("tm OpenFlags = %#x", got)
	}
	if got := img.Files["pw"].OpenFlags(); got != unix.O_WRONLY {
		t.Errorf("pw OpenFlags = %#x; want O_WRONLY (the pipe end's mode)", got)
	}
	if got := img.Files["conf"].AccessMode(); got != "rdonly" {
		t.Errorf("conf AccessMode = %q", got)
	}
	ep := img.Files["ep"].Targets[0]
	if ev, err := ep.EventMask(); err != nil || ev != unix.EPOLLIN|unix.EPOLLRDHUP {
		t.Errorf("ep events = %#x, %v", ev, err)
	}
	if d, err := ep.UserData(); err != nil || d != 4 {
		t.Errorf("ep data = %d, %v", d, err)
	}
	if n, err := img.Files["ev"].EventfdCount(); err != nil || n != 5 {
		t.Errorf("ev count = %d, %v", n, err)
	}
	if d, err := img.Files["st"].Data(); err != nil || string(d) != "hello" {
		t.Errorf("st data = %q, %v", d, err)
	}
	if d, err := img.Pipes["p1"].Data(); err != nil || string(d) != "abc" {
		t.Errorf("p1 data = %q, %v", d, err)
	}
	v := img.Files["conf"].Verify
	if dev, ok, err := v.Device(); err != nil || !ok || dev != unix.Mkdev(254, 1) {
		t.Errorf("conf dev = %#x, %v, %v", dev, ok, err)
	}
	if ino, ok, err := v.Inode(); err != nil || !ok || ino != 393219 {
		t.Errorf("conf ino = %d, %v, %v", ino, ok, err)
	}
	if _, ok, err := v.RDevice(); err != nil || ok {
		t.Errorf("conf rdev present = %v, %v; want absent", ok, err)
	}
	pty := img.Ptys["t1"]
	cc, err := pty.Termios.CCBytes()
	if err != nil || cc[0] != 0x03 || cc[2] != 0x7f || pty.Winsize != [4]uint16{24, 80, 0, 0} || pty.Index != 4 {
		t.Errorf("t1 = %+v, cc %x, %v", pty, cc, err)
	}
	if img.Files["ev"].Semaphore || img.Files["lst"].Pending != 0 || img.Files["lst"].Source != "grab:812:4" {
		t.Errorf("ev, lst = %+v, %+v", img.Files["ev"], img.Files["lst"])
	}

	enc, err := EncodeImage(img)
	if err != nil {
		t.Fatalf("EncodeImage = %v", err)
	}
	golden := filepath.Join("testdata", "image", "example.golden.json")
	if os.Getenv("GOTOOLS_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, enc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, want) {
		t.Errorf("EncodeImage(example) =\n%s\nwant (%s)\n%s", enc, golden, want)
	}
	back, err := DecodeImage(enc)
	if err != nil {
		t.Fatalf("DecodeImage(EncodeImage(example)) = %v", err)
	}
	if !reflect.DeepEqual(back, img) {
		t.Errorf("DecodeImage(EncodeImage(example)) differs:\n%+v\nwant\n%+v", back, img)
	}
	if again, err := EncodeImage(back); err != nil || !bytes.Equal(again, enc) {
		t.Errorf("second EncodeImage differs: %v\n%s", err, again)
	}
}

// TestDecodeImageExamples decodes every image of testdata/image and
// round-trips it.
func TestDecodeImageExamples(t *testing.T) {
	matches, err := filepath.Glob(filepath.Join("testdata", "image", "*.json"))
	if err != nil || len(matches) < 3 {
		t.Fatalf("testdata/image: %v, %v", matches, err)
	}
	for _, m := range matches {
		t.Run(filepath.Base(m), func(t *testing.T) {
			b, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			img, err := DecodeImage(b)
			if err != nil {
				t.Fatalf("DecodeImage(%s) = %v", m, err)
			}
			roundTrip(t, img)
		})
	}
}

// doc builds a small image around the given processes and files.
func doc(procs, files string, extra ...string) string {
	return `{"format":"gotools-fdimage","version":1,"processes":[` + procs + `],"files":{` + files + `}` +
		strings.Join(extra, "") + "}"
}

const (
	web   = `{"id":"web","exec":["/bin/web"],"fds":[{"fd":3,"file":"a"}]}`
	fileA = `"a":{"type":"file","path":"/etc/a"}`
	pipes = `,"pipes":{"p1":{"size":65536}}`
	ptys  = `,"ptys":{"t1":{"index":0,"winsize":[24,80,0,0]}}`
	// section has a '}' at line 12 column 7, as in spec section 10.
	section = "{\n  \"format\": \"gotools-fdimage\",\n  \"version\": 1,\n  \"processes\": [\n" +
		"    {\"id\": \"web\",\n     \"fds\": [{\"fd\": 3, \"file\": \"a\"}]}],\n  \"files\": {\n    \"a\": {\n" +
		"      \"type\": \"file\",\n      \"path\":\n\n      }}}\n"
)

func TestDecodeImageErrors(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		// The messages of spec section 10.
		{"syntax", section, "line 12 column 7: invalid character '}' looking for beginning of value"},
		{"version 2", `{"format":"gotools-fdimage","version":2,"futures":{}}`,
			"version 2 is not supported (this gotools reads version 1)"},
		{"unknown type", doc(web, fileA+`,"f7":{"type":"fanotify2"}`), `files.f7: unknown type "fanotify2"`},
		{"fd twice", doc(`{"id":"web","fds":[{"fd":3,"file":"a"},{"fd":3,"closed":true}]}`, fileA),
			"process web: fd 3 appears twice"},
		{"unknown file", doc(`{"id":"web","fds":[{"fd":4,"file":"f99"}]}`, fileA),
			"process web: fd 4 refers to unknown file f99"},

		// JSON text.
		{"empty", "", "line 1 column 1: unexpected end of JSON input"},
		{"truncated", `{"format":`, "line 1 column 11: unexpected end of JSON input"},
		{"trailing", doc(web, fileA) + " x", "line 1 column 163: invalid character 'x' after top-level value"},
		{"two values", doc(web, fileA) + doc(web, fileA), "line 1 column 162: invalid character '{' after top-level value"},
		{"array", ` [1]`, "line 1 column 2: want an object, found an array"},
		{"column in characters", "{\"format\":\"gotools-fdimage\",\"version\":1,\n\"é\":[],}",
			"line 2 column 8: invalid character '}' looking for beginning of object key string"},

		// Header.
		{"no format", `{"version":1}`, "format is missing: not a gotools fd image"},
		{"other format", `{"format":"criu","version":1}`, `format "criu" is not "gotools-fdimage"`},
		{"format number", `{"format":1,"version":1}`, "format must be a string, found a number"},
		{"format multi-line", "{\"format\":{\"\":\n1},\"version\":1}", "format must be a string, found an object"},
		{"long format", `{"format":"` + strings.Repeat("x", 100) + `","version":1}`, `format "` + strings.Repeat("x", 64) + `..." is not "gotools-fdimage"`},
		{"no version", `{"format":"gotools-fdimage"}`, "version is missing"},
		{"version string", `{"format":"gotools-fdimage","version":"1"}`, "version must be a number, found a string"},
		{"version float", `{"format":"gotools-fdimage","version":1.0}`,
			"version 1.0 is not supported (this gotools reads version 1)"},

		// Keys and types.
		{"unknown top field", doc(web, fileA, `,"extra":1`), `line 1 column 162: unknown field "extra"`},
		{"unknown file field", doc(web, `"a":{"type":"file","path":"/a","colour":"red"}`),
			`line 1 column 156: files.a: unknown field "colour"`},
		{"key case", doc(`{"id":"web","fds":[{"FD":3,"file":"a"}]}`, fileA),
			`line 1 column 74: processes[0].fds[0]: unknown field "FD"`},
		{"duplicate key", doc(`{"id":"web","id":"web2"}`, fileA),
			"line 1 column 66: processes[0]: field id appears twice"},
		{"duplicate file id", doc(web, fileA+","+fileA), "line 1 column 161: files: a appears twice"},
		{"bad file id", doc(web, `"a b":{"type":"file","path":"/a"}`),
			`line 1 column 125: files: id "a b" must be printable ASCII without spaces`},
		{"null", doc(web, `"a":{"type":"file","path":null}`),
			"line 1 column 151: files.a.path: want a string, found null"},
		{"null file", doc(web, `"a":null`), "line 1 column 129: files.a: want an object, found null"},
		{"fd string", doc(`{"id":"web","fds":[{"fd":"3","file":"a"}]}`, fileA),
			"line 1 column 79: processes[0].fds[0].fd: want an integer, found a string"},
		{"fd float", doc(`{"id":"web","fds":[{"fd":3.5,"file":"a"}]}`, fileA),
			"line 1 column 79: processes[0].fds[0].fd: 3.5 is not an integer"},
		{"above 2^53", doc(web, `"a":{"type":"file","path":"/a","pos":9007199254740993}`),
			"line 1 column 162: files.a.pos: 9007199254740993 is out of range (integers are at most 2^53)"},
		{"negative unsigned", doc(web, `"a":{"type":"file","path":"/a","mode":-1}`),
			"line 1 column 163: files.a.mode: -1 is out of range"},
		{"uint16 overflow", doc(web, fileA, `,"ptys":{"t1":{"index":0,"winsize":[24,65536,0,0]}}`),
			"line 1 column 200: ptys.t1.winsize[1]: 65536 is out of range"},
		{"winsize length", doc(web, fileA, `,"ptys":{"t1":{"index":0,"winsize":[24,80,0]}}`),
			"line 1 column 196: ptys.t1.winsize: want 4 items, found 3"},
		{"NUL in string", doc(web, `"a":{"type":"file","path":"/a\u0000b"}`),
			"line 1 column 151: files.a.path: NUL byte in string"},
		{"invalid UTF-8", doc(web, "\"a\":{\"type\":\"file\",\"path\":\"/\xff\"}"), "line 1 column 153: invalid UTF-8"},
		{"null pointer", doc(web, `"a":{"type":"file","path":"/a","verify":null}`),
			"line 1 column 165: files.a.verify: want an object, found null"},
		{"array too long", doc(web, fileA+`,"t":{"type":"timerfd","clock":"monotonic","value":[1,2,3]}`),
			"line 1 column 211: files.t.value: want 2 items, found more"},
		{"bool wanted", doc(`{"id":"web","setsid":1}`, fileA),
			"line 1 column 75: processes[0].setsid: want true or false, found a number"},
		{"missing processes", `{"format":"gotools-fdimage","version":1,"files":{}}`, "line 1 column 1: processes is missing"},
		{"missing files", `{"format":"gotools-fdimage","version":1,"processes":[]}`, "line 1 column 1: files is missing"},
		{"missing fd", doc(`{"id":"web","fds":[{"file":"a"}]}`, fileA),
			"line 1 column 73: processes[0].fds[0]: fd is missing"},
		{"missing id", doc(`{"exec":["/bin/x"]}`, fileA), "line 1 column 54: processes[0]: id is missing"},
		{"termios missing cc", doc(web, fileA,
			`,"ptys":{"t1":{"index":0,"winsize":[24,80,0,0],"termios":{"iflag":0,"oflag":0,"cflag":0,"lflag":0,"line":0}}}`),
			"line 1 column 218: ptys.t1.termios: cc is missing"},
		{"target missing data", doc(web, fileA+`,"e":{"type":"epoll","targets":[{"fd":3,"file":"a","events":"1"}]}`),
			"line 1 column 192: files.e.targets[0]: data is missing"},

		// Values.
		{"no processes", doc("", fileA), "no processes"},
		{"created", doc(web, fileA, `,"created":"yesterday"`), `created "yesterday" is not an RFC 3339 time`},
		{"type missing", doc(web, `"a":{"path":"/a"}`), "files.a: type is missing"},
		{"path missing", doc(web, `"a":{"type":"file"}`), "files.a: path is missing"},
		{"path empty", doc(web, `"a":{"type":"file","path":""}`), "files.a: path is empty"},
		{"field of another type", doc(web, `"a":{"type":"file","path":"/a","pipe":"p1"}`),
			"files.a: field pipe does not apply to type file"},
		{"zero field of another type", doc(web, `"a":{"type":"pipe","pipe":"p1","end":"r","pos":0}`, pipes),
			"files.a: field pos does not apply to type pipe"},
		{"epoll without targets", doc(web, fileA+`,"e":{"type":"epoll"}`), "files.e: targets is missing"},
		{"unknown flag", doc(web, `"a":{"type":"file","path":"/a","flags":["rdonly","cloexec"]}`),
			`files.a: unknown flag "cloexec"`},
		{"flag twice", doc(web, `"a":{"type":"file","path":"/a","flags":["append","append"]}`),
			"files.a: flag append given twice"},
		{"two access modes", doc(web, `"a":{"type":"file","path":"/a","flags":["rdonly","wronly"]}`),
			"files.a: flags rdonly and wronly are both access modes"},
		{"bad pipe end", doc(web, `"a":{"type":"pipe","pipe":"p1","end":"x"}`, pipes),
			`files.a: bad end "x" (want r, w, rw)`},
		{"pipe mode", doc(web, `"a":{"type":"pipe","pipe":"p1","end":"r","flags":["wronly"]}`, pipes),
			"files.a: access mode wronly does not match pipe end r"},
		{"dangling pipe", doc(web, `"a":{"type":"pipe","pipe":"p9","end":"r"}`, pipes),
			"files.a: pipe p9 is not in pipes"},
		{"dangling pty", doc(web, `"a":{"type":"pty","pty":"t9","end":"slave"}`, ptys),
			"files.a: pty t9 is not in ptys"},
		{"two masters", doc(web, `"a":{"type":"pty","pty":"t1","end":"master"},"b":{"type":"pty","pty":"t1","end":"master"}`, ptys),
			"files.b: pty t1 master is also files.a"},
		{"bad pty end", doc(web, `"a":{"type":"pty","pty":"t1","end":"0"}`, ptys),
			`files.a: bad end "0" (want master, slave)`},
		{"epoll dangling", doc(web, fileA+`,"e":{"type":"epoll","targets":[{"fd":3,"file":"f99","events":"1","data":"3"}]}`),
			"files.e: target fd 3 refers to unknown file f99"},
		{"epoll self", doc(web, fileA+`,"e":{"type":"epoll","targets":[{"fd":3,"file":"e","events":"1","data":"3"}]}`),
			"files.e: target fd 3 is the epoll itself"},
		{"epoll events", doc(web, fileA+`,"e":{"type":"epoll","targets":[{"fd":3,"file":"a","events":"0x100000000","data":"3"}]}`),
			"files.e: target fd 3: events: events 0x100000000 do not fit 32 bits"},
		{"epoll data", doc(web, fileA+`,"e":{"type":"epoll","targets":[{"fd":3,"file":"a","events":"1","data":"-3"}]}`),
			`files.e: target fd 3: data: bad number "-3": want decimal, or hex with 0x`},
		{"epoll loop", doc(web, fileA+`,"e":{"type":"epoll","targets":[{"fd":4,"file":"f","events":"1","data":"4"}]},`+
			`"f":{"type":"epoll","targets":[{"fd":5,"file":"e","events":"1","data":"5"}]}`),
			"files.e: epoll targets loop back to e"},
		{"epoll target twice", doc(web, fileA+`,"e":{"type":"epoll","targets":[{"fd":3,"file":"a","events":"1","data":"3"},{"fd":3,"file":"a","events":"4","data":"3"}]}`),
			"files.e: target fd 3 file a appears twice"},
		{"unix connect dangling", doc(web, `"a":{"type":"unix","socktype":"stream","state":"connected","connect":"l"}`),
			"files.a: connect refers to unknown file l"},
		{"unix connect not listener", doc(web, fileA+`,"c":{"type":"unix","socktype":"stream","state":"connected","connect":"a"}`),
			"files.c: connect target a is not a listening unix stream socket"},
		{"unix pair without end", doc(web, `"a":{"type":"unix","socktype":"stream","state":"connected","pair":"s"}`),
			"files.a: pair and end go together"},
		{"unix pair end", doc(web, `"a":{"type":"unix","socktype":"stream","state":"connected","pair":"s","end":"2"}`),
			`files.a: bad end "2" (want 0, 1)`},
		{"unix pair twice", doc(web, `"a":{"type":"unix","socktype":"stream","state":"connected","pair":"s","end":"0"},`+
			`"b":{"type":"unix","socktype":"stream","state":"connected","pair":"s","end":"0"}`),
			"files.b: pair s 0 is also files.a"},
		{"unix pair socktype", doc(web, `"a":{"type":"unix","socktype":"stream","state":"connected","pair":"s","end":"0"},`+
			`"b":{"type":"unix","socktype":"dgram","state":"connected","pair":"s","end":"1"}`),
			"files.b: socketpair s: its ends differ in socktype"},
		{"unix state", doc(web, `"a":{"type":"unix","socktype":"stream","state":"open"}`),
			`files.a: bad state "open" (want unbound, bound, listen, connected)`},
		{"udp listen", doc(web, `"a":{"type":"udp","state":"listen","addr":"127.0.0.1:53"}`),
			"files.a: a udp socket cannot listen"},
		{"tcp addr", doc(web, `"a":{"type":"tcp","state":"listen","addr":"localhost:80"}`),
			`files.a: bad addr "localhost:80": want IP:PORT or [IPv6]:PORT`},
		{"eventfd count", doc(web, `"a":{"type":"eventfd","count":"05"}`),
			`files.a: count: bad number "05": want decimal, or hex with 0x`},
		{"eventfd max", doc(web, `"a":{"type":"eventfd","count":"0xffffffffffffffff"}`),
			"files.a: count: count 0xffffffffffffffff is above 0xfffffffffffffffe"},
		{"timerfd ns", doc(web, `"a":{"type":"timerfd","clock":"monotonic","value":[1,1000000000]}`),
			"files.a: value [1 1000000000]: want [seconds, nanoseconds] with 0 <= nanoseconds < 1e9"},
		{"timerfd clock", doc(web, `"a":{"type":"timerfd","clock":"tai"}`),
			`files.a: bad clock "tai" (want realtime, monotonic, boottime, realtime_alarm, boottime_alarm)`},
		{"memfd data", doc(web, `"a":{"type":"memfd","mname":"x","size":4,"data_b64":"YWJj"}`),
			"files.a: data_b64 holds 3 bytes, size says 4"},
		{"memfd base64", doc(web, `"a":{"type":"memfd","mname":"x","size":3,"data_b64":"YWJj!"}`),
			"files.a: data_b64 is not base64"},
		{"memfd seal", doc(web, `"a":{"type":"memfd","mname":"x","seals":["exec"]}`),
			`files.a: bad seal "exec" (want seal, shrink, grow, write, future_write)`},
		{"pipe data", doc(web, fileA, `,"pipes":{"p1":{"size":4096,"pending":2,"data_b64":"YWJj"}}`),
			"pipes.p1: data_b64 holds 3 bytes, pending says 2"},
		{"pipe pending", doc(web, fileA, `,"pipes":{"p1":{"size":4096,"pending":8192}}`),
			"pipes.p1: pending 8192 does not fit size 4096"},
		{"termios cc", doc(web, fileA,
			`,"ptys":{"t1":{"index":0,"winsize":[24,80,0,0],"termios":{"iflag":0,"oflag":0,"cflag":0,"lflag":0,"line":0,"cc":"0x00"}}}`),
			"ptys.t1: termios cc must be 0x and 38 hex digits"},
		{"verify dev", doc(web, `"a":{"type":"file","path":"/a","verify":{"dev":"8"}}`),
			`files.a: verify dev: bad device "8": want MAJOR:MINOR`},
		{"unsupported link", doc(web, `"a":{"type":"unsupported","link":""}`), "files.a: link is empty"},
		{"bad source", doc(web, `"a":{"type":"file","path":"/a","source":"grab:x:3"}`),
			`files.a: invalid source: grab:x:3: pid "x" is not a decimal number`},
		{"not live", doc(web, `"a":{"type":"file","path":"/a","source":"null"}`),
			`files.a: source "null" is not a live source (fd:, grab: or hold:)`},
		{"bad name", doc(web, `"a":{"type":"file","path":"/a","name":"a:b"}`),
			`files.a: name "a:b": a name must be 1 to 255 printable ASCII bytes without ':'`},
		{"process id twice", doc(web+","+web, fileA), "process id web appears twice"},
		{"exec empty", doc(`{"id":"web","exec":[]}`, fileA), "process web: exec is empty"},
		{"closed with file", doc(`{"id":"web","fds":[{"fd":3,"file":"a","closed":true}]}`, fileA),
			"process web: fd 3 is closed and has a file or cloexec"},
		{"no file", doc(`{"id":"web","fds":[{"fd":3}]}`, fileA),
			"process web: fd 3 has no file (give file, or closed: true)"},
		{"negative fd", doc(`{"id":"web","fds":[{"fd":-1,"closed":true}]}`, fileA), "process web: fd -1 is out of range"},
		{"fd above MaxFD", doc(`{"id":"web","fds":[{"fd":2147483648,"closed":true}]}`, fileA),
			"process web: fd 2147483648 is out of range"},
		{"pgrp later", doc(`{"id":"web","pgrp":"db"},{"id":"db"}`, fileA), "process web: pgrp db is not an earlier process"},
		{"pgrp self", doc(`{"id":"web","pgrp":"web"}`, fileA), "process web: pgrp web is not an earlier process"},
		{"pgrp of a session", doc(`{"id":"db","setsid":true},{"id":"web","pgrp":"db"}`, fileA),
			"process web: pgrp db: that process starts a session, so its group is in another one"},
		{"pgrp and setsid", doc(`{"id":"db"},{"id":"web","pgrp":"db","setsid":true}`, fileA),
			"process web: pgrp db: a process that starts a session (setsid, ctty) cannot join a group"},
		{"ctty unknown", doc(`{"id":"web","ctty":"t"}`, fileA), "process web: ctty refers to unknown file t"},
		{"ctty not held", doc(`{"id":"web","ctty":"a"},{"id":"db","fds":[{"fd":0,"file":"a"}]}`, fileA),
			"process web: ctty a is not one of its fds"},
		{"ctty not a terminal", doc(`{"id":"web","ctty":"p","fds":[{"fd":0,"file":"p"}]}`, `"p":{"type":"pipe","pipe":"p1","end":"r"}`, pipes),
			"process web: ctty p is not a terminal (type pipe)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img, err := DecodeImage([]byte(tt.in))
			if err == nil {
				t.Fatalf("DecodeImage(%s) = %+v; want error %q", tt.in, img, tt.want)
			}
			if got, want := err.Error(), "image: "+tt.want; got != want {
				t.Errorf("DecodeImage(%s) = %q;\n want %q", tt.in, got, want)
			}
			checkImageErr(t, err)
		})
	}
}

// checkImageErr asserts what every decoding error is: exit 100, one line,
// "image: " first.
func checkImageErr(t *testing.T, err error) {
	t.Helper()
	var e *exitcode.Error
	if !errors.As(err, &e) || e.Code != exitcode.Usage {
		t.Errorf("error %v is not a usage error", err)
	}
	if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, "image: ") {
		t.Errorf("error %q is not one line starting with image: ", msg)
	}
}

func TestDecodeImageAccepts(t *testing.T) {
	for _, tt := range []struct{ name, in string }{
		{"minimal", doc(`{"id":"web"}`, "")},
		{"epoll with no targets", doc(web, fileA+`,"e":{"type":"epoll","targets":[]}`)},
		{"socketpair", doc(web, `"a":{"type":"unix","socktype":"seqpacket","state":"connected","pair":"s","end":"0"},`+
			`"b":{"type":"unix","socktype":"seqpacket","state":"connected","pair":"s","end":"1"}`)},
		{"connect to listener", doc(web, fileA+`,"l":{"type":"unix","socktype":"stream","state":"listen","path":"/run/s","backlog":5},`+
			`"c":{"type":"unix","socktype":"stream","state":"connected","connect":"l"}`)},
		{"nested epolls", doc(web, fileA+`,"e":{"type":"epoll","targets":[{"fd":4,"file":"f","events":"1","data":"4"}]},`+
			`"f":{"type":"epoll","targets":[{"fd":3,"file":"a","events":"0x1","data":"0xffffffffffffffff"}]}`)},
		{"pgrp join", doc(`{"id":"db","pgrp":"new"},{"id":"web","pgrp":"db"}`, "")},
		{"escaped target held by no fd", doc(`{"id":"web","fds":[{"fd":5,"file":"e"}]}`,
			fileA+`,"e":{"type":"epoll","targets":[{"fd":3,"file":"a","events":"1","data":"3"}]}`)},
		{"tcp v6", doc(web, fileA+`,"t":{"type":"tcp","state":"established","addr":"[::1]:80","peer":"[::1]:5000"}`)},
		{"timerfd", doc(web, fileA+`,"t":{"type":"timerfd","clock":"boottime","value":[0,0],"interval":[5,999999999],"ticks":2}`)},
		{"negative zero", doc(`{"id":"web","pid":-0}`, "")},
		{"2^53", doc(web, `"a":{"type":"file","path":"/a","pos":9007199254740992}`)},
		{"live unsupported", doc(web, fileA+`,"u":{"type":"unsupported","link":"anon_inode:[io_uring]","source":"fd:7","missing":["x"]}`)},
		{"memfd empty name", doc(web, fileA+`,"m":{"type":"memfd","mname":""}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img, err := DecodeImage([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeImage(%s) = %v", tt.in, err)
			}
			roundTrip(t, img)
		})
	}
}

// roundTrip checks that img encodes, and decodes back to itself.
func roundTrip(t *testing.T, img *Image) {
	t.Helper()
	enc, err := EncodeImage(img)
	if err != nil {
		t.Fatalf("EncodeImage(%+v) = %v", img, err)
	}
	back, err := DecodeImage(enc)
	if err != nil {
		t.Fatalf("DecodeImage(EncodeImage) = %v\n%s", err, enc)
	}
	if !reflect.DeepEqual(back, img) {
		t.Fatalf("DecodeImage(EncodeImage(x)) != x:\n%s", enc)
	}
}

func TestEncodeImage(t *testing.T) {
	size := int64(0)
	img := &Image{
		Format: ImageFormat, Version: ImageVersion,
		Processes: []*Process{
			{ID: "b", Exec: []string{"/bin/b"}, FDs: []ImageFD{{FD: 0, File: "z"}, {FD: 1, Closed: true}}},
			{ID: "a", Pgrp: "b", FDs: []ImageFD{{FD: 4, File: "e"}}},
		},
		Files: map[string]*File{
			"z": {Type: TypeFile, Path: "/a<b>", Verify: &Verify{Size: &size}},
			"e": {Type: TypeEpoll},
			"m": {Type: TypeMemfd},
		},
	}
	enc, err := EncodeImage(img)
	if err != nil {
		t.Fatalf("EncodeImage = %v", err)
	}
	want := `{
  "format": "gotools-fdimage",
  "version": 1,
  "processes": [
    {
      "id": "b",
      "exec": [
        "/bin/b"
      ],
      "fds": [
        {
          "fd": 0,
          "file": "z"
        },
        {
          "fd": 1,
          "closed": true
        }
      ]
    },
    {
      "id": "a",
      "pgrp": "b",
      "fds": [
        {
          "fd": 4,
          "file": "e"
        }
      ]
    }
  ],
  "files": {
    "e": {
      "type": "epoll",
      "targets": []
    },
    "m": {
      "type": "memfd",
      "mname": ""
    },
    "z": {
      "type": "file",
      "path": "/a\u003cb\u003e",
      "verify": {
        "size": 0
      }
    }
  }
}
`
	if string(enc) != want {
		t.Errorf("EncodeImage =\n%s\nwant\n%s", enc, want)
	}
	if again, _ := EncodeImage(img); !bytes.Equal(again, enc) {
		t.Errorf("EncodeImage is not deterministic:\n%s", again)
	}
	back, err := DecodeImage(enc)
	if err != nil {
		t.Fatalf("DecodeImage(EncodeImage) = %v", err)
	}
	// Decoding makes the empty target list nil, as it was built.
	if !reflect.DeepEqual(back, img) {
		t.Errorf("DecodeImage(EncodeImage(x)) = %+v; want %+v", back, img)
	}
	if err := img.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}

func TestEncodeImageRefusesInvalid(t *testing.T) {
	base := func() *Image {
		return &Image{Format: ImageFormat, Version: ImageVersion, Processes: []*Process{{ID: "p"}},
			Files: map[string]*File{"a": {Type: TypeFile, Path: "/a"}}}
	}
	for _, tt := range []struct {
		name   string
		change func(*Image)
		want   string
	}{
		{"no format", func(i *Image) { i.Format = "" }, `image: format "" is not "gotools-fdimage"`},
		{"version", func(i *Image) { i.Version = 2 }, "image: version 2 is not supported (this gotools reads version 1)"},
		{"pos above 2^53", func(i *Image) { i.Files["a"].Pos = 1 << 60 },
			"image: files.a.pos: 1152921504606846976 is out of range (integers are at most 2^53)"},
		{"field of another type", func(i *Image) { i.Files["a"].Pipe = "p1" }, "image: files.a: field pipe does not apply to type file"},
		{"NUL in exec", func(i *Image) { i.Processes[0].Exec = []string{"/bin/x\x00"} },
			"image: processes[0].exec[0]: NUL byte in string"},
		{"bad UTF-8", func(i *Image) { i.Files["a"].Path = "/a\xff" }, "image: files.a.path: invalid UTF-8"},
		{"negative", func(i *Image) { i.Files["a"].Pos = -1 }, "image: files.a: pos -1 is negative"},
		{"null process", func(i *Image) { i.Processes = append(i.Processes, nil) }, "image: processes[1]: null process"},
		{"null file", func(i *Image) { i.Files["b"] = nil }, "image: files.b: null file"},
		{"bad id", func(i *Image) { i.Processes[0].ID = "a\nb" }, `image: processes[0]: id "a\nb" must be printable ASCII without spaces`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := base()
			tt.change(img)
			b, err := EncodeImage(img)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("EncodeImage = %q, %v; want error %q", b, err, tt.want)
			}
			checkImageErr(t, err)
		})
	}
}

func TestParseNumber(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"5", 5, true},
		{"393219", 393219, true},
		{"18446744073709551615", 1<<64 - 1, true},
		{"0x0", 0, true},
		{"0x2001", 0x2001, true},
		{"0xFFFFffffFFFFffff", 1<<64 - 1, true},
		{"0x0000000000000001", 1, true},
		{"", 0, false},
		{"05", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1_000", 0, false},
		{"18446744073709551616", 0, false},
		{"0x", 0, false},
		{"0X10", 0, false},
		{"0x10000000000000000", 0, false},
		{"0x1g", 0, false},
		{"0b1", 0, false},
		{"1e3", 0, false},
	} {
		got, err := ParseNumber(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseNumber(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseDev(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0:0", 0, true},
		{"254:1", unix.Mkdev(254, 1), true},
		{"136:4", unix.Mkdev(136, 4), true},
		{"4095:1048575", unix.Mkdev(4095, 1048575), true},
		{"4294967295:4294967295", unix.Mkdev(1<<32-1, 1<<32-1), true},
		{"4294967296:0", 0, false},
		{"", 0, false},
		{"8", 0, false},
		{"8:", 0, false},
		{":1", 0, false},
		{"08:1", 0, false},
		{"8:1:2", 0, false},
		{"0x8:1", 0, false},
		{"-8:1", 0, false},
	} {
		got, err := ParseDev(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDev(%q) = %#x, %v; want %#x, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok {
			if s := FormatDev(got); s != tt.in {
				t.Errorf("FormatDev(ParseDev(%q)) = %q", tt.in, s)
			}
		}
	}
}

func TestFileOpenFlags(t *testing.T) {
	for _, tt := range []struct {
		f    File
		want int
	}{
		{File{Type: TypeFile}, unix.O_RDONLY},
		{File{Type: TypeFIFO, Flags: []string{"nonblock"}}, unix.O_RDONLY | unix.O_NONBLOCK},
		{File{Type: TypePipe, End: "w"}, unix.O_WRONLY},
		{File{Type: TypePipe, End: "rw"}, unix.O_RDWR},
		{File{Type: TypeMemfd}, unix.O_RDWR},
		{File{Type: TypeFile, Flags: []string{"path"}}, unix.O_PATH},
		{File{Type: TypeFile, Flags: []string{"append", "wronly", "sync", "dsync", "direct", "noatime", "async"}},
			unix.O_WRONLY | unix.O_APPEND | unix.O_SYNC | unix.O_DSYNC | unix.O_DIRECT | unix.O_NOATIME | unix.O_ASYNC},
	} {
		if got := tt.f.OpenFlags(); got != tt.want {
			t.Errorf("OpenFlags(%+v) = %#x; want %#x", tt.f, got, tt.want)
		}
	}
}

// FuzzDecodeImage checks that DecodeImage never panics, fails only with a
// one-line usage error, and that whatever it accepts encodes and decodes
// back to the same Image.
func FuzzDecodeImage(f *testing.F) {
	// Small seeds, one feature each (the example images' file types, one
	// at a time), not the example images themselves: every new input the
	// fuzzer finds is minimised by re-running the target, for a time that
	// grows with the input, and a 3 KB seed made that the whole run. The
	// examples are decoded by TestDecodeImage* and the corpus under
	// testdata/fuzz.
	one := func(file string, extra ...string) {
		f.Add([]byte(doc(`{"id":"p","fds":[{"fd":3,"file":"a"}]}`, `"a":`+file, extra...)))
	}
	one(`{"type":"file","path":"/etc/sh.conf","pos":120,"verify":{"dev":"254:1","ino":"393219"}}`)
	one(`{"type":"pty","pty":"t1","end":"master","flags":["rdwr","nonblock"]}`, ptys)
	one(`{"type":"tcp","state":"listen","addr":"127.0.0.1:8080","backlog":128,"source":"grab:812:4","name":"http"}`)
	one(`{"type":"pipe","pipe":"p1","end":"r","flags":["rdonly","nonblock"]}`, `,"pipes":{"p1":{"size":65536,"pending":3,"data_b64":"YWJj"}}`)
	one(`{"type":"eventfd","count":"5","semaphore":false}`)
	one(`{"type":"memfd","mname":"state","size":5,"seals":["grow","shrink"],"data_b64":"aGVsbG8="}`)
	one(`{"type":"unsupported","link":"anon_inode:[io_uring]","reason":"rings"}`)
	f.Add([]byte(doc(`{"id":"p","fds":[{"fd":3,"file":"e"},{"fd":4,"file":"a"}]}`,
		`"e":{"type":"epoll","targets":[{"fd":4,"file":"a","events":"0x2001","data":"0x4"}]},`+fileA)))
	f.Add([]byte(doc(`{"id":"sh","pid":815,"comm":"sh","exec":["/bin/sh","-i"],"setsid":true,"ctty":"ts","fds":[{"fd":0,"file":"ts"},{"fd":5,"file":"a","cloexec":true}]}`,
		`"ts":{"type":"pty","pty":"t1","end":"slave"},`+fileA, ptys, `,"created":"2026-03-01T10:00:00Z","racy":true`)))
	f.Add([]byte(doc(`{"id":"db","pgrp":"new"},{"id":"web","pgrp":"db","fds":[{"fd":1,"closed":true}]}`, "")))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := DecodeImage(data)
		if err != nil {
			checkImageErr(t, err)
			return
		}
		enc, err := EncodeImage(img)
		if err != nil {
			t.Fatalf("EncodeImage(DecodeImage(%q)) = %v", data, err)
		}
		back, err := DecodeImage(enc)
		if err != nil {
			t.Fatalf("DecodeImage(EncodeImage(DecodeImage(%q))) = %v", data, err)
		}
		if !reflect.DeepEqual(back, img) {
			t.Fatalf("round trip of %q differs:\n%s", data, enc)
		}
		// DecodeImage validated img, and EncodeImage validated it again:
		// a third Validate would only cost time.
	})
}

// bigImage is one process with n distinct files and n/10 dup'ed pairs, the
// shape of the dump benchmark of spec section 13.
func bigImage(n int) *Image {
	img := &Image{Format: ImageFormat, Version: ImageVersion, Files: map[string]*File{}}
	p := &Process{ID: "p", PID: 100, Exec: []string{"/bin/p"}}
	for i := range n {
		id := "f" + strconv.Itoa(i+1)
		img.Files[id] = &File{Type: TypeFile, Path: "/var/lib/data/" + id, Flags: []string{"rdwr"}, Pos: int64(i),
			Verify: &Verify{Dev: "8:1", Ino: strconv.Itoa(100000 + i)}}
		p.FDs = append(p.FDs, ImageFD{FD: 3 + i, File: id})
		if i%10 == 0 {
			p.FDs = append(p.FDs, ImageFD{FD: 3 + n + i, File: id, Cloexec: true})
		}
	}
	img.Processes = []*Process{p}
	return img
}

func BenchmarkEncodeImage(b *testing.B) {
	img := bigImage(10000)
	for b.Loop() {
		if _, err := EncodeImage(img); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeImage(b *testing.B) {
	enc, err := EncodeImage(bigImage(10000))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := DecodeImage(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFuzzDecodeImageIteration is the work of one FuzzDecodeImage
// iteration on the example image: decode, encode, decode again.
func BenchmarkFuzzDecodeImageIteration(b *testing.B) {
	data := readExample(b)
	b.ReportAllocs()
	for b.Loop() {
		img, err := DecodeImage(data)
		if err != nil {
			b.Fatal(err)
		}
		enc, err := EncodeImage(img)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeImage(enc); err != nil {
			b.Fatal(err)
		}
	}
}
