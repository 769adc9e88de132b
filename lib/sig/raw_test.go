package sig

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRawPipe sends signals to this process after RawPipe and reads each
// one's number from the pipe, SIGTERM and SIGHUP (whose default would kill
// us) and SIGCHLD included; a write to a pipe without reader fails with
// EPIPE instead of killing us. It runs in a child test process: the raw
// handlers would take the signals of the other tests, which use os/signal.
func TestRawPipe(t *testing.T) {
	if os.Getenv("GOTOOLS_TEST_RAWPIPE") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRawPipe$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "GOTOOLS_TEST_RAWPIPE=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestRawPipe") {
			t.Errorf("child test: %v\n%s", err, out)
		}
		return
	}
	r, err := RawPipe()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []unix.Signal{unix.SIGTERM, unix.SIGHUP, unix.SIGCHLD, unix.SIGUSR1, unix.SIGQUIT, unix.SIGINT} {
		if err := unix.Kill(unix.Getpid(), s); err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, 16)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			fds := []unix.PollFd{{Fd: int32(r), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, 100); err != nil && err != unix.EINTR {
				t.Fatal(err)
			}
			n, _ := unix.Read(r, buf)
			if n > 0 {
				got = append(got, buf[:n]...)
				break
			}
		}
		if len(got) != 1 || unix.Signal(got[0]) != s {
			t.Errorf("after kill %s: pipe holds %v; want [%d]", Name(s), got, s)
		}
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unix.Close(p[0])
	if _, err := unix.Write(p[1], []byte("x")); err != unix.EPIPE {
		t.Errorf("write to a pipe without reader: %v; want EPIPE", err)
	}
	unix.Close(p[1])
}
