//go:build linux

package fdrestore

// The kernel interfaces dump needs that x/sys does not wrap: kcmp(2) and
// the AF_UNIX part of sock_diag(7).

import (
	"encoding/binary"
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kcmp(2) types (include/uapi/linux/kcmp.h); x/sys defines none of them.
const (
	kcmpFile     = 0 // KCMP_FILE: same open file description?
	kcmpEpollTFD = 7 // KCMP_EPOLL_TFD: a file against an epoll's target (Linux >= 4.13)
)

// kcmpEpollSlot is struct kcmp_epoll_slot: the epoll fd, the target's fd
// number at EPOLL_CTL_ADD time, and which of the items under that number.
type kcmpEpollSlot struct {
	Efd  uint32
	Tfd  uint32
	Toff uint32
}

// kcmp wraps kcmp(2): 0 equal, 1 less, 2 greater (the kernel orders the
// obfuscated pointers), 3 not equal but unordered.
func kcmp(pid1, pid2, typ int, idx1, idx2 uintptr) (int, error) {
	r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(pid1), uintptr(pid2), uintptr(typ), idx1, idx2, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// sock_diag for AF_UNIX (include/uapi/linux/unix_diag.h).
const (
	udiagShowName  = 0x01
	udiagShowPeer  = 0x04
	udiagShowIcons = 0x08
	udiagShowRQLen = 0x10

	unixDiagName  = 0
	unixDiagPeer  = 2
	unixDiagIcons = 3
	unixDiagRQLen = 4

	tcpEstablished = 1  // udiag_state of a connected socket (TCP_ESTABLISHED)
	tcpListen      = 10 // udiag_state of a listening socket (TCP_LISTEN)
)

// unixDiag is what sock_diag tells of one AF_UNIX socket.
type unixDiag struct {
	Type   int
	State  int
	Name   string   // bound address; "@..." for an abstract one
	Peer   uint64   // the peer's inode; 0 if none
	Icons  []uint64 // listener: the inodes of the clients whose connections wait in its queue
	RQueue uint32   // listener: connections queued; else bytes queued
	WQueue uint32   // listener: backlog; else bytes sent not yet read
}

// dumpUnixSockets returns every AF_UNIX socket of the caller's network
// namespace by inode, from one NETLINK_SOCK_DIAG dump.
func dumpUnixSockets() (map[uint64]*unixDiag, error) {
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, err
	}
	defer unix.Close(s)
	// nlmsghdr (16 bytes) and unix_diag_req (24 bytes).
	req := make([]byte, 16+24)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], 1)
	req[16] = unix.AF_UNIX
	ne.PutUint32(req[20:], ^uint32(0)) // every state
	ne.PutUint32(req[28:], udiagShowName|udiagShowPeer|udiagShowIcons|udiagShowRQLen)
	ne.PutUint32(req[32:], ^uint32(0)) // udiag_cookie: no cookie
	ne.PutUint32(req[36:], ^uint32(0))
	if err := unix.Sendto(s, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	out := map[uint64]*unixDiag{}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(s, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// nlmsghdr: len u32, type u16, flags u16, seq u32, pid u32;
		// messages aligned to 4 bytes.
		for b := buf[:n]; len(b) >= 16; {
			l, typ := int(ne.Uint32(b)), ne.Uint16(b[4:])
			if l < 16 || l > len(b) {
				return nil, errors.New("truncated netlink message")
			}
			data := b[16:l]
			b = b[min((l+3)&^3, len(b)):]
			switch typ {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(data) >= 4 {
					if e := int32(ne.Uint32(data)); e != 0 {
						return nil, unix.Errno(-e)
					}
				}
				return nil, errors.New("netlink error")
			case unix.SOCK_DIAG_BY_FAMILY:
				if ino, d, ok := parseUnixDiag(data); ok {
					out[ino] = d
				}
			}
		}
	}
}

// parseUnixDiag reads a unix_diag_msg (16 bytes) and its attributes.
func parseUnixDiag(b []byte) (uint64, *unixDiag, bool) {
	if len(b) < 16 {
		return 0, nil, false
	}
	ne := binary.NativeEndian
	d := &unixDiag{Type: int(b[1]), State: int(b[2])}
	ino := uint64(ne.Uint32(b[4:]))
	for a := b[16:]; len(a) >= 4; {
		l, typ := int(ne.Uint16(a)), ne.Uint16(a[2:])
		if l < 4 || l > len(a) {
			break
		}
		v := a[4:l]
		switch typ {
		case unixDiagName:
			if len(v) > 0 && v[0] == 0 {
				d.Name = "@" + string(v[1:])
			} else {
				d.Name = string(v)
				if i := indexNUL(v); i >= 0 {
					d.Name = string(v[:i])
				}
			}
		case unixDiagPeer:
			if len(v) >= 4 {
				d.Peer = uint64(ne.Uint32(v))
			}
		case unixDiagIcons:
			for i := 0; i+4 <= len(v); i += 4 {
				d.Icons = append(d.Icons, uint64(ne.Uint32(v[i:])))
			}
		case unixDiagRQLen:
			if len(v) >= 8 {
				d.RQueue, d.WQueue = ne.Uint32(v), ne.Uint32(v[4:])
			}
		}
		a = a[min((l+3)&^3, len(a)):]
	}
	return ino, d, true
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// epollTargetIs reports whether fd of pid is the file registered in epfd
// of epid under number tfd (the toff-th item of that number), by kcmp(2)
// KCMP_EPOLL_TFD.
func epollTargetIs(pid, fd, epid, epfd int, tfd, toff int) (bool, error) {
	slot := kcmpEpollSlot{Efd: uint32(epfd), Tfd: uint32(tfd), Toff: uint32(toff)}
	// The pointer is converted in the call expression itself, as
	// unsafe.Pointer rule 4 (syscall arguments) requires.
	r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(pid), uintptr(epid), kcmpEpollTFD,
		uintptr(fd), uintptr(unsafe.Pointer(&slot)), 0)
	if errno != 0 {
		return false, errno
	}
	return r == 0, nil
}
