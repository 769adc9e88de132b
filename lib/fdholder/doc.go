// Package fdholder speaks s6-fdholderd's wire protocol (spec
// fdrestore.md section 8): the frame codec, a blocking [Client] and the
// daemon itself, [Serve]. `fdrestore hold` is built on it; it is
// byte-compatible with s6 2.11's s6-fdholderd and s6-fdholder-* clients,
// and its tests run each side against the other.
//
// # Synopsis
//
//	c, err := fdholder.Dial("/run/fdholder", time.Second)
//	err = c.Store(fd, "tcp:80", fdholder.LimitAfter(0))
//	fd, err = c.Retrieve("tcp:80", false)
//
//	status, err := fdholder.Serve(listenFD, fdholder.Config{Rules: rules}, stopFD)
//
// # Wire protocol
//
// Every message is a 6-byte header, payload length (uint32 big-endian,
// at most 2^28) and fd count (uint16 big-endian, at most 253), then the
// payload; the fds ride as SCM_RIGHTS on the sendmsg(2) that carries the
// header (skalibs unixmessage). Requests and their answers:
//
//	S limit[12] idlen id NUL   + 1 fd  ->  errno (0, EPERM, ENFILE, EBUSY)
//	D idlen id NUL                     ->  errno (0, EPERM, ENOENT)
//	R delete idlen id NUL              ->  0 + 1 fd, or errno (EPERM, ENOENT)
//	L                                  ->  0 n[4] (id NUL)*n, or errno
//	?                                  ->  0 nmsg[4] n[4], then nmsg messages of <= 253
//	                                       fds, (limit[12] idlen id NUL) per fd; or errno
//	! n[4]                             ->  0 trips[4], or errno (EPERM, ENFILE)
//	. (limit[12] idlen id NUL)*k + k fds  ->  EAGAIN while more are due, then 0
//
// Limits are TAI64N stamps; "never" travels as now + 2^61 s, and a limit
// at least 2^60 s ahead counts as no expiry. In this API the zero
// [tai.Stamp] means never.
//
// # Daemon
//
// One goroutine, one epoll loop; clients are non-blocking with buffered
// decoding and queued answers. Access is decided at accept from
// SO_PEERCRED with [Decide], [DirAccess] or [CDBAccess]. Malformed requests close their connection
// only. [Serve] returns s6's status: (fds held ? 1 : 0) | (clients left ?
// 2 : 0).
//
// # Differences from s6
//
//   - Access is given by s6's rules directories ([DirAccess]) or cdb files
//     ([CDBAccess]), read at each connection (s6 rereads a cdb on SIGHUP
//     only), or by -a rules ([ParseRule]), which add up per peer; with -a
//     rules the daemon's own uid and root are allowed everything when no
//     rule names them (s6 denies everyone until rules exist). Regexes that
//     Go would match differently from POSIX regcomp are refused
//     ([CompileERE]).
//   - Ids with an embedded NUL are refused as malformed (s6 stores the
//     part before the NUL).
//   - list and getdump answer in id byte order (s6: storage order).
//   - A limit whose nanoseconds exceed 999999999 is malformed.
//   - Frames longer than the longest valid request are refused at their
//     header instead of being buffered up to 2^28 bytes.
//   - -t drops a client idle that long while it is new, has part of a
//     request buffered, is owed an answer or is mid-setdump; any byte
//     read or written restarts the wait (s6 does not restart it, and
//     does not arm it for a partial request).
//   - SIGINT starts the lame duck as SIGTERM does (s6 dies of it).
package fdholder
