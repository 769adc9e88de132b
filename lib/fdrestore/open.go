//go:build linux

package fdrestore

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fdholder"
)

// Masters holds the master fds of a plan (section 6.2): raw CLOEXEC fds the
// engine owns, and the paths it created on disk.
type Masters struct {
	// List is [Plan.Masters]: FDs[i] is the fd of List[i].
	List []Master
	FDs  []int
	// Paths are the files the engine created (bound unix sockets, files
	// opened with creat,excl), removed by [Masters.Close].
	Paths []string
	// pidfds are the pidfd_open results of grab: sources while opening, one
	// per pid.
	pidfds map[int]int
	// holders are the connections to fd holders of hold: sources while
	// opening, one per socket path.
	holders map[string]*fdholder.Client
}

// FD returns the master fd of end of object obj, or -1.
func (m *Masters) FD(obj, end int) int {
	for i, ms := range m.List {
		if ms.Object == obj && ms.End == end {
			return m.FDs[i]
		}
	}
	return -1
}

// Close closes every master and removes every created path: the cleanup of
// a failure. It can be called more than once. The first failure is
// returned; the rest still run.
func (m *Masters) Close() error {
	first := m.CloseFDs()
	for _, p := range m.Paths {
		if err := unix.Unlink(p); err != nil && !errors.Is(err, unix.ENOENT) && first == nil {
			first = fmt.Errorf("unable to remove %s: %w", p, err)
		}
	}
	m.Paths = nil
	return first
}

// CloseFDs closes every master but keeps the created paths: what the
// coordinator does once the programs own the files (the barrier of 6.6).
func (m *Masters) CloseFDs() error {
	var first error
	for _, fd := range m.FDs {
		if fd < 0 {
			continue
		}
		if err := unix.Close(fd); err != nil && first == nil {
			first = fmt.Errorf("unable to close fd %d: %w", fd, err)
		}
	}
	m.FDs = nil
	m.List = nil
	return first
}

// OpenMasters creates every master of a flags plan, in [Plan.Order], each a
// CLOEXEC fd. On failure everything opened so far is closed, every created
// path removed, and the error is one line, `unable to VERB OBJECT for fd N:
// REASON`, with exit code 111 ([exitcode.Sys]); a hold: source is a usage
// error (100) raised before anything is opened.
func OpenMasters(p *Plan) (*Masters, error) {
	m := &Masters{}
	defer m.closePidfds()
	defer m.closeHolders()
	list := p.Masters()
	for _, o := range p.Order {
		fds, err := m.open(p, o)
		if err != nil {
			_ = m.Close()
			return nil, err
		}
		m.FDs = append(m.FDs, fds...)
		if err := applyState(p, o, fds); err != nil {
			_ = m.Close()
			return nil, err
		}
		if err := checkDirFD(p, o, fds); err != nil {
			_ = m.Close()
			return nil, err
		}
	}
	if err := m.deleteHeld(p); err != nil {
		_ = m.Close()
		return nil, err
	}
	if len(m.FDs) != len(list) {
		n := len(m.FDs)
		_ = m.Close()
		return nil, exitcode.Errorf(exitcode.Internal, "opened %d masters for a plan of %d", n, len(list))
	}
	m.List = list
	return m, nil
}

// firstTarget is the target of the -f flag that first named object o.
func firstTarget(p *Plan, o int) int {
	obj := &p.Objects[o]
	for _, e := range p.Entries {
		if e.Flag == obj.Flag {
			return e.Target
		}
	}
	if len(obj.Targets) > 0 {
		return obj.Targets[0]
	}
	return -1
}

// sysErr is the one-line error of a failed system call (exit 111).
func sysErr(verb string, target int, err error) error {
	if target < 0 {
		return exitcode.Errorf(exitcode.Sys, "unable to %s: %w", verb, err)
	}
	return exitcode.Errorf(exitcode.Sys, "unable to %s for fd %d: %w", verb, target, err)
}

