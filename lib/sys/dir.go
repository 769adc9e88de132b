package sys

import "golang.org/x/sys/unix"

// DirReader lists directories with raw getdents(2) into a buffer kept
// across calls. os.File would register each directory with the runtime's
// netpoller (fcntl calls and a failing epoll_ctl) and allocate at every
// listing, which a logger rotating or a scanner rescanning pays each time.
// The zero value is ready to use; it is not safe for concurrent use.
type DirReader struct {
	buf   []byte
	names []string
}

// Names returns the entries of dir but "." and "..". The slice is the
// reader's, reused by the next call.
func (r *DirReader) Names(dir string) ([]string, error) {
	fd, err := Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if r.buf == nil {
		r.buf = make([]byte, 8192)
	}
	names := r.names[:0]
	for {
		n, err := unix.Getdents(fd, r.buf)
		if err != nil {
			return nil, wrap("getdents", err)
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(r.buf[:n], -1, names)
	}
	r.names = names
	return names, nil
}
