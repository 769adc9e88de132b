package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/fdrestore"
)

// restoreProbes restores img (JSON) with every process's exec replaced by
// `sleep 60`, waits until every probe has exec'd, and returns the
// coordinator and the probes' pids in image order, plus the coordinator's
// warnings.
func restoreProbes(t *testing.T, img *fdrestore.Image, args ...string) (*Proc, []int) {
	t.Helper()
	for _, p := range img.Processes {
		p.Exec, p.Exe = []string{"sleep", "60"}, ""
	}
	b, err := fdrestore.EncodeImage(img)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c := start(t, append(append([]string{"fdrestore", "restore"}, args...), path)...)
	var pids []int
	waitFor(t, "every probe to exec sleep", func() bool {
		if st, err := readStat(c.Pid); err != nil || st.State == 'Z' {
			t.Fatalf("fdrestore restore ended early: stderr %q", c.Stderr())
		}
		pids = pids[:0]
		for _, st := range procStats() {
			if st.PPid == c.Pid && st.Comm == "sleep" {
				pids = append(pids, st.Pid)
			}
		}
		return len(pids) == len(img.Processes)
	})
	slices.Sort(pids)
	return c, pids
}

// canonical renders an image so that two images of isomorphic topologies
// compare equal: processes by index, files by the first (process, fd)
// holding them, objects (pipes, ptys, socketpairs) by their first file;
// pids, inode numbers, creation time, pty indexes and exec dropped.
func canonical(t *testing.T, img *fdrestore.Image) string {
	t.Helper()
	name := map[string]string{} // file id -> "k:fd"
	for k, p := range img.Processes {
		for _, e := range p.FDs {
			if _, ok := name[e.File]; !ok && e.File != "" {
				name[e.File] = fmt.Sprintf("%d:%d", k, e.FD)
			}
		}
	}
	objName := func(kind, id string) string {
		best := ""
		for fid, f := range img.Files {
			ref := map[string]string{"pipe": f.Pipe, "pty": f.PTY, "pair": f.Pair}[kind]
			if ref == id && name[fid] != "" && (best == "" || name[fid] < best) {
				best = name[fid]
			}
		}
		return kind + "@" + best
	}
	var out []string
	for k, p := range img.Processes {
		out = append(out, fmt.Sprintf("process %d setsid=%v pgrp=%v ctty=%q", k, p.Setsid, p.Pgrp != "", name[p.Ctty]))
		for _, e := range p.FDs {
			f := *img.Files[e.File]
			if f.Verify != nil {
				v := *f.Verify
				v.Ino, v.Dev = "", ""
				if f.Type != "file" || strings.HasPrefix(f.Path, "/dev/pts/") {
					v.RDev = ""
				}
				f.Verify = &v
			}
			if f.Pipe != "" {
				st := img.Pipes[f.Pipe]
				f.Pipe = objName("pipe", f.Pipe) + fmt.Sprintf("(size %d pending %d data %q)", st.Size, st.Pending, st.DataB64)
			}
			if f.PTY != "" {
				st := *img.Ptys[f.PTY]
				st.Index = 0
				b, _ := json.Marshal(st)
				f.PTY = objName("pty", f.PTY) + string(b)
			}
			if f.Pair != "" {
				f.Pair = objName("pair", f.Pair)
			}
			if f.Connect != "" {
				f.Connect = name[f.Connect]
			}
			if f.Type == "pty" && f.End == "slave" {
				f.Path = ""
			}
			f.Targets = slices.Clone(f.Targets)
			for i := range f.Targets {
				f.Targets[i].File = name[f.Targets[i].File]
			}
			b, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("  fd %d = %s %s", e.FD, name[e.File], b))
		}
	}
	return strings.Join(out, "\n")
}

// dumpPids dumps pids with --data and decodes the image.
func dumpPids(t *testing.T, pids []int) *fdrestore.Image {
	t.Helper()
	args := []string{"--data"}
	for _, p := range pids {
		args = append(args, strconv.Itoa(p))
	}
	img, _ := dumpImage(t, 0, args...)
	return img
}

