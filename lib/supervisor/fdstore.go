package supervisor

// The fd store (spec/supervise.md §3.11, a gotools extension): a service
// gets a systemd-compatible NOTIFY_SOCKET, stores fds with FDSTORE=1 over
// SCM_RIGHTS, and every later start of ./run finds them at 3, 4, ... with
// LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (sd_listen_fds(3)), placed by
// an `fdrestore restore --listen-fds` exec in front of ./run.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/sys"
)

const (
	notifySocketFile = "notify"
	// fdstoreCap bounds fdstore-max (§3.11: at most 4096).
	fdstoreCap = 4096
	// notifyMaxFDs is the kernel's SCM_MAX_FD: the most fds one
	// SCM_RIGHTS message carries (unix(7)).
	notifyMaxFDs = 253
	// notifyBufSize is the largest notify message read; a longer one is
	// truncated (MSG_TRUNC) and dropped. systemd reads at most 4096 bytes
	// too (NOTIFY_BUFFER_MAX = PIPE_BUF).
	notifyBufSize = 4096
	// defaultFDName is the name of fds stored without FDNAME=, as in
	// systemd.
	defaultFDName = "stored"
	// kcmpFile is kcmp(2)'s KCMP_FILE: do two fds refer to the same open
	// file description? x/sys/unix does not define the kcmp types.
	kcmpFile = 0
)

// storedFD is one fd in the store.
type storedFD struct {
	fd   int
	name string
	poll bool // watched for POLLHUP/POLLERR (no FDPOLL=0)
}

// fdStore is the service's notify socket and stored fds.
type fdStore struct {
	sock   int    // the bound notify socket, or -1
	addr   string // its NOTIFY_SOCKET value
	path   bool   // bound to notifySocketFile, not an abstract address
	runSID int    // the session of the last run spawned: senders must be in it
	fds    []storedFD
	// dropAtDown empties the store once the service is down: set by d, D,
	// x and SIGTERM while run is still alive, so that fds it stores on its
	// way out do not survive either.
	dropAtDown bool
	buf, oob   []byte
	listed     string // what supervise/fdstore says now
}

// notifyMsg is what supervise understands of one notify datagram
// (sd_notify(3)): newline-separated KEY=VALUE assignments; others are
// ignored.
type notifyMsg struct {
	Ready   bool   // READY=1
	Store   bool   // FDSTORE=1
	Remove  bool   // FDSTOREREMOVE=1
	NoPoll  bool   // FDPOLL=0
	Name    string // the first FDNAME= value
	HasName bool
}

// parseNotify reads a notify datagram. Empty lines and unknown
// assignments are ignored; the first FDNAME= counts, as in systemd.
func parseNotify(b []byte) notifyMsg {
	var m notifyMsg
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		switch s := string(line); {
		case s == "READY=1":
			m.Ready = true
		case s == "FDSTORE=1":
			m.Store = true
		case s == "FDSTOREREMOVE=1":
			m.Remove = true
		case s == "FDPOLL=0":
			m.NoPoll = true
		case strings.HasPrefix(s, "FDNAME=") && !m.HasName:
			m.Name, m.HasName = s[len("FDNAME="):], true
		}
	}
	return m
}

// validFDName reports whether name can be a LISTEN_FDNAMES entry: 1 to 255
// printable ASCII bytes, no ':' (sd_pid_notify_with_fds(3); fdrestore
// checks names the same way).
func validFDName(name string) bool {
	if len(name) == 0 || len(name) > 255 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c > 0x7e || c == ':' {
			return false
		}
	}
	return true
}

// sameFile reports whether fds a and b of this process share one open
// file description, with kcmp(2) KCMP_FILE as systemd's same_fd() does. A
// kernel without kcmp (CONFIG_KCMP off) makes every fd distinct.
func sameFile(a, b int) bool {
	pid := uintptr(unix.Getpid())
	r, _, errno := unix.Syscall6(unix.SYS_KCMP, pid, pid, kcmpFile, uintptr(a), uintptr(b), 0)
	return errno == 0 && r == 0
}

// nfds is "1 fd" or "N fds", for messages.
func nfds(n int) string {
	if n == 1 {
		return "1 fd"
	}
	return strconv.Itoa(n) + " fds"
}

// notifyOn binds the notify socket if the service has a notify-socket
// file, and closes it if the file is gone. It never refuses the start: a
// socket that cannot be bound is warned about, and run starts without
// NOTIFY_SOCKET (issue 20 item 9).
func (s *Service) notifyOn() bool {
	if !s.present("notify-socket") {
		s.closeNotify()
		return true
	}
	if s.store.sock >= 0 {
		return true
	}
	if err := s.bindNotify(); err != nil {
		s.env.Warnf("unable to bind a notify socket: %w; starting without NOTIFY_SOCKET", sys.Errno(err))
	}
	return true
}

