package tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Acceptance tests of `fdrestore grab` (spec/fdrestore.md sections 3 and
// 12): the grabbed fd is the holder's open file description, placed at its
// target in a program exec'd in place; errors; and a server taken over
// under a client loop without a refused connection.

// holdFiles starts sleep with files at fds 3, 4, ... and returns it once
// asleep.
func holdFiles(t testing.TB, files ...*os.File) *Proc {
	t.Helper()
	p := startIn(t, Opts{ExtraFiles: files}, "sleep", "1000")
	waitFor(t, "the holder to sleep", func() bool { return sleeping(p.Pid) })
	return p
}

// TestFdrestoreGrabSharesDescription: the program gets the holder's very
// description (a write moves the offset the test's copy shares), at FD or
// TARGET, with LISTEN_* from 3 with --listen-fds, at fdrestore's pid; the
// holder keeps its copy; -C closes what the grab does not name.
func TestFdrestoreGrabSharesDescription(t *testing.T) {
	t.Parallel()
	files, names := tempFiles(t, 1)
	rw, err := os.OpenFile(names[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rw.Close() })
	pr, pw := pipe(t)
	holder := holdFiles(t, rw, pw)
	pid := strconv.Itoa(holder.Pid)

	t.Run("same description", func(t *testing.T) {
		r := run(t, "fdrestore", "grab", pid, "3", "--", "sh", "-c", `printf abc >&3`)
		if r.Code != 0 || r.Stderr != "" {
			t.Fatalf("grab %s 3 = %s, stderr %q; want exit 0", pid, r.Status(), r.Stderr)
		}
		if off, err := rw.Seek(0, io.SeekCurrent); err != nil || off != 3 {
			t.Errorf("offset of the holder's description after the program wrote 3 bytes = %d, %v; want 3", off, err)
		}
		if b, _ := os.ReadFile(names[0]); string(b) != "abc" {
			t.Errorf("file holds %q; want %q", b, "abc")
		}
		if got := openFDs(t, holder.Pid)[3]; got != names[0] {
			t.Errorf("holder's fd 3 after the grab is %q; want %s still open", got, names[0])
		}
	})
	t.Run("targets and pass-through", func(t *testing.T) {
		r := runIn(t, Opts{ExtraFiles: files}, "fdrestore", "grab", pid, "3=7", "4", "--", "fdlist")
		var pst syscall.Stat_t
		if err := syscall.Fstat(int(pr.Fd()), &pst); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("3 -> %s\n4 -> pipe:[%d]\n7 -> %s\n", names[0], pst.Ino, names[0])
		if got := fdsAfterStdio(t, r.Stdout); r.Code != 0 || got != want || r.Stderr != "" {
			t.Errorf("grab %s 3=7 4 with an inherited fd 3 = %s, stderr %q, fds\n%s; want exit 0,\n%s", pid, r.Status(), r.Stderr, got, want)
		}
		r = runIn(t, Opts{ExtraFiles: files}, "fdrestore", "grab", "-C", pid, "3=7", "--", "fdlist")
		want = "7 -> " + names[0] + "\n"
		if got := fdsAfterStdio(t, r.Stdout); r.Code != 0 || got != want || r.Stderr != "" {
			t.Errorf("grab -C %s 3=7 = %s, stderr %q, fds\n%s; want exit 0,\n%s", pid, r.Status(), r.Stderr, got, want)
		}
	})
	t.Run("listen-fds", func(t *testing.T) {
		r := run(t, "fdrestore", "grab", "--listen-fds", "--name", "3=pipe", pid, "4", "3", "--",
			"sh", "-c", `echo "$LISTEN_FDS $LISTEN_FDNAMES $LISTEN_PID $$"; readlink /proc/$$/fd/3 /proc/$$/fd/4`)
		var pst syscall.Stat_t
		if err := syscall.Fstat(int(pr.Fd()), &pst); err != nil {
			t.Fatal(err)
		}
		l := lines(r.Stdout)
		f := []string{}
		if len(l) > 0 {
			f = strings.Fields(l[0])
		}
		if r.Code != 0 || r.Stderr != "" || len(l) != 3 || len(f) != 4 || f[0] != "2" || f[1] != "pipe:unknown" || f[2] != f[3] ||
			l[1] != fmt.Sprintf("pipe:[%d]", pst.Ino) || l[2] != names[0] {
			t.Errorf("grab --listen-fds %s 4 3 = %s, stdout %q, stderr %q; want 2 pipe:unknown PID PID, the pipe at 3, the file at 4",
				pid, r.Status(), r.Stdout, r.Stderr)
		}
	})
}

// TestFdrestoreGrabErrors: usage errors exit 100, a missing fd, a dead pid
// and a grab without the right to ptrace exit 111 with section 10's
// messages, and a directory fd is refused without --allow-dirfd; the
// program never runs and nothing is left in fdrestore's group.
func TestFdrestoreGrabErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	holder := holdFiles(t, d)
	pid := strconv.Itoa(holder.Pid)
	gone := start(t, "true")
	gone.Wait(t)
	gpid := strconv.Itoa(gone.Pid)
	for _, tt := range []struct {
		name string
		args []string // before "--" and the program
		prog bool     // false: no "--" nor program
		code int
		want string // the whole stderr; "" for one line starting with "fdrestore: "
	}{
		{name: "no pid", code: 100},
		{name: "no fd", args: []string{pid}, prog: true, code: 100},
		{name: "no prog", args: []string{pid, "0"}, code: 100},
		{name: "bad pid", args: []string{"12x", "0"}, prog: true, code: 100},
		{name: "bad fd", args: []string{pid, "x"}, prog: true, code: 100},
		{name: "target twice", args: []string{pid, "0=5", "1=5"}, prog: true, code: 100,
			want: "fdrestore: fatal: fd 5 is given twice\n"},
		{name: "missing fd", args: []string{pid, "99"}, prog: true, code: 111,
			want: fmt.Sprintf("fdrestore: fatal: unable to grab fd 99 of pid %s for fd 99: pid %s has no fd 99\n", pid, pid)},
		{name: "dead pid", args: []string{gpid, "0=3"}, prog: true, code: 111,
			want: fmt.Sprintf("fdrestore: fatal: unable to grab fd 0 of pid %s for fd 3: pid %s does not exist\n", gpid, gpid)},
		{name: "directory", args: []string{pid, "3"}, prog: true, code: -2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			marker := filepath.Join(t.TempDir(), "ran")
			argv := append([]string{"fdrestore", "grab"}, tt.args...)
			if tt.prog {
				argv = append(append(argv, "--"), touchProg(marker)...)
			}
			p := start(t, argv...)
			r := p.Wait(t)
			switch {
			case tt.code == -2: // refused: the code is the implementation's
				if r.Code <= 0 || !oneLine(r.Stderr) || !strings.HasPrefix(r.Stderr, "fdrestore: fatal: ") {
					t.Errorf("run(%q) = %s, stderr %q; want a failure, one fatal line", argv, r.Status(), r.Stderr)
				}
			case tt.want == "":
				if r.Code != tt.code || !oneLine(r.Stderr) || !strings.HasPrefix(r.Stderr, "fdrestore: ") {
					t.Errorf("run(%q) = %s, stderr %q; want exit %d, one line", argv, r.Status(), r.Stderr, tt.code)
				}
			default:
				if r.Code != tt.code || r.Stderr != tt.want {
					t.Errorf("run(%q) = %s, stderr %q; want exit %d, stderr %q", argv, r.Status(), r.Stderr, tt.code, tt.want)
				}
			}
			if r.Stdout != "" {
				t.Errorf("run(%q): stdout %q; want none", argv, r.Stdout)
			}
			wantAbsent(t, marker, "after the failure")
			wantNoLeftovers(t, p)
		})
	}
	t.Run("directory allowed", func(t *testing.T) {
		t.Parallel()
		p := sleepProbe(t, Opts{}, "fdrestore", "grab", "--allow-dirfd", pid, "3", "--", "sleep", "1000")
		wantFDs(t, "grab --allow-dirfd of a directory", beyondStdio(openFDs(t, p.Pid)), map[int]string{3: dir})
	})
	t.Run("as another uid", func(t *testing.T) {
		t.Parallel()
		bin, asNobody := nobodyFarm(t, "fdrestore")
		argv := append(asNobody, filepath.Join(bin, "fdrestore"), "grab", pid, "0=3", "--", "true")
		r := run(t, argv...)
		want := fmt.Sprintf("fdrestore: fatal: unable to grab fd 0 of pid %s for fd 3: Operation not permitted (needs CAP_SYS_PTRACE, or the same uid under a permissive ptrace scope)\n", pid)
		if r.Code != 111 || r.Stdout != "" || r.Stderr != want {
			t.Errorf("run(%q) = %s, stdout %q, stderr %q; want exit 111, stderr %q", argv, r.Status(), r.Stdout, r.Stderr, want)
		}
	})
}