// retry runs f again while it fails with EINTR.
func retry(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// open creates object o and returns its master fds, laid out as
// [Plan.Masters] does. Fds it opened are closed when it fails; a path it
// created is already in m.Paths.
func (m *Masters) open(p *Plan, o int) ([]int, error) {
	obj := &p.Objects[o]
	src := &obj.Source
	t := firstTarget(p, o)
	switch obj.Kind {
	case KindFile:
		return m.openFile(src, t)
	case KindNull:
		fd, err := openat("/dev/null", unix.O_RDWR, 0)
		if err != nil {
			return nil, sysErr("open /dev/null", t, err)
		}
		return []int{fd}, nil
	case KindPipe:
		fds := make([]int, 2)
		if err := unix.Pipe2(fds, unix.O_CLOEXEC); err != nil {
			return nil, sysErr("create pipe "+obj.Name, t, err)
		}
		return fds, nil
	case KindSocketpair:
		fds, err := unix.Socketpair(unix.AF_UNIX, src.SockType|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, sysErr("create socketpair "+obj.Name, t, err)
		}
		return fds[:], nil
	case KindListen:
		if src.Network == "unix" {
			return m.listenUnix(src, t)
		}
		return listenInet(src, t)
	case KindPTY:
		return openPTY(obj, t)
	case KindMemfd:
		fd, err := unix.MemfdCreate(src.Name, unix.MFD_ALLOW_SEALING|unix.MFD_CLOEXEC)
		if err != nil {
			return nil, sysErr("create memfd "+src.Name, t, err)
		}
		return []int{fd}, nil
	case KindEventfd:
		fd, err := unix.Eventfd(uint(src.Count), src.EventfdFlags|unix.EFD_CLOEXEC)
		if err != nil {
			return nil, sysErr("create eventfd", t, err)
		}
		return []int{fd}, nil
	case KindEpoll:
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return nil, sysErr("create epoll", t, err)
		}
		return []int{fd}, nil
	case KindFD:
		fd, err := unix.FcntlInt(uintptr(src.FD), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, sysErr("duplicate fd "+strconv.Itoa(src.FD), t, err)
		}
		return []int{fd}, nil
	case KindHold:
		return m.retrieve(p, src, t)
	case KindConnect:
		fd, err := unix.Socket(unix.AF_UNIX, src.SockType|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, sysErr("create a unix socket", t, err)
		}
		if err := retry(func() error { return unix.Connect(fd, &unix.SockaddrUnix{Name: src.Path}) }); err != nil {
			unix.Close(fd)
			return nil, sysErr("connect to "+src.Path, t, err)
		}
		return []int{fd}, nil
	case KindGrab:
		return m.grab(src, t)
	case KindSignalfd:
		var set unix.Sigset_t
		set.Val[0] = src.SigMask
		fd, err := unix.Signalfd(-1, &set, unix.SFD_CLOEXEC)
		if err != nil {
			return nil, sysErr(fmt.Sprintf("create signalfd of mask %#x", src.SigMask), t, err)
		}
		return []int{fd}, nil
	}
	return nil, exitcode.Errorf(exitcode.Internal, "fd %d: %s has no master", t, obj.Kind)
}

func openat(path string, flags int, mode uint32) (fd int, err error) {
	err = retry(func() (e error) {
		fd, e = unix.Openat(unix.AT_FDCWD, path, flags|unix.O_CLOEXEC, mode)
		return e
	})
	return fd, err
}

func (m *Masters) openFile(src *Source, t int) ([]int, error) {
	if src.FIFO {
		// A FIFO opened read-only blocks until a writer comes, write-only
		// fails without a reader: a temporary O_RDWR open is both, and
		// takes the queued bytes.
		tmp, err := openat(src.Path, unix.O_RDWR|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil, sysErr("open FIFO "+src.Path, t, err)
		}
		defer unix.Close(tmp)
		if err := writeAll(tmp, src.Data); err != nil {
			return nil, sysErr("refill FIFO "+src.Path, t, err)
		}
	}
	fd, err := openat(src.Path, src.Flags, src.Mode)
	if err != nil {
		return nil, sysErr("open "+src.Path, t, err)
	}
	if src.Flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL {
		m.Paths = append(m.Paths, src.Path)
	}
	if err := verifyFile(fd, src, t); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if src.HasPos {
		if _, err := unix.Seek(fd, src.Pos, 0); err != nil {
			unix.Close(fd)
			return nil, sysErr(fmt.Sprintf("seek %s to %d", src.Path, src.Pos), t, err)
		}
	}
	return []int{fd}, nil
}

