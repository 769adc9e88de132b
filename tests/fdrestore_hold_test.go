package tests

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/fdholder"
)

// Acceptance tests of `fdrestore hold` (spec/fdrestore.md sections 8, 10,
// 11 and 12): the fd holder daemon and its clients, wire-compatible with
// s6-fdholderd. Every assertion is on observable state: exit codes,
// stderr lines, `hold list` output, the socket inode a retrieved fd has
// in /proc/PID/fd, the environment a probe sees.

// holdd is a running fd holder: gotools' `fdrestore hold daemon` or
// s6's s6-fdholder-daemon, started with -1 and ready.
type holdd struct {
	sock string
	p    *Proc
}

// startHold starts `fdrestore hold daemon -1 ARGS... SOCK` and waits for
// the newline -1 writes once it listens.
func startHold(t testing.TB, sock string, args ...string) *holdd {
	t.Helper()
	argv := append(append([]string{"fdrestore", "hold", "daemon", "-1"}, args...), sock)
	p := start(t, argv...)
	p.WaitLine(t, "^$")
	return &holdd{sock: sock, p: p}
}

// holdSock returns a fresh socket path in a private directory.
func holdSock(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "s")
}

// socketEnd returns one end of a fresh socketpair, as an *os.File closed
// when the test ends, and its inode: the object the tests store and
// expect back.
func socketEnd(t testing.TB) (*os.File, uint64) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[1])
	var st unix.Stat_t
	if err := unix.Fstat(fds[0], &st); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "socketpair")
	t.Cleanup(func() { f.Close() })
	return f, st.Ino
}

// socketName is what readlink /proc/PID/fd/N gives for a socket inode.
func socketName(ino uint64) string { return fmt.Sprintf("socket:[%d]", ino) }

// fdlistTarget returns the target of fd n in an fdlist output, or "".
func fdlistTarget(out string, n int) string {
	prefix := strconv.Itoa(n) + " -> "
	for _, l := range lines(out) {
		if t, ok := strings.CutPrefix(l, prefix); ok {
			return t
		}
	}
	return ""
}

// holdStore runs `fdrestore hold store ARGS... SOCK ID` with f as stdin.
func holdStore(t testing.TB, f *os.File, sock, id string, args ...string) Result {
	t.Helper()
	argv := append(append([]string{"fdrestore", "hold", "store"}, args...), sock, id)
	return runIn(t, Opts{StdinFile: f}, argv...)
}

// mustStore stores f (nil: /dev/null) as id, failing the test otherwise.
func mustStore(t testing.TB, f *os.File, sock, id string, args ...string) {
	t.Helper()
	if r := holdStore(t, f, sock, id, args...); r.Code != 0 || r.Stderr != "" {
		t.Fatalf("hold store %s %q = %s, stderr %q; want exit 0", sock, id, r.Status(), r.Stderr)
	}
}

// holdList returns the lines of `fdrestore hold list SOCK`, failing the
// test unless it exits 0.
func holdList(t testing.TB, sock string) []string {
	t.Helper()
	r := run(t, "fdrestore", "hold", "list", sock)
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("hold list %s = %s, stderr %q; want exit 0", sock, r.Status(), r.Stderr)
	}
	return lines(r.Stdout)
}

// wantStatus checks a Result's exit code and exact stderr.
func wantStatus(t testing.TB, what string, r Result, code int, stderr string) {
	t.Helper()
	if r.Code != code || r.Stderr != stderr {
		t.Errorf("%s = %s, stdout %q, stderr %q; want exit %d, stderr %q", what, r.Status(), r.Stdout, r.Stderr, code, stderr)
	}
}

// TestFdrestoreHoldStoreRetrieveSameObject: what retrieve places at fd 3
// is the socket that was stored (same inode), and it stays held for the
// next retrieve; -D deletes it after the retrieve; the restore source
// hold:SOCK:ID gives the same object.
func TestFdrestoreHoldStoreRetrieveSameObject(t *testing.T) {
	t.Parallel()
	h := startHold(t, holdSock(t))
	f, ino := socketEnd(t)
	mustStore(t, f, h.sock, "obj")
	for i := range 2 {
		r := run(t, "fdrestore", "hold", "retrieve", h.sock, "obj", "--", "fdlist")
		if r.Code != 0 || fdlistTarget(r.Stdout, 3) != socketName(ino) {
			t.Errorf("retrieve #%d = %s, stdout %q, stderr %q; want fd 3 -> %s", i+1, r.Status(), r.Stdout, r.Stderr, socketName(ino))
		}
	}
	r := run(t, "fdrestore", "restore", "-f", "5=hold:"+h.sock+":obj", "--", "fdlist")
	if r.Code != 0 || fdlistTarget(r.Stdout, 5) != socketName(ino) {
		t.Errorf("restore -f 5=hold:%s:obj = %s, stdout %q, stderr %q; want fd 5 -> %s", h.sock, r.Status(), r.Stdout, r.Stderr, socketName(ino))
	}
	r = run(t, "fdrestore", "hold", "retrieve", "-f", "7=obj", h.sock, "--", "fdlist")
	if r.Code != 0 || fdlistTarget(r.Stdout, 7) != socketName(ino) {
		t.Errorf("retrieve -f 7=obj = %s, stdout %q, stderr %q; want fd 7 -> %s", r.Status(), r.Stdout, r.Stderr, socketName(ino))
	}
	r = run(t, "fdrestore", "hold", "retrieve", "-D", h.sock, "obj", "--", "fdlist")
	if r.Code != 0 || fdlistTarget(r.Stdout, 3) != socketName(ino) {
		t.Errorf("retrieve -D = %s, stdout %q, stderr %q; want fd 3 -> %s", r.Status(), r.Stdout, r.Stderr, socketName(ino))
	}
	if ids := holdList(t, h.sock); len(ids) != 0 {
		t.Errorf("list after retrieve -D = %q; want nothing", ids)
	}
}

