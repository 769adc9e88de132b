package tests

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The supervise fd store (spec/supervise.md §3.11, fdrestore.md sections 9
// and 12 "supervise fd store"), driven through the real binary with the
// fdstoreprobe role as the service.

// roleFdstoreprobe is an sd_notify(3) fd-store client, run as a service:
//
//	fdstoreprobe [-name NAME] [-kind tcp|pair] [-nopoll] [-twice] [-remove] [-serve] [-exitfirst]
//
// It first prints "PID listen N NAMES PIDOK INODES inherited=FDS
// notify=NOTIFY_SOCKET": N is $LISTEN_FDS (0 if unset), NAMES
// $LISTEN_FDNAMES, PIDOK "ok" when $LISTEN_PID is its own pid, INODES the
// inodes of fds 3..3+N-1 joined by ",", FDS the fds it inherited (without
// close-on-exec) joined by ","; "-" for an empty field. Its fd is fd 3 if it
// got one, else a new one: a TCP listener on 127.0.0.1:0 (-kind tcp, the
// default), or one end of a stream socketpair (-kind pair), whose other
// end it closes once the message is sent (a hangup). Then, with -remove
// and an fd received, it sends "FDSTOREREMOVE=1\nFDNAME=NAME" and prints
// "PID removed NAME"; otherwise it sends "FDSTORE=1\nFDNAME=NAME" (plus
// "FDPOLL=0" with -nopoll) with the fd, and with -twice the same message
// again with a dup of it, and prints "PID stored NAME INODE ADDR" (ADDR:
// the listener's address, or "-"). Every message goes with SCM_RIGHTS and
// SCM_CREDENTIALS to $NOTIFY_SOCKET ("@" = abstract). Last it sends
// "READY=1", prints "PID ready", and then serves the listener as
// lineserver does (-serve: each connection gets the pid and a newline),
// exits 0 at once (-exitfirst, when it received no fd) or sleeps until
// killed.
func roleFdstoreprobe(args []string) int {
	const role = "fdstoreprobe"
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	name := fs.String("name", "web", "FDNAME")
	kind := fs.String("kind", "tcp", "tcp or pair")
	nopoll := fs.Bool("nopoll", false, "send FDPOLL=0")
	twice := fs.Bool("twice", false, "store a dup too")
	remove := fs.Bool("remove", false, "FDSTOREREMOVE=1 a received fd")
	serve := fs.Bool("serve", false, "serve the listener")
	exitFirst := fs.Bool("exitfirst", false, "exit 0 after READY=1 if no fd was received")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || (*kind != "tcp" && *kind != "pair") {
		return usage(role, "[-name NAME] [-kind tcp|pair] [-nopoll] [-twice] [-remove] [-serve] [-exitfirst]")
	}
	pid := os.Getpid()
	inherited, err := inheritedFDs()
	if err != nil {
		return fatal(role, err)
	}
	n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	pidOK := "bad:" + os.Getenv("LISTEN_PID")
	if os.Getenv("LISTEN_PID") == strconv.Itoa(pid) {
		pidOK = "ok"
	}
	var inodes, fds []string
	for fd := 3; fd < 3+n; fd++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fatal(role, fmt.Errorf("fstat fd %d: %w", fd, err))
		}
		inodes = append(inodes, strconv.FormatUint(st.Ino, 10))
	}
	for _, fd := range inherited {
		if fd >= 3 {
			fds = append(fds, strconv.Itoa(fd))
		}
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	fmt.Printf("%d listen %d %s %s %s inherited=%s notify=%s\n", pid, n, dash(os.Getenv("LISTEN_FDNAMES")),
		dash(pidOK), dash(strings.Join(inodes, ",")), dash(strings.Join(fds, ",")), os.Getenv("NOTIFY_SOCKET"))

	fd, peer := 3, -1
	if n == 0 {
		if *kind == "tcp" {
			if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err == nil {
				if err = unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err == nil {
					err = unix.Listen(fd, 128)
				}
			}
		} else {
			var p [2]int
			p, err = unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			fd, peer = p[0], p[1]
		}
		if err != nil {
			return fatal(role, fmt.Errorf("create a %s socket: %w", *kind, err))
		}
	}
	if *remove && n > 0 {
		if err := sdNotify("FDSTOREREMOVE=1\nFDNAME="+*name, nil); err != nil {
			return fatal(role, err)
		}
		fmt.Printf("%d removed %s\n", pid, *name)
	} else {
		msg := "FDSTORE=1\nFDNAME=" + *name
		if *nopoll {
			msg += "\nFDPOLL=0"
		}
		if err := sdNotify(msg, []int{fd}); err != nil {
			return fatal(role, err)
		}
		if *twice {
			d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				return fatal(role, err)
			}
			if err := sdNotify(msg, []int{d}); err != nil {
				return fatal(role, err)
			}
			unix.Close(d)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fatal(role, err)
		}
		addr := "-"
		if sa, err := unix.Getsockname(fd); err == nil {
			if a, ok := sa.(*unix.SockaddrInet4); ok {
				addr = fmt.Sprintf("%d.%d.%d.%d:%d", a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3], a.Port)
			}
		}
		fmt.Printf("%d stored %s %d %s\n", pid, *name, st.Ino, addr)
	}
	if peer >= 0 {
		unix.Close(peer)
	}
	if err := sdNotify("READY=1", nil); err != nil {
		return fatal(role, err)
	}
	fmt.Printf("%d ready\n", pid)
	if *exitFirst && n == 0 {
		return 0
	}
	if !*serve {
		for {
			time.Sleep(time.Hour)
		}
	}
	answer := []byte(strconv.Itoa(pid) + "\n")
	for {
		c, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
			continue
		case err != nil:
			return fatal(role, fmt.Errorf("accept on fd %d: %w", fd, err))
		}
		unix.Write(c, answer)
		unix.Close(c)
	}
}

