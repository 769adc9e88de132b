//go:build linux

package fdholder

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/tai"
)

// Defaults and bounds of the daemon's options (s6-fdholderd.c main,
// S6_FDHOLDER_MAX = 256).
const (
	DefaultMaxConn = 16
	MaxMaxConn     = 256
	DefaultMaxFDs  = 1000
	// reservedFDs is what -n leaves of the open-file limit for the
	// daemon's own fds (s6: rlim_cur - 6).
	reservedFDs = 6
	// maxQueued is the output queued for one client before the daemon
	// stops reading its requests.
	maxQueued = 1 << 20
	// acceptPause is how long accepting stops after EMFILE and the like.
	acceptPause = time.Second
)

// Config is the daemon's configuration, its command-line options.
type Config struct {
	MaxConn  int           // -c: 0 means 16; clamped to 1..256
	MaxFDs   int           // -n: 0 means 1000; clamped to 1..RLIMIT_NOFILE soft limit minus 6
	Timeout  time.Duration // -t: drop a client idle this long mid-request; 0 = never
	LameDuck time.Duration // -T: after the stop request, exit after this long even with clients; 0 = wait
	Rules    []Rule
	// RulesDir, when set, is an s6 access rules directory read at each
	// connection instead of Rules ([DirAccess]: no rule, no access).
	RulesDir string
	// RulesCDB, when set, is an s6 access rules cdb read at each
	// connection instead of Rules ([CDBAccess]).
	RulesCDB string
	// Warn, if set, is told why a connection was refused by an error in
	// the rules directory.
	Warn func(error)
}

// ClampMaxConn applies -c's default and bounds.
func ClampMaxConn(n int) int {
	switch {
	case n == 0:
		return DefaultMaxConn
	case n < 1:
		return 1
	case n > MaxMaxConn:
		return MaxMaxConn
	}
	return n
}

// ClampMaxFDs applies -n's default and bounds for a soft open-file limit
// of soft (math.MaxUint64: unlimited).
func ClampMaxFDs(n int, soft uint64) int {
	if n == 0 {
		n = DefaultMaxFDs
	}
	if soft != unix.RLIM_INFINITY && soft < math.MaxInt32 && uint64(n) > soft-min(soft, reservedFDs) {
		n = int(soft) - reservedFDs
	}
	return max(n, 1)
}

// held is one fd in the store. refs counts queued answers that will send
// it; a held fd that left the store (gone) is closed when the last of
// them is sent or dropped.
type held struct {
	fd    int
	id    string
	limit tai.Stamp
	refs  int
	gone  bool
	index int // in the expiry heap
}

// limitHeap orders the held fds by limit, soonest first.
type limitHeap []*held

func (h limitHeap) Len() int           { return len(h) }
func (h limitHeap) Less(i, j int) bool { return less(h[i].limit, h[j].limit) }
func (h limitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *limitHeap) Push(x any) {
	e := x.(*held)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *limitHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// outMsg is one framed answer waiting to be written; its fds go with the
// first bytes written.
type outMsg struct {
	data    []byte
	held    []*held
	fdsSent bool
}

// conn is one client.
type conn struct {
	s        int
	uid, gid uint32
	access   Access
	r        *reader
	out      []*outMsg
	outBytes int
	dumping  uint32 // fds still due after '!'
	fresh    bool   // no request answered yet
	deadline time.Time
	events   uint32
	closed   bool
}

type server struct {
	cfg       Config
	maxConn   int
	maxFDs    int
	euid      int
	ep        int
	listen    int
	listening bool
	stop      int
	conns     map[int]*conn
	byID      map[string]*held
	byLimit   map[tai.Stamp]*held
	expiry    limitHeap
	lame      bool
	lameBy    time.Time
	retryAt   time.Time
	fatal     error
}

// Serve runs the fd holder on listenFD, a listening SOCK_STREAM unix
// socket (Serve makes it non-blocking and leaves it open), until a stop
// request: stop, if >= 0, is an fd that becomes readable with signal
// numbers, one byte each, as lib/sig's SelfPipe writes them; SIGTERM,
// SIGINT or end of file start the lame duck, other bytes are ignored.
// In lame duck the daemon accepts and reads nothing more, writes the
// answers it owes, and returns once none is left, or after
// cfg.LameDuck. status is s6-fdholderd's: (fds held ? 1 : 0) | (clients
// left ? 2 : 0). Held fds and client connections are closed on return.
//
// Serve runs in the calling goroutine and starts none: one epoll loop
// whose timeout is the nearest of the held fds' expiry, the clients'
// idle deadlines and the lame-duck deadline, so that a daemon with
// nothing to expire sleeps until a client or the stop fd wakes it.
func Serve(listenFD int, cfg Config, stop int) (status int, err error) {
	var lim unix.Rlimit
	soft := uint64(unix.RLIM_INFINITY)
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
		soft = lim.Cur
	}
	s := &server{
		cfg: cfg, maxConn: ClampMaxConn(cfg.MaxConn), maxFDs: ClampMaxFDs(cfg.MaxFDs, soft),
		euid: os.Geteuid(), listen: listenFD, stop: stop,
		conns: map[int]*conn{}, byID: map[string]*held{}, byLimit: map[tai.Stamp]*held{},
	}
	if err := unix.SetNonblock(listenFD, true); err != nil {
		return 0, fmt.Errorf("unable to make the listening socket non-blocking: %w", err)
	}
	if s.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return 0, fmt.Errorf("unable to create an epoll fd: %w", err)
	}
	defer unix.Close(s.ep)
	if stop >= 0 {
		if err := unix.EpollCtl(s.ep, unix.EPOLL_CTL_ADD, stop, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(stop)}); err != nil {
			return 0, fmt.Errorf("unable to watch the stop fd: %w", err)
		}
	}
	s.loop()
	status = s.shutdown()
	return status, s.fatal
}

