//go:build linux

package pidfile

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want int
	}{
		{"no newline", "1", 1},
		{"newline", "42\n", 42},
		{"PID_MAX_LIMIT", "4194304\n", 4194304},
		{"largest pid_t", "2147483647", 2147483647},
		{"largest pid_t with newline", "2147483647\n", 2147483647},
		{"leading zeros", "0042\n", 42},
		{"ten digits with zeros", "0000000001", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil || got != tt.want {
				t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"newline only", "\n"},
		{"zero", "0"},
		{"zeros", "0000\n"},
		{"letters", "abc"},
		{"trailing garbage", "12x"},
		{"minus", "-5"},
		{"plus", "+5"},
		{"leading space", " 5"},
		{"trailing space", "5 "},
		{"CRLF", "5\r\n"},
		{"two lines", "5\n6\n"},
		{"blank second line", "5\n\n"},
		{"second line without newline", "5\nx"},
		{"eleven digits", "99999999999"},
		{"above pid_t", "2147483648"},
		{"largest 10-digit", "9999999999\n"},
		{"NUL", "5\x00"},
		{"NUL before newline", "5\x00\n"},
		{"hex", "0x10"},
		{"underscore", "1_0"},
		{"513 bytes of digits", strings.Repeat("1", 513)},
		{"pid then padding to 513", "5\n" + strings.Repeat("\n", 511)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%q) = %v, nil; want an error", tt.in, got)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) error %v does not wrap ErrInvalid", tt.in, err)
			}
		})
	}
}

func TestReadMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "none.pid")
	got, err := Read(p)
	if err == nil {
		t.Fatalf("Read(%q) = %v, nil; want an error", p, got)
	}
	if !errors.Is(err, unix.ENOENT) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read(%q) error %v is not ENOENT / fs.ErrNotExist", p, err)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) || strings.Contains(err.Error(), "open") || strings.Contains(err.Error(), p) {
		t.Errorf("Read(%q) error %q names the call or the path; want the bare errno", p, err)
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	valid := filepath.Join(dir, "valid.pid")
	if err := os.WriteFile(valid, []byte("1234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pid")
	if err := os.Symlink(valid, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.pid")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	fifoLink := filepath.Join(dir, "fifolink.pid")
	if err := os.Symlink(fifo, fifoLink); err != nil {
		t.Fatal(err)
	}
	subdir := filepath.Join(dir, "dir.pid")
	if err := os.Mkdir(subdir, 0o755); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.pid")
	if err := os.WriteFile(garbage, []byte("12x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.pid")
	if err := os.WriteFile(big, []byte("5\n"+strings.Repeat(" ", 4096)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		path    string
		want    int
		wantErr error
	}{
		{"regular file", valid, 1234, nil},
		{"symlink to a regular file", link, 1234, nil},
		{"fifo does not block", fifo, 0, ErrInvalid},
		{"symlink to a fifo", fifoLink, 0, ErrInvalid},
		{"directory", subdir, 0, ErrInvalid},
		{"garbage", garbage, 0, ErrInvalid},
		{"larger than MaxSize", big, 0, ErrInvalid},
		{"device", "/dev/null", 0, ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(tt.path)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Read(%q) = %v, %v; want %v, %v", tt.path, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// tempFiles lists the files in dir other than the ones named.
func tempFiles(t *testing.T, dir string, known ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var l []string
Next:
	for _, e := range ents {
		for _, k := range known {
			if e.Name() == k {
				continue Next
			}
		}
		l = append(l, e.Name())
	}
	return l
}

func TestWriteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.pid")
	for _, pid := range []int{1, 42, 4194304, MaxPID} {
		if err := Write(p, pid); err != nil {
			t.Fatalf("Write(%q, %d) = %v", p, pid, err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := strconv.Itoa(pid) + "\n"; string(b) != want {
			t.Errorf("after Write(%q, %d) the file holds %q; want %q", p, pid, b, want)
		}
		if got, err := Read(p); err != nil || got != pid {
			t.Errorf("Read(%q) = %v, %v; want %v", p, got, err, pid)
		}
		if l := tempFiles(t, dir, "d.pid"); l != nil {
			t.Errorf("Write(%q, %d) left %q behind", p, pid, l)
		}
	}
}

func TestWriteReplacesSymlinkNotItsTarget(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "d.pid")
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, 7); err != nil {
		t.Fatalf("Write(%q, 7) = %v", p, err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("Write through a symlink changed its target to %q", b)
	}
	if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("after Write, %q is %v, %v; want a regular file", p, fi, err)
	}
}

func TestWriteFailsCleanly(t *testing.T) {
	ro := t.TempDir()
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(ro, 0o755) })
	// The path is a directory: the temporary file is written, the rename
	// fails, and the temporary file must go.
	occupied := t.TempDir()
	if err := os.Mkdir(filepath.Join(occupied, "d.pid"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(occupied, "d.pid", "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		dir  string
		root bool // root ignores the directory's mode
		want error
	}{
		{"nonexistent directory", filepath.Join(t.TempDir(), "none"), true, unix.ENOENT},
		{"read-only directory", ro, false, unix.EACCES},
		{"rename onto a directory", occupied, true, unix.EISDIR},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.root && os.Geteuid() == 0 {
				t.Skip("root can write into a read-only directory")
			}
			p := filepath.Join(tt.dir, "d.pid")
			err := Write(p, 42)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Write(%q, 42) = %v; want %v", p, err, tt.want)
			}
			if strings.Contains(err.Error(), p) {
				t.Errorf("Write(%q, 42) error %q names the path; want the bare errno", p, err)
			}
			if _, err := os.Stat(tt.dir); err == nil {
				if l := tempFiles(t, tt.dir, "d.pid"); l != nil {
					t.Errorf("Write(%q, 42) failed but left %q behind", p, l)
				}
			}
		})
	}
}

func TestWriteRejectsBadPID(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.pid")
	bad := []int{0, -1}
	if above := int64(MaxPID) + 1; int64(int(above)) == above { // 64-bit int
		bad = append(bad, int(above))
	}
	for _, pid := range bad {
		if err := Write(p, pid); err == nil {
			t.Errorf("Write(%q, %d) = nil; want an error", p, pid)
		}
	}
	if l := tempFiles(t, dir); l != nil {
		t.Errorf("rejected Writes left %q behind", l)
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.pid")
	if err := Write(p, 3); err != nil {
		t.Fatal(err)
	}
	if err := Remove(p); err != nil {
		t.Errorf("Remove(%q) = %v; want nil", p, err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Remove(%q), Lstat = %v; want ENOENT", p, err)
	}
	if err := Remove(p); err != nil {
		t.Errorf("Remove(%q) of a missing file = %v; want nil", p, err)
	}
	if err := Remove(dir); !errors.Is(err, unix.EISDIR) {
		t.Errorf("Remove(%q) of a directory = %v; want EISDIR", dir, err)
	}
}

func TestIsDescendant(t *testing.T) {
	// A child that stays alive until we close its stdin.
	cmd := exec.Command("cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	child, self := cmd.Process.Pid, os.Getpid()
	nonexistent := unusedPID(t)
	for _, tt := range []struct {
		name          string
		pid, ancestor int
		want          bool
		needParent    bool // our parent is visible in our pid namespace
	}{
		{"own child", child, self, true, false},
		{"child of our parent", child, os.Getppid(), true, true},
		{"child of init", child, 1, true, true},
		{"parent of own child", self, child, false, false},
		{"self is not its own descendant", self, self, false, false},
		{"init", 1, self, false, false},
		{"kthreadd", 2, self, false, false},
		{"nonexistent pid", nonexistent, self, false, false},
		{"nonexistent ancestor", child, nonexistent, false, false},
		{"zero", 0, self, false, false},
		{"negative", -1, self, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needParent && os.Getppid() == 0 {
				t.Skip("our parent is outside our pid namespace")
			}
			got, err := IsDescendant(tt.pid, tt.ancestor)
			if err != nil || got != tt.want {
				t.Errorf("IsDescendant(%d, %d) = %v, %v; want %v", tt.pid, tt.ancestor, got, err, tt.want)
			}
		})
	}
}

func TestIsDescendantGrandchild(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 1000 & echo $!; wait")
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	grandchild, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("sh printed %q; want a pid", line)
	}
	self, child := os.Getpid(), cmd.Process.Pid
	for _, tt := range []struct {
		pid, ancestor int
		want          bool
	}{
		{grandchild, self, true},
		{grandchild, child, true},
		{child, grandchild, false},
		{self, grandchild, false},
	} {
		if got, err := IsDescendant(tt.pid, tt.ancestor); err != nil || got != tt.want {
			t.Errorf("IsDescendant(%d, %d) = %v, %v; want %v", tt.pid, tt.ancestor, got, err, tt.want)
		}
	}
}

// unusedPID returns a pid with no /proc entry: pid_max itself is never
// handed out (pids go up to pid_max-1, proc(5)).
func unusedPID(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", n)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("pid_max %d exists in /proc: %v", n, err)
	}
	return n
}

func TestParseStatPPID(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want int
	}{
		{"plain", "1234 (sleep) S 99 1234 1234 0 -1 4194304\n", 99},
		{"init", "1 (init) S 0 1 1 0 -1 4194560\n", 0},
		{"comm with ) and spaces", "77 (a) b (c) R 5 77 77\n", 5},
		{"comm with ) S 1", "77 (x) S 1 (y) S 42 77 77\n", 42},
		{"empty comm", "8 () Z 3 8 8\n", 3},
		{"ppid at end of line", "8 (x) S 3\n", 3},
		{"ppid at end of input", "8 (x) S 3", 3},
		{"largest", "8 (x) S 2147483647 1", 2147483647},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatPPID([]byte(tt.in))
			if err != nil || got != tt.want {
				t.Errorf("parseStatPPID(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	for _, in := range []string{
		"",
		"1234 sleep S 99",
		"1234 (sleep) S",
		"1234 (sleep) S ",
		"1234 (sleep)S 99",
		"1234 (sleep)  99",
		"1234 (sleep) SS 99",
		"1234 (sleep) S -1 5",
		"1234 (sleep) S 9x 5",
		"1234 (sleep) S 2147483648 5",
		"1234 (sleep) S 99999999999 5",
		"1234 sleep) S 99",
	} {
		if got, err := parseStatPPID([]byte(in)); err == nil {
			t.Errorf("parseStatPPID(%q) = %v, nil; want an error", in, got)
		}
	}
}

// The parser agrees with the kernel about our own parent.
func TestReadPPIDOfSelf(t *testing.T) {
	if got, err := readPPID(os.Getpid()); err != nil || got != os.Getppid() {
		t.Errorf("readPPID(self) = %v, %v; want %v", got, err, os.Getppid())
	}
}

func FuzzParse(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzParse.
	f.Fuzz(func(t *testing.T, b []byte) {
		pid, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", b, err)
			}
			return
		}
		if pid < 1 || pid > MaxPID {
			t.Fatalf("Parse(%q) = %d; out of 1..%d", b, pid, MaxPID)
		}
		if !strings.Contains(string(b), fmt.Sprint(pid)) {
			t.Fatalf("Parse(%q) = %d, which is not in the input", b, pid)
		}
		if len(b) > MaxSize {
			t.Fatalf("Parse accepted %d bytes", len(b))
		}
	})
}

func FuzzParseStatPPID(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzParseStatPPID.
	f.Fuzz(func(t *testing.T, b []byte) {
		ppid, err := parseStatPPID(b)
		if err != nil {
			return
		}
		if ppid < 0 || ppid > MaxPID {
			t.Fatalf("parseStatPPID(%q) = %d; out of 0..%d", b, ppid, MaxPID)
		}
		if !strings.Contains(string(b), ") ") {
			t.Fatalf("parseStatPPID(%q) = %d without a \") \"", b, ppid)
		}
	})
}