// closeNotify closes the notify socket and removes its path.
func (s *Service) closeNotify() {
	if s.store.sock < 0 {
		return
	}
	unix.Close(s.store.sock)
	s.store.sock = -1
	if s.store.path {
		unlinkSocket(s.p(notifySocketFile))
	}
	s.store.addr, s.store.path = "", false
}

// bindNotify creates the notify socket: a datagram socket at DIR/notify,
// mode 0666, whose absolute path is NOTIFY_SOCKET. It is in the service
// directory, not in supervise/ (0700, as s6 makes it), so that run's
// processes reach it even after dropping privileges (setpriv, s6-setuidgid);
// only root (DIR's owner) can create entries there, so nobody can take
// the name first. When the path does not fit in sun_path, or cannot be
// bound (a read-only DIR, a file of another kind named notify), it is an
// abstract address with 128 random bits, @gotools-supervise/HEX, that
// nobody can predict and so squat. SO_PASSCRED makes the kernel attach
// every sender's credentials: the sender check (run's session) does not
// depend on who can reach the socket.
func (s *Service) bindNotify() error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(fd)
		return err
	}
	if addr, ok := bindPath(fd, s.p(notifySocketFile)); ok {
		s.store.sock, s.store.addr, s.store.path = fd, addr, true
	} else if addr, err := bindAbstract(fd); err == nil {
		s.store.sock, s.store.addr, s.store.path = fd, addr, false
	} else {
		unix.Close(fd)
		return err
	}
	if s.store.buf == nil {
		s.store.buf = make([]byte, notifyBufSize)
		s.store.oob = make([]byte, unix.CmsgSpace(notifyMaxFDs*4)+unix.CmsgSpace(unix.SizeofUcred))
	}
	return nil
}

// bindPath binds fd to the absolute path of notifySocketFile and opens it
// to every uid. A socket left there is stale (supervise's lock is held):
// it is replaced; anything else named so is left alone.
func bindPath(fd int, name string) (string, bool) {
	addr, err := filepath.Abs(name)
	if err != nil {
		return "", false
	}
	if len(addr) >= len(unix.RawSockaddrUnix{}.Path) {
		return "", false
	}
	unlinkSocket(name)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		return "", false
	}
	// sendmsg(2) to a path socket needs write permission on it.
	if err := unix.Chmod(name, 0o666); err != nil {
		unix.Unlink(name)
		return "", false
	}
	return addr, true
}

// bindAbstract binds fd to a fresh random abstract address.
func bindAbstract(fd int) (string, error) {
	var err error
	for range 8 {
		addr := fmt.Sprintf("@gotools-supervise/%016x%016x", rand.Uint64(), rand.Uint64())
		if err = unix.Bind(fd, &unix.SockaddrUnix{Name: addr}); err == nil {
			return addr, nil
		}
		if !errors.Is(err, unix.EADDRINUSE) {
			break
		}
	}
	return "", err
}

// unlinkSocket removes name if it is a socket.
func unlinkSocket(name string) {
	var st unix.Stat_t
	if unix.Lstat(name, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		unix.Unlink(name)
	}
}

// pollFDs adds the notify socket and the watched stored fds to poll's
// set. Events 0: poll(2) still reports POLLHUP and POLLERR.
// watched reports whether a stored fd is watched for a hang-up.
func (st *fdStore) watched() bool {
	for _, f := range st.fds {
		if f.poll {
			return true
		}
	}
	return false
}

func (st *fdStore) pollFDs(fds []unix.PollFd) []unix.PollFd {
	if st.sock >= 0 {
		fds = append(fds, unix.PollFd{Fd: int32(st.sock), Events: unix.POLLIN})
	}
	for _, f := range st.fds {
		if f.poll {
			fds = append(fds, unix.PollFd{Fd: int32(f.fd)})
		}
	}
	return fds
}

// fdstoreEvents handles what poll reported for the fd store's part of
// the set (fds, as pollFDs built it): hung-up fds are dropped first, then
// the notify socket is read. drain reads it even without POLLIN: before
// reaping, so that a message sent just before run's death is still
// accepted from a live (zombie) sender.
func (s *Service) fdstoreEvents(fds []unix.PollFd, drain bool) {
	readable := false
	if s.store.sock >= 0 && len(fds) > 0 && fds[0].Fd == int32(s.store.sock) {
		readable = fds[0].Revents != 0
		fds = fds[1:]
	}
	hung := map[int32]bool{}
	for _, p := range fds {
		if p.Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			hung[p.Fd] = true
		}
	}
	if len(hung) > 0 {
		kept := s.store.fds[:0]
		for _, f := range s.store.fds {
			if f.poll && hung[int32(f.fd)] {
				unix.Close(f.fd)
				continue
			}
			kept = append(kept, f)
		}
		s.store.fds = kept
		s.fdstoreList()
	}
	if readable || drain {
		s.readNotify()
	}
}