func (s *server) loop() {
	events := make([]unix.EpollEvent, 64)
	for s.fatal == nil {
		now := time.Now()
		if s.lame && (s.idle() || (!s.lameBy.IsZero() && !now.Before(s.lameBy))) {
			return
		}
		s.updateListener(now)
		n, err := unix.EpollWait(s.ep, events, s.timeout(now))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			s.fatal = fmt.Errorf("unable to wait on epoll: %w", err)
			return
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			switch {
			case fd == s.stop:
				s.readStop()
			case fd == s.listen:
				s.accept()
			default:
				if c := s.conns[fd]; c != nil {
					s.connEvent(c, ev.Events)
				}
			}
		}
		s.expire(time.Now())
	}
}

// idle reports whether no answer is owed to any client.
func (s *server) idle() bool {
	for _, c := range s.conns {
		if len(c.out) > 0 {
			return false
		}
	}
	return true
}

// timeout is epoll_wait's timeout in ms: up to the nearest deadline, -1
// when there is none.
func (s *server) timeout(now time.Time) int {
	var first time.Duration = -1
	at := func(d time.Duration) {
		if first < 0 || d < first {
			first = max(d, 0)
		}
	}
	if len(s.expiry) > 0 {
		wall := tai.FromTime(now)
		if l := s.expiry[0].limit; !NoExpiry(l, wall) {
			at(l.Time().Sub(now))
		}
	}
	for _, c := range s.conns {
		if !c.deadline.IsZero() {
			at(c.deadline.Sub(now))
		}
	}
	if s.lame && !s.lameBy.IsZero() {
		at(s.lameBy.Sub(now))
	}
	if !s.retryAt.IsZero() {
		at(s.retryAt.Sub(now))
	}
	if first < 0 {
		return -1
	}
	ms := (first + time.Millisecond - 1) / time.Millisecond
	return int(min(ms, math.MaxInt32))
}

// expire closes the held fds whose limit passed and drops the clients
// idle past their deadline.
func (s *server) expire(now time.Time) {
	wall := tai.FromTime(now)
	for len(s.expiry) > 0 && !less(wall, s.expiry[0].limit) {
		s.remove(s.expiry[0])
	}
	for _, c := range s.conns {
		if !c.deadline.IsZero() && !now.Before(c.deadline) {
			s.drop(c)
		}
	}
	if !s.retryAt.IsZero() && !now.Before(s.retryAt) {
		s.retryAt = time.Time{}
	}
}

