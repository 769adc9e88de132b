//go:build linux

package fdrestore

// What dump reads from /proc (proc(5)): a process's stat and cmdline, the
// fds of /proc/PID/fd and their /proc/PID/fdinfo/N text. Reading /proc
// with os.ReadFile is acceptable here: dump never places fds (the rule of
// section 6.3 is about the process that does).

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fdinfo is what /proc/PID/fdinfo/N says of one fd: the common lines (pos,
// flags, mnt_id, ino) and those of the file's type.
type fdinfo struct {
	Pos      int64
	Flags    uint32 // open(2) flags, O_CLOEXEC included (the fd flag)
	HasFlags bool
	MntID    int
	Ino      uint64

	EventfdCount     uint64 // eventfd-count: (hex)
	HasEventfd       bool
	EventfdSemaphore bool // eventfd-semaphore: 1 (Linux >= 6.6)

	Epoll []epollItem // tfd: lines

	TTYIndex    int // tty-index: of a pty master
	HasTTYIndex bool

	Sigmask    uint64 // sigmask: of a signalfd (hex)
	HasSigmask bool

	Timer *timerInfo // clockid:, ticks:, settime flags:, it_value:, it_interval:
}

// epollItem is one "tfd:" line of an eventpoll's fdinfo: the fd number the
// target had when it was added, its events and data, and the target
// file's inode and superblock device (the kernel's dev_t encoding).
type epollItem struct {
	TFD    int
	Events uint32
	Data   uint64
	Ino    uint64
	Sdev   uint64
}

// timerInfo is a timerfd's fdinfo: the remaining value and the interval
// as the kernel prints them ([s, ns]).
type timerInfo struct {
	ClockID  int
	Ticks    uint64
	Flags    int
	Value    [2]int64
	Interval [2]int64
}

// parseFdinfo reads the text of /proc/PID/fdinfo/N. Lines it does not know
// are skipped (every type adds its own); a known line that does not parse
// is an error.
func parseFdinfo(b []byte) (fdinfo, error) {
	var fi fdinfo
	seen := map[string]bool{}
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		key, val, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "pos", "flags", "mnt_id", "ino":
			// The common lines come first; a type's own lines may reuse
			// the words.
			if seen[key] {
				continue
			}
			seen[key] = true
		}
		var err error
		switch key {
		case "pos":
			fi.Pos, err = strconv.ParseInt(val, 10, 64)
		case "flags":
			var n uint64
			n, err = strconv.ParseUint(val, 8, 32)
			fi.Flags, fi.HasFlags = uint32(n), err == nil
		case "mnt_id":
			fi.MntID, err = strconv.Atoi(val)
		case "ino":
			fi.Ino, err = strconv.ParseUint(val, 10, 64)
		case "eventfd-count":
			fi.EventfdCount, err = strconv.ParseUint(val, 16, 64)
			fi.HasEventfd = err == nil
		case "eventfd-semaphore":
			fi.EventfdSemaphore = val == "1"
		case "tty-index":
			fi.TTYIndex, err = strconv.Atoi(val)
			fi.HasTTYIndex = err == nil
		case "sigmask":
			fi.Sigmask, err = strconv.ParseUint(val, 16, 64)
			fi.HasSigmask = err == nil
		case "tfd":
			var it epollItem
			it, err = parseEpollItem(val)
			fi.Epoll = append(fi.Epoll, it)
		case "clockid", "ticks", "settime flags", "it_value", "it_interval":
			if fi.Timer == nil {
				fi.Timer = new(timerInfo)
			}
			err = fi.Timer.parse(key, val)
		}
		if err != nil {
			return fi, fmt.Errorf("fdinfo line %q: %w", clip(string(line)), err)
		}
	}
	return fi, nil
}

