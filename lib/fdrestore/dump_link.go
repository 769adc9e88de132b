//go:build linux

package fdrestore

// dump's sockets and its second pass: what relates files to each other
// (unix peers, epoll targets) and processes to files (ctty).

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// unixSockets returns the sock_diag records of the AF_UNIX sockets, read
// once per dump; nil if sock_diag is not available.
func (d *dumper) unixSockets() map[uint64]*unixDiag {
	if !d.unixDone {
		d.unixDone = true
		d.unix, d.unixErr = dumpUnixSockets()
	}
	return d.unix
}

// socket describes a socket from a copy of it (SO_DOMAIN, SO_TYPE,
// getsockname...) and, for AF_UNIX, sock_diag.
func (d *dumper) socket(g *dgroup) (*File, error) {
	e := g.first
	flags := flagWords(e.info.Flags, "rdwr")
	ino, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(e.link, "socket:["), "]"), 10, 64)
	cp, err := d.grab(e)
	if err != nil {
		if diag := d.unixSockets()[ino]; diag != nil {
			return d.unixFromDiag(g, ino, diag, flags, -1), nil
		}
		return &File{Type: TypeUnsupported, Link: e.link, Flags: flags,
			Reason: fmt.Sprintf("cannot inspect the socket: %v", err)}, nil
	}
	defer unix.Close(cp)
	domain, err1 := unix.GetsockoptInt(cp, unix.SOL_SOCKET, unix.SO_DOMAIN)
	typ, err2 := unix.GetsockoptInt(cp, unix.SOL_SOCKET, unix.SO_TYPE)
	if err1 != nil || err2 != nil {
		return &File{Type: TypeUnsupported, Link: e.link, Flags: flags, Reason: "cannot read the socket's domain and type"}, nil
	}
	switch domain {
	case unix.AF_UNIX:
		return d.unixFromDiag(g, ino, d.unixSockets()[ino], flags, cp), nil
	case unix.AF_INET, unix.AF_INET6:
		return inetFile(e, cp, domain, typ, flags), nil
	}
	names := map[int]string{unix.AF_NETLINK: "netlink", unix.AF_PACKET: "packet", unix.AF_VSOCK: "vsock"}
	name, ok := names[domain]
	if !ok {
		name = "address family " + strconv.Itoa(domain)
	}
	return &File{Type: TypeUnsupported, Link: e.link, Flags: flags, Reason: name + " sockets are not restorable"}, nil
}

var sockTypes = lazyMap[int, string]{build: func() map[int]string {
	return map[int]string{unix.SOCK_STREAM: "stream", unix.SOCK_DGRAM: "dgram", unix.SOCK_SEQPACKET: "seqpacket"}
}}

