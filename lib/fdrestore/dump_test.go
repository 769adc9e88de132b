//go:build linux

package fdrestore

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseFdinfo(t *testing.T) {
	tests := []struct {
		name string
		text string
		want fdinfo
	}{
		{"regular", "pos:\t1221\nflags:\t02100000\nmnt_id:\t30\nino:\t737\n",
			fdinfo{Pos: 1221, Flags: 02100000, HasFlags: true, MntID: 30, Ino: 737}},
		{"eventfd", "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t26\neventfd-count:                5\neventfd-id: 2\neventfd-semaphore: 1\n",
			fdinfo{Flags: 02000002, HasFlags: true, MntID: 17, Ino: 26, EventfdCount: 5, HasEventfd: true, EventfdSemaphore: true}},
		{"eventfd hex", "flags:\t02\neventfd-count:  1f\n",
			fdinfo{Flags: 2, HasFlags: true, EventfdCount: 31, HasEventfd: true}},
		{"epoll", "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t26\n" +
			"tfd:        5 events:       19 data:                5  pos:0 ino:3f4c3d sdev:f\n" +
			"tfd:        3 events: 80000019 data:     deadbeef0001  pos:0 ino:1a sdev:10\n",
			fdinfo{Flags: 02000002, HasFlags: true, MntID: 17, Ino: 26, Epoll: []epollItem{
				{TFD: 5, Events: 0x19, Data: 5, Ino: 0x3f4c3d, Sdev: 0xf},
				{TFD: 3, Events: 0x80000019, Data: 0xdeadbeef0001, Ino: 0x1a, Sdev: 0x10},
			}}},
		{"pty master", "pos:\t0\nflags:\t02100002\nmnt_id:\t23\nino:\t90\ntty-index:\t7\n",
			fdinfo{Flags: 02100002, HasFlags: true, MntID: 23, Ino: 90, TTYIndex: 7, HasTTYIndex: true}},
		{"signalfd", "flags:\t02004002\nsigmask:\t0000000000004002\n",
			fdinfo{Flags: 02004002, HasFlags: true, Sigmask: 0x4002, HasSigmask: true}},
		{"timerfd", "flags:\t02\nclockid: 1\nticks: 3\nsettime flags: 01\nit_value: (1, 500)\nit_interval: (2, 0)\n",
			fdinfo{Flags: 2, HasFlags: true, Timer: &timerInfo{ClockID: 1, Ticks: 3, Flags: 1, Value: [2]int64{1, 500}, Interval: [2]int64{2, 0}}}},
		{"unknown lines and repeated common keys", "pos:\t4\nflags:\t0\nSqMask:\t0x3\nino:\t9\nino: bogus\nscm_fds: 0\n",
			fdinfo{Pos: 4, HasFlags: true, Ino: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFdinfo([]byte(tt.text))
			if err != nil {
				t.Fatalf("parseFdinfo(%q) = %v", tt.text, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseFdinfo(%q) =\n%+v; want\n%+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestParseFdinfoRejects(t *testing.T) {
	for _, text := range []string{
		"pos:\tx\n",
		"flags:\t9\n",
		"tfd: x events: 1 data: 1 ino: 1\n",
		"tfd: 3 events: 1 data: 1\n",
		"tfd: 3 events: zz data: 1 ino: 1\n",
		"eventfd-count: g\n",
		"it_value: 1, 2\n",
	} {
		if _, err := parseFdinfo([]byte(text)); err == nil {
			t.Errorf("parseFdinfo(%q) = nil error; want one", text)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	st, err := parseProcStat([]byte("812 (a (b) c) S 1 812 800 34816 812 4194560 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{Comm: "a (b) c", PPID: 1, Pgrp: 812, SID: 800, TTYNr: 34816}
	if st != want {
		t.Errorf("parseProcStat = %+v; want %+v", st, want)
	}
	if d := ttyDev(34816); unix.Major(d) != 136 || unix.Minor(d) != 0 {
		t.Errorf("ttyDev(34816) = %d:%d; want 136:0", unix.Major(d), unix.Minor(d))
	}
	if _, err := parseProcStat([]byte("812 comm S 1")); err == nil {
		t.Error("parseProcStat without parentheses: nil error")
	}
}

func TestFlagWords(t *testing.T) {
	tests := []struct {
		fl   uint32
		def  string
		want []string
	}{
		{unix.O_RDONLY | unix.O_CLOEXEC | unix.O_LARGEFILE, "rdonly", nil},
		{unix.O_WRONLY | unix.O_APPEND, "rdonly", []string{"wronly", "append"}},
		{unix.O_RDWR | unix.O_NONBLOCK, "rdwr", []string{"rdwr", "nonblock"}},
		{unix.O_PATH, "rdonly", []string{"path"}},
		{unix.O_RDWR | unix.O_SYNC, "rdwr", []string{"rdwr", "sync"}},
		{unix.O_RDWR | unix.O_DSYNC, "rdwr", []string{"rdwr", "dsync"}},
	}
	for _, tt := range tests {
		if got := flagWords(tt.fl, tt.def); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("flagWords(%#o, %s) = %q; want %q", tt.fl, tt.def, got, tt.want)
		}
	}
}

// fdOf returns the file of fd in the image's only process.
func fdOf(t *testing.T, img *Image, pid, fd int) (string, *File) {
	t.Helper()
	for _, p := range img.Processes {
		if p.PID != pid {
			continue
		}
		for _, e := range p.FDs {
			if e.FD == fd {
				return e.File, img.Files[e.File]
			}
		}
	}
	t.Fatalf("fd %d of pid %d is not in the image", fd, pid)
	return "", nil
}

// TestDumpSelf dumps the test process itself after building a small
// topology in it with raw fds.
func TestDumpSelf(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	unix.Write(p[1], []byte("abc"))
	ev, err := unix.Eventfd(5, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ev)
	evdup, err := unix.FcntlInt(uintptr(ev), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(evdup)
	path := t.TempDir() + "/f"
	if err := os.WriteFile(path, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := t.TempDir() + "/\xff"
	if err := os.WriteFile(bad, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fbad, err := unix.Open(bad, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fbad)
	f1, _ := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	f2, _ := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	defer unix.Close(f1)
	defer unix.Close(f2)
	unix.Seek(f1, 4, 0)
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, ev, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: 77})
	unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, p[0], &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: 5})
	// An escaped target: registered under a dup that is closed since.
	escaped, err := unix.FcntlInt(uintptr(ev), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, escaped, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: 9})
	unix.Close(escaped)
	mfd, err := unix.MemfdCreate("state", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(mfd)
	unix.Write(mfd, []byte("hello"))
	unix.FcntlInt(uintptr(mfd), unix.F_ADD_SEALS, unix.F_SEAL_GROW|unix.F_SEAL_SHRINK)
	spair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(spair[0])
	defer unix.Close(spair[1])
	var mask unix.Sigset_t
	mask.Val[0] = 1<<(unix.SIGUSR1-1) | 1<<(unix.SIGUSR2-1)
	sfd, err := unix.Signalfd(-1, &mask, unix.SFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sfd)
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tfd)
	its := unix.ItimerSpec{Value: unix.Timespec{Sec: 1000}, Interval: unix.Timespec{Sec: 3, Nsec: 5}}
	if err := unix.TimerfdSettime(tfd, 0, &its, nil); err != nil {
		t.Fatal(err)
	}

	pid := os.Getpid()
	img, stats, err := Dump(DumpOptions{PIDs: []int{pid}, Data: true})
	if err != nil {
		t.Fatalf("Dump = %v", err)
	}
	if _, err := EncodeImage(img); err != nil {
		t.Fatalf("EncodeImage = %v", err)
	}
	if stats.Kcmp == 0 {
		t.Errorf("Dump made no kcmp call")
	}
	idR, fr := fdOf(t, img, pid, p[0])
	_, fw := fdOf(t, img, pid, p[1])
	if fr.Type != TypePipe || fw.Type != TypePipe || fr.Pipe != fw.Pipe || fr.End != "r" || fw.End != "w" {
		t.Errorf("pipe ends = %+v, %+v; want one pipe, ends r and w", fr, fw)
	}
	if ps := img.Pipes[fr.Pipe]; ps == nil || ps.Pending != 3 || ps.DataB64 != "YWJj" {
		t.Errorf("pipe state = %+v; want pending 3, data YWJj", ps)
	}
	idEv, fev := fdOf(t, img, pid, ev)
	if idDup, _ := fdOf(t, img, pid, evdup); idDup != idEv {
		t.Errorf("dup'ed eventfd: files %s and %s; want one", idEv, idDup)
	}
	if fev.Type != TypeEventfd || fev.Count != "5" {
		t.Errorf("eventfd = %+v; want count 5", fev)
	}
	id1, ff1 := fdOf(t, img, pid, f1)
	id2, _ := fdOf(t, img, pid, f2)
	if id1 == id2 || ff1.Pos != 4 || ff1.Path != path {
		t.Errorf("two opens: %s %s, %+v; want two files, pos 4", id1, id2, ff1)
	}
	_, fep := fdOf(t, img, pid, ep)
	// The kernel adds EPOLLERR|EPOLLHUP to every item's events.
	want := []EpollTarget{
		{FD: p[0], File: idR, Events: "0x80000019", Data: "0x5"},
		{FD: ev, File: idEv, Events: "0x19", Data: "0x4d"},
		{FD: escaped, File: idEv, Events: "0x1c", Data: "0x9"},
	}
	slices.SortFunc(want, func(a, b EpollTarget) int { return a.FD - b.FD })
	if !reflect.DeepEqual(fep.Targets, want) {
		t.Errorf("epoll targets = %+v; want %+v", fep.Targets, want)
	}
	_, fm := fdOf(t, img, pid, mfd)
	if fm.Type != TypeMemfd || fm.MName != "state" || fm.Size != 5 || fm.DataB64 != "aGVsbG8=" ||
		!reflect.DeepEqual(fm.Seals, []string{"shrink", "grow"}) {
		t.Errorf("memfd = %+v; want state, hello, seals shrink grow", fm)
	}
	if _, fs := fdOf(t, img, pid, sfd); fs.Type != TypeSignalfd || fs.Sigmask != "0xa00" {
		t.Errorf("signalfd = %+v; want sigmask 0xa00 (USR1 10, USR2 12)", fs)
	}
	if _, ft := fdOf(t, img, pid, tfd); ft.Type != TypeTimerfd || ft.Clock != "monotonic" || ft.Interval == nil ||
		*ft.Interval != [2]int64{3, 5} || ft.Value == nil || ft.Value[0] < 990 || ft.Value[0] > 1000 {
		t.Errorf("timerfd = %+v (value %v, interval %v); want monotonic, about 1000 s left, interval [3 5]", ft, ft.Value, ft.Interval)
	}
	if _, fb := fdOf(t, img, pid, fbad); fb.Type != TypeUnsupported || !strings.HasSuffix(fb.Link, "/\uFFFD") {
		t.Errorf("file named \\xff = %+v; want unsupported, its link with U+FFFD", fb)
	}
	_, s0 := fdOf(t, img, pid, spair[0])
	_, s1 := fdOf(t, img, pid, spair[1])
	if s0.Type != TypeUnix || s0.SockType != "seqpacket" || s0.Pair == "" || s0.Pair != s1.Pair || s0.End == s1.End {
		t.Errorf("socketpair = %+v, %+v; want a seqpacket pair", s0, s1)
	}
}

// TestDumpSharingBigBucket checks the kcmp partition of one inode opened
// many times, some descriptions dup'ed: each open is one file, each dup
// joins its original.
func TestDumpSharingBigBucket(t *testing.T) {
	var opens, dups []int
	defer func() {
		for _, fd := range append(opens, dups...) {
			unix.Close(fd)
		}
	}()
	for i := range 40 {
		fd, err := unix.Open("/dev/zero", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		opens = append(opens, fd)
		if i%3 == 0 {
			d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			dups = append(dups, d)
		}
	}
	pid := os.Getpid()
	img, _, err := Dump(DumpOptions{PIDs: []int{pid}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, fd := range opens {
		id, _ := fdOf(t, img, pid, fd)
		if j, ok := seen[id]; ok {
			t.Errorf("opens %d and %d (fds %d, %d) are one file %s; want two", j, i, opens[j], fd, id)
		}
		seen[id] = i
	}
	for k, d := range dups {
		want, _ := fdOf(t, img, pid, opens[3*k])
		if id, _ := fdOf(t, img, pid, d); id != want {
			t.Errorf("dup fd %d of fd %d: file %s; want %s", d, opens[3*k], id, want)
		}
	}
}

// TestDumpProcessFields checks setsid, pgrp and ctty from stat fields.
func TestDumpProcessFields(t *testing.T) {
	slaveDev := unix.Mkdev(136, 4)
	leader := &dproc{pid: 10, stat: procStat{Comm: "sh", Pgrp: 10, SID: 10, TTYNr: 34820}}
	member := &dproc{pid: 11, stat: procStat{Comm: "sh", Pgrp: 12, SID: 10, TTYNr: 34820}}
	gleader := &dproc{pid: 12, stat: procStat{Comm: "job", Pgrp: 12, SID: 10}}
	other := &dproc{pid: 13, stat: procStat{Comm: "job", Pgrp: 10, SID: 10}}
	joiner := &dproc{pid: 14, stat: procStat{Comm: "job", Pgrp: 12, SID: 10, TTYNr: 34820}}
	d := &dumper{procs: []*dproc{leader, member, gleader, other, joiner}}
	slave := &dgroup{id: "f1", file: &File{Type: TypePTY, End: "slave", PTY: "t1"}}
	e := &dfd{p: leader, fd: 0, g: slave}
	e.st.Mode, e.st.Rdev = unix.S_IFCHR|0o620, slaveDev
	leader.fds = []*dfd{e}
	used := map[string]bool{}
	for _, p := range d.procs {
		p.img = &Process{ID: processID(p.stat.Comm, used)}
	}
	d.processFields()
	for _, tt := range []struct {
		p          *dproc
		id         string
		setsid     bool
		pgrp, ctty string
	}{
		{leader, "sh", true, "", "f1"},
		{member, "sh-2", false, "", ""}, // its leader comes later: inherit
		{gleader, "job", false, "new", ""},
		{other, "job-2", false, "", ""}, // the group of a session leader
		{joiner, "job-3", false, "job", ""},
	} {
		got := tt.p.img
		if got.ID != tt.id || got.Setsid != tt.setsid || got.Pgrp != tt.pgrp || got.Ctty != tt.ctty {
			t.Errorf("pid %d: %+v; want id %s setsid %v pgrp %q ctty %q", tt.p.pid, got, tt.id, tt.setsid, tt.pgrp, tt.ctty)
		}
	}
}

func FuzzParseFdinfo(f *testing.F) {
	for _, s := range []string{
		"pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t26\neventfd-count:                5\n",
		"tfd:        5 events:       19 data:                5  pos:0 ino:3f4c3d sdev:f\n",
		"clockid: 1\nticks: 0\nsettime flags: 01\nit_value: (1, 500)\nit_interval: (0, 0)\n",
		"tty-index:\t7\nsigmask:\t0000000000004002\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fi, err := parseFdinfo(b)
		if err != nil {
			return
		}
		for _, it := range fi.Epoll {
			if it.TFD < 0 {
				t.Errorf("parseFdinfo(%q): negative tfd %d", b, it.TFD)
			}
		}
	})
}

// TestDumpMissingPID checks that a pid that does not exist is a system
// error (111), naming the pid.
func TestDumpMissingPID(t *testing.T) {
	_, _, err := Dump(DumpOptions{PIDs: []int{1 << 22}})
	if err == nil || err.Error() != "unable to dump pid 4194304: no such process" {
		t.Errorf("Dump(no such pid) = %v; want unable to dump pid 4194304: no such process", err)
	}
}

// BenchmarkDump10000 dumps a process (the benchmark itself) holding 10,000
// fds: 9,000 distinct memfds and 1,000 dups of some of them (section 13:
// <= 500 ms; kcmp calls <= n log2 n of the shared buckets).
func BenchmarkDump10000(b *testing.B) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < 10200 {
		b.Skipf("needs an open-file limit above 10200 (have %d)", rl.Cur)
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for i := range 9000 {
		fd, err := unix.MemfdCreate("m", unix.MFD_CLOEXEC)
		if err != nil {
			b.Fatal(err)
		}
		fds = append(fds, fd)
		if i < 1000 {
			d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			fds = append(fds, d)
		}
	}
	var stats DumpStats
	b.ResetTimer()
	for b.Loop() {
		var err error
		if _, stats, err = Dump(DumpOptions{PIDs: []int{os.Getpid()}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(stats.Kcmp), "kcmp/op")
	b.ReportMetric(float64(stats.FDs), "fds/op")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
}