// clientLoop makes loopback connections to addr one after the other, each
// expecting one line: the pid of the server that answered, until n were
// answered or failed; a refused connection is counted and retried
// (maxRefused refusals end the loop too). Before connection n/2 it waits
// until proceed is closed, so that a handover happens at the latest there.
// Each
// connection holds gate, so a test that takes it knows that no connection
// is in flight (a SIGKILLed server loses the connection it has accepted
// and not answered: that is the server's loss, not the listener's).
type clientLoop struct {
	addr    string
	n       int
	gate    sync.Mutex
	proceed chan struct{} // closed by the test once its handover is done

	done     atomic.Int64 // connections tried
	mu       sync.Mutex
	answered int
	answers  map[int]int       // server pid -> connections it answered
	firsts   map[int]time.Time // server pid -> when its first answer came
	refused  int               // ECONNREFUSED
	failures []string          // every other failure, described
	connect  []time.Duration   // how long each successful connect took
	finished chan struct{}     // closed when the loop ends
}

func newClientLoop(addr string, n int) *clientLoop {
	return &clientLoop{addr: addr, n: n, proceed: make(chan struct{}), answers: map[int]int{}, firsts: map[int]time.Time{}, finished: make(chan struct{})}
}

// maxRefused is how many refused connections end a client loop.
const maxRefused = 100000