// TestFdrestoreHoldRefusals: the holder's errno answers exit 1 with the
// errno's text (spec 8.3, 10, 12 "hold semantics").
func TestFdrestoreHoldRefusals(t *testing.T) {
	t.Parallel()
	h := startHold(t, holdSock(t), "-n", "2")
	mustStore(t, nil, h.sock, "a")
	r := holdStore(t, nil, h.sock, "a")
	wantStatus(t, "duplicate store", r, 1, "fdrestore: fatal: unable to store fd 0 as a in "+h.sock+": Device or resource busy\n")
	r = run(t, "fdrestore", "hold", "retrieve", h.sock, "zz", "--", "true")
	wantStatus(t, "retrieve of an unknown id", r, 1, "fdrestore: fatal: unable to retrieve zz from "+h.sock+" for fd 3: No such file or directory\n")
	r = run(t, "fdrestore", "restore", "-f", "3=hold:"+h.sock+":zz", "--", "true")
	wantStatus(t, "restore -f 3=hold: of an unknown id", r, 1, "fdrestore: fatal: unable to retrieve zz from "+h.sock+" for fd 3: No such file or directory\n")
	r = run(t, "fdrestore", "hold", "delete", h.sock, "zz")
	wantStatus(t, "delete of an unknown id", r, 1, "fdrestore: fatal: unable to delete zz from "+h.sock+": No such file or directory\n")
	mustStore(t, nil, h.sock, "b")
	r = holdStore(t, nil, h.sock, "c")
	wantStatus(t, "third store with -n 2", r, 1, "fdrestore: fatal: unable to store fd 0 as c in "+h.sock+": Too many open files in system\n")
	// -r replaces: the store count stays at 2.
	f, ino := socketEnd(t)
	mustStore(t, f, h.sock, "b", "-r")
	r = run(t, "fdrestore", "hold", "retrieve", h.sock, "b", "--", "fdlist")
	if r.Code != 0 || fdlistTarget(r.Stdout, 3) != socketName(ino) {
		t.Errorf("retrieve after store -r = %s, stdout %q, stderr %q; want fd 3 -> %s", r.Status(), r.Stdout, r.Stderr, socketName(ino))
	}
	if got := holdList(t, h.sock); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("list = %q; want [a b]", got)
	}
	// A multi-fd store that fails part way deletes what it stored.
	h2 := startHold(t, holdSock(t))
	mustStore(t, nil, h2.sock, "a")
	r = run(t, "fdrestore", "hold", "store", "-f", "0=x", "-f", "0=a", h2.sock)
	wantStatus(t, "store -f 0=x -f 0=a (a in use)", r, 1, "fdrestore: fatal: unable to store fd 0 as a in "+h2.sock+": Device or resource busy\n")
	if got := holdList(t, h2.sock); !slices.Equal(got, []string{"a"}) {
		t.Errorf("list after a failed multi-fd store = %q; want [a] (x undone)", got)
	}
}

// TestFdrestoreHoldExpiry: an fd stored with -T 1 leaves the list once
// its limit passed; one with a long limit stays; getdump shows the limit.
func TestFdrestoreHoldExpiry(t *testing.T) {
	t.Parallel()
	h := startHold(t, holdSock(t))
	mustStore(t, nil, h.sock, "long", "-T", "3600000")
	mustStore(t, nil, h.sock, "short", "-T", "1")
	waitFor(t, "the 1 ms fd to expire", func() bool { return slices.Equal(holdList(t, h.sock), []string{"long"}) })
	r := run(t, "fdrestore", "hold", "retrieve", h.sock, "short", "--", "true")
	if r.Code != 1 || !strings.HasSuffix(r.Stderr, ": No such file or directory\n") {
		t.Errorf("retrieve of an expired id = %s, stderr %q; want exit 1, ENOENT", r.Status(), r.Stderr)
	}
	d := getdumpEnv(t, "fdrestore", h.sock)
	lim, ok := d["long"]
	if len(d) != 1 || !ok || !regexp.MustCompile(`^@4[0-9a-f]{23}$`).MatchString(lim) {
		t.Fatalf("getdump = %v; want long with a TAI64N limit", d)
	}
	// The limit is about an hour from now.
	sec, _ := strconv.ParseUint(lim[1:17], 16, 64)
	at := time.Unix(int64(sec-(1<<62)-37), 0)
	if d := time.Until(at); d < 50*time.Minute || d > 61*time.Minute {
		t.Errorf("limit %s is %v from now; want about 1h", lim, d)
	}
}

// getdumpEnv runs `CLIENT getdump SOCK env` (client "fdrestore" or the
// path of s6-fdholder-getdump) and returns id -> S6_FDLIMIT ("" for no
// expiry), checking S6_FD# and that every S6_FD_i is open in env.
func getdumpEnv(t testing.TB, client, sock string) map[string]string {
	t.Helper()
	// A shell drops S6_FD# (not a valid name) from the environment it
	// passes on, so PROG reads its own exec-time environment.
	argv := []string{client, sock, "sh", "-c", `tr '\0' '\n' </proc/$$/environ; echo fds $(ls /proc/$$/fd)`}
	if client == "fdrestore" {
		argv = append([]string{"fdrestore", "hold", "getdump"}, argv[1:]...)
	}
	r := run(t, argv...)
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("%q = %s, stderr %q; want exit 0", argv[:3], r.Status(), r.Stderr)
	}
	vars := map[string]string{}
	var open []string
	for _, l := range lines(r.Stdout) {
		if f, ok := strings.CutPrefix(l, "fds "); ok {
			open = strings.Fields(f)
		}
		if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "S6_FD") {
			vars[k] = v
		}
	}
	for k, v := range vars {
		if strings.HasPrefix(k, "S6_FD_") && !slices.Contains(open, v) {
			t.Errorf("%q: %s=%s is not open in PROG (open: %v)", argv[:3], k, v, open)
		}
	}
	n, err := strconv.Atoi(vars["S6_FD#"])
	if err != nil {
		t.Fatalf("%q: S6_FD# = %q", argv[:3], vars["S6_FD#"])
	}
	d := map[string]string{}
	for i := range n {
		k := strconv.Itoa(i)
		id, ok := vars["S6_FDID_"+k]
		if _, ok2 := vars["S6_FD_"+k]; !ok || !ok2 {
			t.Fatalf("%q: S6_FD_%s or S6_FDID_%s missing (S6_FD#=%d)", argv[:3], k, k, n)
		}
		d[id] = vars["S6_FDLIMIT_"+k]
	}
	if len(d) != n {
		t.Errorf("%q: %d distinct ids for S6_FD#=%d", argv[:3], len(d), n)
	}
	return d
}