// readStop reads the stop fd: SIGTERM, SIGINT or EOF start the lame duck.
func (s *server) readStop() {
	var buf [64]byte
	n, err := unix.Read(s.stop, buf[:])
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return
	}
	if n <= 0 {
		_ = unix.EpollCtl(s.ep, unix.EPOLL_CTL_DEL, s.stop, nil)
		s.startLameDuck()
		return
	}
	for _, b := range buf[:n] {
		if sig := unix.Signal(b); sig == unix.SIGTERM || sig == unix.SIGINT {
			s.startLameDuck()
		}
	}
}

func (s *server) startLameDuck() {
	if s.lame {
		return
	}
	s.lame = true
	if s.cfg.LameDuck > 0 {
		s.lameBy = time.Now().Add(s.cfg.LameDuck)
	}
	for _, c := range s.conns {
		s.rewatch(c)
	}
}

// updateListener watches the listening socket only while a client may
// be accepted: not in lame duck, below MaxConn, not pausing after EMFILE.
func (s *server) updateListener(now time.Time) {
	want := !s.lame && len(s.conns) < s.maxConn && (s.retryAt.IsZero() || !now.Before(s.retryAt))
	if want == s.listening {
		return
	}
	var err error
	if want {
		err = unix.EpollCtl(s.ep, unix.EPOLL_CTL_ADD, s.listen, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.listen)})
	} else {
		err = unix.EpollCtl(s.ep, unix.EPOLL_CTL_DEL, s.listen, nil)
	}
	if err != nil {
		s.fatal = fmt.Errorf("unable to watch the listening socket: %w", err)
		return
	}
	s.listening = want
}

// accept takes waiting clients up to MaxConn. A peer no rule admits is
// closed at once.
func (s *server) accept() {
	for len(s.conns) < s.maxConn && s.listening {
		fd, _, err := unix.Accept4(s.listen, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
			continue
		case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
			s.retryAt = time.Now().Add(acceptPause)
			s.updateListener(time.Now())
			return
		case err != nil:
			s.fatal = fmt.Errorf("unable to accept: %w", err)
			return
		}
		cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			unix.Close(fd)
			continue
		}
		var a Access
		var ok bool
		if s.cfg.RulesDir != "" || s.cfg.RulesCDB != "" {
			var err error
			if s.cfg.RulesDir != "" {
				a, ok, err = DirAccess(s.cfg.RulesDir, cred.Uid, cred.Gid, s.euid, os.Getegid())
			} else {
				a, ok, err = CDBAccess(s.cfg.RulesCDB, cred.Uid, cred.Gid, s.euid, os.Getegid())
			}
			if err != nil && s.cfg.Warn != nil {
				s.cfg.Warn(fmt.Errorf("error while checking rules: %w", err))
			}
		} else {
			a, ok = Decide(s.cfg.Rules, cred.Uid, cred.Gid, s.euid)
		}
		if !ok {
			unix.Close(fd)
			continue
		}
		c := &conn{s: fd, uid: cred.Uid, gid: cred.Gid, access: a, r: newReader(maxRequest), fresh: true}
		if err := unix.EpollCtl(s.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
			unix.Close(fd)
			s.fatal = fmt.Errorf("unable to watch a client: %w", err)
			return
		}
		c.events = unix.EPOLLIN | unix.EPOLLRDHUP
		s.conns[fd] = c
		s.touch(c, time.Now())
	}
}

// touch sets c's idle deadline after progress: armed while c is new,
// has part of a request, owes an answer or is mid-setdump.
func (s *server) touch(c *conn, now time.Time) {
	if s.cfg.Timeout <= 0 {
		return
	}
	if c.fresh || c.r.pending() || len(c.out) > 0 || c.dumping > 0 {
		c.deadline = now.Add(s.cfg.Timeout)
	} else {
		c.deadline = time.Time{}
	}
}

func (s *server) rewatch(c *conn) {
	if c.closed {
		return
	}
	var ev uint32
	if !s.lame && c.outBytes <= maxQueued {
		ev = unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if len(c.out) > 0 {
		ev |= unix.EPOLLOUT
	}
	if ev == c.events {
		return
	}
	if err := unix.EpollCtl(s.ep, unix.EPOLL_CTL_MOD, c.s, &unix.EpollEvent{Events: ev, Fd: int32(c.s)}); err != nil {
		s.drop(c)
		return
	}
	c.events = ev
}

func (s *server) connEvent(c *conn, ev uint32) {
	progress := false
	if len(c.out) > 0 && ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		progress = s.flush(c)
		if c.closed {
			return
		}
		if c.outBytes <= maxQueued {
			s.frames(c) // requests read while paused
		}
	}
	if !s.lame && c.outBytes <= maxQueued && ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		for i := 0; i < 16 && !c.closed && c.outBytes <= maxQueued; i++ {
			err := c.r.fill(c.s)
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				s.drop(c)
				return
			}
			progress = true
			s.frames(c)
		}
		if c.closed {
			return
		}
		if s.flush(c) {
			progress = true
		}
	} else if s.lame && len(c.out) == 0 && ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		s.drop(c)
	}
	if c.closed {
		return
	}
	if progress {
		s.touch(c, time.Now())
	}
	s.rewatch(c)
}