// listenInet makes a tcp or udp socket bound to src.Addr, listening for tcp.
// An unspecified host is [::] with IPV6_V6ONLY off, or 0.0.0.0 when the
// kernel has no IPv6.
func listenInet(src *Source, t int) ([]int, error) {
	typ := unix.SOCK_STREAM
	if src.Network == "udp" {
		typ = unix.SOCK_DGRAM
	}
	addr, port := src.Addr.Addr(), int(src.Addr.Port())
	wildcard := !addr.IsValid()
	family := unix.AF_INET6
	if addr.Is4() {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if wildcard && errors.Is(err, unix.EAFNOSUPPORT) {
		family = unix.AF_INET
		fd, err = unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return nil, sysErr("create a "+src.Network+" socket", t, err)
	}
	var sa unix.Sockaddr
	var shown string
	switch {
	case family == unix.AF_INET && wildcard:
		sa = &unix.SockaddrInet4{Port: port}
		shown = netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port)).String()
	case family == unix.AF_INET:
		sa = &unix.SockaddrInet4{Port: port, Addr: addr.As4()}
		shown = src.Addr.String()
	default:
		a := netip.IPv6Unspecified()
		if !wildcard {
			a = addr
		}
		sa6 := &unix.SockaddrInet6{Port: port, Addr: a.As16()}
		shown = netip.AddrPortFrom(a, uint16(port)).String()
		if z := a.Zone(); z != "" {
			n, err := strconv.ParseUint(z, 10, 32)
			if err != nil {
				unix.Close(fd)
				return nil, exitcode.Errorf(exitcode.Usage, "unable to bind %s for fd %d: only numeric IPv6 zones are supported", shown, t)
			}
			sa6.ZoneId = uint32(n)
		}
		sa = sa6
		if wildcard {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
		}
	}
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if err != nil {
		unix.Close(fd)
		return nil, sysErr("set options of "+shown, t, err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, sysErr("bind "+shown, t, err)
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, backlog(src)); err != nil {
			unix.Close(fd)
			return nil, sysErr("listen on "+shown, t, err)
		}
	}
	return []int{fd}, nil
}

// ListenUnix is the listen:unix:PATH source outside a plan: a CLOEXEC
// stream socket bound to path and listening (backlog SOMAXCONN). An
// existing path is replaced only if it is a socket that refuses
// connections; created reports whether a path was made on disk.
func ListenUnix(path string) (fd int, created bool, err error) {
	if path == "" {
		return -1, false, exitcode.Errorf(exitcode.Usage, "empty socket path")
	}
	var m Masters
	fds, err := m.listenUnix(&Source{Path: path}, -1)
	if err != nil {
		return -1, false, err
	}
	return fds[0], len(m.Paths) > 0, nil
}

// listenUnix makes a stream socket bound to src.Path (a leading @ is
// abstract) and listening. An existing path is unlinked only if it is a
// socket nobody listens on (connect gives ECONNREFUSED).
func (m *Masters) listenUnix(src *Source, t int) ([]int, error) {
	path := src.Path
	abstract := path[0] == '@'
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, sysErr("create a unix socket", t, err)
	}
	sa := &unix.SockaddrUnix{Name: path} // x/sys makes a leading @ abstract
	err = unix.Bind(fd, sa)
	if errors.Is(err, unix.EADDRINUSE) && !abstract && staleSocket(path) {
		if uerr := unix.Unlink(path); uerr == nil || errors.Is(uerr, unix.ENOENT) {
			err = unix.Bind(fd, sa)
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, sysErr("bind "+path, t, err)
	}
	if !abstract {
		m.Paths = append(m.Paths, path)
	}
	if err := unix.Listen(fd, backlog(src)); err != nil {
		unix.Close(fd)
		return nil, sysErr("listen on "+path, t, err)
	}
	return []int{fd}, nil
}

// staleSocket reports whether path is a unix socket that refuses
// connections: one whose listener is gone.
func staleSocket(path string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return false
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	err = retry(func() error { return unix.Connect(fd, &unix.SockaddrUnix{Name: path}) })
	return errors.Is(err, unix.ECONNREFUSED)
}

// openPTY opens /dev/ptmx, unlocks it and, when the plan uses the slave,
// opens it with TIOCGPTPEER (O_NOCTTY).
func openPTY(obj *Object, t int) ([]int, error) {
	fd, err := openat("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, sysErr("open /dev/ptmx", t, err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		return nil, sysErr("unlock pty "+obj.Name, t, err)
	}
	if !obj.Ends[PTYSlave] {
		return []int{fd}, nil
	}
	var slave uintptr
	err = retry(func() error {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER,
			uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
		if errno != 0 {
			return errno
		}
		slave = r
		return nil
	})
	if err != nil {
		unix.Close(fd)
		return nil, sysErr("open the slave of pty "+obj.Name, t, err)
	}
	return []int{fd, int(slave)}, nil
}