// TestFdrestoreHoldAccess: uid 65534 is refused without a rule (the
// daemon closes the connection: exit 1); with `-a 65534,retrieve` it may
// retrieve (the same object) but not store, delete or retrieve -D
// (EPERM), and root keeps every right.
func TestFdrestoreHoldAccess(t *testing.T) {
	t.Parallel()
	bin, asNobody := nobodyFarm(t, "fdrestore")
	fdrestore := filepath.Join(bin, "fdrestore")
	for _, tt := range []struct {
		name  string
		rules []string
	}{
		{name: "no rule"},
		{name: "retrieve only", rules: []string{"-a", "65534,retrieve"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(bin, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			h := startHold(t, filepath.Join(dir, "s"), tt.rules...)
			// The socket is created with the umask: let everyone connect,
			// so that only the holder's rules decide.
			if err := os.Chmod(h.sock, 0o777); err != nil {
				t.Fatal(err)
			}
			f, ino := socketEnd(t)
			mustStore(t, f, h.sock, "obj")
			retrieve := run(t, append(asNobody, fdrestore, "hold", "retrieve", h.sock, "obj", "--", "sh", "-c", "readlink /proc/$$/fd/3")...)
			store := runIn(t, Opts{}, append(asNobody, fdrestore, "hold", "store", h.sock, "mine")...)
			if tt.rules == nil {
				// No rule: the connection is closed at accept.
				if retrieve.Code != 1 || !strings.HasPrefix(retrieve.Stderr, "fdrestore: fatal: unable to retrieve obj from "+h.sock) || strings.Count(retrieve.Stderr, "\n") != 1 {
					t.Errorf("retrieve as uid 65534 without a rule = %s, stdout %q, stderr %q; want exit 1, one line", retrieve.Status(), retrieve.Stdout, retrieve.Stderr)
				}
				if store.Code != 1 || strings.Count(store.Stderr, "\n") != 1 {
					t.Errorf("store as uid 65534 without a rule = %s, stderr %q; want exit 1, one line", store.Status(), store.Stderr)
				}
			} else {
				if retrieve.Code != 0 || retrieve.Stdout != socketName(ino)+"\n" {
					t.Errorf("retrieve as uid 65534 with %q = %s, stdout %q, stderr %q; want exit 0, %s", tt.rules, retrieve.Status(), retrieve.Stdout, retrieve.Stderr, socketName(ino))
				}
				wantStatus(t, "store as uid 65534 with retrieve only", store, 1, "fdrestore: fatal: unable to store fd 0 as mine in "+h.sock+": Operation not permitted\n")
				r := run(t, append(asNobody, fdrestore, "hold", "delete", h.sock, "obj")...)
				wantStatus(t, "delete as uid 65534 with retrieve only", r, 1, "fdrestore: fatal: unable to delete obj from "+h.sock+": Operation not permitted\n")
				r = run(t, append(asNobody, fdrestore, "hold", "retrieve", "-D", h.sock, "obj", "--", "true")...)
				if r.Code != 1 || !strings.HasSuffix(r.Stderr, ": Operation not permitted\n") {
					t.Errorf("retrieve -D as uid 65534 with retrieve only = %s, stderr %q; want exit 1, EPERM", r.Status(), r.Stderr)
				}
				r = run(t, append(asNobody, fdrestore, "hold", "list", h.sock)...)
				wantStatus(t, "list as uid 65534 with retrieve only", r, 1, "fdrestore: fatal: unable to list "+h.sock+": Operation not permitted\n")
			}
			if got := holdList(t, h.sock); !slices.Equal(got, []string{"obj"}) {
				t.Errorf("list as root afterwards = %q; want [obj]", got)
			}
		})
	}
}

// frame is one protocol message: header (length, fd count) and payload.
func frame(payload []byte, nfds uint16) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	b = binary.BigEndian.AppendUint16(b, nfds)
	return append(b, payload...)
}

// TestFdrestoreHoldMalformedFrame: each malformed request closes its own
// connection (the client reads EOF) and nothing else: a client connected
// before keeps working, and the store is unchanged.
func TestFdrestoreHoldMalformedFrame(t *testing.T) {
	t.Parallel()
	h := startHold(t, holdSock(t))
	mustStore(t, nil, h.sock, "keep")
	other, err := fdholder.Dial(h.sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if ids, err := other.List(); err != nil || !slices.Equal(ids, []string{"keep"}) {
		t.Fatalf("List = %q, %v; want [keep]", ids, err)
	}
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{name: "text", b: []byte("GET / HTTP/1.0\r\n\r\n")},
		{name: "unknown opcode", b: frame([]byte("Z"), 0)},
		{name: "empty payload", b: frame(nil, 0)},
		{name: "length over 2^28", b: append(binary.BigEndian.AppendUint32(nil, 1<<28+1), 0, 0, 'L')},
		{name: "fd count without fds", b: frame([]byte("L"), 1)},
		{name: "delete without NUL", b: frame([]byte("D\x01ax"), 0)},
		{name: "delete with embedded NUL", b: frame([]byte("D\x02a\x00\x00"), 0)},
		{name: "data without setdump", b: frame([]byte("."), 0)},
		{name: "store without its fd", b: frame(append(append([]byte("S"), make([]byte, 12)...), "\x01a\x00"...), 0)},
	} {
		c, err := net.Dial("unix", h.sock)
		if err != nil {
			t.Fatalf("%s: dial: %v", tt.name, err)
		}
		if _, err := c.Write(tt.b); err != nil {
			t.Errorf("%s: write: %v", tt.name, err)
		}
		c.SetReadDeadline(deadline(t))
		n, err := io.ReadFull(c, make([]byte, 1))
		c.Close()
		if n != 0 || !(errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET)) {
			t.Errorf("%s: after % x the daemon answered %d bytes, then %v; want the connection closed (EOF)", tt.name, tt.b, n, err)
		}
		if ids, err := other.List(); err != nil || !slices.Equal(ids, []string{"keep"}) {
			t.Errorf("%s: the other client's List = %q, %v; want [keep]", tt.name, ids, err)
		}
	}
	if got := holdList(t, h.sock); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("list after the malformed frames = %q; want [keep]", got)
	}
	if !h.p.Running() {
		t.Errorf("the daemon exited: %s, stderr %q", h.p.Wait(t).Status(), h.p.Stderr())
	}
}

