//go:build linux

package fdholder

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/tai"
)

type runResult struct {
	code           int
	stdout, stderr string
}

// runS6 runs an upstream tool with stdin on fd (or /dev/null if fd < 0).
func runS6(t *testing.T, stdin int, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(filepath.Join("/usr/bin", args[0]), args[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin >= 0 {
		d, err := unix.FcntlInt(uintptr(stdin), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(d), "stdin")
		defer f.Close()
		cmd.Stdin = f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", args[0], err)
	}
	return runResult{code, out.String(), errb.String()}
}

func TestS6ClientsAgainstServe(t *testing.T) {
	requireS6(t, "s6-fdholder-store", "s6-fdholder-retrieve", "s6-fdholder-list", "s6-fdholder-delete", "s6-fdholder-getdump")
	d := startDaemon(t, Config{})
	sock := d.path
	a, _ := socketPair(t)
	if r := runS6(t, a, "s6-fdholder-store", sock, "tcp:80"); r.code != 0 {
		t.Fatalf("s6-fdholder-store = %+v", r)
	}
	r := runS6(t, a, "s6-fdholder-store", sock, "tcp:80")
	if r.code != 1 || !strings.Contains(r.stderr, "Device or resource busy") {
		t.Errorf("duplicate s6-fdholder-store = %+v; want 1, EBUSY", r)
	}
	if r := runS6(t, a, "s6-fdholder-store", "-T", "3600000", sock, "limited"); r.code != 0 {
		t.Fatalf("s6-fdholder-store -T = %+v", r)
	}
	r = runS6(t, -1, "s6-fdholder-list", sock)
	if r.code != 0 || r.stdout != "limited\ntcp:80\n" {
		t.Errorf("s6-fdholder-list = %+v", r)
	}
	want := fmt.Sprintf("socket:[%d]", inode(t, a))
	r = runS6(t, -1, "s6-fdholder-retrieve", sock, "tcp:80", "readlink", "/proc/self/fd/0")
	if r.code != 0 || strings.TrimSpace(r.stdout) != want {
		t.Errorf("s6-fdholder-retrieve readlink = %+v; want %s", r, want)
	}
	// sh drops S6_FD# (not a shell name): env prints the variables, a
	// second getdump lists the fds.
	r = runS6(t, -1, "s6-fdholder-getdump", sock, "env")
	r2 := runS6(t, -1, "s6-fdholder-getdump", sock, "sh", "-c", `for f in /proc/$$/fd/*; do echo "fd $(basename $f) $(readlink $f)"; done`)
	if r.code != 0 || r2.code != 0 {
		t.Fatalf("s6-fdholder-getdump = %+v, %+v", r, r2)
	}
	env := map[string]string{}
	links := map[string]string{}
	for _, l := range strings.Split(r.stdout+r2.stdout, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "S6_FD") {
			env[k] = v
		}
		if f := strings.Fields(l); len(f) == 3 && f[0] == "fd" {
			links[f[1]] = f[2]
		}
	}
	if env["S6_FD#"] != "2" {
		t.Fatalf("getdump env = %v; want S6_FD#=2", env)
	}
	for i := range 2 {
		id, fd := env[fmt.Sprintf("S6_FDID_%d", i)], env[fmt.Sprintf("S6_FD_%d", i)]
		if links[fd] != want {
			t.Errorf("getdump: %s is fd %s -> %q; want %s", id, fd, links[fd], want)
		}
		lim, has := env[fmt.Sprintf("S6_FDLIMIT_%d", i)]
		if has != (id == "limited") {
			t.Errorf("getdump: %s has S6_FDLIMIT %q (%v)", id, lim, has)
		}
		if has {
			st, err := tai.Parse(lim)
			if err != nil || st.Time().Before(time.Now().Add(50*time.Minute)) {
				t.Errorf("getdump: limit of %s = %q, %v; want about an hour ahead", id, lim, err)
			}
		}
	}
	r = runS6(t, -1, "s6-fdholder-retrieve", "-D", sock, "tcp:80", "true")
	if r.code != 0 {
		t.Errorf("s6-fdholder-retrieve -D = %+v", r)
	}
	r = runS6(t, -1, "s6-fdholder-retrieve", sock, "tcp:80", "true")
	if r.code != 1 || !strings.Contains(r.stderr, "No such file or directory") {
		t.Errorf("s6-fdholder-retrieve of a deleted id = %+v; want 1, ENOENT", r)
	}
	if r := runS6(t, -1, "s6-fdholder-delete", sock, "limited"); r.code != 0 {
		t.Errorf("s6-fdholder-delete = %+v", r)
	}
	if r := runS6(t, -1, "s6-fdholder-delete", sock, "limited"); r.code != 1 || !strings.Contains(r.stderr, "No such file or directory") {
		t.Errorf("second s6-fdholder-delete = %+v; want 1, ENOENT", r)
	}
	// Expiry: a store with -T 300 leaves the list.
	if r := runS6(t, a, "s6-fdholder-store", "-T", "300", sock, "short"); r.code != 0 {
		t.Fatalf("s6-fdholder-store -T 300 = %+v", r)
	}
	start := time.Now()
	poll(t, "the fd stored with -T 300 to expire", func() bool {
		return runS6(t, -1, "s6-fdholder-list", sock).stdout == ""
	})
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("expired after %v; want about 300ms", el)
	}
}