// grab takes fd src.FD of process src.PID with pidfd_getfd (its result is
// CLOEXEC).
func (m *Masters) grab(src *Source, t int) ([]int, error) {
	what := fmt.Sprintf("grab fd %d of pid %d", src.FD, src.PID)
	pidfd, ok := m.pidfds[src.PID]
	if !ok {
		var err error
		pidfd, err = unix.PidfdOpen(src.PID, 0)
		if err != nil {
			if errors.Is(err, unix.ESRCH) {
				return nil, exitcode.Errorf(exitcode.Sys, "unable to %s for fd %d: pid %d does not exist", what, t, src.PID)
			}
			return nil, sysErr(what, t, err)
		}
		if m.pidfds == nil {
			m.pidfds = map[int]int{}
		}
		m.pidfds[src.PID] = pidfd
	}
	fd, err := unix.PidfdGetfd(pidfd, src.FD, 0)
	switch {
	case errors.Is(err, unix.EPERM):
		return nil, exitcode.Errorf(exitcode.Sys,
			"unable to %s for fd %d: %w (needs CAP_SYS_PTRACE, or the same uid under a permissive ptrace scope)", what, t, err)
	case errors.Is(err, unix.EBADF):
		return nil, exitcode.Errorf(exitcode.Sys, "unable to %s for fd %d: pid %d has no fd %d", what, t, src.PID, src.FD)
	case errors.Is(err, unix.ESRCH):
		return nil, exitcode.Errorf(exitcode.Sys, "unable to %s for fd %d: pid %d has exited", what, t, src.PID)
	case err != nil:
		return nil, sysErr(what, t, err)
	}
	return []int{fd}, nil
}

// checkDirFD refuses a directory or O_PATH fd (section 11: a host directory
// fd lets a contained process openat(fd, "..") out of its root) unless the
// plan allows them. Only the kinds that can yield one are checked: file:
// and the live sources.
func checkDirFD(p *Plan, o int, fds []int) error {
	obj := &p.Objects[o]
	if p.AllowDirFD || (obj.Kind != KindFile && !obj.Kind.Live()) {
		return nil
	}
	for _, fd := range fds {
		if what := DirFD(fd); what != "" {
			return exitcode.Errorf(exitcode.Refused,
				"refusing to place %s at fd %d (%s): it can reach outside a container's root; use --allow-dirfd",
				what, firstTarget(p, o), obj.Source.Text)
		}
	}
	return nil
}

// DirFD says what fd is when it is a directory or an O_PATH fd ("a
// directory", "an O_PATH fd"), the fds section 11 refuses to hand a
// program without --allow-dirfd; "" otherwise. Every command that hands
// fds to a program (restore, grab, hold retrieve, hold getdump) applies
// this one check.
func DirFD(fd int) string {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return "a directory"
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil && fl&unix.O_PATH != 0 {
		return "an O_PATH fd"
	}
	return ""
}

func (m *Masters) closePidfds() {
	for _, fd := range m.pidfds {
		_ = unix.Close(fd)
	}
	m.pidfds = nil
}

// retrieve takes id src.ID from the holder at src.Socket (one connection
// per socket), without deleting it: [Masters.deleteHeld] deletes every
// retrieved id at the end with [Plan.HoldDelete], so that a failure leaves
// the holders unchanged. A holder's refusal is exit 1, as s6's; an
// unreachable holder 111.
func (m *Masters) retrieve(p *Plan, src *Source, t int) ([]int, error) {
	c, ok := m.holders[src.Socket]
	if !ok {
		var err error
		if c, err = fdholder.Dial(src.Socket, p.HoldTimeout); err != nil {
			_, cause := fdholder.Cause(err)
			return nil, exitcode.Errorf(exitcode.Sys, "unable to connect to %s for fd %d: %w", src.Socket, t, cause)
		}
		if m.holders == nil {
			m.holders = map[string]*fdholder.Client{}
		}
		m.holders[src.Socket] = c
	}
	fd, err := c.Retrieve(src.ID, false)
	if err != nil {
		return nil, holdErr("retrieve "+src.ID+" from "+src.Socket, t, err)
	}
	return []int{fd}, nil
}

// holdErr is the error of a holder operation for target t (none if t <
// 0), exit code as [fdholder.Cause] says.
func holdErr(what string, t int, err error) error {
	code, cause := fdholder.Cause(err)
	if t < 0 {
		return exitcode.Errorf(code, "unable to %s: %w", what, cause)
	}
	return exitcode.Errorf(code, "unable to %s for fd %d: %w", what, t, cause)
}

// deleteHeld deletes, with [Plan.HoldDelete], every id retrieved from a
// holder, once every master is open.
func (m *Masters) deleteHeld(p *Plan) error {
	if !p.HoldDelete {
		return nil
	}
	for _, o := range p.Order {
		obj := &p.Objects[o]
		if obj.Kind != KindHold {
			continue
		}
		if err := m.holders[obj.Source.Socket].Delete(obj.Source.ID); err != nil {
			return holdErr("delete "+obj.Source.ID+" from "+obj.Source.Socket, firstTarget(p, o), err)
		}
	}
	return nil
}

