//go:build linux

package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestSpawnerAllocations: a Spawner that starts the same command again
// allocates nothing (issue 20 item 7: a supervisor's restart storm must
// not make garbage), with an explicit environment and with the process's.
func TestSpawnerAllocations(t *testing.T) {
	for _, env := range [][]string{{"A=1", "B=2"}, nil} {
		var sp Spawner
		argv := []string{"./true", "x"}
		attr := Attr{Path: "/bin/true", Env: env, Setsid: true, Dir: "/"}
		run := func() {
			pid, err := sp.Spawn(argv, attr)
			if err != nil {
				t.Fatal(err)
			}
			if ws := waitDead(t, pid); ws.ExitStatus() != 0 {
				t.Fatalf("/bin/true: %v", ws)
			}
		}
		run()
		n := testing.AllocsPerRun(20, run)
		t.Logf("env %q: %v allocations per spawn", env, n)
		if n != 0 && !raceEnabled {
			t.Errorf("env %q: a repeated spawn allocates %v times; want 0", env, n)
		}
	}
}

// TestSpawnerChanges: what changed between two spawns of a Spawner is
// what the second child gets.
func TestSpawnerChanges(t *testing.T) {
	var sp Spawner
	out := func(argv []string, attr Attr) string {
		t.Helper()
		return spawnOutput(t, &sp, argv, attr)
	}
	script := `echo "$0 $1 $V $(pwd)"`
	tmp := t.TempDir()
	for _, c := range []struct {
		argv []string
		attr Attr
		want string
	}{
		{[]string{"sh", "-c", script, "a"}, Attr{Env: []string{"V=1"}, Dir: "/"}, "a  1 /\n"},
		{[]string{"sh", "-c", script, "b"}, Attr{Env: []string{"V=1"}, Dir: "/"}, "b  1 /\n"},
		{[]string{"sh", "-c", script, "b", "c"}, Attr{Env: []string{"V=2"}, Dir: "/"}, "b c 2 /\n"},
		{[]string{"sh", "-c", script, "b", "c"}, Attr{Env: []string{"V=2"}, Dir: tmp}, "b c 2 " + tmp + "\n"},
		{[]string{"/bin/sh", "-c", script, "d"}, Attr{Env: []string{"V=3"}, Path: "/bin/sh"}, "d  3 " + mustGetwd(t) + "\n"},
	} {
		if got := out(c.argv, c.attr); got != c.want {
			t.Errorf("spawn %q %+v printed %q; want %q", c.argv, c.attr, got, c.want)
		}
	}
	if _, err := sp.Spawn([]string{"sh", "-c", "true\x00"}, Attr{}); err == nil || !strings.Contains(err.Error(), "invalid argument") {
		t.Errorf("an argument with a NUL byte: %v; want invalid argument", err)
	}
	if _, err := sp.Spawn([]string{"/bin/true"}, Attr{Dir: "/nonexistent"}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("a missing directory: %v; want no such file or directory", err)
	}
	if z := zombies(t); z != "" {
		t.Errorf("zombies after failed spawns: %s", z)
	}
}

// spawnOutput spawns argv with sp and attr, its fd 1 a pipe (fds 0 and 2
// as attr.Files has them, else closed and the test's stderr), reaps it and
// returns what it wrote.
func spawnOutput(t *testing.T, sp *Spawner, argv []string, attr Attr) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	files := []*os.File{nil, w, os.Stderr}
	if len(attr.Files) > 2 {
		files[0], files[2] = attr.Files[0], attr.Files[2]
	}
	attr.Files = files
	pid, err := sp.Spawn(argv, attr)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	waitDead(t, pid)
	return string(b)
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// zombies lists this process's zombie children.
func zombies(t *testing.T) string {
	t.Helper()
	b, _ := os.ReadFile("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/children")
	var z []string
	for _, pid := range strings.Fields(string(b)) {
		if st, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
			if f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:])); len(f) > 0 && f[0] == "Z" {
				z = append(z, pid)
			}
		}
	}
	return strings.Join(z, " ")
}

// TestSpawnRestoresNofile: the Go runtime raises its soft RLIMIT_NOFILE
// to the hard limit at start-up; a spawned child gets the limit the
// process started with back, as package syscall's children do, unless
// someone changed the limit since. The test runs itself again under a
// low soft limit, so that the runtime raises it.
func TestSpawnRestoresNofile(t *testing.T) {
	if os.Getenv("GOTOOLS_NOFILE_CHILD") != "" {
		nofileChild(t)
		return
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < 600 {
		t.Fatalf("hard RLIMIT_NOFILE %d: the test needs at least 600", lim.Max)
	}
	cmd := exec.Command("/bin/sh", "-c", `ulimit -Sn 500 && exec "$0" "$@"`, os.Args[0], "-test.run=^TestSpawnRestoresNofile$", "-test.v")
	cmd.Env = append(os.Environ(), "GOTOOLS_NOFILE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Errorf("the test under a soft limit of 500: %v\n%s", err, out)
	}
}

func nofileChild(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur != lim.Max-1 {
		t.Fatalf("soft limit %d, hard %d: the runtime did not raise it", lim.Cur, lim.Max)
	}
	childLimit := func() string {
		t.Helper()
		return strings.TrimSpace(spawnOutput(t, &Spawner{}, []string{"/bin/sh", "-c", "ulimit -Sn"}, Attr{}))
	}
	if got := childLimit(); got != "500" {
		t.Errorf("a spawned child's soft limit = %s; want 500, the limit the process started with", got)
	}
	if got, _ := exec.Command("/bin/sh", "-c", "ulimit -Sn").Output(); strings.TrimSpace(string(got)) != "500" {
		t.Errorf("os/exec's child's soft limit = %s; want 500", got)
	}
	// Someone else lowers our limit (raw prlimit: package syscall's
	// wrapper would tell the runtime): children inherit it as it is.
	lim.Cur = 300
	if _, _, e := syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, uintptr(unsafe.Pointer(&lim)), 0, 0, 0); e != 0 {
		t.Fatal(e)
	}
	if got := childLimit(); got != "300" {
		t.Errorf("after a prlimit to 300, a spawned child's soft limit = %s; want 300", got)
	}
}