// TestFdrestoreHoldDumps moves 600 fds (three messages of at most 253)
// from one daemon to two others, by transferdump and by getdump piped
// into setdump: ids and limits arrive intact. Half are stored through
// `restore --listen-fds -- hold store --listen-fds`, half with -f and an
// expiry.
func TestFdrestoreHoldDumps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startHold(t, filepath.Join(dir, "a"))
	b := startHold(t, filepath.Join(dir, "b"))
	c := startHold(t, filepath.Join(dir, "c"))
	const half = 300
	restore := []string{"fdrestore", "restore", "--listen-fds"}
	var store []string
	var want []string
	for i := range half {
		n, e := fmt.Sprintf("n%03d", i), fmt.Sprintf("e%03d", i)
		restore = append(restore, "--name", fmt.Sprintf("%d=%s", 3+i, n), "-f", "null")
		store = append(store, "-f", fmt.Sprintf("%d=%s", 3+i, e))
		want = append(want, n, e)
	}
	sort.Strings(want)
	r := run(t, append(restore, "--", "fdrestore", "hold", "store", "--listen-fds", a.sock)...)
	wantStatus(t, "restore --listen-fds -- hold store --listen-fds (300 fds)", r, 0, "")
	argv := []string{"fdrestore", "restore"}
	for i := range half {
		argv = append(argv, "-f", fmt.Sprintf("%d=memfd:m%d", 3+i, i))
	}
	argv = append(append(append(argv, "--", "fdrestore", "hold", "store", "-T", "3600000"), store...), a.sock)
	r = run(t, argv...)
	wantStatus(t, "hold store -T 3600000 -f ... (300 fds)", r, 0, "")
	if got := holdList(t, a.sock); !slices.Equal(got, want) {
		t.Fatalf("list of the source has %d ids; want the %d stored", len(got), len(want))
	}
	src := getdumpEnv(t, "fdrestore", a.sock)
	limited := 0
	for id, l := range src {
		if (l != "") != strings.HasPrefix(id, "e") {
			t.Errorf("source getdump: %s has limit %q; want one exactly for e*", id, l)
		}
		if l != "" {
			limited++
		}
	}
	if len(src) != 2*half || limited != half {
		t.Errorf("source getdump: %d fds, %d with a limit; want %d, %d", len(src), limited, 2*half, half)
	}
	r = run(t, "fdrestore", "hold", "transferdump", a.sock, b.sock)
	wantStatus(t, "hold transferdump a b", r, 0, "")
	r = run(t, "fdrestore", "hold", "getdump", a.sock, "fdrestore", "hold", "setdump", c.sock)
	wantStatus(t, "hold getdump a hold setdump c", r, 0, "")
	for _, h := range []*holdd{b, c} {
		if got := holdList(t, h.sock); !slices.Equal(got, want) {
			t.Errorf("list of %s has %d ids; want the %d of the source", h.sock, len(got), len(want))
		}
		if got := getdumpEnv(t, "fdrestore", h.sock); !maps.Equal(got, src) {
			t.Errorf("getdump of %s differs from the source's (ids and limits)", h.sock)
		}
	}
	// A memfd came through as itself: its name.
	r = run(t, "fdrestore", "hold", "retrieve", b.sock, "e007", "--", "fdlist")
	if got := fdlistTarget(r.Stdout, 3); r.Code != 0 || got != "/memfd:m7 (deleted)" {
		t.Errorf("retrieve e007 from the copy = %s, fd 3 -> %q, stderr %q; want /memfd:m7 (deleted)", r.Status(), got, r.Stderr)
	}
	// The destination refuses what exceeds its -n: transferdump exits 2.
	small := startHold(t, filepath.Join(dir, "small"), "-n", "10")
	r = run(t, "fdrestore", "hold", "transferdump", a.sock, small.sock)
	if r.Code != 2 || !strings.HasSuffix(r.Stderr, ": Too many open files in system\n") || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("transferdump of 600 fds into -n 10 = %s, stderr %q; want exit 2, ENFILE", r.Status(), r.Stderr)
	}
}

// TestFdrestoreHoldLameDuck: SIGTERM makes the daemon exit with s6's
// status, (fds held ? 1 : 0) | (clients left ? 2 : 0), and remove its
// socket file.
func TestFdrestoreHoldLameDuck(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		fds    int
		client bool
		want   int
	}{
		{name: "empty", want: 0},
		{name: "fds held", fds: 2, want: 1},
		{name: "fds held and a client", fds: 1, client: true, want: 3},
		{name: "a client", client: true, want: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startHold(t, holdSock(t), "-T", "100")
			for i := range tt.fds {
				mustStore(t, nil, h.sock, fmt.Sprintf("fd%d", i))
			}
			if tt.client {
				c, err := fdholder.Dial(h.sock, 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.List(); err != nil {
					t.Fatal(err)
				}
			}
			h.p.Signal(unix.SIGTERM)
			r := waitExit(t, h.p, "the daemon after SIGTERM")
			if r.Code != tt.want || r.Stderr != "" {
				t.Errorf("daemon after SIGTERM = %s, stderr %q; want exit %d", r.Status(), r.Stderr, tt.want)
			}
			if _, err := os.Lstat(h.sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket file after exit: %v; want it removed", err)
			}
		})
	}
}

// waitExit waits for p to exit, at most 20 s (a hang detector with ample
// slack, so that one stuck daemon does not eat the whole suite's time).
func waitExit(t testing.TB, p *Proc, what string) Result {
	t.Helper()
	if !poll(time.Now().Add(20*time.Second), func() bool { return !p.Running() }) {
		t.Fatalf("%s: %q (pid %d) still runs 20 s later; stderr %q", what, p.Argv, p.Pid, p.Stderr())
	}
	return p.Wait(t)
}

// TestFdrestoreHoldListEscapes: list prints ids in byte order, bytes
// outside 0x21..0x7e and '\' as \xHH.
func TestFdrestoreHoldListEscapes(t *testing.T) {
	t.Parallel()
	h := startHold(t, holdSock(t))
	for _, id := range []string{"b", "a b", `c\d`, "\x01\x7f", "é", "tcp:80"} {
		mustStore(t, nil, h.sock, id)
	}
	want := []string{`\x01\x7f`, `a\x20b`, "b", `c\x5cd`, "tcp:80", `\xc3\xa9`}
	if got := holdList(t, h.sock); !slices.Equal(got, want) {
		t.Errorf("list = %q; want %q", got, want)
	}
}