// sdNotify sends msg with fds to $NOTIFY_SOCKET as sd_pid_notify_with_fds
// does: one datagram with SCM_RIGHTS (if any) and SCM_CREDENTIALS.
func sdNotify(msg string, fds []int) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return errors.New("NOTIFY_SOCKET is not set")
	}
	return sdNotifyTo(addr, msg, fds)
}

// sdNotifyTo is sdNotify to the socket addr.
func sdNotifyTo(addr, msg string, fds []int) error {
	name := addr
	if strings.HasPrefix(addr, "@") {
		name = "\x00" + addr[1:]
	}
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(s)
	oob := unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())})
	if len(fds) > 0 {
		oob = append(oob, unix.UnixRights(fds...)...)
	}
	if err := unix.Sendmsg(s, []byte(msg), oob, &unix.SockaddrUnix{Name: name}, 0); err != nil {
		return fmt.Errorf("sendmsg %q to %s: %w", msg, addr, err)
	}
	return nil
}

// fdstoreDir is a service running `fdstoreprobe $(cat probe-args)`, with
// notify-socket and the extra files given.
func fdstoreDir(t *testing.T, probeArgs string, files map[string]string) string {
	t.Helper()
	all := map[string]string{
		"run":           "#!/bin/sh\nexec fdstoreprobe $(cat probe-args)\n",
		"notify-socket": "",
		"probe-args":    probeArgs + "\n",
	}
	for k, v := range files {
		all[k] = v
	}
	return svcDir(t, all)
}

// probeLine is what one fdstoreprobe instance printed first.
type probeLine struct {
	pid       int
	n         int
	names     string
	pidOK     string
	inodes    string
	inherited string
	notify    string
}

var listenRE = regexp.MustCompile(`^(\d+) listen (\d+) (\S+) (\S+) (\S+) inherited=(\S+) notify=(.*)$`)