// frames handles every whole request buffered for c.
func (s *server) frames(c *conn) {
	for !c.closed && c.outBytes <= maxQueued {
		p, fds, ok, err := c.r.next()
		if err != nil {
			s.drop(c)
			return
		}
		if !ok {
			return
		}
		r, err := ParseRequest(p, len(fds))
		if err != nil {
			fd.CloseAll(fds)
			s.drop(c)
			return
		}
		if !s.request(c, r, fds) {
			fd.CloseAll(fds)
			s.drop(c)
			return
		}
		c.fresh = false
	}
}

// answer queues a one-byte errno answer.
func (s *server) answer(c *conn, e syscall.Errno) {
	s.queue(c, []byte{byte(e)}, nil)
}

func (s *server) queue(c *conn, payload []byte, hs []*held) {
	data := append(AppendHeader(make([]byte, 0, HeaderSize+len(payload)), len(payload), len(hs)), payload...)
	for _, h := range hs {
		h.refs++
	}
	c.out = append(c.out, &outMsg{data: data, held: hs})
	c.outBytes += len(data)
}

// request acts on one request, whose fds it takes (closing those it does
// not keep). false: a protocol error; the caller closes fds and c.
func (s *server) request(c *conn, r Request, fds []int) bool {
	if c.dumping > 0 && r.Op != OpSetDumpData {
		return false // s6-fdholderd: any other request during a setdump
	}
	switch r.Op {
	case OpStore:
		e := syscall.Errno(0)
		switch {
		case !c.access.may(RightStore, r.ID):
			e = unix.EPERM
		case len(s.byID) >= s.maxFDs:
			e = unix.ENFILE
		case s.byID[r.ID] != nil:
			e = unix.EBUSY
		}
		if e != 0 {
			fd.CloseAll(fds)
		} else {
			s.add(fds[0], r.ID, r.Limit)
		}
		s.answer(c, e)
	case OpDelete:
		h := s.byID[r.ID]
		switch {
		case !c.access.may(RightStore, r.ID):
			s.answer(c, unix.EPERM)
		case h == nil:
			s.answer(c, unix.ENOENT)
		default:
			s.remove(h)
			s.answer(c, 0)
		}
	case OpRetrieve:
		h := s.byID[r.ID]
		switch {
		case !c.access.may(RightRetrieve, r.ID), r.Delete && !c.access.may(RightStore, r.ID):
			s.answer(c, unix.EPERM)
		case h == nil:
			s.answer(c, unix.ENOENT)
		default:
			s.queue(c, []byte{0}, []*held{h})
			if r.Delete {
				s.remove(h)
			}
		}
	case OpList:
		if !c.access.may(RightList, "") {
			s.answer(c, unix.EPERM)
			break
		}
		hs := s.sorted()
		p := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(hs)))
		for _, h := range hs {
			p = append(append(p, h.id...), 0)
		}
		s.queue(c, p, nil)
	case OpGetDump:
		if !c.access.may(RightGetDump, "") {
			s.answer(c, unix.EPERM)
			break
		}
		hs := s.sorted()
		p := binary.BigEndian.AppendUint32([]byte{0}, DumpMessages(uint32(len(hs))))
		s.queue(c, binary.BigEndian.AppendUint32(p, uint32(len(hs))), nil)
		for len(hs) > 0 {
			batch := hs[:min(len(hs), MaxFDsPerMessage)]
			hs = hs[len(batch):]
			var p []byte
			for _, h := range batch {
				p = AppendDumpEntry(p, h.limit, h.id)
			}
			s.queue(c, p, batch)
		}
	case OpSetDump:
		switch {
		case !c.access.may(RightSetDump, ""):
			s.answer(c, unix.EPERM)
		case uint64(r.N)+uint64(len(s.byID)) > uint64(s.maxFDs):
			s.answer(c, unix.ENFILE)
		default:
			c.dumping = r.N
			s.queue(c, binary.BigEndian.AppendUint32([]byte{0}, DumpMessages(r.N)), nil)
		}
	case OpSetDumpData:
		if uint32(len(fds)) > c.dumping {
			return false
		}
		switch {
		case !c.access.may(RightSetDump, ""):
			fd.CloseAll(fds)
			s.answer(c, unix.EPERM)
		case len(s.byID)+len(fds) > s.maxFDs:
			fd.CloseAll(fds)
			s.answer(c, unix.ENFILE)
		default:
			for i, e := range r.Entries {
				if old := s.byID[e.ID]; old != nil {
					s.remove(old)
				}
				s.add(fds[i], e.ID, e.Limit)
			}
			c.dumping -= uint32(len(fds))
			if c.dumping > 0 {
				s.answer(c, unix.EAGAIN)
			} else {
				s.answer(c, 0)
			}
		}
	}
	return true
}