// TestS6TransferDumpBetweenServes moves fds with s6-fdholder-transferdump.
// Debian's s6 2.11.3.2 (libskarnet 2.13) cannot move more than 253: it
// counts messages by 255 fds and its sendmsg of 255 fds fails EINVAL, so
// one full message is what it can do.
func TestS6TransferDumpBetweenServes(t *testing.T) {
	requireS6(t, "s6-fdholder-transferdump")
	src, dst := startDaemon(t, Config{}), startDaemon(t, Config{})
	want, limits := fill(t, src.dial(t), "id", MaxFDsPerMessage)
	if r := runS6(t, -1, "s6-fdholder-transferdump", src.path, dst.path); r.code != 0 {
		t.Fatalf("s6-fdholder-transferdump = %+v", r)
	}
	checkDump(t, dst.dial(t), want, limits)
	// The source still has them: transferdump copies.
	checkDump(t, src.dial(t), want, limits)
}

// fill stores n socket fds, half with limits an hour ahead.
func fill(t *testing.T, c *Client, prefix string, n int) (map[string]uint64, map[string]tai.Stamp) {
	t.Helper()
	want := map[string]uint64{}
	limits := map[string]tai.Stamp{}
	base := tai.FromTime(time.Now().Add(time.Hour))
	for i := range n {
		p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("%s %03d", prefix, i)
		var l tai.Stamp
		if i%3 != 0 {
			l = tai.Stamp{Sec: base.Sec + uint64(i), Nsec: uint32(i*1000 + int(prefix[0]))} // distinct across prefixes
		}
		if err := c.Store(p[0], id, l); err != nil {
			t.Fatalf("Store(%s) = %v", id, err)
		}
		want[id], limits[id] = inode(t, p[0]), l
		unix.Close(p[0])
		unix.Close(p[1])
	}
	return want, limits
}

func checkDump(t *testing.T, c *Client, want map[string]uint64, limits map[string]tai.Stamp) {
	t.Helper()
	es, err := c.GetDump()
	if err != nil {
		t.Fatalf("GetDump = %v", err)
	}
	defer func() {
		for _, e := range es {
			unix.Close(e.FD)
		}
	}()
	if len(es) != len(want) {
		t.Fatalf("GetDump: %d entries; want %d", len(es), len(want))
	}
	for _, e := range es {
		if inode(t, e.FD) != want[e.ID] || e.Limit != limits[e.ID] {
			t.Errorf("entry %q: inode %d limit %v; want %d %v", e.ID, inode(t, e.FD), e.Limit, want[e.ID], limits[e.ID])
		}
	}
}

