package shmlock

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/shm"
)

// inspectPodman prints a podman segment (decoded read-only by
// shm.InspectPodman): a summary of "key value" lines, then one
// tab-separated line per allocated or locked index, "index state allocated
// tid pid comm flags", state held, owner-died or free; flags among
// waiters, owner-died and gone (no such thread).
func inspectPodman(env *cli.Env, top *command, name string) error {
	seg, err := shm.InspectPodman(name, shm.WithDir(top.dir()))
	if err != nil {
		return top.openFail("open", name, err)
	}
	var b strings.Builder
	allocated, held := 0, 0
	for _, l := range seg.Locks {
		if l.Allocated {
			allocated++
		}
		if l.TID != 0 {
			held++
		}
	}
	fmt.Fprintf(&b, "path %s\nformat podman\nlayout %s\nnum_bitmaps %d\nnum_locks %d\nallocated %d\nheld %d\n",
		seg.Path, seg.Layout, seg.NumBitmaps, seg.NumLocks, allocated, held)
	for _, l := range seg.Locks {
		if !l.Allocated && l.TID == 0 && !l.Waiters && !l.OwnerDied {
			continue
		}
		state := "free"
		switch {
		case l.TID != 0:
			state = "held"
		case l.OwnerDied:
			state = "owner-died"
		}
		alloc := "no"
		if l.Allocated {
			alloc = "yes"
		}
		pid, comm := 0, "-"
		var flags []string
		if l.Waiters {
			flags = append(flags, "waiters")
		}
		if l.OwnerDied {
			flags = append(flags, "owner-died")
		}
		if l.TID != 0 {
			var ok bool
			if pid, comm, ok = thread(l.TID); !ok {
				flags = append(flags, "gone")
			}
		}
		f := "-"
		if len(flags) > 0 {
			f = strings.Join(flags, ",")
		}
		fmt.Fprintf(&b, "%d\t%s\t%s\t%d\t%d\t%s\t%s\n", l.Index, state, alloc, l.TID, pid, comm, f)
	}
	return write(env.Stdout, b.String())
}

// thread returns the process (thread group) and command name of thread
// tid, from /proc/TID (which exists for every thread, listed or not).
func thread(tid int) (pid int, comm string, ok bool) {
	dir := "/proc/" + strconv.Itoa(tid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return 0, "-", false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, found := strings.CutPrefix(line, "Tgid:"); found {
			pid, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	comm = "-"
	if c, err := os.ReadFile(dir + "/comm"); err == nil {
		if s := strings.TrimSuffix(string(c), "\n"); s != "" && !strings.ContainsAny(s, "\t\n") {
			comm = s
		}
	}
	return pid, comm, true
}