// readNotify reads every queued notify message.
func (s *Service) readNotify() {
	st := &s.store
	for st.sock >= 0 {
		n, oobn, flags, _, err := unix.Recvmsg(st.sock, st.buf, st.oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return // EAGAIN: empty
		}
		var fds []int
		pid := 0
		if cmsgs, err := unix.ParseSocketControlMessage(st.oob[:oobn]); err == nil {
			for i := range cmsgs {
				if r, err := unix.ParseUnixRights(&cmsgs[i]); err == nil {
					fds = append(fds, r...)
				} else if c, err := unix.ParseUnixCredentials(&cmsgs[i]); err == nil {
					pid = int(c.Pid)
				}
			}
		}
		switch {
		case !s.notifySender(pid):
			fd.CloseAll(fds) // not the service's: ignored silently
		case flags&(unix.MSG_CTRUNC|unix.MSG_TRUNC) != 0:
			s.env.Warnf("notify message from pid %d truncated: ignored, %s closed", pid, nfds(len(fds)))
			fd.CloseAll(fds)
		default:
			s.notifyMessage(parseNotify(st.buf[:n]), fds)
		}
	}
}

// notifySender reports whether pid may talk to supervise: a process of
// run's session, or the adopted daemon (§3.11).
func (s *Service) notifySender(pid int) bool {
	if pid <= 0 {
		return false
	}
	if s.up() && pid == s.pid {
		return true
	}
	sid, err := unix.Getsid(pid)
	if err != nil || sid <= 0 {
		return false
	}
	return sid == s.store.runSID || (s.up() && sid == s.pid)
}

// notifyMessage applies one accepted message; fds are its SCM_RIGHTS.
func (s *Service) notifyMessage(m notifyMsg, fds []int) {
	if m.Ready && s.up() && !s.ready() {
		s.markReady()
	}
	if m.Remove {
		switch {
		case !m.HasName:
			s.env.Warnf("FDSTOREREMOVE=1 without FDNAME=: ignored")
		case !validFDName(m.Name):
			s.env.Warnf("invalid FDNAME in FDSTOREREMOVE=1: %s: ignored", servicedir.Quote([]byte(m.Name)))
		default:
			s.fdstoreRemove(m.Name)
		}
	}
	if len(fds) == 0 {
		return
	}
	if !m.Store {
		s.env.Warnf("%s sent without FDSTORE=1: closed", nfds(len(fds)))
		fd.CloseAll(fds)
		return
	}
	name := defaultFDName
	if m.HasName {
		if !validFDName(m.Name) {
			s.env.Warnf("invalid FDNAME in FDSTORE=1: %s: %s closed", servicedir.Quote([]byte(m.Name)), nfds(len(fds)))
			fd.CloseAll(fds)
			return
		}
		name = m.Name
	}
	s.fdstoreAdd(fds, name, !m.NoPoll)
}

// fdstoreAdd stores fds under name, up to fdstore-max; an fd whose open
// file is stored already is closed and ignored; the others beyond the
// limit are refused with one warning.
func (s *Service) fdstoreAdd(fds []int, name string, poll bool) {
	max := s.fdstoreMax()
	refused := 0
	for _, fd := range fds {
		dup := false
		for _, f := range s.store.fds {
			if sameFile(f.fd, fd) {
				dup = true
				break
			}
		}
		switch {
		case dup:
			unix.Close(fd)
		case len(s.store.fds) >= max:
			unix.Close(fd)
			refused++
		default:
			s.store.fds = append(s.store.fds, storedFD{fd: fd, name: name, poll: poll})
		}
	}
	if refused > 0 {
		s.env.Warnf("fd store full (fdstore-max %d): %s named %s refused", max, nfds(refused), name)
	}
	s.fdstoreList()
}

// fdstoreRemove closes and drops the fds stored under name.
func (s *Service) fdstoreRemove(name string) {
	kept := s.store.fds[:0]
	for _, f := range s.store.fds {
		if f.name == name {
			unix.Close(f.fd)
			continue
		}
		kept = append(kept, f)
	}
	s.store.fds = kept
	s.fdstoreList()
}

