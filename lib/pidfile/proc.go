//go:build linux

package pidfile

import (
	"bytes"
	"errors"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/decimal"
)

// maxWalk bounds the walk up the parent chain. A chain is rarely more than
// a few dozen deep; pids freed and reused while we walk could in theory
// make a cycle, and this turns that into a "no".
const maxWalk = 4096

// IsDescendant reports whether pid is a strict descendant of ancestor: a
// child, grandchild, and so on, but not ancestor itself. It walks the
// parent chain through /proc/PID/stat and stops at pid 1 or 0 (init and
// kthreadd have ppid 0, and so does a process whose parent is outside our
// pid namespace). A pid that does not exist gives false and no error. If a
// process in the middle of the chain exits during the walk, its children
// have been re-parented (to a subreaper or to init), so the walk starts
// over from pid, within the same bound.
//
// The answer describes the instant of each read only: pid may die and its
// number be reused at once. Callers open a pidfd first and poll it after,
// as background-watch.md step 5 prescribes.
func IsDescendant(pid, ancestor int) (bool, error) {
	if pid < 1 || ancestor < 1 {
		return false, nil
	}
	cur := pid
	for range maxWalk {
		ppid, err := readPPID(cur)
		switch {
		case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH):
			if cur == pid {
				return false, nil
			}
			cur = pid // an ancestor vanished: its children moved; start over
			continue
		case err != nil:
			return false, err
		}
		if ppid == ancestor {
			return true, nil
		}
		if ppid <= 1 {
			return false, nil
		}
		cur = ppid
	}
	return false, nil
}

// readPPID returns the parent of pid from /proc/PID/stat.
func readPPID(pid int) (int, error) {
	// proc(5): the line is "pid (comm) state ppid ..." with comm at most
	// 64 bytes (TASK_COMM_LEN is 16, but kernel threads may show more),
	// so the ppid ends well within 512 bytes; reading less than the whole
	// line is fine as long as it is read up to the ppid.
	b, err := readRegular("/proc/"+strconv.Itoa(pid)+"/stat", 512)
	if err != nil {
		return 0, err
	}
	return parseStatPPID(b)
}

// parseStatPPID reads field 4, the ppid, of a /proc/PID/stat line
// (proc(5)). Field 2, comm, is in parentheses and may itself contain
// spaces and parentheses, so the fields after it are found after the last
// ')': there the line is " STATE PPID ...", space-separated.
func parseStatPPID(b []byte) (int, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || bytes.IndexByte(b[:i], '(') < 0 {
		return 0, errors.New("malformed /proc stat: no (comm)")
	}
	rest := b[i+1:]
	// " S 1234 ..."
	if len(rest) < 4 || rest[0] != ' ' || rest[1] == ' ' || rest[2] != ' ' {
		return 0, errors.New("malformed /proc stat: no state")
	}
	rest = rest[3:]
	if j := bytes.IndexByte(rest, ' '); j >= 0 {
		rest = rest[:j]
	} else if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	ppid, ok := decimal.Parse(rest, maxDigits, MaxPID)
	if !ok {
		return 0, errors.New("malformed /proc stat: bad ppid")
	}
	return int(ppid), nil
}