// instance waits for the "u" and "U" of the next instance and returns
// its pid and first line.
func (s *supervised) instance(events string) probeLine {
	s.t.Helper()
	s.expect(events)
	pid := int(s.status().PID)
	line := s.p.WaitLine(s.t, fmt.Sprintf(`^%d listen `, pid))
	m := listenRE.FindStringSubmatch(line)
	if m == nil {
		s.t.Fatalf("probe line %q does not parse", line)
	}
	n, _ := strconv.Atoi(m[2])
	return probeLine{pid: pid, n: n, names: m[3], pidOK: m[4], inodes: m[5], inherited: m[6], notify: m[7]}
}

// stored returns the inode the instance pid printed as stored.
func (s *supervised) stored(pid int, name string) string {
	s.t.Helper()
	line := s.p.WaitLine(s.t, fmt.Sprintf(`^%d stored %s `, pid, regexp.QuoteMeta(name)))
	return strings.Fields(line)[3]
}

// TestSuperviseFdstoreKeepsListener: a listener stored with FDSTORE=1
// reaches the next instance at fd 3 with its FDNAME, LISTEN_PID = its pid
// and nothing else inherited; a second store of the same description (a
// dup, then the received fd again) is ignored; FDSTOREREMOVE=1 removes it.
func TestSuperviseFdstoreKeepsListener(t *testing.T) {
	t.Parallel()
	dir := fdstoreDir(t, "-name web -twice", map[string]string{"fdstore-max": "8\n"})
	s := startSuperviseEnv(t, dir, "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
	first := s.instance("suU")
	wantNotify := filepath.Join(dir, "notify")
	if first.n != 0 || first.inherited != "-" || first.notify != wantNotify {
		t.Errorf("first instance = %+v; want no fd, nothing inherited, NOTIFY_SOCKET %s", first, wantNotify)
	}
	ino := s.stored(first.pid, "web")
	for i := 2; i <= 3; i++ {
		s.control("k")
		got := s.instance("dDuU")
		want := probeLine{pid: got.pid, n: 1, names: "web", pidOK: "ok", inodes: ino, inherited: "3", notify: wantNotify}
		if got != want {
			t.Errorf("instance %d = %+v; want %+v", i, got, want)
		}
		if args := procArgv(got.pid); len(args) == 0 || args[0] != "fdstoreprobe" {
			t.Errorf("instance %d argv = %q; want fdstoreprobe (fdrestore exec'd in place)", i, args)
		}
	}
	// supervise/fdstore lists the store for inspection.
	listed := filepath.Join(dir, "supervise", "fdstore")
	if b, err := os.ReadFile(listed); err != nil || string(b) != "web socket:["+ino+"]\n" {
		t.Errorf("supervise/fdstore = %q (%v); want %q", b, err, "web socket:["+ino+"]\n")
	}
	// FDSTOREREMOVE=1 from the next instance: the one after gets nothing.
	if err := os.WriteFile(filepath.Join(dir, "probe-args"), []byte("-name web -remove\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.control("k")
	if got := s.instance("dDuU"); got.n != 1 || got.inodes != ino {
		t.Errorf("instance before the removal = %+v; want the stored listener", got)
	}
	s.control("k")
	if got := s.instance("dDuU"); got.n != 0 || got.inherited != "-" {
		t.Errorf("instance after FDSTOREREMOVE = %+v; want no fd", got)
	}
	// That instance, started without fds, stored a listener of its own.
	waitFor(t, "supervise/fdstore to list the new listener", func() bool {
		b, err := os.ReadFile(listed)
		return err == nil && strings.HasPrefix(string(b), "web socket:[") && !strings.Contains(string(b), "["+ino+"]")
	})
	if e := s.p.Stderr(); e != "" {
		t.Errorf("supervise stderr = %q; want nothing", e)
	}
}

// TestSuperviseFdstoreHangup: a stored socketpair end whose peer is closed
// is dropped (POLLHUP), unless it was stored with FDPOLL=0.
func TestSuperviseFdstoreHangup(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		args  string
		wantN int
	}{
		{name: "polled", args: "-kind pair -name pair", wantN: 0},
		{name: "FDPOLL=0", args: "-kind pair -name pair -nopoll", wantN: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startSuperviseEnv(t, fdstoreDir(t, tt.args, map[string]string{"fdstore-max": "1\n"}), "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
			first := s.instance("suU")
			ino := s.stored(first.pid, "pair")
			s.control("k")
			got := s.instance("dDuU")
			if got.n != tt.wantN || (tt.wantN == 1 && (got.inodes != ino || got.names != "pair")) {
				t.Errorf("next instance = %+v; want %d fd (inode %s)", got, tt.wantN, ino)
			}
		})
	}
}

// TestSuperviseFdstoreRefused: without fdstore-max (0) the store refuses
// the fd with one warning, and the next instance gets nothing; an invalid
// FDNAME is refused too.
func TestSuperviseFdstoreRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		args  string
		files map[string]string
		warn  string
	}{
		{name: "fdstore-max 0", args: "-name web", warn: "fd store full (fdstore-max 0): 1 fd named web refused"},
		{name: "invalid name", args: "-name a:b", files: map[string]string{"fdstore-max": "4\n"}, warn: `invalid FDNAME in FDSTORE=1: "a:b": 1 fd closed`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := fdstoreDir(t, tt.args, tt.files)
			s := startSuperviseEnv(t, dir, "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
			first := s.instance("suU")
			s.p.WaitLine(t, fmt.Sprintf(`^%d ready$`, first.pid))
			s.control("k")
			if got := s.instance("dDuU"); got.n != 0 {
				t.Errorf("next instance = %+v; want no fd", got)
			}
			want := "supervise " + dir + ": warning: " + tt.warn
			var warnings []string
			for _, l := range lines(s.p.Stderr()) {
				if strings.Contains(l, "warning:") {
					warnings = append(warnings, l)
				}
			}
			// Two instances stored, so two messages: one line each.
			if len(warnings) != 2 || warnings[0] != want || warnings[1] != want {
				t.Errorf("supervise warnings = %q; want twice %q", warnings, want)
			}
		})
	}
}