// TestFdrestoreHoldListenFDs: retrieve --listen-fds gives the probe
// LISTEN_FDS, LISTEN_FDNAMES (':' becomes '_', --name overrides) and
// LISTEN_PID = its own pid, without LISTEN_PIDFDID; store --listen-fds
// refuses a LISTEN_PID that is not its own.
func TestFdrestoreHoldListenFDs(t *testing.T) {
	t.Parallel()
	h := startHold(t, holdSock(t))
	f, ino := socketEnd(t)
	mustStore(t, f, h.sock, "tcp:80")
	mustStore(t, nil, h.sock, "x")
	mustStore(t, nil, h.sock, "y")
	probe := `echo "$$ $LISTEN_PID $LISTEN_FDS $LISTEN_FDNAMES ${LISTEN_PIDFDID-unset} $(readlink /proc/$$/fd/3)"`
	r := runIn(t, Opts{Env: []string{"LISTEN_PIDFDID=5"}}, "fdrestore", "hold", "retrieve", "--listen-fds", "--name", "5=why",
		h.sock, "tcp:80", "x", "y", "--", "sh", "-c", probe)
	f6 := strings.Fields(r.Stdout)
	if r.Code != 0 || len(f6) != 6 || f6[0] != f6[1] || f6[2] != "3" || f6[3] != "tcp_80:x:why" || f6[4] != "unset" || f6[5] != socketName(ino) {
		t.Errorf("retrieve --listen-fds = %s, stdout %q, stderr %q; want PID PID 3 tcp_80:x:why unset %s", r.Status(), r.Stdout, r.Stderr, socketName(ino))
	}
	// store --listen-fds: LISTEN_PID must be the storing process.
	r = runIn(t, Opts{Env: []string{"LISTEN_PID=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=z"}, ExtraFiles: []*os.File{f}},
		"fdrestore", "hold", "store", "--listen-fds", h.sock)
	if r.Code != 100 || !regexp.MustCompile(`^fdrestore: fatal: LISTEN_PID is "1", not this process \(\d+\)\n$`).MatchString(r.Stderr) {
		t.Errorf("store --listen-fds with LISTEN_PID=1 = %s, stderr %q; want exit 100 and the LISTEN_PID message", r.Status(), r.Stderr)
	}
	// Through restore, LISTEN_PID is the store's own pid.
	r = run(t, "fdrestore", "restore", "--listen-fds", "--name", "3=z1", "-f", "null", "--", "fdrestore", "hold", "store", "--listen-fds", h.sock)
	wantStatus(t, "restore --listen-fds -- hold store --listen-fds", r, 0, "")
	if got := holdList(t, h.sock); !slices.Equal(got, []string{"tcp:80", "x", "y", "z1"}) {
		t.Errorf("list = %q; want [tcp:80 x y z1]", got)
	}
}

// TestFdrestoreHoldSocketFile: a dead socket file at SOCKET is replaced;
// a live daemon's socket and a regular file are not (exit 111, the file
// stays); `-` serves the listening socket on fd 0.
func TestFdrestoreHoldSocketFile(t *testing.T) {
	t.Parallel()
	t.Run("stale socket", func(t *testing.T) {
		t.Parallel()
		sock := holdSock(t)
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		if r := run(t, "fdrestore", "hold", "list", sock); r.Code != 111 || !strings.HasSuffix(r.Stderr, ": Connection refused\n") {
			t.Fatalf("list on the dead socket = %s, stderr %q; want exit 111, ECONNREFUSED", r.Status(), r.Stderr)
		}
		h := startHold(t, sock)
		mustStore(t, nil, h.sock, "a")
		// A second daemon on the live socket fails and leaves it alone.
		r := run(t, "fdrestore", "hold", "daemon", sock)
		if r.Code != 111 || !strings.HasSuffix(r.Stderr, ": Address already in use\n") || strings.Count(r.Stderr, "\n") != 1 {
			t.Errorf("second daemon on a live socket = %s, stderr %q; want exit 111, EADDRINUSE", r.Status(), r.Stderr)
		}
		if got := holdList(t, sock); !slices.Equal(got, []string{"a"}) {
			t.Errorf("list of the first daemon = %q; want [a]", got)
		}
	})
	t.Run("regular file", func(t *testing.T) {
		t.Parallel()
		sock := holdSock(t)
		if err := os.WriteFile(sock, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := run(t, "fdrestore", "hold", "daemon", "-1", sock)
		if r.Code != 111 || r.Stdout != "" || !strings.HasPrefix(r.Stderr, "fdrestore: fatal: unable to bind "+sock) ||
			!strings.HasSuffix(r.Stderr, ": Address already in use\n") || strings.Count(r.Stderr, "\n") != 1 {
			t.Errorf("daemon on a regular file = %s, stdout %q, stderr %q; want exit 111, one bind line, no readiness", r.Status(), r.Stdout, r.Stderr)
		}
		if b, err := os.ReadFile(sock); err != nil || string(b) != "keep me" {
			t.Errorf("the regular file afterwards: %q, %v; want it untouched", b, err)
		}
	})
	t.Run("listening socket on fd 0", func(t *testing.T) {
		t.Parallel()
		sock := holdSock(t)
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		ul := l.(*net.UnixListener)
		ul.SetUnlinkOnClose(false)
		lf, err := ul.File()
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer lf.Close()
		p := startIn(t, Opts{StdinFile: lf}, "fdrestore", "hold", "daemon", "-1", "-")
		p.WaitLine(t, "^$")
		mustStore(t, nil, sock, "a")
		if got := holdList(t, sock); !slices.Equal(got, []string{"a"}) {
			t.Errorf("list = %q; want [a]", got)
		}
		r := run(t, "fdrestore", "hold", "daemon", "-")
		if r.Code != 100 || strings.Count(r.Stderr, "\n") != 1 {
			t.Errorf("daemon - with /dev/null on fd 0 = %s, stderr %q; want exit 100, one line", r.Status(), r.Stderr)
		}
	})
}

// TestFdrestoreHoldBadInput: usage errors exit 100 with one line on
// stderr and nothing done; no daemon at SOCKET exits 111.
func TestFdrestoreHoldBadInput(t *testing.T) {
	t.Parallel()
	h := startHold(t, holdSock(t))
	sock := h.sock
	long := strings.Repeat("x", 256)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string // the exact stderr; empty: any one line
	}{
		{name: "hold alone", args: []string{"hold"}, code: 100},
		{name: "store without socket", args: []string{"hold", "store"}, code: 100},
		{name: "store without id", args: []string{"hold", "store", sock}, code: 100},
		{name: "store id and -f", args: []string{"hold", "store", "-f", "0=a", sock, "b"}, code: 100},
		{name: "store bad -f", args: []string{"hold", "store", "-f", "x", sock}, code: 100,
			want: "fdrestore: fatal: invalid -f \"x\": it must be FD=ID\n"},
		{name: "store -f without id", args: []string{"hold", "store", "-f", "3=", sock}, code: 100},
		{name: "store empty id", args: []string{"hold", "store", sock, ""}, code: 100,
			want: "fdrestore: fatal: invalid id \"\"\n"},
		{name: "store 256-byte id", args: []string{"hold", "store", sock, long}, code: 100,
			want: "fdrestore: fatal: invalid id \"" + long + "\"\n"},
		{name: "store negative -T", args: []string{"hold", "store", "-T", "-1", sock, "a"}, code: 100},
		{name: "retrieve without --", args: []string{"hold", "retrieve", sock, "a", "true"}, code: 100},
		{name: "retrieve without id", args: []string{"hold", "retrieve", sock, "--", "true"}, code: 100},
		{name: "retrieve without prog", args: []string{"hold", "retrieve", sock, "a", "--"}, code: 100},
		{name: "retrieve bad -f", args: []string{"hold", "retrieve", "-f", "3", sock, "--", "true"}, code: 100,
			want: "fdrestore: fatal: invalid -f \"3\": it must be N=ID\n"},
		{name: "retrieve 256-byte id", args: []string{"hold", "retrieve", sock, long, "--", "true"}, code: 100},
		{name: "delete without id", args: []string{"hold", "delete", sock}, code: 100},
		{name: "getdump without prog", args: []string{"hold", "getdump", sock}, code: 100},
		{name: "setdump without S6_FD#", args: []string{"hold", "setdump", sock}, code: 100,
			want: "fdrestore: fatal: S6_FD# is missing or invalid\n"},
		{name: "transferdump one socket", args: []string{"hold", "transferdump", sock}, code: 100},
		{name: "daemon bad rule", args: []string{"hold", "daemon", "-a", "bogus", sock + "2"}, code: 100,
			want: "fdrestore: fatal: invalid rule \"bogus\": bad uid \"bogus\" (want a uid, @gid or *)\n"},
		{name: "daemon bad right", args: []string{"hold", "daemon", "-a", "0,bogus", sock + "2"}, code: 100,
			want: "fdrestore: fatal: invalid rule \"0,bogus\": unknown right \"bogus\"\n"},
		{name: "daemon bad regex", args: []string{"hold", "daemon", "-a", "0:(", sock + "2"}, code: 100},
		{name: "daemon bad gid", args: []string{"hold", "daemon", "-a", "@x", sock + "2"}, code: 100},
		{name: "daemon negative -n", args: []string{"hold", "daemon", "-n", "-1", sock + "2"}, code: 100},
		{name: "list without daemon", args: []string{"hold", "list", sock + "-none"}, code: 111,
			want: "fdrestore: fatal: unable to connect to " + sock + "-none: No such file or directory\n"},
		{name: "store without daemon", args: []string{"hold", "store", sock + "-none", "a"}, code: 111,
			want: "fdrestore: fatal: unable to connect to " + sock + "-none: No such file or directory\n"},
		{name: "retrieve without daemon", args: []string{"hold", "retrieve", sock + "-none", "a", "--", "true"}, code: 111,
			want: "fdrestore: fatal: unable to connect to " + sock + "-none for fd 3: No such file or directory\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, append([]string{"fdrestore"}, tt.args...)...)
			lines := strings.Count(r.Stderr, "\n") == 1 || (tt.code == 100 && isUsageError(r.Stderr, "fdrestore"))
			ok := r.Code == tt.code && r.Stdout == "" && strings.HasPrefix(r.Stderr, "fdrestore: ") && lines
			if tt.want != "" {
				ok = ok && r.Stderr == tt.want
			}
			if !ok {
				t.Errorf("fdrestore %.200q = %s, stdout %q, stderr %.300q; want exit %d, stderr %.300q (one line)", tt.args, r.Status(), r.Stdout, r.Stderr, tt.code, tt.want)
			}
		})
	}
	if _, err := os.Lstat(sock + "2"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a daemon with bad flags left %s: %v", sock+"2", err)
	}
	if got := holdList(t, sock); len(got) != 0 {
		t.Errorf("list after the bad input = %q; want nothing stored", got)
	}
}