func (m *Masters) closeHolders() {
	for _, c := range m.holders {
		_ = c.Close()
	}
	m.holders = nil
}

// applyState gives the masters of object o the state an image recorded
// (section 6.2): memfd contents, size and position, queued pipe bytes,
// status flags.
func applyState(p *Plan, o int, fds []int) error {
	obj := &p.Objects[o]
	src := &obj.Source
	t := firstTarget(p, o)
	switch obj.Kind {
	case KindMemfd:
		if err := writeAll(fds[0], src.Data); err != nil {
			return sysErr("fill memfd "+src.Name, t, err)
		}
		if src.Size > int64(len(src.Data)) {
			if err := unix.Ftruncate(fds[0], src.Size); err != nil {
				return sysErr("size memfd "+src.Name, t, err)
			}
		}
		if _, err := unix.Seek(fds[0], src.Pos, 0); err != nil {
			return sysErr("seek memfd "+src.Name, t, err)
		}
	case KindPTY:
		if src.Winsize != nil {
			ws := unix.Winsize{Row: src.Winsize[0], Col: src.Winsize[1], Xpixel: src.Winsize[2], Ypixel: src.Winsize[3]}
			if err := unix.IoctlSetWinsize(fds[0], unix.TIOCSWINSZ, &ws); err != nil {
				return sysErr("set the window size of pty "+obj.Name, t, err)
			}
		}
		if src.Termios != nil {
			if err := unix.IoctlSetTermios(fds[0], unix.TCSETS, src.Termios); err != nil {
				return sysErr("set the termios of pty "+obj.Name, t, err)
			}
		}
	case KindPipe:
		// The image's capacity (F_SETPIPE_SZ rounds up to a power of two
		// pages), at least room for the queued bytes.
		if size := max(src.Size, int64(len(src.Data))); size > 0 && (src.Size > 0 || size > 65536) {
			if _, err := unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, int(size)); err != nil {
				return sysErr(fmt.Sprintf("set the capacity of pipe %s to %d", obj.Name, size), t, err)
			}
		}
		if len(src.Data) > 0 {
			if err := writeAll(fds[1], src.Data); err != nil {
				return sysErr("refill pipe "+obj.Name, t, err)
			}
		}
	}
	set := func(fd, fl int) error {
		if fl == 0 {
			return nil
		}
		old, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err == nil {
			_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, old|fl)
		}
		if err != nil {
			return sysErr("set the status flags of "+src.Text, t, err)
		}
		return nil
	}
	if obj.Kind.Shared() {
		for end, fd := range fds { // pipe2, socketpair: both ends; pty: master first
			if err := set(fd, src.EndFlags[end]); err != nil {
				return err
			}
		}
		return nil
	}
	for _, fd := range fds {
		if err := set(fd, src.StatusFlags); err != nil {
			return err
		}
	}
	return nil
}

// backlog is the listen(2) backlog of a listen: source: the image's, else
// SOMAXCONN.
func backlog(src *Source) int {
	if src.Backlog > 0 {
		return src.Backlog
	}
	return unix.SOMAXCONN
}

// verifyFile checks a file an image recorded against what the open gave
// (section 6.2): the same device and inode when both were dumped, else the
// same size for a regular file; the same device number for a device. A
// mismatch means the path was swapped since the dump (exit 111).
func verifyFile(fd int, src *Source, t int) error {
	c := src.Verify
	if c == nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return sysErr("stat "+src.Path, t, err)
	}
	bad := func(what string, want, got any) error {
		return exitcode.Errorf(exitcode.Sys, "unable to restore fd %d: %s is not the dumped file (%s %v, found %v)", t, src.Path, what, want, got)
	}
	switch {
	case c.HasIno && (uint64(st.Dev) != c.Dev || st.Ino != c.Ino):
		if uint64(st.Dev) != c.Dev {
			return bad("device", FormatDev(c.Dev), FormatDev(uint64(st.Dev)))
		}
		return bad("inode", c.Ino, st.Ino)
	case !c.HasIno && c.HasSize && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size != c.Size:
		return bad("size", c.Size, st.Size)
	case c.HasRDev && (st.Mode&unix.S_IFMT == unix.S_IFCHR || st.Mode&unix.S_IFMT == unix.S_IFBLK) && uint64(st.Rdev) != c.RDev:
		return bad("device number", FormatDev(c.RDev), FormatDev(uint64(st.Rdev)))
	}
	return nil
}