// unixFromDiag describes an AF_UNIX socket; diag may be nil (sock_diag
// unavailable, or the socket is in another network namespace), cp -1 (no
// copy).
func (d *dumper) unixFromDiag(g *dgroup, ino uint64, diag *unixDiag, flags []string, cp int) *File {
	f := &File{Type: TypeUnix, Flags: flags}
	g.sockIno, g.diag = ino, diag
	typ, listening := -1, false
	if cp >= 0 {
		typ, _ = unix.GetsockoptInt(cp, unix.SOL_SOCKET, unix.SO_TYPE)
		n, _ := unix.GetsockoptInt(cp, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		listening = n != 0
		if sa, err := unix.Getsockname(cp); err == nil {
			// An unbound socket's name is empty, which x/sys renders
			// as "@".
			if u, ok := sa.(*unix.SockaddrUnix); ok && u.Name != "@" {
				f.Path = u.Name
			}
		}
	}
	if diag != nil {
		if typ < 0 {
			typ = diag.Type
			f.Path = diag.Name
		}
		listening = listening || diag.State == tcpListen
	}
	f.SockType = sockTypes.get()[typ]
	if f.SockType == "" {
		return &File{Type: TypeUnsupported, Link: g.first.link, Flags: flags, Reason: fmt.Sprintf("unix socket of type %d", typ)}
	}
	switch {
	case listening:
		f.State = "listen"
		if diag != nil {
			f.Backlog, f.Pending = int(diag.WQueue), int64(diag.RQueue)
		} else {
			f.Missing = append(f.Missing, "backlog")
		}
	case diag != nil && (diag.Peer != 0 || diag.State == tcpEstablished):
		// A client whose connection still waits in a listener's queue
		// has a peer without an inode (0): linkSockets finds the
		// listener through its icons.
		f.State = "connected"
		f.Pending = int64(diag.RQueue)
	case diag == nil && cp >= 0 && hasPeer(cp):
		f.State = "connected"
		g.sockPeer = true
	case f.Path != "":
		f.State = "bound"
	default:
		f.State = "unbound"
	}
	if diag == nil && f.State != "listen" {
		f.Missing = append(f.Missing, "peer")
	}
	return f
}

func hasPeer(fd int) bool {
	_, err := unix.Getpeername(fd)
	return err == nil
}

// inetFile describes a TCP or UDP socket.
func inetFile(e *dfd, cp, domain, typ int, flags []string) *File {
	var f *File
	switch typ {
	case unix.SOCK_STREAM:
		f = &File{Type: TypeTCP}
	case unix.SOCK_DGRAM:
		f = &File{Type: TypeUDP}
	default:
		return &File{Type: TypeUnsupported, Link: e.link, Flags: flags, Reason: fmt.Sprintf("inet socket of type %d", typ)}
	}
	f.Flags = flags
	sa, err := unix.Getsockname(cp)
	if err != nil {
		return &File{Type: TypeUnsupported, Link: e.link, Flags: flags, Reason: fmt.Sprintf("getsockname: %v", err)}
	}
	f.Addr = sockaddrString(sa)
	if peer, err := unix.Getpeername(cp); err == nil {
		f.Peer = sockaddrString(peer)
	}
	listening, _ := unix.GetsockoptInt(cp, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	switch {
	case listening != 0 && f.Type == TypeTCP:
		f.State = "listen"
	case f.Peer != "":
		f.State = "established"
	default:
		f.State = "bound"
	}
	if domain == unix.AF_INET6 {
		if n, err := unix.GetsockoptInt(cp, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); err == nil {
			f.V6Only = n != 0
		}
	}
	if n, err := unix.GetsockoptInt(cp, unix.SOL_SOCKET, unix.SO_REUSEPORT); err == nil {
		f.ReusePort = n != 0
	}
	if f.State != "listen" {
		if n, err := unix.IoctlGetInt(cp, unix.SIOCINQ); err == nil {
			f.Pending = int64(n)
		}
	} else if ti, err := unix.GetsockoptTCPInfo(cp, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
		// For a listener the kernel reports the listen(2) backlog in
		// tcpi_sacked and the accept queue's length in tcpi_unacked
		// (tcp_get_info; sock_diag's idiag_wqueue/rqueue are the same).
		f.Backlog, f.Pending = int(ti.Sacked), int64(ti.Unacked)
	} else {
		f.Missing = append(f.Missing, "backlog")
	}
	return f
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return ""
}

// linkSockets links connected unix sockets: two peers both in the image
// become a socketpair (pair + end), a client queued on a listener of the
// image gets connect, the rest peer_external.
func (d *dumper) linkSockets() {
	byIno := map[uint64]*dgroup{}
	queued := map[uint64]*dgroup{} // client inode -> listener
	for _, g := range d.groups {
		if g.file.Type != TypeUnix || g.sockIno == 0 {
			continue
		}
		byIno[g.sockIno] = g
		if g.file.State == "listen" && g.diag != nil {
			for _, c := range g.diag.Icons {
				queued[c] = g
			}
		}
	}
	for _, g := range d.groups {
		f := g.file
		if f.Type != TypeUnix || f.State != "connected" || f.Pair != "" {
			continue
		}
		if g.diag == nil {
			if g.sockPeer {
				f.PeerExternal = true
			}
			continue
		}
		peer := byIno[g.diag.Peer]
		switch {
		case peer != nil && peer != g && peer.file.State == "connected" && peer.file.Pair == "" &&
			peer.diag != nil && peer.diag.Peer == g.sockIno && peer.file.SockType == f.SockType:
			d.pairs++
			name := "s" + strconv.Itoa(d.pairs)
			f.Pair, f.End = name, "0"
			peer.file.Pair, peer.file.End = name, "1"
		case queued[g.sockIno] != nil && queued[g.sockIno].file.SockType == f.SockType:
			f.Connect = queued[g.sockIno].id
		default:
			f.PeerExternal = true
		}
	}
	for _, g := range d.groups {
		f := g.file
		if f.Type == TypeUnix && f.PeerExternal && d.o.Live && f.Source == "" {
			f.Source = fmt.Sprintf("grab:%d:%d", g.first.p.pid, g.first.fd)
		}
	}
}

// resolveEpolls fills each epoll's targets from its fdinfo "tfd:" lines,
// finding the target file with kcmp KCMP_EPOLL_TFD among the image's
// descriptions of the same inode, those of the registering process first,
// so that a target that was dup'ed or closed since (escaped) is found too.
// A target no fd of the image holds is listed in missing as "targets".
func (d *dumper) resolveEpolls() {
	type key struct{ dev, ino uint64 }
	byInode := map[key][]*dgroup{}
	for _, g := range d.groups {
		if g.first.stErr == nil {
			k := key{g.first.st.Dev, g.first.st.Ino}
			byInode[k] = append(byInode[k], g)
		}
	}
	for _, g := range d.groups {
		if !g.epoll {
			continue
		}
		ep := g.first
		f := g.file
		seen := map[int]int{}
		for _, it := range ep.info.Epoll {
			toff := seen[it.TFD]
			seen[it.TFD]++
			cands := byInode[key{kernelDev(it.Sdev), it.Ino}]
			var found *dgroup
			for pass := 0; pass < 2 && found == nil; pass++ {
				for _, c := range cands {
					// One fd per description, from the epoll's own
					// process in the first pass.
					var e *dfd
					for _, m := range c.members(d) {
						if (m.p == ep.p) == (pass == 0) {
							e = m
							break
						}
					}
					if e == nil {
						continue
					}
					d.stats.Kcmp++
					if ok, _ := epollTargetIs(e.p.pid, e.fd, ep.p.pid, ep.fd, it.TFD, toff); ok {
						found = c
						break
					}
				}
			}
			if found == nil {
				f.Missing = appendMissing(f.Missing, "targets")
				continue
			}
			f.Targets = append(f.Targets, EpollTarget{FD: it.TFD, File: found.id,
				Events: fmt.Sprintf("0x%x", it.Events), Data: fmt.Sprintf("0x%x", it.Data)})
		}
		// The kernel lists items in the order of their file addresses;
		// the image lists them by fd, then file.
		slices.SortFunc(f.Targets, func(a, b EpollTarget) int {
			if a.FD != b.FD {
				return a.FD - b.FD
			}
			return strings.Compare(a.File, b.File)
		})
		if len(ep.info.Epoll) > 0 && f.Targets == nil {
			f.Targets = []EpollTarget{}
		}
	}
}

// members returns the fds of description g (built on first use).
func (g *dgroup) members(d *dumper) []*dfd {
	if d.members == nil {
		d.members = map[*dgroup][]*dfd{}
		for _, p := range d.procs {
			for _, e := range p.fds {
				d.members[e.g] = append(d.members[e.g], e)
			}
		}
	}
	return d.members[g]
}

// processFields sets setsid, pgrp and ctty: setsid when the process leads
// its session, its terminal when tty_nr names a terminal among its files;
// pgrp "new" for a group leader outside a session of its own, the id of an
// earlier process of the image whose group it is in (when neither starts a
// session, which restore cannot express otherwise), else inherited.
func (d *dumper) processFields() {
	byPID := map[int]*dproc{}
	for _, p := range d.procs {
		byPID[p.pid] = p
		p.img.Setsid = p.pid == p.stat.SID
	}
	for _, p := range d.procs {
		switch leader := byPID[p.stat.Pgrp]; {
		case p.img.Setsid:
		case p.stat.Pgrp == p.pid:
			p.img.Pgrp = PgrpNew
		case leader != nil && leader.pid < p.pid && !leader.img.Setsid:
			p.img.Pgrp = leader.img.ID
		}
		if !p.img.Setsid || p.stat.TTYNr == 0 {
			continue
		}
		tty := ttyDev(p.stat.TTYNr)
		for _, e := range p.fds {
			f := e.g.file
			if e.stErr == nil && e.st.Mode&unix.S_IFMT == unix.S_IFCHR && e.st.Rdev == tty &&
				(f.Type == TypePTY && f.End == "slave" || f.Type == TypeFile) {
				p.img.Ctty = e.g.id
				break
			}
		}
	}
}