// freeTCPPort returns a loopback port nobody listens on right now.
func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestFdrestoreHoldRestarts is section 12's "hold and restarts": a
// listener bound early and stored in the holder is retrieved by every
// start of a supervised service (`exec fdrestore hold retrieve
// --listen-fds SOCK tcp:web -- lineserver`); the service is SIGKILLed
// and restarted 50 times under a client loop: no connection is refused,
// every one is answered, and every instance answers.
func TestFdrestoreHoldRestarts(t *testing.T) {
	// Not parallel: under the load of the other end-to-end tests, one
	// connection in about a thousand has been seen to read EOF without a
	// line (never a refused one), twice in a dozen crowded runs and never
	// alone; the cause is not found yet (see the closing note of issues 7
	// and 8). Run alone, it has not failed in 40 runs under CPU load.
	const restarts = 50
	h := startHold(t, holdSock(t))
	port := freeTCPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	r := run(t, "fdrestore", "restore", "-f", "0=listen:tcp:"+addr, "--", "fdrestore", "hold", "store", h.sock, "tcp:web")
	wantStatus(t, "bind-early store", r, 0, "")
	// No process but the holder has the listener now, and it is queued
	// on: a connection made before the service exists is answered later.
	dir := svcDir(t, map[string]string{
		"run": "#!/bin/sh\nexec fdrestore hold retrieve --listen-fds " + h.sock + " tcp:web -- lineserver\n",
	})
	s := startSuperviseEnv(t, dir, "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
	s.expect("s")
	c := newClientLoop(addr, 1<<30)
	ctx, cancel := context.WithCancel(context.Background())
	go c.run(ctx)
	defer func() {
		cancel()
		<-c.finished
	}()
	pids := killUnderLoad(t, s, c, restarts)
	cancel()
	<-c.finished
	// Down and exit: supervise kills and reaps the last instance itself.
	s.control("dx")
	if r := waitExit(t, s.p, "supervise after dx"); r.Code != 0 {
		t.Errorf("supervise after dx = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for _, k := range c.answers {
		total += k
	}
	if c.refused != 0 || len(c.failures) != 0 {
		t.Errorf("%d refused connections and %d other failures (first: %q) out of %d; want none", c.refused, len(c.failures), first(c.failures), c.done.Load())
	}
	for _, pid := range pids {
		if c.answers[pid] == 0 {
			t.Errorf("instance pid %d never answered", pid)
		}
	}
	t.Logf("%d connections answered by %d instances, %d restarts", total, len(pids), restarts)
	if got := holdList(t, h.sock); !slices.Equal(got, []string{"tcp:web"}) {
		t.Errorf("list after the restarts = %q; want [tcp:web]", got)
	}
}

// s6HoldRules writes a rules directory for s6-fdholderd that gives uid 0
// every right on every id (s6-fdholderd.c parse_env: the regexes and the
// presence of S6_FDHOLDER_LIST, _GETDUMP and _SETDUMP).
func s6HoldRules(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rules")
	env := filepath.Join(dir, "uid", "0", "env")
	if err := os.MkdirAll(env, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		filepath.Join(dir, "uid", "0", "allow"):          "",
		filepath.Join(env, "S6_FDHOLDER_STORE_REGEX"):    "^\n",
		filepath.Join(env, "S6_FDHOLDER_RETRIEVE_REGEX"): "^\n",
		filepath.Join(env, "S6_FDHOLDER_LIST"):           "1\n",
		filepath.Join(env, "S6_FDHOLDER_GETDUMP"):        "1\n",
		filepath.Join(env, "S6_FDHOLDER_SETDUMP"):        "1\n",
	}
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startS6Hold starts the real `s6-fdholder-daemon -1 -i RULES SOCK` and
// waits for its readiness newline.
func startS6Hold(t testing.TB, sock string) *holdd {
	t.Helper()
	daemon := requireS6(t, "s6-fdholder-daemon")[0]
	p := start(t, daemon, "-1", "-i", s6HoldRules(t), sock)
	p.WaitLine(t, "^$")
	return &holdd{sock: sock, p: p}
}

// holdClient runs one implementation's clients: gotools' `fdrestore
// hold` or s6's s6-fdholder-*.
type holdClient struct {
	name  string
	s6    map[string]string // s6 tool -> absolute path; nil for gotools
	retFD int               // where retrieve puts the fd
}

func gotoolsHoldClient() holdClient { return holdClient{name: "gotools", retFD: 3} }

func s6HoldClient(t testing.TB) holdClient {
	t.Helper()
	names := []string{"store", "retrieve", "list", "delete", "getdump", "setdump", "transferdump"}
	tools := make([]string, len(names))
	for i, n := range names {
		tools[i] = "s6-fdholder-" + n
	}
	paths := requireS6(t, tools...)
	c := holdClient{name: "s6", s6: map[string]string{}, retFD: 0}
	for i, n := range names {
		c.s6[n] = paths[i]
	}
	return c
}

// argv returns the command line of operation op ("store", "list", ...)
// with options opts and operands args.
func (c holdClient) argv(op string, opts []string, args ...string) []string {
	if c.s6 == nil {
		return append(append([]string{"fdrestore", "hold", op}, opts...), args...)
	}
	return append(append([]string{c.s6[op]}, opts...), args...)
}

func (c holdClient) store(t testing.TB, f *os.File, sock, id string, opts ...string) Result {
	t.Helper()
	return runIn(t, Opts{StdinFile: f}, c.argv("store", opts, sock, id)...)
}

// retrieve runs retrieve into fdlist and returns the Result and what
// the retrieved fd is.
func (c holdClient) retrieve(t testing.TB, sock, id string) (Result, string) {
	t.Helper()
	prog := []string{sock, id}
	if c.s6 == nil {
		prog = append(prog, "--")
	}
	r := run(t, c.argv("retrieve", nil, append(prog, "fdlist")...)...)
	return r, fdlistTarget(r.Stdout, c.retFD)
}

// list returns the ids, sorted, failing the test unless list exits 0.
func (c holdClient) list(t testing.TB, sock string) []string {
	t.Helper()
	r := run(t, c.argv("list", nil, sock)...)
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("%s list %s = %s, stderr %q; want exit 0", c.name, sock, r.Status(), r.Stderr)
	}
	ids := lines(r.Stdout)
	slices.Sort(ids)
	return ids
}

func (c holdClient) getdump(t testing.TB, sock string) map[string]string {
	t.Helper()
	if c.s6 == nil {
		return getdumpEnv(t, "fdrestore", sock)
	}
	return getdumpEnv(t, c.s6["getdump"], sock)
}

// TestFdrestoreHoldInteropClients runs gotools' and s6's clients against
// gotools' daemon and s6's: an fd stored by either client comes back to
// either as the same socket (inode), refusals exit 1 with the same
// errno, list, delete and expiry agree, and both getdumps show the same
// ids and limits.
func TestFdrestoreHoldInteropClients(t *testing.T) {
	t.Parallel()
	clients := []holdClient{gotoolsHoldClient(), s6HoldClient(t)}
	for _, kind := range []string{"gotools", "s6"} {
		t.Run(kind+" daemon", func(t *testing.T) {
			t.Parallel()
			var h *holdd
			if kind == "s6" {
				h = startS6Hold(t, holdSock(t))
			} else {
				h = startHold(t, holdSock(t))
			}
			var want []string
			for _, st := range clients {
				for _, rt := range clients {
					id := "obj-" + st.name + "-" + rt.name
					f, ino := socketEnd(t)
					if r := st.store(t, f, h.sock, id); r.Code != 0 || r.Stderr != "" {
						t.Errorf("%s store %s = %s, stderr %q; want exit 0", st.name, id, r.Status(), r.Stderr)
						continue
					}
					want = append(want, id)
					if r, got := rt.retrieve(t, h.sock, id); r.Code != 0 || got != socketName(ino) {
						t.Errorf("%s retrieve %s (stored by %s) = %s, fd %d -> %q, stderr %q; want %s",
							rt.name, id, st.name, r.Status(), rt.retFD, got, r.Stderr, socketName(ino))
					}
				}
			}
			for _, c := range clients {
				for _, tt := range []struct {
					what  string
					r     Result
					errno string
				}{
					{"duplicate store", c.store(t, nil, h.sock, "obj-gotools-s6"), "Device or resource busy"},
					{"retrieve of an unknown id", func() Result { r, _ := c.retrieve(t, h.sock, "zz"); return r }(), "No such file or directory"},
					{"delete of an unknown id", run(t, c.argv("delete", nil, h.sock, "zz")...), "No such file or directory"},
				} {
					if tt.r.Code != 1 || !strings.HasSuffix(tt.r.Stderr, ": "+tt.errno+"\n") || strings.Count(tt.r.Stderr, "\n") != 1 {
						t.Errorf("%s %s = %s, stderr %q; want exit 1, %s", c.name, tt.what, tt.r.Status(), tt.r.Stderr, tt.errno)
					}
				}
				slices.Sort(want)
				if got := c.list(t, h.sock); !slices.Equal(got, want) {
					t.Errorf("%s list = %q; want %q", c.name, got, want)
				}
				// Expiry: -T 1 (ms) leaves the list.
				exp := "exp-" + c.name
				if r := c.store(t, nil, h.sock, exp, "-T", "1"); r.Code != 0 {
					t.Errorf("%s store -T 1 = %s, stderr %q", c.name, r.Status(), r.Stderr)
				}
				waitFor(t, c.name+" store -T 1 to expire", func() bool { return !slices.Contains(c.list(t, h.sock), exp) })
			}
			// Delete by one, gone for the other.
			for i, c := range clients {
				id := "obj-" + clients[1-i].name + "-" + c.name
				if r := run(t, c.argv("delete", nil, h.sock, id)...); r.Code != 0 || r.Stderr != "" {
					t.Errorf("%s delete %s = %s, stderr %q; want exit 0", c.name, id, r.Status(), r.Stderr)
				}
				if slices.Contains(clients[1-i].list(t, h.sock), id) {
					t.Errorf("%s list still has %s after %s delete", clients[1-i].name, id, c.name)
				}
			}
			// getdump: the same ids and limits through both clients.
			for _, c := range clients {
				if r := c.store(t, nil, h.sock, "lim-"+c.name, "-T", "3600000"); r.Code != 0 {
					t.Errorf("%s store -T 3600000 = %s, stderr %q", c.name, r.Status(), r.Stderr)
				}
			}
			g, s := clients[0].getdump(t, h.sock), clients[1].getdump(t, h.sock)
			if !maps.Equal(g, s) || g["lim-gotools"] == "" || g["lim-s6"] == "" || g["obj-gotools-gotools"] != "" {
				t.Errorf("getdump: gotools sees %v, s6 sees %v; want the same, limits only on lim-*", g, s)
			}
		})
	}
}

// TestFdrestoreHoldInteropDumps moves 253 fds (one full message) between
// gotools' and s6's daemons with each implementation's transferdump,
// getdump and setdump: ids and limits arrive intact each way. 253 is the
// most Debian's s6 2.11.3.2 moves: with 254 its own s6-to-s6
// transferdump fails (its daemon announces one message for 254 fds and
// the kernel refuses more than 253 per sendmsg), so the multi-message
// dumps are tested between gotools daemons (TestFdrestoreHoldDumps).
func TestFdrestoreHoldInteropDumps(t *testing.T) {
	t.Parallel()
	s6c := s6HoldClient(t)
	dir := t.TempDir()
	g1 := startHold(t, filepath.Join(dir, "g1"))
	s1 := startS6Hold(t, filepath.Join(dir, "s1"))
	g2 := startHold(t, filepath.Join(dir, "g2"))
	s2 := startS6Hold(t, filepath.Join(dir, "s2"))
	g3 := startHold(t, filepath.Join(dir, "g3"))
	const n = 253
	for _, lim := range []string{"0", "3600000"} {
		argv := []string{"fdrestore", "restore"}
		var store []string
		k := n / 2
		if lim != "0" {
			k = n - n/2
		}
		for i := range k {
			argv = append(argv, "-f", fmt.Sprintf("%d=null", 3+i))
			store = append(store, "-f", fmt.Sprintf("%d=t%s-%03d", 3+i, lim, i))
		}
		argv = append(append(append(argv, "--", "fdrestore", "hold", "store", "-T", lim), store...), g1.sock)
		if r := run(t, argv...); r.Code != 0 || r.Stderr != "" {
			t.Fatalf("store of %d fds -T %s = %s, stderr %q", k, lim, r.Status(), r.Stderr)
		}
	}
	src := getdumpEnv(t, "fdrestore", g1.sock)
	if len(src) != n {
		t.Fatalf("getdump of the source: %d fds; want %d", len(src), n)
	}
	steps := []struct {
		what string
		argv []string
		to   *holdd
	}{
		{"s6-fdholder-transferdump gotools -> s6", []string{s6c.s6["transferdump"], g1.sock, s1.sock}, s1},
		{"fdrestore hold transferdump s6 -> gotools", []string{"fdrestore", "hold", "transferdump", s1.sock, g2.sock}, g2},
		{"fdrestore hold getdump gotools | s6-fdholder-setdump", []string{"fdrestore", "hold", "getdump", g2.sock, s6c.s6["setdump"], s2.sock}, s2},
		{"s6-fdholder-getdump s6 | fdrestore hold setdump", []string{s6c.s6["getdump"], s2.sock, "fdrestore", "hold", "setdump", g3.sock}, g3},
	}
	for _, st := range steps {
		if r := run(t, st.argv...); r.Code != 0 || r.Stderr != "" {
			t.Fatalf("%s = %s, stderr %q; want exit 0", st.what, r.Status(), r.Stderr)
		}
		for _, c := range []holdClient{gotoolsHoldClient(), s6c} {
			if got := c.getdump(t, st.to.sock); !maps.Equal(got, src) {
				t.Errorf("after %s, %s getdump of the destination has %d fds, differing from the source's %d (ids and limits)", st.what, c.name, len(got), len(src))
			}
		}
	}
}

// TestFdrestoreHoldInteropSocketbinder: the gotools daemon serves the
// listening socket s6-ipcserver-socketbinder leaves on fd 0 (`-`), as
// s6-fdholderd does under s6-fdholder-daemon.
func TestFdrestoreHoldInteropSocketbinder(t *testing.T) {
	t.Parallel()
	binder := requireS6(t, "s6-ipcserver-socketbinder")[0]
	sock := holdSock(t)
	p := start(t, binder, sock, "fdrestore", "hold", "daemon", "-1", "-")
	p.WaitLine(t, "^$")
	s6c := s6HoldClient(t)
	f, ino := socketEnd(t)
	if r := s6c.store(t, f, sock, "obj"); r.Code != 0 {
		t.Fatalf("s6-fdholder-store = %s, stderr %q", r.Status(), r.Stderr)
	}
	if r, got := gotoolsHoldClient().retrieve(t, sock, "obj"); r.Code != 0 || got != socketName(ino) {
		t.Errorf("retrieve = %s, fd 3 -> %q, stderr %q; want %s", r.Status(), got, r.Stderr, socketName(ino))
	}
}