// sorted returns the held fds in id byte order.
func (s *server) sorted() []*held {
	hs := make([]*held, 0, len(s.byID))
	for _, h := range s.byID {
		hs = append(hs, h)
	}
	slices.SortFunc(hs, func(a, b *held) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	return hs
}

// add stores fd; a limit equal to another held fd's is moved 1 ns later,
// as s6-fdholderd does, so that limits stay distinct.
func (s *server) add(fd int, id string, limit tai.Stamp) {
	for s.byLimit[limit] != nil {
		limit = addNano(limit)
	}
	h := &held{fd: fd, id: id, limit: limit}
	s.byID[id] = h
	s.byLimit[limit] = h
	heap.Push(&s.expiry, h)
}

// remove takes h out of the store and closes its fd unless an answer
// still has to send it.
func (s *server) remove(h *held) {
	if h.gone {
		return
	}
	delete(s.byID, h.id)
	delete(s.byLimit, h.limit)
	heap.Remove(&s.expiry, h.index)
	h.gone = true
	if h.refs == 0 {
		unix.Close(h.fd)
	}
}

func (s *server) release(h *held) {
	h.refs--
	if h.gone && h.refs == 0 {
		unix.Close(h.fd)
	}
}

// flush writes what c is owed without blocking; true if bytes went out.
// A write error drops c.
func (s *server) flush(c *conn) bool {
	progress := false
	for len(c.out) > 0 && !c.closed {
		m := c.out[0]
		var fds []int
		if !m.fdsSent {
			for _, h := range m.held {
				fds = append(fds, h.fd)
			}
		}
		n, err := sendFrame(c.s, m.data, fds)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			s.drop(c)
			return progress
		}
		progress = true
		if !m.fdsSent {
			m.fdsSent = true
			for _, h := range m.held {
				s.release(h)
			}
		}
		m.data = m.data[n:]
		c.outBytes -= n
		if len(m.data) == 0 {
			c.out[0] = nil
			c.out = c.out[1:]
		}
	}
	if len(c.out) == 0 {
		c.out = nil
	}
	return progress
}

// drop closes c; the fds its unsent answers referred to are released.
func (s *server) drop(c *conn) {
	if c.closed {
		return
	}
	c.closed = true
	for _, m := range c.out {
		if !m.fdsSent {
			for _, h := range m.held {
				s.release(h)
			}
		}
	}
	c.out = nil
	c.r.close()
	_ = unix.EpollCtl(s.ep, unix.EPOLL_CTL_DEL, c.s, nil)
	unix.Close(c.s)
	delete(s.conns, c.s)
}

// shutdown computes the exit status, then closes clients and held fds.
func (s *server) shutdown() int {
	status := 0
	if len(s.byID) > 0 {
		status |= 1
	}
	if len(s.conns) > 0 {
		status |= 2
	}
	for _, c := range s.conns {
		s.drop(c)
	}
	for _, h := range s.sorted() {
		s.remove(h)
	}
	if s.listening {
		_ = unix.EpollCtl(s.ep, unix.EPOLL_CTL_DEL, s.listen, nil)
		s.listening = false
	}
	return status
}