// The round trip of spec/fdrestore.md section 12: the dump test's topology
// (pipe between two processes, dup'ed and fork-inherited fds, a file open
// twice, a socketpair, a unix listener with a queued client, a pty pair,
// an epoll on two targets one of them dup'ed, an eventfd at 5, a memfd with
// data, a FIFO with data, a deleted file, a TCP listener, an io_uring) is
// dumped, restored with --lossy into probes, and dumped again. The files
// restore cannot create (the io_uring, the deleted file) are the only
// losses, each with its warning; everything else keeps its number, type,
// sharing, flags, position, peers (the queued client is queued again on
// the new listener), epoll targets with events and data, eventfd count,
// memfd, pipe and FIFO bytes, pty termios and window size. A second round trip
// from the restored image gives the same image again.
func TestFdrestoreRoundTrip(t *testing.T) {
	p, _ := startTopo(t)
	img1 := dumpPids(t, append([]int{p.Pid}, childrenOf(p.Pid)...))
	// The originals must let go of the listeners' addresses first.
	p.KillGroup(t)

	c1, probes := restoreProbes(t, img1, "--lossy")
	img2 := dumpPids(t, probes)

	// The losses: each warned about, and absent from the second image.
	warnings := lines(c1.Stderr())
	lost := map[string]bool{}
	for k, pr := range img1.Processes {
		for _, e := range pr.FDs {
			f := img1.Files[e.File]
			if f.Type == "unsupported" || f.Deleted {
				lost[fmt.Sprintf("%d:%d", k, e.FD)] = true
				want := fmt.Sprintf("fdrestore: warning: fd %d of process %s left closed: ", e.FD, pr.ID)
				if !slices.ContainsFunc(warnings, func(l string) bool { return strings.HasPrefix(l, want) }) {
					t.Errorf("no warning %q... in %q", want, warnings)
				}
			}
		}
	}
	if len(lost) != 2 || len(warnings) != 2 {
		t.Errorf("losses %v, warnings %q; want the io_uring and the deleted file", lost, warnings)
	}
	// Drop the lost fds from the first image.
	for k, pr := range img1.Processes {
		pr.FDs = slices.DeleteFunc(pr.FDs, func(e fdrestore.ImageFD) bool { return lost[fmt.Sprintf("%d:%d", k, e.FD)] })
	}
	want, got := canonical(t, img1), canonical(t, img2)
	if want != got {
		t.Errorf("restored topology differs from the dumped one:\n%s", lineDiff(want, got))
	}
	killProbes(t, c1, probes)

	// Fixed point: restoring the restored image changes nothing.
	c2, probes2 := restoreProbes(t, img2)
	img3 := dumpPids(t, probes2)
	killProbes(t, c2, probes2)
	if a, b := canonical(t, img2), canonical(t, img3); a != b {
		t.Errorf("second round trip differs:\n%s", lineDiff(a, b))
	}
}

// killProbes kills restored probes, which the image may have put in
// process groups of their own, and their coordinator, and waits until the
// coordinator has reaped them all.
func killProbes(t *testing.T, c *Proc, probes []int) {
	t.Helper()
	for _, pid := range probes {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	c.Wait(t)
	c.KillGroup(t)
}

// childrenOf lists the children of pid.
func childrenOf(pid int) []int {
	var out []int
	for _, st := range procStats() {
		if st.PPid == pid {
			out = append(out, st.Pid)
		}
	}
	slices.Sort(out)
	return out
}

// lineDiff shows the lines of a and b that differ.
func lineDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(la), len(lb)); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			out = append(out, "- "+x, "+ "+y)
		}
	}
	return strings.Join(out, "\n")
}