// parseEpollItem reads what follows "tfd:" (fs/eventpoll.c ep_show_fdinfo):
// "5 events: 19 data: 5  pos:0 ino:3f4c3d sdev:f", numbers after tfd in
// hex.
func parseEpollItem(s string) (epollItem, error) {
	var it epollItem
	f := strings.Fields(strings.NewReplacer(":", ": ").Replace(s))
	if len(f) == 0 {
		return it, errors.New("no target fd")
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 {
		return it, fmt.Errorf("bad target fd %q", f[0])
	}
	it.TFD = n
	seen := 0
	for i := 1; i+1 < len(f); i += 2 {
		var v uint64
		switch f[i] {
		case "events:", "data:", "ino:", "sdev:":
			if v, err = strconv.ParseUint(f[i+1], 16, 64); err != nil {
				return it, fmt.Errorf("bad %s %q", strings.TrimSuffix(f[i], ":"), f[i+1])
			}
		default:
			continue
		}
		switch f[i] {
		case "events:":
			it.Events = uint32(v)
			seen |= 1
		case "data:":
			it.Data = v
			seen |= 2
		case "ino:":
			it.Ino = v
			seen |= 4
		case "sdev:":
			it.Sdev = v
		}
	}
	if seen != 7 {
		return it, errors.New("events, data or ino is missing")
	}
	return it, nil
}

// parse reads one line of a timerfd's fdinfo (fs/timerfd.c
// timerfd_show): "clockid: 1", "ticks: 0", "settime flags: 01",
// "it_value: (1, 500)", "it_interval: (0, 0)".
func (t *timerInfo) parse(key, val string) error {
	var err error
	switch key {
	case "clockid":
		t.ClockID, err = strconv.Atoi(val)
	case "ticks":
		t.Ticks, err = strconv.ParseUint(val, 10, 64)
	case "settime flags":
		var n uint64
		n, err = strconv.ParseUint(val, 8, 32)
		t.Flags = int(n)
	case "it_value", "it_interval":
		var ts [2]int64
		inner, ok := strings.CutPrefix(val, "(")
		inner, ok2 := strings.CutSuffix(inner, ")")
		a, b, ok3 := strings.Cut(inner, ",")
		if !ok || !ok2 || !ok3 {
			return errors.New("want (SECONDS, NANOSECONDS)")
		}
		if ts[0], err = strconv.ParseInt(strings.TrimSpace(a), 10, 64); err != nil {
			return err
		}
		if ts[1], err = strconv.ParseInt(strings.TrimSpace(b), 10, 64); err != nil {
			return err
		}
		if key == "it_value" {
			t.Value = ts
		} else {
			t.Interval = ts
		}
	}
	return err
}

// procStat is what dump takes from /proc/PID/stat.
type procStat struct {
	Comm  string
	PPID  int
	Pgrp  int
	SID   int
	TTYNr uint64 // the controlling terminal's device, in proc(5)'s encoding
}

// parseProcStat reads /proc/PID/stat text. The command is between the
// first '(' and the last ')', so that one with spaces or parentheses reads
// right.
func parseProcStat(b []byte) (procStat, error) {
	var st procStat
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return st, errors.New("no command in stat")
	}
	st.Comm = string(b[open+1 : end])
	// After the command: state ppid pgrp session tty_nr ...
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 5 {
		return st, errors.New("stat is too short")
	}
	var err [4]error
	st.PPID, err[0] = strconv.Atoi(f[1])
	st.Pgrp, err[1] = strconv.Atoi(f[2])
	st.SID, err[2] = strconv.Atoi(f[3])
	var tty int64
	tty, err[3] = strconv.ParseInt(f[4], 10, 64)
	st.TTYNr = uint64(uint32(tty))
	if e := errors.Join(err[:]...); e != nil {
		return st, fmt.Errorf("bad stat: %w", e)
	}
	return st, nil
}

// ttyDev turns stat's tty_nr into a dev_t: major in bits 15-8, minor in
// bits 31-20 and 7-0 (proc(5)).
func ttyDev(nr uint64) uint64 {
	return unix.Mkdev(uint32((nr>>8)&0xfff), uint32((nr&0xff)|((nr>>12)&0xfff00)))
}

// kernelDev turns a dev_t as the kernel prints it in fdinfo (MKDEV: major
// above bit 20) into the user-space encoding of stat(2).
func kernelDev(d uint64) uint64 { return unix.Mkdev(uint32(d>>20), uint32(d&0xfffff)) }

// readCmdline returns the argv of /proc/PID/cmdline; nil for a kernel
// thread or a zombie.
func readCmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	b = bytes.TrimSuffix(b, []byte{0})
	argv := strings.Split(string(b), "\x00")
	if argv[0] == "" {
		return nil
	}
	return argv
}

// readExe returns the file process pid runs (readlink /proc/PID/exe); ""
// for a kernel thread, a process we may not inspect, or a file deleted
// or replaced since it was started (exec'ing the path would run another
// program).
func readExe(pid int) string {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || !strings.HasPrefix(exe, "/") || strings.HasSuffix(exe, " (deleted)") {
		return ""
	}
	return exe
}

// listFDs returns the fd numbers of /proc/PID/fd, ascending.
func listFDs(pid int) ([]int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	fds := make([]int, 0, len(ents))
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			fds = append(fds, n)
		}
	}
	slices.Sort(fds)
	return fds, nil
}

// descendants returns the pids below roots (not roots themselves),
// ascending. /proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN; without
// it every /proc/*/stat is scanned for parents.
func descendants(roots []int) []int {
	kids := func(pid int) ([]int, bool) {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return nil, false
		}
		var out []int
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
			if err != nil {
				return nil, false
			}
			for _, w := range strings.Fields(string(b)) {
				if n, err := strconv.Atoi(w); err == nil {
					out = append(out, n)
				}
			}
		}
		return out, true
	}
	var byParent map[int][]int
	scan := func() {
		byParent = map[int][]int{}
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			if st, err := parseProcStat(b); err == nil {
				byParent[st.PPID] = append(byParent[st.PPID], pid)
			}
		}
	}
	seen := map[int]bool{}
	for _, r := range roots {
		seen[r] = true
	}
	var out []int
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		ch, ok := kids(pid)
		if !ok {
			if byParent == nil {
				scan()
			}
			ch = byParent[pid]
		}
		for _, c := range ch {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	slices.Sort(out)
	return out
}