// TestSuperviseFdstoreDownEmpties: svc -d then -u empties the store,
// unless flag-fdstore-preserve exists.
func TestSuperviseFdstoreDownEmpties(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		preserve bool
	}{
		{name: "emptied"},
		{name: "flag-fdstore-preserve", preserve: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{"fdstore-max": "1\n"}
			if tt.preserve {
				files["flag-fdstore-preserve"] = ""
			}
			s := startSuperviseEnv(t, fdstoreDir(t, "-name web", files), "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
			first := s.instance("suU")
			ino := s.stored(first.pid, "web")
			s.control("d")
			s.expect("dD")
			s.control("u")
			got := s.instance("uU")
			if tt.preserve && (got.n != 1 || got.inodes != ino) {
				t.Errorf("instance after -d -u = %+v; want the stored fd (inode %s)", got, ino)
			}
			if !tt.preserve && got.n != 0 {
				t.Errorf("instance after -d -u = %+v; want no fd", got)
			}
		})
	}
}

// TestSuperviseFdstoreClash: a notification-fd among the stored fds'
// numbers refuses the start with a warning.
func TestSuperviseFdstoreClash(t *testing.T) {
	t.Parallel()
	dir := fdstoreDir(t, "-name web", map[string]string{"fdstore-max": "1\n"})
	s := startSuperviseEnv(t, dir, "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
	first := s.instance("suU")
	s.stored(first.pid, "web")
	if err := os.WriteFile(filepath.Join(dir, "notification-fd"), []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.control("k")
	s.expect("dD")
	s.p.WaitStderrLine(t, `: warning: notification-fd 3 clashes with the fd store's fds 3 to 3 \(retrying in 60 seconds\)$`)
	if st := s.status(); st.PID != 0 {
		t.Errorf("status pid = %d after the refused start; want 0", st.PID)
	}
}

// TestSuperviseFdstoreStoreThenExit: an instance that stores its fd,
// says READY=1 and exits at once is still ready (U) and its fd is stored:
// supervise reads the notify socket before it reaps, while the sender is
// a zombie of run's session.
func TestSuperviseFdstoreStoreThenExit(t *testing.T) {
	t.Parallel()
	s := startSuperviseEnv(t, fdstoreDir(t, "-name web -exitfirst", map[string]string{"fdstore-max": "1\n"}), "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
	inst := s.instance("suU")
	ino := s.stored(inst.pid, "web")
	if got := s.instance("dDuU"); got.n != 1 || got.inodes != ino {
		t.Errorf("next instance = %+v; want the fd stored just before the exit (inode %s)", got, ino)
	}
}

// TestSuperviseFdstoreIgnoresStrangers: a process outside run's session
// (the test itself) that sends FDSTORE=1 with an fd and READY=1 is
// ignored, silently: its fd is not stored.
func TestSuperviseFdstoreIgnoresStrangers(t *testing.T) {
	t.Parallel()
	dir := fdstoreDir(t, "-name web", map[string]string{"fdstore-max": "4\n"})
	s := startSuperviseEnv(t, dir, "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
	inst := s.instance("suU")
	ino := s.stored(inst.pid, "web")
	r, w := pipe(t)
	defer r.Close()
	defer w.Close()
	if err := sdNotifyTo(inst.notify, "FDSTORE=1\nFDNAME=intruder", []int{int(r.Fd())}); err != nil {
		t.Fatal(err)
	}
	s.control("k")
	if got := s.instance("dDuU"); got.n != 1 || got.names != "web" || got.inodes != ino {
		t.Errorf("next instance = %+v; want only the service's own fd (inode %s)", got, ino)
	}
	if e := s.p.Stderr(); e != "" {
		t.Errorf("supervise stderr = %q; want nothing", e)
	}
}

// TestSuperviseFdstoreAbstractSocket: when DIR/notify is too long for
// sun_path, NOTIFY_SOCKET is an abstract @gotools-supervise/ address with
// 128 random bits (nobody can bind it first), and storing through it
// works.
func TestSuperviseFdstoreAbstractSocket(t *testing.T) {
	t.Parallel()
	dir := fdstoreDir(t, "-name web", map[string]string{"fdstore-max": "1\n"})
	long := filepath.Join(filepath.Dir(dir), strings.Repeat("d", 100), "svc")
	if err := os.MkdirAll(filepath.Dir(long), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir, long); err != nil {
		t.Fatal(err)
	}
	s := startSuperviseEnv(t, long, "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
	inst := s.instance("suU")
	if !regexp.MustCompile(`^@gotools-supervise/[0-9a-f]{32}$`).MatchString(inst.notify) {
		t.Errorf("NOTIFY_SOCKET = %q; want @gotools-supervise/ and 32 hex digits", inst.notify)
	}
	ino := s.stored(inst.pid, "web")
	s.control("k")
	if got := s.instance("dDuU"); got.n != 1 || got.inodes != ino {
		t.Errorf("next instance = %+v; want the stored fd (inode %s)", got, ino)
	}
}

// TestSuperviseFdstoreUnprivilegedService: a run script that drops to uid
// 65534 (setpriv) still reaches NOTIFY_SOCKET: READY=1 makes it ready and
// FDSTORE=1 stores its listener for the next instance (issue 13 item 3).
// A stranger bound to the old abstract name changes nothing, and neither
// does a squatter's file under the socket's name: the start never fails.
func TestSuperviseFdstoreUnprivilegedService(t *testing.T) {
	t.Parallel()
	farm, asNobody := nobodyFarm(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(farm, "fdstoreprobe")
	if err := writeExecutable(probe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(farm, "svc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"run":           "#!/bin/sh\nexec " + strings.Join(asNobody, " ") + " " + probe + " -name web\n",
		"notify-socket": "",
		"fdstore-max":   "1\n",
	} {
		if err := writeExecutable(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The abstract name gotools used to derive from DIR, bound first.
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	squat, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(squat)
	if err := unix.Bind(squat, &unix.SockaddrUnix{Name: fmt.Sprintf("@gotools-supervise/%d:%d", st.Dev, st.Ino)}); err != nil {
		t.Fatal(err)
	}
	s := startSuperviseEnv(t, dir, "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
	first := s.instance("suU")
	if want := filepath.Join(dir, "notify"); first.notify != want {
		t.Errorf("NOTIFY_SOCKET = %q; want %q", first.notify, want)
	}
	if b := string(mustRead(t, fmt.Sprintf("/proc/%d/status", first.pid))); !strings.Contains(b, "\nUid:\t65534\t65534\t") {
		t.Errorf("the service's /proc status = %q; want uid 65534", b)
	}
	ino := s.stored(first.pid, "web")
	s.control("k")
	if got := s.instance("dDuU"); got.n != 1 || got.inodes != ino {
		t.Errorf("next instance = %+v; want the stored fd (inode %s)", got, ino)
	}
	if e := s.p.Stderr(); e != "" {
		t.Errorf("supervise stderr = %q; want nothing", e)
	}
}

// TestSuperviseFdstoreWithLockFD: with lock-fd the start is fdrestore,
// then setlock, then run: run gets the stored fd at 3, the notification
// pipe at notification-fd and the lock at lock-fd, with LISTEN_PID still
// its own pid.
func TestSuperviseFdstoreWithLockFD(t *testing.T) {
	t.Parallel()
	dir := fdstoreDir(t, "-name web", map[string]string{"fdstore-max": "1\n", "lock-fd": "7\n", "notification-fd": "6\n"})
	s := startSuperviseEnv(t, dir, "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
	inst := s.instance("suU")
	if inst.inherited != "6,7" {
		t.Errorf("first instance inherited %s; want 6,7 (notification pipe, lock)", inst.inherited)
	}
	ino := s.stored(inst.pid, "web")
	s.control("k")
	got := s.instance("dDuU")
	if got.n != 1 || got.inodes != ino || got.pidOK != "ok" || got.inherited != "3,6,7" {
		t.Errorf("next instance = %+v; want fd 3 (inode %s), LISTEN_PID ok, fds 3, 6 and 7", got, ino)
	}
}

// TestSuperviseFdstoreRestarts is fdrestore.md section 12's "supervise fd
// store" under load: the first instance stores its TCP listener; the
// service is SIGKILLed and restarted 20 times by supervise while a client
// loop connects: no connection is refused (supervise holds the listener
// across every restart) and every instance answers.
func TestSuperviseFdstoreRestarts(t *testing.T) {
	// Not parallel: under the load of the other end-to-end tests, one
	// connection in about a thousand has been seen to read EOF without a
	// line (never a refused one), twice in a dozen crowded runs and never
	// alone; the cause is not found yet (see the closing note of issues 7
	// and 8). Run alone, it has not failed in 40 runs under CPU load.
	const restarts = 20
	dir := fdstoreDir(t, "-name web -serve", map[string]string{"fdstore-max": "1\n"})
	s := startSuperviseEnv(t, dir, "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
	inst := s.instance("suU")
	line := s.p.WaitLine(t, fmt.Sprintf(`^%d stored web `, inst.pid))
	addr := strings.Fields(line)[4]
	c := newClientLoop(addr, 1<<30)
	ctx, cancel := context.WithCancel(context.Background())
	close(c.proceed)
	go c.run(ctx)
	defer func() {
		cancel()
		<-c.finished
	}()
	pids := killUnderLoad(t, s, c, restarts)
	cancel()
	<-c.finished
	s.control("dx")
	if !poll(time.Now().Add(20*time.Second), func() bool { return !s.p.Running() }) {
		t.Fatalf("supervise still runs 20 s after dx; stderr %q", s.p.Stderr())
	}
	if r := s.p.Wait(t); r.Code != 0 {
		t.Errorf("supervise after dx = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused != 0 || len(c.failures) != 0 {
		t.Errorf("%d refused connections and %d other failures (first: %q) out of %d; want none", c.refused, len(c.failures), first(c.failures), c.done.Load())
	}
	for _, pid := range pids {
		if c.answers[pid] == 0 {
			t.Errorf("instance pid %d never answered", pid)
		}
	}
	t.Logf("%d connections answered by %d instances", c.answered, len(pids))
}
