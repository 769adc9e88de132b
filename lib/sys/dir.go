package sys

import (
	"bytes"
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// DirReader lists directories with raw getdents(2) into a buffer kept
// across calls. os.File would register each directory with the runtime's
// netpoller (fcntl calls and a failing epoll_ctl) and allocate at every
// listing, which a logger rotating or a scanner rescanning pays each time.
// The zero value is ready to use; it is not safe for concurrent use.
type DirReader struct {
	// Size is the size of the getdents buffer, made at the first
	// listing: 8192 bytes if 0. Entries of the longest names (255 bytes)
	// need at least 280.
	Size  int
	buf   []byte
	names []string
}

// buffer returns the getdents buffer, made at the first call.
func (r *DirReader) buffer() []byte {
	if r.buf == nil {
		size := r.Size
		if size == 0 {
			size = 8192
		}
		r.buf = make([]byte, size)
	}
	return r.buf
}

// Names returns the entries of dir but "." and "..". The slice is the
// reader's, reused by the next call.
func (r *DirReader) Names(dir string) ([]string, error) {
	fd, err := Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := r.buffer()
	names := r.names[:0]
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, wrap("getdents", err)
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	r.names = names
	return names, nil
}

// Each calls fn with the name of every entry of the directory open at fd
// but "." and "..", reading from fd's current offset. name is in the
// reader's buffer, followed by a NUL, so &name[0] is a path relative to
// fd for the *at wrappers ([Openat], [Unlinkat]); fn must not keep it.
// Unlike [DirReader.Names] it allocates nothing once the buffer exists.
func (r *DirReader) Each(fd int, fn func(name []byte)) error {
	buf := r.buffer()
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return wrap("getdents", err)
		}
		if n <= 0 {
			return nil
		}
		eachDirent(buf[:n], fn)
	}
}

// eachDirent calls fn with the name of every entry in b, getdents(2)'s
// array of struct linux_dirent64 (d_ino u64, d_off s64, d_reclen u16,
// d_type u8, then d_name, NUL-terminated and padded to d_reclen), but "."
// and ".."; a record that does not fit ends the array, and a name without
// its NUL is skipped.
func eachDirent(b []byte, fn func(name []byte)) {
	for len(b) > direntName {
		reclen := int(binary.NativeEndian.Uint16(b[16:]))
		if reclen <= direntName || reclen > len(b) {
			return
		}
		name := b[direntName:reclen]
		b = b[reclen:]
		i := bytes.IndexByte(name, 0)
		if i < 0 {
			continue // not terminated: no C string to hand out
		}
		name = name[:i]
		if string(name) != "." && string(name) != ".." {
			fn(name)
		}
	}
}

// direntName is the offset of d_name in struct linux_dirent64.
const direntName = 19