// s6Daemon starts the real s6-fdholder-daemon allowing uid 0 everything.
func s6Daemon(t *testing.T, extra ...string) string {
	t.Helper()
	requireS6(t, "s6-fdholder-daemon", "s6-fdholderd", "s6-ipcserver-socketbinder")
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	env := filepath.Join(rules, "uid", strconv.Itoa(os.Geteuid()), "env")
	if err := os.MkdirAll(env, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		filepath.Join(rules, "uid", strconv.Itoa(os.Geteuid()), "allow"): "",
		filepath.Join(env, "S6_FDHOLDER_STORE_REGEX"):                    "^\n",
		filepath.Join(env, "S6_FDHOLDER_RETRIEVE_REGEX"):                 "^\n",
		filepath.Join(env, "S6_FDHOLDER_LIST"):                           "1\n",
		filepath.Join(env, "S6_FDHOLDER_GETDUMP"):                        "1\n",
		filepath.Join(env, "S6_FDHOLDER_SETDUMP"):                        "1\n",
	}
	for p, s := range files {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "s")
	args := append(append([]string{}, extra...), "-i", rules, sock)
	cmd := exec.Command("/usr/bin/s6-fdholder-daemon", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if errb.Len() > 0 {
			t.Logf("s6-fdholder-daemon stderr: %s", errb.String())
		}
	})
	poll(t, "s6-fdholder-daemon to listen", func() bool {
		c, err := Dial(sock, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return sock
}

func TestClientAgainstS6Daemon(t *testing.T) {
	sock := s6Daemon(t)
	c, err := Dial(sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, _ := socketPair(t)
	if err := c.Store(a, "tcp:80", tai.Stamp{}); err != nil {
		t.Fatalf("Store = %v", err)
	}
	if err := c.Store(a, "tcp:80", tai.Stamp{}); !errors.Is(err, unix.EBUSY) {
		t.Errorf("second Store = %v; want EBUSY", err)
	}
	if err := c.Store(a, "b", LimitAfter(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ids, err := c.List()
	slices.Sort(ids)
	if err != nil || !slices.Equal(ids, []string{"b", "tcp:80"}) {
		t.Errorf("List = %q, %v", ids, err)
	}
	fd, err := c.Retrieve("tcp:80", false)
	if err != nil || inode(t, fd) != inode(t, a) || !cloexec(t, fd) {
		t.Fatalf("Retrieve = %d, %v", fd, err)
	}
	unix.Close(fd)
	fd, err = c.Retrieve("tcp:80", true)
	if err != nil || inode(t, fd) != inode(t, a) {
		t.Fatalf("Retrieve(delete) = %d, %v", fd, err)
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
	// Expiry is honoured by s6 for a limit the library sends.
	if err := c.Store(a, "short", LimitAfter(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	poll(t, "s6-fdholderd to expire the fd", func() bool {
		ids, err := c.List()
		return err == nil && len(ids) == 0
	})
	// A malformed request: s6 closes the connection.
	if err := c.send([]byte("X"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.recv(time.Now().Add(10 * time.Second)); !errors.Is(err, ErrClosed) {
		t.Errorf("answer to a bad opcode = %v; want ErrClosed", err)
	}
}

func TestS6DaemonENFILE(t *testing.T) {
	sock := s6Daemon(t, "-n", "1")
	c, err := Dial(sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, _ := socketPair(t)
	if err := c.Store(a, "one", tai.Stamp{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(a, "two", tai.Stamp{}); !errors.Is(err, unix.ENFILE) {
		t.Errorf("Store over -n 1 = %v; want ENFILE", err)
	}
}

// TestDumpBetweenS6AndServe moves fds from a real s6-fdholderd to Serve
// (253: s6 2.11.3.2's getdump fails above one message, see
// TestS6TransferDumpBetweenServes), then 600 fds (three messages) from
// Serve to another s6-fdholderd, with the library's GetDump and SetDump.
func TestDumpBetweenS6AndServe(t *testing.T) {
	sock := s6Daemon(t)
	s6c, err := Dial(sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s6c.Close()
	want, limits := fill(t, s6c, "a", MaxFDsPerMessage)
	es, err := s6c.GetDump()
	if err != nil || len(es) != MaxFDsPerMessage {
		t.Fatalf("GetDump from s6 = %d, %v", len(es), err)
	}
	d := startDaemon(t, Config{})
	ours := d.dial(t)
	if err := ours.SetDump(es); err != nil {
		t.Fatalf("SetDump to Serve = %v", err)
	}
	for _, e := range es {
		unix.Close(e.FD)
	}
	checkDump(t, ours, want, limits)
	w2, l2 := fill(t, ours, "b", 600-MaxFDsPerMessage)
	for k, v := range w2 {
		want[k], limits[k] = v, l2[k]
	}
	checkDump(t, ours, want, limits)

	sock2 := s6Daemon(t)
	s6c2, err := Dial(sock2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s6c2.Close()
	es, err = ours.GetDump()
	if err != nil {
		t.Fatal(err)
	}
	if err := s6c2.SetDump(es); err != nil {
		t.Fatalf("SetDump of 600 fds to s6 = %v", err)
	}
	for _, e := range es {
		unix.Close(e.FD)
	}
	ids, err := s6c2.List()
	if err != nil || len(ids) != 600 {
		t.Fatalf("List from s6 = %d ids, %v; want 600", len(ids), err)
	}
	for _, id := range ids {
		fd, err := s6c2.Retrieve(id, false)
		if err != nil {
			t.Fatalf("Retrieve(%q) from s6 = %v", id, err)
		}
		if inode(t, fd) != want[id] {
			t.Errorf("s6 holds inode %d as %q; want %d", inode(t, fd), id, want[id])
		}
		unix.Close(fd)
	}
}