// run makes the connections until the loop is over or ctx is cancelled.
func (c *clientLoop) run(ctx context.Context) {
	defer close(c.finished)
	for ctx.Err() == nil {
		if c.done.Load() == int64(c.n/2) {
			select {
			case <-c.proceed:
			case <-ctx.Done():
				return
			}
		}
		c.gate.Lock()
		c.one()
		c.gate.Unlock()
		c.done.Add(1)
		c.mu.Lock()
		over := c.answered+len(c.failures) >= c.n || c.refused >= maxRefused
		c.mu.Unlock()
		if over {
			return
		}
	}
}

func (c *clientLoop) one() {
	t0 := time.Now()
	conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	took := time.Since(t0)
	var line string
	if err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		line, err = bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil {
			err = fmt.Errorf("read %q, then %w", line, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		c.refused++
		return
	case err != nil:
		c.failures = append(c.failures, err.Error())
		return
	}
	c.connect = append(c.connect, took)
	pid, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
	if err != nil {
		c.failures = append(c.failures, fmt.Sprintf("answer %q is not a pid", line))
		return
	}
	c.answered++
	if c.answers[pid]++; c.answers[pid] == 1 {
		c.firsts[pid] = time.Now()
	}
}

// firstBy returns when pid first answered; call it with c.mu held.
func (c *clientLoop) firstBy(pid int) time.Time { return c.firsts[pid] }

// answeredBy returns how many connections pid answered.
func (c *clientLoop) answeredBy(pid int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answers[pid]
}

// startClientLoop runs a client loop in a goroutine, stopped and waited
// for when the test ends.
func startClientLoop(t testing.TB, addr string, n int) *clientLoop {
	c := newClientLoop(addr, n)
	ctx, cancel := context.WithCancel(context.Background())
	go c.run(ctx)
	t.Cleanup(func() {
		cancel()
		<-c.finished
	})
	return c
}

// startLineserver starts `fdrestore restore -f 3=listen:tcp:ADDR --
// lineserver` and returns it with the address it serves.
func startLineserver(t testing.TB, addr string) (*Proc, string) {
	t.Helper()
	p := start(t, "fdrestore", "restore", "-f", "3=listen:tcp:"+addr, "--", "lineserver")
	line := p.WaitLine(t, "^ready ")
	return p, strings.TrimPrefix(line, "ready ")
}

// TestFdrestoreGrabHandover is the takeover of section 3 under load: a
// client loop makes 2000 loopback connections to a server; mid-loop,
// `grab PID 3 -- lineserver` starts a second server on the same listening
// socket, and once it is ready the original is killed (SIGKILL). No
// connection is refused, every one is answered, each server answers with
// its own pid (both exec'd in place), and after the kill only the second
// one answers.
func TestFdrestoreGrabHandover(t *testing.T) {
	t.Parallel()
	const n = 2000
	orig, addr := startLineserver(t, "127.0.0.1:0")
	c := startClientLoop(t, addr, n)
	waitFor(t, "a quarter of the connections", func() bool { return c.done.Load() >= n/4 })
	srv2 := start(t, "fdrestore", "grab", strconv.Itoa(orig.Pid), "3", "--", "lineserver")
	if got := srv2.WaitLine(t, "^ready "); got != "ready "+addr {
		t.Fatalf("the second server says %q; want %q", got, "ready "+addr)
	}
	c.gate.Lock()
	before := c.answeredBy(orig.Pid)
	orig.KillGroup(t)
	c.gate.Unlock()
	close(c.proceed)
	select {
	case <-c.finished:
	case <-time.After(time.Until(deadline(t))):
		t.Fatalf("the client loop did not finish: %d of %d done", c.done.Load(), n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused != 0 || len(c.failures) != 0 {
		t.Errorf("%d refused connections and %d other failures (first: %q); want none", c.refused, len(c.failures), first(c.failures))
	}
	total := 0
	for _, k := range c.answers {
		total += k
	}
	if total != n || before < n/4 || c.answers[orig.Pid] != before || c.answers[orig.Pid]+c.answers[srv2.Pid] != n {
		t.Errorf("answers by pid %v (the original %d answered %d before the kill); want %d, all from %d or %d, none from the original after it was killed",
			c.answers, orig.Pid, before, n, orig.Pid, srv2.Pid)
	}
}

// first returns the first of s, or "".
func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// killUnderLoad SIGKILLs the supervised service restarts times while the
// client loop c runs, each instance once it has answered a connection, and
// returns the pids of the restarts+1 instances. No connection is in flight
// while an instance dies (the loop's gate is held): a SIGKILLed server
// loses only a connection it accepted and did not answer, which is not
// what these tests measure.
func killUnderLoad(t *testing.T, s *supervised, c *clientLoop, restarts int) []int {
	t.Helper()
	servicePID := func() int { return int(s.status().PID) }
	var pids []int
	for i := 0; i <= restarts; i++ {
		var pid int
		waitFor(t, fmt.Sprintf("instance %d to answer", i+1), func() bool {
			pid = servicePID()
			return pid != 0 && !slices.Contains(pids, pid) && c.answeredBy(pid) > 0
		})
		pids = append(pids, pid)
		if i == restarts {
			break
		}
		c.gate.Lock()
		if err := unix.Kill(pid, unix.SIGKILL); err != nil {
			t.Errorf("kill instance %d (pid %d): %v", i+1, pid, err)
		}
		waitFor(t, fmt.Sprintf("instance %d (pid %d) to die", i+1, pid), func() bool {
			st, err := readStat(pid)
			return err != nil || st.State == 'Z' || servicePID() != pid
		})
		c.gate.Unlock()
	}
	return pids
}
