package tests

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// Issue 13, defect 1: a multi-process image keeps the unix socket path it
// bound while its programs run (the coordinator used to remove it right
// after they started). Both processes share one listener; a client
// connects by path once both run sleep.
func TestFdrestoreImageKeepsBoundSocketPath(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "sock")
	img := writeImage(t, imageOf(
		`{"id": "a", "exec": ["sleep", "30"], "fds": [{"fd": 3, "file": "l"}]},
		 {"id": "b", "exec": ["sleep", "30"], "fds": [{"fd": 3, "file": "l"}]}`,
		`"l": {"type": "unix", "socktype": "stream", "state": "listen", "path": "`+sock+`"}`))
	p := start(t, "fdrestore", "restore", img)
	waitFor(t, "both processes run sleep", func() bool {
		n := 0
		for _, c := range groupMembers(p.Pid) {
			if c.Comm == "sleep" {
				n++
			}
		}
		return n == 2
	})
	// The coordinator forgets (or, before the fix, removed) the paths once
	// both execs are confirmed: give it that moment.
	time.Sleep(200 * time.Millisecond)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("connect to %s while the restored programs run: %v; want the bound path kept", sock, err)
	}
	c.Close()
	p.KillGroup(t)
}
