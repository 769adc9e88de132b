//go:build linux

package shm

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// PodmanSegment is a podman lock segment (libpod/lock/shm, v5) decoded
// read-only by [InspectPodman].
type PodmanSegment struct {
	Path       string
	Layout     string // "x86_64-glibc" or "aarch64-glibc"
	NumBitmaps uint32
	NumLocks   uint32
	Locks      []PodmanLock // every index, in order
}

// PodmanLock is one of a podman segment's locks: its allocation bit and its
// pthread mutex's futex word.
type PodmanLock struct {
	Index     uint32
	Allocated bool
	TID       int    // the owning thread (futex word bits 0-29), 0 if unlocked
	Waiters   bool   // FUTEX_WAITERS
	OwnerDied bool   // FUTEX_OWNER_DIED
	Comm      string // /proc/TID/comm of a live owner
}

// podmanLayout is where podman's shm_struct_t puts things for one ABI:
// magic (u16) at 0, the segment's pthread_mutex_t, num_bitmaps and
// num_locks (u32 each), then groups of a u32 bitmap (padded to 8) and 32
// mutexes (shm_lock.h).
type podmanLayout struct {
	name      string
	mutex     int // sizeof(pthread_mutex_t)
	counts    int // offset of num_bitmaps; num_locks follows
	groups    int // offset of the first group
	groupSize int
}

var podmanLayouts = []podmanLayout{
	{"x86_64-glibc", 40, 48, 56, 8 + 32*40},
	{"aarch64-glibc", 48, 56, 64, 8 + 32*48},
}

const podmanMagic = 0x87D1

// InspectPodman decodes the podman lock segment called name ("/libpod_lock"
// is podman's default; [WithDir] applies), or at the file path name if it
// has more than one component ("/dev/shm/libpod_lock"), without writing to
// it. It checks
// the file size before reading and accepts a layout only if num_locks is
// 32 × num_bitmaps and the size matches exactly; anything else is EBADF.
// It shows, per lock, what the podman#29646 reporter had to dig out by
// hand: allocation, owner thread, waiters and OWNER_DIED.
func InspectPodman(name string, opts ...Option) (*PodmanSegment, error) {
	o := getOptions(opts)
	disp, path, err := resolve(name, &o)
	if strings.Contains(strings.TrimPrefix(name, "/"), "/") {
		disp, path, err = name, name, nil // a file path
	}
	fail := func(err error) (*PodmanSegment, error) {
		return nil, dirHint(newErr("inspect", disp, -1, errno(err)), &o, err)
	}
	if err != nil {
		return fail(err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size < 64 || st.Size > 1<<30 {
		return fail(unix.EBADF)
	}
	b := make([]byte, st.Size)
	if k, err := unix.Pread(fd, b, 0); err != nil {
		return fail(err)
	} else if k != len(b) {
		return fail(unix.EBADF)
	}
	seg, err := decodePodman(b)
	if err != nil {
		return fail(err)
	}
	seg.Path = path
	for i := range seg.Locks {
		if tid := seg.Locks[i].TID; tid != 0 {
			if c, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/comm"); err == nil {
				seg.Locks[i].Comm = strings.TrimSuffix(string(c), "\n")
			}
		}
	}
	return seg, nil
}

// decodePodman decodes a podman segment image; it reads nothing else
// (InspectPodman adds the owners' comm).
func decodePodman(b []byte) (*PodmanSegment, error) {
	le := binary.LittleEndian
	// The magic's u16 neighbour is padding, always 0.
	if len(b) < 64 || le.Uint16(b) != podmanMagic || le.Uint16(b[2:]) != 0 {
		return nil, unix.EBADF
	}
	for _, l := range podmanLayouts {
		nb, nl := le.Uint32(b[l.counts:]), le.Uint32(b[l.counts+4:])
		if nb == 0 || uint64(nl) != 32*uint64(nb) || uint64(len(b)) != uint64(l.groups)+uint64(nb)*uint64(l.groupSize) {
			continue
		}
		seg := &PodmanSegment{Layout: l.name, NumBitmaps: nb, NumLocks: nl, Locks: make([]PodmanLock, nl)}
		for i := uint32(0); i < nl; i++ {
			g := l.groups + int(i/32)*l.groupSize
			bitmap := le.Uint32(b[g:])
			f := le.Uint32(b[g+8+int(i%32)*l.mutex:]) // __lock is the mutex's first int
			seg.Locks[i] = PodmanLock{Index: i, Allocated: bitmap&(1<<(i%32)) != 0, TID: int(f & futexPIDMask),
				Waiters: f&futexWaiters != 0, OwnerDied: f&futexOwnerDied != 0}
		}
		return seg, nil
	}
	return nil, unix.EBADF
}
