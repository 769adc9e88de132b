//go:build linux

package shm

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultDir is where segments live unless [WithDir] names another tmpfs.
const DefaultDir = "/dev/shm"

type options struct {
	dir      string
	mode     uint32
	max      uint32
	anyOwner bool
}

// Option configures Create, Open and their variants.
type Option func(*options)

// WithDir places the segment in dir (any tmpfs) instead of /dev/shm.
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithMode sets the permission bits of a created segment (default 0600, the
// umask applies), e.g. 0660 to share it with a group.
func WithMode(mode fs.FileMode) Option { return func(o *options) { o.mode = uint32(mode.Perm()) } }

// WithMaxLocks sets the capacity a created segment can [Segment.Grow] to,
// rounded up to a multiple of [BitmapSize], at most 2^24. The default is
// max(count, 262144); address space is reserved for it, memory is not.
func WithMaxLocks(n uint32) Option { return func(o *options) { o.max = n } }

// WithAnyOwner lets Open and its variants use a segment that belongs to
// neither the caller's effective uid nor root. Without it such a segment is
// refused with EPERM ([Error.ForeignUID] names its owner): in a shared
// directory such as /dev/shm another user could create the name first and
// then hold, or forge, every lock in it. Read-only opens are never refused.
func WithAnyOwner() Option { return func(o *options) { o.anyOwner = true } }

func getOptions(opts []Option) options {
	o := options{dir: DefaultDir, mode: 0o600}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// resolve checks a podman-style name ("/name" or "name") and returns its
// display form "/name" and its path.
func resolve(name string, o *options) (disp, path string, err error) {
	base := strings.TrimPrefix(name, "/")
	disp = "/" + base
	if base == "" || base == "." || base == ".." || len(base) > maxNameLen ||
		strings.ContainsRune(base, '/') || strings.ContainsRune(base, 0) {
		return disp, "", unix.EINVAL
	}
	return disp, filepath.Join(o.dir, base), nil
}

// mapping is one process-wide mapping of a segment file, shared (reference
// counted) by every handle on the same device and inode.
type mapping struct {
	key      [2]uint64 // st_dev, st_ino
	refs     int       // under regMu
	fd       int
	mem      []byte         // the whole reservation
	base     unsafe.Pointer // &mem[0]; slot addresses never change
	ro       bool
	foreign  bool // another PID namespace: liveness is unknown
	hdr      header
	path     string
	growMu   sync.Mutex
	mapped   atomic.Uint32 // slots mapped in this process
	reserved uint64        // bytes reserved
	bus      int           // 1 + its index in busRanges, 0 if not watched
	hit      *uint32       // its busRanges hit word, or noHit
}

var (
	regMu    sync.Mutex
	registry map[[2]uint64]*mapping // made at the first mapping, not at init
)

// Segment is a handle on a lock segment. It is safe for concurrent use.
type Segment struct {
	m      *mapping
	name   string // "/name"
	closed atomic.Bool
	// for the fast paths, which read nothing else: the mapping's slot 0,
	// and the count this handle has seen mapped, 0 for a read-only or
	// closed handle
	slots unsafe.Pointer
	seen  atomic.Uint32
}

// handle returns a new handle on m.
func handle(m *mapping, disp string) *Segment {
	s := &Segment{m: m, name: disp, slots: m.slotPtr(0)}
	if !m.ro {
		s.seen.Store(m.mapped.Load())
	}
	return s
}

func (s *Segment) err(op string, i int, e error) error { return newErr(op, s.name, i, e) }

// dirHint explains an ENOENT caused by a missing directory.
func dirHint(e *Error, o *options, err error) *Error {
	if errors.Is(err, unix.ENOENT) {
		if _, serr := os.Stat(o.dir); serr != nil {
			e.hint = "directory " + o.dir + " does not exist: choose a tmpfs with WithDir or --dir"
		}
	}
	return e
}

// Create makes a new segment of n locks (rounded up to a multiple of
// [BitmapSize]; n = 0 or n > 2^24 is EINVAL) and opens it. The file is
// built unnamed (O_TMPFILE: zeroed, every lock free and unallocated, then
// the header) and only then published with linkat(2), so a segment is never
// visible half-made, a crash leaves no file, and of concurrent creators
// exactly one wins; the others get EEXIST. podman: CreateSHMLock.
func Create(name string, n uint32, opts ...Option) (*Segment, error) {
	o := getOptions(opts)
	disp, path, err := resolve(name, &o)
	if err != nil {
		return nil, newErr("create", disp, -1, err)
	}
	if n == 0 || n > maxCount {
		return nil, newErr("create", disp, -1, unix.EINVAL)
	}
	count := uint32(roundup(uint64(n), BitmapSize))
	max := uint32(roundup(uint64(o.max), BitmapSize))
	if o.max == 0 {
		max = uint32(defaultMax)
		if count > max {
			max = count
		}
	}
	if max < count || max > maxCount {
		return nil, newErr("create", disp, -1, unix.EINVAL)
	}
	h := header{version: formatVersion, maxLocks: max, initLocks: count, numLocks: count,
		created: time.Now().UnixNano(), creatorPID: uint32(os.Getpid())}
	h.bitmapOff, h.slotsOff = layout(max)
	ns := pidNS()
	h.nsIno, h.nsDev = ns[0], ns[1]
	fd, err := createFile(&o, path, &h)
	if err != nil {
		return nil, dirHint(newErr("create", disp, -1, errno(err)), &o, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, newErr("create", disp, -1, errno(err))
	}
	m, err := newMapping(fd, path, h, false, false, &st)
	if err != nil {
		unix.Close(fd)
		return nil, newErr("create", disp, -1, errno(err))
	}
	return handle(m, disp), nil
}

// forceNamedTemp makes createFile skip O_TMPFILE (tests of the fallback).
var forceNamedTemp = false

// createFile builds the segment file for h and publishes it at path.
func createFile(o *options, path string, h *header) (int, error) {
	fill := func(fd int) error {
		if err := unix.Ftruncate(fd, int64(h.size())); err != nil {
			return err
		}
		_, err := unix.Pwrite(fd, h.encode(), 0)
		return err
	}
	if !forceNamedTemp {
		fd, err := unix.Open(o.dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, o.mode)
		switch {
		case err == nil:
			if err = fill(fd); err == nil {
				err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd),
					unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
				if err == nil {
					return reopen(fd, path), nil
				}
			}
			unix.Close(fd)
			if !errors.Is(err, unix.ENOENT) || fileExists("/proc/self/fd") {
				return -1, err
			}
			// no /proc: use a named temporary file
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EISDIR), errors.Is(err, unix.EINVAL):
			// no O_TMPFILE on this file system or kernel
		default:
			return -1, err
		}
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+strconv.Itoa(os.Getpid())+".new")
	fd, err := unix.Open(tmp, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, o.mode)
	if err != nil {
		return -1, err
	}
	if err = fill(fd); err == nil {
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			err = unix.Link(tmp, path)
		}
	}
	unix.Unlink(tmp) // after a rename it is gone already
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// reopen returns an fd on path if it is still the file of fd (closing fd),
// else fd: the file of an O_TMPFILE fd keeps its anonymous name in
// /proc/PID/maps and /proc/PID/fd, which makes lsof and friends useless.
func reopen(fd int, path string) int {
	nfd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fd
	}
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Fstat(nfd, &b) != nil || a.Dev != b.Dev || a.Ino != b.Ino {
		unix.Close(nfd)
		return fd
	}
	unix.Close(fd)
	return nfd
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// newMapping reserves address space for the segment's capacity
// (PROT_NONE, MAP_NORESERVE) and maps the file over its start, so slot
// addresses never change when the segment grows (the robust list holds
// them). A read-write mapping also reserves shadowBelow bytes below the
// segment, whose first part, private memory, holds the slots' robust-list
// nodes (pages are used only for slots this process locks); it is
// registered for sharing.
func newMapping(fd int, path string, h header, ro, foreign bool, st *unix.Stat_t) (*mapping, error) {
	m := &mapping{key: [2]uint64{st.Dev, st.Ino}, refs: 1, fd: fd, ro: ro, foreign: foreign, hdr: h, path: path}
	m.reserved = roundup(h.slotsOff+uint64(h.maxLocks)*slotSize, pageSize)
	var below uint64
	if !ro {
		setup()
		below = shadowBelow
	}
	mem, err := unix.Mmap(-1, 0, int(below+m.reserved), unix.PROT_NONE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, err
	}
	if !ro {
		if err := unix.Mprotect(mem[:shadowLen(m.reserved)], unix.PROT_READ|unix.PROT_WRITE); err != nil {
			unix.Munmap(mem)
			return nil, err
		}
	}
	m.mem = mem
	m.base = unsafe.Pointer(&mem[below])
	if _, err := unix.MmapPtr(fd, 0, m.base, uintptr(h.size()), m.prot(), unix.MAP_SHARED|unix.MAP_FIXED); err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	m.mapped.Store(h.numLocks)
	m.watchFaults()
	if !ro {
		regMu.Lock()
		if registry == nil {
			registry = map[[2]uint64]*mapping{}
		}
		registry[m.key] = m
		regMu.Unlock()
	}
	return m, nil
}

func (m *mapping) prot() int {
	if m.ro {
		return unix.PROT_READ
	}
	return unix.PROT_READ | unix.PROT_WRITE
}

func (m *mapping) numLocksPtr() *uint32 { return word32(m.base, offNumLocks) }

// slotPtr returns slot i's address; i must be below m.mapped.
func (m *mapping) slotPtr(i uint32) unsafe.Pointer {
	return unsafe.Add(m.base, uintptr(m.hdr.slotsOff)+uintptr(i)*slotSize)
}

// bitmapWord returns bitmap word w's address.
func (m *mapping) bitmapWord(w uint32) *uint64 {
	return word64(m.base, uintptr(m.hdr.bitmapOff)+uintptr(w)*8)
}

// refresh extends this process's mapping to the header's current count if
// another process grew the segment. It maps only what the file holds, so
// it cannot cause a SIGBUS.
func (m *mapping) refresh() error {
	n := atomic.LoadUint32(m.numLocksPtr())
	if n <= m.mapped.Load() {
		return nil
	}
	m.growMu.Lock()
	defer m.growMu.Unlock()
	old := m.mapped.Load()
	if n <= old {
		return nil
	}
	if n > m.hdr.maxLocks || n%BitmapSize != 0 {
		return unix.EBADF
	}
	want := m.hdr.slotsOff + uint64(n)*slotSize
	var st unix.Stat_t
	if err := unix.Fstat(m.fd, &st); err != nil {
		return err
	}
	if uint64(st.Size) < want {
		return unix.EBADF
	}
	from := m.hdr.slotsOff + uint64(old)*slotSize // page aligned: 64 slots are a page
	if _, err := unix.MmapPtr(m.fd, int64(from), unsafe.Add(m.base, uintptr(from)), uintptr(want-from),
		m.prot(), unix.MAP_SHARED|unix.MAP_FIXED); err != nil {
		return err
	}
	m.mapped.Store(n)
	return nil
}

// Open opens an existing segment of n locks: roundup(n, 64) must equal its
// count (else ERANGE, podman's behaviour; n = 0 is EINVAL). It checks the
// file's type, size and header before mapping anything, so a truncated or
// foreign file gives EBADF rather than SIGBUS; a segment created in another
// PID namespace gives EXDEV. podman: OpenSHMLock.
func Open(name string, n uint32, opts ...Option) (*Segment, error) {
	if n == 0 {
		disp, _, _ := resolve(name, &options{})
		return nil, newErr("open", disp, -1, unix.EINVAL)
	}
	return open(name, n, false, opts)
}

// OpenExisting opens an existing segment whatever its count.
func OpenExisting(name string, opts ...Option) (*Segment, error) {
	return open(name, 0, false, opts)
}

// OpenReadOnly opens an existing segment for inspection (Status, Owner,
// Info, FreeLocks, TakenLocks) from any PID namespace; every method that
// writes returns EBADF. Owners in another PID namespace show as [Unknown].
// A read-only handle has a mapping of its own.
func OpenReadOnly(name string, opts ...Option) (*Segment, error) {
	return open(name, 0, true, opts)
}

// CreateOrOpen creates the segment, or opens it (checking the count) if it
// exists; created reports which. Of concurrent callers exactly one creates.
func CreateOrOpen(name string, n uint32, opts ...Option) (s *Segment, created bool, err error) {
	for {
		s, err = Create(name, n, opts...)
		if err == nil || !errors.Is(err, unix.EEXIST) {
			return s, err == nil, err
		}
		s, err = Open(name, n, opts...)
		if err == nil || !errors.Is(err, unix.ENOENT) {
			return s, false, err
		}
		// unlinked in between: try again
	}
}

func open(name string, n uint32, ro bool, opts []Option) (*Segment, error) {
	o := getOptions(opts)
	disp, path, err := resolve(name, &o)
	if err != nil {
		return nil, newErr("open", disp, -1, err)
	}
	m, err := openMapping(path, n, ro, o.anyOwner)
	if fo, ok := err.(foreignOwner); ok {
		e := newErr("open", disp, -1, unix.EPERM)
		e.ForeignUID = int(fo)
		e.hint = "owned by uid " + strconv.Itoa(int(fo)) + ", neither this user nor root"
		return nil, e
	}
	if err != nil {
		return nil, dirHint(newErr("open", disp, -1, errno(err)), &o, err)
	}
	return handle(m, disp), nil
}

// foreignOwner is openMapping's refusal of a segment owned by another uid
// (not root).
type foreignOwner uint32

func (f foreignOwner) Error() string { return "owned by uid " + strconv.Itoa(int(f)) }

func openMapping(path string, n uint32, ro, anyOwner bool) (*mapping, error) {
	flags := unix.O_RDWR | unix.O_CLOEXEC | unix.O_NOFOLLOW
	if ro {
		flags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW
	}
	fd, err := unix.Open(path, flags, 0)
	if errors.Is(err, unix.EISDIR) {
		return nil, unix.EBADF // not a regular file
	}
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	h, foreign, err := checkFile(fd, n, ro, &st)
	if err == nil && !ro && !anyOwner && st.Uid != 0 && int(st.Uid) != unix.Geteuid() {
		err = foreignOwner(st.Uid)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if !ro {
		regMu.Lock()
		if m := registry[[2]uint64{st.Dev, st.Ino}]; m != nil {
			m.refs++
			regMu.Unlock()
			unix.Close(fd)
			return m, m.refresh()
		}
		regMu.Unlock()
	}
	m, err := newMapping(fd, path, h, ro, foreign, &st)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return m, nil
}

// checkFile runs Open's checks 2 to 5 on fd; st receives its fstat.
func checkFile(fd int, n uint32, ro bool, st *unix.Stat_t) (h header, foreign bool, err error) {
	if err := unix.Fstat(fd, st); err != nil {
		return h, false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size < headerSize {
		return h, false, unix.EBADF
	}
	b := make([]byte, headerSize)
	if k, err := unix.Pread(fd, b, 0); err != nil {
		return h, false, err
	} else if k < headerSize {
		return h, false, unix.EBADF
	}
	if h, err = parseHeader(b, st.Size); err != nil {
		return h, false, err
	}
	if ns := pidNS(); h.nsIno != 0 && ns[0] != 0 && (h.nsIno != ns[0] || h.nsDev != ns[1]) {
		if !ro {
			return h, true, unix.EXDEV
		}
		foreign = true
	}
	if n != 0 && uint64(h.numLocks) != roundup(uint64(n), BitmapSize) {
		return h, foreign, unix.ERANGE
	}
	return h, foreign, nil
}

// Unlink removes the segment's name (missing: ENOENT). Existing mappings
// stay valid.
func Unlink(name string, opts ...Option) error {
	o := getOptions(opts)
	disp, path, err := resolve(name, &o)
	if err == nil {
		err = unix.Unlink(path)
	}
	if err != nil {
		return dirHint(newErr("unlink", disp, -1, errno(err)), &o, err)
	}
	return nil
}

// Close drops the handle. The process's last handle on the segment refuses
// with EBUSY while the process holds one of its locks (its robust list
// points into the mapping), and the handle stays usable; otherwise it
// unmaps the segment and closes its fd. After Close every method returns
// EINVAL, a second Close too (as podman). Close never unlinks.
func (s *Segment) Close() error {
	m := s.m
	if m.ro {
		if s.closed.Swap(true) {
			return s.err("close", -1, unix.EINVAL)
		}
		return m.unmap()
	}
	regMu.Lock()
	defer regMu.Unlock()
	if s.closed.Load() {
		return s.err("close", -1, unix.EINVAL)
	}
	if m.refs == 1 {
		if m.release() {
			return s.err("close", -1, unix.EBUSY)
		}
		if registry[m.key] == m {
			delete(registry, m.key)
		}
		s.seen.Store(0)
		s.closed.Store(true)
		m.refs = 0
		return m.unmap()
	}
	m.refs--
	s.seen.Store(0)
	s.closed.Store(true)
	return nil
}

// release prepares the process's last handle on the segment for unmapping:
// it reports whether this process holds one of its locks and, if not,
// removes the segment's robust-list nodes. With the robust list it reads
// only the nodes this process linked (slots it ever locked), never every
// slot.
func (m *mapping) release() (held bool) {
	if registered {
		lo := uintptr(unsafe.Pointer(&m.mem[0]))
		return unlinkRange(lo, lo+uintptr(shadowLen(m.reserved)))
	}
	selfInit()
	// a file truncated by someone else faults here: nothing can be held
	// in pages that are gone
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			held = false
		}
	}()
	n := m.mapped.Load()
	for i := uint32(0); i < n; i++ {
		f := atomic.LoadUint32(word32(m.slotPtr(i), slotWord))
		if f&futexPIDMask == self.id {
			return true
		}
	}
	return false
}

func (m *mapping) unmap() error {
	m.unwatchFaults()
	err := unix.Munmap(m.mem)
	if cerr := unix.Close(m.fd); err == nil {
		err = cerr
	}
	return err
}

// MaxLocks returns the segment's current lock count, from its header (after
// a Grow, the new one); podman's opener returned the count it asked for.
func (s *Segment) MaxLocks() uint32 {
	if s.closed.Load() {
		return 0
	}
	return atomic.LoadUint32(s.m.numLocksPtr())
}

// Grow raises the lock count to roundup(n, 64): below the current count is
// EINVAL, above the capacity EFBIG. It extends the file with fallocate(2)
// (which never shrinks it, so concurrent growers cannot undo each other),
// then raises the header's count by CAS. New locks are free and unallocated;
// held locks stay held. Other processes see the new locks when they use an
// index beyond their mapping.
func (s *Segment) Grow(n uint32) error {
	if err := s.check("grow", -1, true); err != nil {
		return err
	}
	if err := s.done("grow", -1, nil); err != nil {
		return err
	}
	m := s.m
	c := roundup(uint64(n), BitmapSize)
	cur := atomic.LoadUint32(m.numLocksPtr())
	if n == 0 || c < uint64(cur) {
		return s.err("grow", -1, unix.EINVAL)
	}
	if c > uint64(m.hdr.maxLocks) {
		return s.err("grow", -1, unix.EFBIG)
	}
	if err := unix.Fallocate(m.fd, 0, int64(m.hdr.slotsOff), int64(c*slotSize)); err != nil {
		return s.err("grow", -1, errno(err))
	}
	for {
		cur = atomic.LoadUint32(m.numLocksPtr())
		if uint64(cur) >= c || atomic.CompareAndSwapUint32(m.numLocksPtr(), cur, uint32(c)) {
			break
		}
	}
	if err := m.refresh(); err != nil {
		return s.err("grow", -1, errno(err))
	}
	return nil
}

// check returns EINVAL for a closed handle and, if write, EBADF for a
// read-only one; the callers then check for lost pages (done), which kept
// here would make check too big to inline.
func (s *Segment) check(op string, i int, write bool) error {
	if s.closed.Load() {
		return s.err(op, i, unix.EINVAL)
	}
	if write && s.m.ro {
		return s.err(op, i, unix.EBADF)
	}
	return nil
}

// done is err, or EBADF if the segment's pages were lost meanwhile (see
// watchFaults): what was read from them is not the segment's.
func (s *Segment) done(op string, i int, err error) error {
	if s.m.faulted() {
		return s.err(op, i, unix.EBADF)
	}
	return err
}

// slot checks handle and index and returns slot i's address.
func (s *Segment) slot(op string, i uint32, write bool) (unsafe.Pointer, error) {
	if err := s.check(op, int(i), write); err != nil {
		return nil, err
	}
	if err := s.done(op, int(i), nil); err != nil {
		return nil, err
	}
	m := s.m
	if i >= m.mapped.Load() {
		if err := m.refresh(); err != nil {
			return nil, s.err(op, int(i), errno(err))
		}
		if i >= m.mapped.Load() {
			return nil, s.err(op, int(i), unix.EINVAL)
		}
		if write && !m.ro {
			s.seen.Store(m.mapped.Load())
		}
	}
	return m.slotPtr(i), nil
}

// count refreshes the mapping and returns the number of mapped locks.
func (s *Segment) count(op string, write bool) (uint32, error) {
	if err := s.check(op, -1, write); err != nil {
		return 0, err
	}
	if err := s.done(op, -1, nil); err != nil {
		return 0, err
	}
	if err := s.m.refresh(); err != nil {
		return 0, s.err(op, -1, errno(err))
	}
	return s.m.mapped.Load(), nil
}