// TestFdrestoreRoundTripBehaviour is the behaviour half of the round trip:
// a known topology of three processes (a pipe across two, a memfd dup'ed
// in one and shared with another, a file open twice, a socketpair across
// two, a unix listener, an epoll on a pipe end and a dup'ed eventfd with
// its own data, an eventfd at 5, a pty whose slave is the third process's
// stdio and controlling terminal) is built, dumped, and restored from the
// dump into checkers: the pipe and the socketpair carry bytes between the
// restored processes, the memfd's offset is shared, epoll reports the
// dumped data and accepts MOD/DEL on the final numbers, the terminal is
// the controlling one with the process's group in the foreground, and no
// restored process has an fd beyond its table.
func TestFdrestoreRoundTripBehaviour(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	topo := imageOf(
		`{"id": "w", "exec": ["sleep", "60"], "fds": [{"fd": 3, "file": "pw"}, {"fd": 4, "file": "m"}, {"fd": 5, "file": "m"},
		   {"fd": 6, "file": "fa"}, {"fd": 7, "file": "fb"}, {"fd": 8, "file": "s0"}, {"fd": 9, "file": "l"},
		   {"fd": 10, "file": "ep"}, {"fd": 11, "file": "ev"}, {"fd": 12, "file": "tm"}, {"fd": 13, "file": "ev"}, {"fd": 14, "file": "qr"}]},
		 {"id": "r", "exec": ["sleep", "60"], "fds": [{"fd": 3, "file": "pr"}, {"fd": 4, "file": "s1"}, {"fd": 5, "file": "m"}]},
		 {"id": "t", "exec": ["sleep", "60"], "setsid": true, "ctty": "ts",
		   "fds": [{"fd": 0, "file": "ts"}, {"fd": 1, "file": "ts"}, {"fd": 2, "file": "ts"}, {"fd": 3, "file": "qw"}]}`,
		`"pw": {"type": "pipe", "pipe": "p1", "end": "w"}, "pr": {"type": "pipe", "pipe": "p1", "end": "r"},
		 "qw": {"type": "pipe", "pipe": "p2", "end": "w"}, "qr": {"type": "pipe", "pipe": "p2", "end": "r"},
		 "m": {"type": "memfd", "mname": "state", "size": 5, "data_b64": "aGVsbG8="},
		 "fa": {"type": "file", "path": "`+file+`", "pos": 2}, "fb": {"type": "file", "path": "`+file+`", "pos": 7},
		 "s0": {"type": "unix", "socktype": "stream", "state": "connected", "pair": "sp", "end": "0"},
		 "s1": {"type": "unix", "socktype": "stream", "state": "connected", "pair": "sp", "end": "1"},
		 "l": {"type": "unix", "socktype": "stream", "state": "listen", "path": "`+filepath.Join(dir, "sock")+`", "backlog": 16},
		 "ev": {"type": "eventfd", "count": "5"},
		 "ep": {"type": "epoll", "targets": [{"fd": 3, "file": "pw", "events": "0x4", "data": "3"}, {"fd": 13, "file": "ev", "events": "0x1", "data": "0x2a"}]},
		 "tm": {"type": "pty", "pty": "t1", "end": "master"}, "ts": {"type": "pty", "pty": "t1", "end": "slave"}`,
		`"pipes": {"p1": {"size": 65536}, "p2": {"size": 65536}}`, `"ptys": {"t1": {"index": 0, "winsize": [30, 100, 0, 0]}}`)
	built, err := fdrestore.DecodeImage([]byte(topo))
	if err != nil {
		t.Fatal(err)
	}
	c0, pids := restoreProbes(t, built)
	img := dumpPids(t, pids)
	killProbes(t, c0, pids)
	if n := len(img.Processes); n != 3 {
		t.Fatalf("dump has %d processes; want 3", n)
	}

	// Checkers in place of the programs, each writing what it saw to a file.
	out := func(name string) string { return filepath.Join(dir, name) }
	fdsOf := `ls /proc/$$/fd | sort -n | tr '\n' ' '`
	// w sends pong only once it has read 2 bytes of the shared memfd, so r
	// reads the rest after that; w keeps the pty master open until t says
	// it is done on the second pipe (the master's closing would hang t up).
	// (dash redirects single-digit fds only: w reopens fd 14 by its path.)
	img.Processes[0].Exec = []string{"sh", "-c", `echo ping >&3; dd bs=1 count=2 <&4 2>/dev/null >/dev/null; echo pong >&8; ` +
		`echo "fds $(` + fdsOf + `)" > ` + out("w") + `; epollprobe 10 3 13 >> ` + out("w") + `; read x < /proc/self/fd/14`}
	img.Processes[1].Exec = []string{"sh", "-c", `read a <&3; read b <&4; c=$(cat <&5); ` +
		`echo "$a $b $c fds $(` + fdsOf + `)" > ` + out("r")}
	img.Processes[2].Exec = []string{"sh", "-c", `set -- $(sed 's/.*) //' /proc/$$/stat); ` +
		`echo "sid=$4 pgid=$3 tpgid=$6 self=$$ $(stty size) $(tty) fds $(` + fdsOf + `)" > ` + out("t") + `; echo t >&3`}
	for _, p := range img.Processes {
		p.Exe = "" // the dumped exe (sleep) would run the checkers' argv
	}
	b, err := fdrestore.EncodeImage(img)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dumped.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, "fdrestore", "restore", path)
	if r.Code != 0 {
		t.Fatalf("restore of the dump into checkers = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	read := func(name string) string {
		b, err := os.ReadFile(out(name))
		if err != nil {
			t.Fatalf("checker %s wrote nothing: %v", name, err)
		}
		return string(b)
	}
	// w: its table (ls adds its own directory fd), then epoll.
	wantW := "fds 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 \nready 3 42\nmod 3 ok\nmod 13 ok\ndel 3 ok\ndel 13 ok\n"
	if got := read("w"); got != wantW {
		t.Errorf("checker w saw %q; want %q", got, wantW)
	}
	// r: the pipe's and the socketpair's bytes, the memfd's shared offset
	// (w read 2 of "hello"), its table.
	if got, want := read("r"), "ping pong llo fds 0 1 2 3 4 5 6 \n"; got != want {
		t.Errorf("checker r saw %q; want %q", got, want)
	}
	f := strings.Fields(read("t"))
	if len(f) < 6 {
		t.Fatalf("checker t saw %q", f)
	}
	self := strings.TrimPrefix(f[3], "self=")
	if f[0] != "sid="+self || f[1] != "pgid="+self || f[2] != "tpgid="+self || f[4] != "30" || f[5] != "100" ||
		!strings.HasPrefix(f[6], "/dev/pts/") || strings.Join(f[7:], " ") != "fds 0 1 2 3 4" {
		t.Errorf("checker t saw %q; want a session leader owning its terminal (30x100), /dev/pts/N, fds 0-2 and ls's own", f)
	}
}