// fdstoreMax reads fdstore-max: default 0 (the store refuses every fd),
// at most 4096.
func (s *Service) fdstoreMax() int {
	v, _ := s.number("fdstore-max")
	return int(min(v, fdstoreCap))
}

// fdstoreClear empties the store.
func (s *Service) fdstoreClear() {
	for _, f := range s.store.fds {
		unix.Close(f.fd)
	}
	s.store.fds = s.store.fds[:0]
	s.fdstoreList()
}

// fdstoreList keeps supervise/fdstore up to date, for inspection: one
// line per stored fd, in store order, "NAME WHAT" where WHAT is the fd's
// /proc link ("socket:[1234]", a path). It exists once the store has held
// something (a gotools extension; s6 has no fd store).
func (s *Service) fdstoreList() {
	var b strings.Builder
	buf := make([]byte, 256)
	for _, f := range s.store.fds {
		what := "?"
		if n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(f.fd), buf); err == nil {
			what = string(buf[:n])
		}
		b.WriteString(f.name + " " + what + "\n")
	}
	text := b.String()
	if text == s.store.listed {
		return
	}
	if err := s.writeFile("supervise/fdstore", []byte(text)); err != nil {
		s.env.Warnf("unable to write supervise/fdstore: %w", sys.Errno(err))
		return
	}
	s.store.listed = text
}

// fdstoreStop is d, D, x and SIGTERM: the store is emptied now and again
// once the service is down, unless flag-fdstore-preserve exists.
func (s *Service) fdstoreStop() {
	if s.present("flag-fdstore-preserve") {
		return
	}
	s.fdstoreClear()
	s.store.dropAtDown = s.st != stDown
}

// fdstoreDown runs when the service is down and ready: the emptying a
// stop command asked for.
func (s *Service) fdstoreDown() {
	if s.store.dropAtDown {
		s.store.dropAtDown = false
		if !s.present("flag-fdstore-preserve") {
			s.fdstoreClear()
		}
	}
}

// fdstoreSpawn prepares a start of run with the store: it returns the
// argv, program path, environment and fd table to spawn, and the dups it
// made for the table, which the caller closes after the spawn. With stored
// fds the spawn is `fdrestore restore --listen-fds` in front of the
// command (one more exec, in place, so the pid stays run's and LISTEN_PID
// is right); the stored fds reach it at numbers above every target and
// above notification-fd and lock-fd, and fdrestore closes them there. ok
// is false when the start is refused (warned, retry scheduled).
func (s *Service) fdstoreSpawn(argv []string, path string, files []*os.File, notifFD, lockFD int) (nargv []string, npath string, env []string, nfiles []*os.File, dups []*os.File, ok bool) {
	if s.store.sock >= 0 {
		env = withEnv(os.Environ(), "NOTIFY_SOCKET", s.store.addr)
	}
	n := len(s.store.fds)
	if n == 0 {
		return argv, path, env, files, nil, true
	}
	for _, c := range []struct {
		name string
		fd   int
	}{{"notification-fd", notifFD}, {"lock-fd", lockFD}} {
		if c.fd >= 3 && c.fd < 3+n {
			s.retry("%s %d clashes with the fd store's fds 3 to %d (retrying in 60 seconds)", c.name, c.fd, 2+n)
			return nil, "", nil, nil, nil, false
		}
	}
	base := max(3+n, notifFD+1, lockFD+1, len(files))
	nfiles = append(nfiles, files...)
	for len(nfiles) < base {
		nfiles = append(nfiles, nil)
	}
	inner := argv
	if path != "" {
		// fdrestore execs a command found in PATH: name this binary.
		inner = append([]string{path}, argv...)
	}
	nargv = []string{"fdrestore", "restore", "--listen-fds", "--allow-dirfd"}
	for i, f := range s.store.fds {
		d, err := unix.FcntlInt(uintptr(f.fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			for _, f := range dups {
				f.Close()
			}
			s.retry("unable to duplicate a stored fd: %w (retrying in 60 seconds)", err)
			return nil, "", nil, nil, nil, false
		}
		// The dup, not the stored fd, goes in an *os.File: its Close (or
		// finalizer) must never close the store's own fd.
		df := os.NewFile(uintptr(d), "stored fd "+f.name)
		dups = append(dups, df)
		nfiles = append(nfiles, df)
		t, k := strconv.Itoa(3+i), strconv.Itoa(base+i)
		nargv = append(nargv, "--name="+t+"="+f.name, "--fd="+t+"=fd:"+k, "--fd="+k+"=close")
	}
	if env == nil {
		env = os.Environ()
	}
	return append(append(nargv, "--"), inner...), proc.Self(), env, nfiles, dups, true
}

// withEnv returns env with KEY set to value (any earlier KEY removed).
func withEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}