// BenchmarkSpawn: a Spawner's fork and exec of /bin/true, and the wait,
// beside os.StartProcess's (vfork) doing the same; the ratio is printed.
func BenchmarkSpawn(b *testing.B) {
	argv := []string{"/bin/true"}
	var ns [2]float64
	b.Run("os.StartProcess", func(b *testing.B) {
		for b.Loop() {
			p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Wait(); err != nil {
				b.Fatal(err)
			}
		}
		ns[0] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("Spawner", func(b *testing.B) {
		var sp Spawner
		for b.Loop() {
			pid, err := sp.Spawn(argv, Attr{Path: argv[0]})
			if err != nil {
				b.Fatal(err)
			}
			var ws unix.WaitStatus
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
				b.Fatal(err)
			}
		}
		ns[1] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if ns[0] > 0 {
			b.ReportMetric(ns[1]/ns[0], "x_os.StartProcess")
		}
	})
}

// TestSpawnConcurrentWithGC: spawns from several goroutines at once, each
// with its own Spawner, while another goroutine allocates and collects
// and stacks grow: the vfork child runs on its parent's stack, which
// nothing may move or free meanwhile. Every child must exec and exit 0
// with the argv and environment it was given.
func TestSpawnConcurrentWithGC(t *testing.T) {
	stop := make(chan struct{})
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		var keep [][]byte
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			keep = append(keep, make([]byte, 1<<10))
			if len(keep) > 512 {
				keep = keep[:0]
				runtime.GC()
			}
		}
	}()
	const workers, spawns = 4, 50
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			var sp Spawner
			for i := range spawns {
				want := strconv.Itoa(w*1000 + i)
				// A deeper stack at every spawn (recursion), so that
				// stack growth and copying happen around the forks.
				got, err := spawnDeep(&sp, i%8, want)
				if err == nil && got != want+" "+want {
					err = fmt.Errorf("child printed %q; want %q", got, want+" "+want)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(stop)
	<-gcDone
}

// spawnDeep recurses depth times, then spawns sh printing its argument
// and $V, and returns what it printed.
func spawnDeep(sp *Spawner, depth int, arg string) (string, error) {
	var pad [256]byte
	if depth > 0 {
		pad[depth] = byte(depth)
		s, err := spawnDeep(sp, depth-1, arg)
		return s, errors.Join(err, padErr(pad[:]))
	}
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	defer r.Close()
	pid, err := sp.Spawn([]string{"/bin/sh", "-c", `echo "$0 $V"`, arg}, Attr{Env: []string{"V=" + arg}, Files: []*os.File{nil, w, os.Stderr}})
	w.Close()
	if err != nil {
		return "", err
	}
	b, _ := io.ReadAll(r)
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			break
		}
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return "", fmt.Errorf("child %s: %v", arg, ws)
	}
	return strings.TrimSpace(string(b)), nil
}

// padErr keeps a frame's padding alive; it is never an error.
func padErr(pad []byte) error {
	if pad[len(pad)-1] == 0xff {
		return errors.New("unreachable")
	}
	return nil
}

// TestSpawnFDs: a raw fd table works as Files does (fd 1 a pipe, a fd
// above the pipe's own number the same pipe, 0 closed), the caller's slice
// is left as it was (the child rearranges its copy: a source below its
// target is moved first), and Files with FDs is refused.
func TestSpawnFDs(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	high := int(w.Fd()) + 2
	fds := slices.Repeat([]int{-1}, high+1)
	fds[1], fds[2], fds[high] = int(w.Fd()), 2, int(w.Fd())
	keep := slices.Clone(fds)
	var sp Spawner
	pid, err := sp.Spawn([]string{"/bin/sh", "-c", `echo one; echo five >/proc/$$/fd/$0; test -e /proc/$$/fd/0 && echo open`, strconv.Itoa(high)}, Attr{FDs: fds})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	waitDead(t, pid)
	if string(b) != "one\nfive\n" {
		t.Errorf("child wrote %q; want %q (fd 0 closed)", b, "one\nfive\n")
	}
	if !slices.Equal(fds, keep) {
		t.Errorf("the caller's fds became %v; want %v", fds, keep)
	}
	if _, err := sp.Spawn([]string{"/bin/true"}, Attr{FDs: []int{0, 1, 2}, Files: []*os.File{os.Stdin}}); err == nil || !strings.Contains(err.Error(), "both Files and FDs") {
		t.Errorf("Files and FDs together: %v; want refused", err)
	}
}
