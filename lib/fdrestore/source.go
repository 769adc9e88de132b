//go:build linux

package fdrestore

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"golang.org/x/sys/unix"
)

// Kind is the type of a [Source].
type Kind int

// The source types of spec/fdrestore.md section 2.
const (
	KindFile       Kind = iota + 1 // file:PATH[:FLAGS][@POS]
	KindNull                       // null
	KindPipe                       // pipe:NAME:r|w
	KindSocketpair                 // socketpair:NAME:0|1[:stream|dgram|seqpacket]
	KindListen                     // listen:tcp|udp|unix:ADDR
	KindPTY                        // pty:NAME:master|slave
	KindMemfd                      // memfd:NAME
	KindEventfd                    // eventfd:N[:semaphore][:nonblock]
	KindEpoll                      // epoll:T[/EV],...
	KindFD                         // fd:M
	KindDup                        // dup:N
	KindClose                      // close
	KindGrab                       // grab:PID:FD
	KindHold                       // hold:SOCKET:ID
	// KindConnect is a unix socket connected to a listener of the image
	// (Path); images only, opened after every listener (6.2).
	KindConnect
	// KindSignalfd is a signalfd of mask SigMask; images only.
	KindSignalfd
)

var kindNames = lazyMap[Kind, string]{build: func() map[Kind]string {
	return map[Kind]string{
		KindFile: "file", KindNull: "null", KindPipe: "pipe", KindSocketpair: "socketpair",
		KindListen: "listen", KindPTY: "pty", KindMemfd: "memfd", KindEventfd: "eventfd",
		KindEpoll: "epoll", KindFD: "fd", KindDup: "dup", KindClose: "close", KindGrab: "grab",
		KindHold: "hold", KindConnect: "connect", KindSignalfd: "signalfd",
	}
}}

func (k Kind) String() string {
	if s, ok := kindNames.get()[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Live reports whether the source takes an existing description as it is
// (section 1: fd:, grab:, hold:), rather than creating one.
func (k Kind) Live() bool { return k == KindFD || k == KindGrab || k == KindHold }

// Shared reports whether two sources of this kind with the same Name are the
// two ends of one kernel object (one pipe2, socketpair or /dev/ptmx per NAME).
func (k Kind) Shared() bool { return k == KindPipe || k == KindSocketpair || k == KindPTY }

// Ends of the shared kinds, in [Source.End].
const (
	PipeRead  = 0 // pipe:NAME:r, the fds[0] of pipe2(2)
	PipeWrite = 1 // pipe:NAME:w, fds[1]
	PTYMaster = 0 // pty:NAME:master
	PTYSlave  = 1 // pty:NAME:slave, opened with TIOCGPTPEER
)

// EpollItem is one registration of an epoll source: target fd T of the plan,
// with Events (EPOLLIN and friends); the item's data is T.
type EpollItem struct {
	Target int
	Events uint32
	// Data is the item's user data when HasData (images record it);
	// otherwise the data is Target.
	Data    uint64
	HasData bool
}

// Source is a parsed SOURCE. Only the fields of its Kind are set.
type Source struct {
	Kind Kind   `json:",omitempty"`
	Text string `json:",omitempty"` // the SOURCE as written, for messages

	// file:
	Path   string `json:",omitempty"` // file:, listen:unix: (a leading @ means abstract)
	Flags  int    `json:",omitempty"` // open(2) flags, without O_CLOEXEC (the engine adds it)
	Mode   uint32 `json:",omitempty"` // creation mode, with creat
	Pos    int64  `json:",omitempty"` // lseek(2) position after open
	HasPos bool   `json:",omitempty"`

	// pipe:, socketpair:, pty:, memfd:
	Name     string `json:",omitempty"`
	End      int    `json:",omitempty"` // 0 or 1: see PipeRead, PTYMaster; the socketpair index
	SockType int    `json:",omitempty"` // socketpair: unix.SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET

	// listen:
	Network string         `json:",omitempty"` // "tcp", "udp" or "unix"
	Addr    netip.AddrPort `json:",omitempty"` // tcp, udp: a zero Addr() means any address (dual-stack)

	// eventfd:
	Count        uint32 `json:",omitempty"`
	EventfdFlags int    `json:",omitempty"` // unix.EFD_SEMAPHORE, unix.EFD_NONBLOCK

	// epoll:
	Items []EpollItem `json:",omitempty"`

	// signalfd: the mask, bit n-1 for signal n
	SigMask uint64 `json:",omitempty"`

	// fd:M, dup:N, grab:PID:FD
	FD  int `json:",omitempty"`
	PID int `json:",omitempty"`

	// hold:
	Socket string `json:",omitempty"`
	ID     string `json:",omitempty"`

	// State of a file from an image (section 6.2), applied when its master
	// is created; never set by the -f grammar.
	Data        []byte `json:",omitempty"` // memfd contents, pipe or FIFO bytes queued
	Size        int64  `json:",omitempty"` // memfd size (after Data); pipe capacity (F_SETPIPE_SZ)
	StatusFlags int    `json:",omitempty"` // O_NONBLOCK, O_APPEND... set with F_SETFL
	EndFlags    [2]int `json:",omitempty"` // the same per end of a pipe, socketpair or pty
	FIFO        bool   `json:",omitempty"` // file: a FIFO, opened through a temporary O_RDWR open
	Backlog     int    `json:",omitempty"` // listen: the listen(2) backlog; 0: SOMAXCONN
	// PTY state (the pty object's Source): window size and, when set,
	// termios in the layout of TCSETS.
	Winsize *[4]uint16    `json:",omitempty"`
	Termios *unix.Termios `json:",omitempty"`
	// Verify is the identity an image recorded for a file: checked after
	// the open, so that a path swapped since the dump is not restored.
	Verify *FileCheck `json:",omitempty"`
}

// FileCheck is what [Source.Verify] compares: device and inode when both
// are known, else the size of a regular file; the device number of a
// character or block device in any case.
type FileCheck struct {
	Dev, Ino uint64
	HasIno   bool
	Size     int64
	HasSize  bool
	RDev     uint64
	HasRDev  bool
}

// SyntaxError is a SOURCE that does not parse; Msg names the offending part.
type SyntaxError struct {
	Source string
	Msg    string
}

func (e *SyntaxError) Error() string { return e.Source + ": " + e.Msg }

func syntaxErr(src, format string, args ...any) error {
	return exitcode.New(exitcode.Usage, &SyntaxError{Source: src, Msg: fmt.Sprintf(format, args...)})
}

// MaxFD bounds every fd number we accept: an int in the kernel (and below the
// largest possible fs.nr_open).
const MaxFD = math.MaxInt32

// maxMemfdName is memfd_create(2)'s limit: 249 bytes (the name gets a
// "memfd:" prefix within NAME_MAX).
const maxMemfdName = 249

// maxHoldID is s6-fdholder's limit on an identifier (s6-fdholder-store.html:
// up to 255 characters).
const maxHoldID = 255

// maxSunPath is the room for a path in sockaddr_un, less the final NUL.
const maxSunPath = len(unix.RawSockaddrUnix{}.Path) - 1

var fileFlags = lazyMap[string, int]{build: func() map[string]int {
	return map[string]int{
		"rdonly":    unix.O_RDONLY,
		"wronly":    unix.O_WRONLY,
		"rdwr":      unix.O_RDWR,
		"path":      unix.O_PATH,
		"append":    unix.O_APPEND,
		"nonblock":  unix.O_NONBLOCK,
		"creat":     unix.O_CREAT,
		"excl":      unix.O_EXCL,
		"trunc":     unix.O_TRUNC,
		"directory": unix.O_DIRECTORY,
		"nofollow":  unix.O_NOFOLLOW,
		"noatime":   unix.O_NOATIME,
		"sync":      unix.O_SYNC,
		"dsync":     unix.O_DSYNC,
		"direct":    unix.O_DIRECT,
	}
}}

// DefaultMode is the creation mode of file:...:creat without mode=, as a
// shell's > redirection uses (the umask applies).
const DefaultMode = 0o666

var epollEvents = lazyMap[string, uint32]{build: func() map[string]uint32 {
	return map[string]uint32{
		"in":      unix.EPOLLIN,
		"out":     unix.EPOLLOUT,
		"pri":     unix.EPOLLPRI,
		"rdhup":   unix.EPOLLRDHUP,
		"et":      unix.EPOLLET,
		"oneshot": unix.EPOLLONESHOT,
	}
}}

// ParseSource parses one SOURCE of the table in spec/fdrestore.md section 2.
// Errors are usage errors ([exitcode.Usage]) wrapping a [*SyntaxError].
func ParseSource(s string) (Source, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return Source{}, syntaxErr(quoteNUL(s), "NUL byte in source")
	}
	typ, rest, hasArgs := strings.Cut(s, ":")
	src := Source{Text: s}
	switch typ {
	case "null", "close":
		if hasArgs {
			return Source{}, syntaxErr(s, "%s takes no arguments", typ)
		}
		src.Kind = KindNull
		if typ == "close" {
			src.Kind = KindClose
		}
		return src, nil
	case "":
		if s == "" {
			return Source{}, syntaxErr(s, "empty source")
		}
		return Source{}, syntaxErr(s, "missing source type")
	}
	p := parserFor(typ)
	switch {
	case p == nil:
		return Source{}, syntaxErr(s, "unknown source type %q", typ)
	case !hasArgs:
		return Source{}, syntaxErr(s, "%s needs arguments", typ)
	}
	if err := p(&src, rest); err != nil {
		return Source{}, syntaxErr(s, "%s", err.Error())
	}
	return src, nil
}

// parserFor returns the parser of a source type with arguments, or nil.
func parserFor(typ string) func(*Source, string) error {
	switch typ {
	case "file":
		return parseFile
	case "pipe":
		return parsePipe
	case "socketpair":
		return parseSocketpair
	case "listen":
		return parseListen
	case "pty":
		return parsePTY
	case "memfd":
		return parseMemfd
	case "eventfd":
		return parseEventfd
	case "epoll":
		return parseEpoll
	case "fd":
		return parseFDSource
	case "dup":
		return parseDup
	case "grab":
		return parseGrab
	case "hold":
		return parseHold
	}
	return nil
}

func quoteNUL(s string) string { return strings.ReplaceAll(s, "\x00", `\0`) }

// parseFD reads a decimal fd number: digits only, at most MaxFD.
func parseFD(what, s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("missing %s", what)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%s %q is not a decimal number", what, s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > MaxFD {
		return 0, fmt.Errorf("%s %s is out of range", what, s)
	}
	return int(n), nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func checkObjectName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("missing %s name", what)
	case strings.Contains(name, ":"):
		return fmt.Errorf("%s name %q contains ':'", what, name)
	}
	return nil
}

// parseFile reads PATH[:FLAGS][@POS] from the right, as section 2 "Parsing"
// says: a trailing @DIGITS is POS; then the text after the last ':' is FLAGS
// if every comma-separated item is a known flag (an empty FLAGS counts, so
// file:/a:b: opens "/a:b"); the rest is PATH.
func parseFile(src *Source, s string) error {
	src.Kind = KindFile
	if at := strings.LastIndexByte(s, '@'); at >= 0 && allDigits(s[at+1:]) {
		pos, err := strconv.ParseInt(s[at+1:], 10, 64)
		if err != nil {
			return fmt.Errorf("position %s is out of range", s[at+1:])
		}
		src.Pos, src.HasPos = pos, true
		s = s[:at]
	}
	path, flags := s, ""
	if c := strings.LastIndexByte(s, ':'); c >= 0 {
		if isFlagList(s[c+1:]) {
			path, flags = s[:c], s[c+1:]
		} else if bad := unknownFlag(s[c+1:]); bad != "" {
			// "file:/x:w" is a mistyped flag far more often than a file
			// named "x:w": say so (a path ending in such a word ends
			// with ':', "file:/x:w:").
			return fmt.Errorf("unknown file flag %q (flags: %s; end the path with ':' if %q is part of it)",
				bad, fileFlagNames, ":"+s[c+1:])
		}
	}
	if path == "" {
		return errors.New("missing path")
	}
	src.Path = path
	return parseFileFlags(src, flags)
}

// fileFlagNames lists the flag words of file: for messages.
const fileFlagNames = "rdonly wronly rdwr path append nonblock creat excl trunc directory nofollow noatime sync dsync direct mode=OCTAL"

// unknownFlag returns the first unknown word of s when s looks like a flag
// list (comma-separated words of 1 to 9 lowercase letters, or mode=...);
// "" otherwise.
func unknownFlag(s string) string {
	bad := ""
	for item := range strings.SplitSeq(s, ",") {
		if strings.HasPrefix(item, "mode=") {
			continue
		}
		if len(item) == 0 || len(item) > 9 || strings.Trim(item, "abcdefghijklmnopqrstuvwxyz") != "" {
			return ""
		}
		if _, ok := fileFlags.get()[item]; !ok && bad == "" {
			bad = item
		}
	}
	return bad
}

func isFlagList(s string) bool {
	if s == "" {
		return true
	}
	for item := range strings.SplitSeq(s, ",") {
		if _, ok := fileFlags.get()[item]; !ok && !strings.HasPrefix(item, "mode=") {
			return false
		}
	}
	return true
}

func parseFileFlags(src *Source, flags string) error {
	access := ""
	hasMode := false
	var other int
	if flags != "" {
		seen := map[string]bool{}
		for item := range strings.SplitSeq(flags, ",") {
			name := item
			if strings.HasPrefix(item, "mode=") {
				name = "mode"
			}
			if seen[name] {
				return fmt.Errorf("file flag %s is given twice", name)
			}
			seen[name] = true
			if name == "mode" {
				m := item[len("mode="):]
				n, err := strconv.ParseUint(m, 8, 32)
				if m == "" || err != nil || n > 0o7777 {
					return fmt.Errorf("file flag %s: mode must be octal, at most 7777", item)
				}
				src.Mode, hasMode = uint32(n), true
				continue
			}
			switch name {
			case "rdonly", "wronly", "rdwr", "path":
				if access != "" {
					return fmt.Errorf("file flags %s and %s conflict", access, name)
				}
				access = name
			}
			other |= fileFlags.get()[name]
		}
	}
	if access == "" {
		access = "rdonly"
	}
	has := func(f int) bool { return other&f != 0 }
	switch {
	case access == "path" && other&^(unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW) != 0:
		return errors.New("file flag path allows only directory and nofollow")
	case has(unix.O_EXCL) && !has(unix.O_CREAT):
		return errors.New("file flag excl needs creat")
	case hasMode && !has(unix.O_CREAT):
		return errors.New("file flag mode= needs creat")
	case has(unix.O_TRUNC) && access == "rdonly":
		return errors.New("file flag trunc needs wronly or rdwr")
	case has(unix.O_CREAT) && has(unix.O_DIRECTORY):
		return errors.New("file flags creat and directory conflict")
	}
	if has(unix.O_CREAT) && !hasMode {
		src.Mode = DefaultMode
	}
	src.Flags = other
	return nil
}

func parsePipe(src *Source, s string) error {
	src.Kind = KindPipe
	c := strings.LastIndexByte(s, ':')
	if c < 0 {
		return errors.New("pipe needs NAME:r or NAME:w")
	}
	name, end := s[:c], s[c+1:]
	if err := checkObjectName("pipe", name); err != nil {
		return err
	}
	src.Name = name
	switch end {
	case "r":
		src.End = PipeRead
	case "w":
		src.End = PipeWrite
	default:
		return errors.New("pipe end must be r or w")
	}
	return nil
}

func parseSocketpair(src *Source, s string) error {
	src.Kind = KindSocketpair
	src.SockType = unix.SOCK_STREAM
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return errors.New("socketpair needs NAME:0|1[:stream|dgram|seqpacket]")
	}
	if err := checkObjectName("socketpair", parts[0]); err != nil {
		return err
	}
	src.Name = parts[0]
	switch parts[1] {
	case "0":
		src.End = 0
	case "1":
		src.End = 1
	default:
		return errors.New("socketpair end must be 0 or 1")
	}
	if len(parts) == 3 {
		switch parts[2] {
		case "stream":
		case "dgram":
			src.SockType = unix.SOCK_DGRAM
		case "seqpacket":
			src.SockType = unix.SOCK_SEQPACKET
		default:
			return fmt.Errorf("socketpair type %q must be stream, dgram or seqpacket", parts[2])
		}
	}
	return nil
}

func parseListen(src *Source, s string) error {
	src.Kind = KindListen
	network, addr, ok := strings.Cut(s, ":")
	if !ok {
		return errors.New("listen needs tcp:ADDR, udp:ADDR or unix:PATH")
	}
	src.Network = network
	switch network {
	case "unix":
		name := addr
		if strings.HasPrefix(addr, "@") {
			name = addr[1:]
		}
		switch {
		case name == "":
			return errors.New("missing unix socket path")
		case len(name) > maxSunPath:
			return fmt.Errorf("unix socket path is longer than %d bytes", maxSunPath)
		}
		src.Path = addr
	case "tcp", "udp":
		ap, err := parseHostPort(addr)
		if err != nil {
			return err
		}
		src.Addr = ap
	default:
		return fmt.Errorf("listen type %q must be tcp, udp or unix", network)
	}
	return nil
}

// parseHostPort reads host:port or [v6]:port, host an IP literal or empty
// (any address). Names are not resolved: the plan stays pure.
func parseHostPort(s string) (netip.AddrPort, error) {
	c := strings.LastIndexByte(s, ':')
	if c < 0 {
		return netip.AddrPort{}, fmt.Errorf("address %q needs host:port", s)
	}
	host, port := s[:c], s[c+1:]
	if !allDigits(port) {
		return netip.AddrPort{}, fmt.Errorf("port %q is not a decimal number", port)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %s is out of range", port)
	}
	if host == "" {
		return netip.AddrPortFrom(netip.Addr{}, uint16(p)), nil
	}
	v6 := strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]")
	if v6 {
		host = host[1 : len(host)-1]
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Is4() == v6 {
		if v6 || strings.Contains(host, ":") {
			return netip.AddrPort{}, fmt.Errorf("host %q is not an IP address (IPv6 goes in brackets)", s[:c])
		}
		return netip.AddrPort{}, fmt.Errorf("host %q is not an IP address", s[:c])
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

func parsePTY(src *Source, s string) error {
	src.Kind = KindPTY
	c := strings.LastIndexByte(s, ':')
	if c < 0 {
		return errors.New("pty needs NAME:master or NAME:slave")
	}
	name, end := s[:c], s[c+1:]
	if err := checkObjectName("pty", name); err != nil {
		return err
	}
	src.Name = name
	switch end {
	case "master":
		src.End = PTYMaster
	case "slave":
		src.End = PTYSlave
	default:
		return errors.New("pty end must be master or slave")
	}
	return nil
}

func parseMemfd(src *Source, s string) error {
	src.Kind = KindMemfd
	switch {
	case s == "":
		return errors.New("missing memfd name")
	case len(s) > maxMemfdName:
		return fmt.Errorf("memfd name is longer than %d bytes", maxMemfdName)
	case strings.Contains(s, "/"):
		return errors.New("memfd name contains '/'")
	}
	src.Name = s
	return nil
}

func parseEventfd(src *Source, s string) error {
	src.Kind = KindEventfd
	parts := strings.Split(s, ":")
	if !allDigits(parts[0]) {
		return fmt.Errorf("eventfd count %q is not a decimal number", parts[0])
	}
	n, err := strconv.ParseUint(parts[0], 10, 32)
	if err != nil {
		return fmt.Errorf("eventfd count %s is out of range", parts[0])
	}
	src.Count = uint32(n)
	for _, p := range parts[1:] {
		var f int
		switch p {
		case "semaphore":
			f = unix.EFD_SEMAPHORE
		case "nonblock":
			f = unix.EFD_NONBLOCK
		default:
			return fmt.Errorf("eventfd option %q must be semaphore or nonblock", p)
		}
		if src.EventfdFlags&f != 0 {
			return fmt.Errorf("eventfd option %s is given twice", p)
		}
		src.EventfdFlags |= f
	}
	return nil
}

// parseEpoll reads T[/EV],...; "epoll:" alone is an epoll with no items.
// EV is a +-joined list; without in, out, pri or rdhup, in is added (et and
// oneshot alone would wait for nothing).
func parseEpoll(src *Source, s string) error {
	src.Kind = KindEpoll
	if s == "" {
		return nil
	}
	seen := map[int]bool{}
	for item := range strings.SplitSeq(s, ",") {
		t, evs, hasEv := strings.Cut(item, "/")
		fd, err := parseFD("epoll target", t)
		if err != nil {
			return err
		}
		if seen[fd] {
			return fmt.Errorf("epoll target %d is given twice", fd)
		}
		seen[fd] = true
		var ev uint32
		if hasEv {
			if evs == "" {
				return fmt.Errorf("missing events after %d/", fd)
			}
			for e := range strings.SplitSeq(evs, "+") {
				bit, ok := epollEvents.get()[e]
				if !ok {
					return fmt.Errorf("epoll event %q must be in, out, pri, rdhup, et or oneshot", e)
				}
				if ev&bit != 0 {
					return fmt.Errorf("epoll event %s is given twice", e)
				}
				ev |= bit
			}
		}
		if ev&(unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLPRI|unix.EPOLLRDHUP) == 0 {
			ev |= unix.EPOLLIN
		}
		src.Items = append(src.Items, EpollItem{Target: fd, Events: ev})
	}
	return nil
}

func parseFDSource(src *Source, s string) (err error) {
	src.Kind = KindFD
	src.FD, err = parseFD("fd", s)
	return err
}

func parseDup(src *Source, s string) (err error) {
	src.Kind = KindDup
	src.FD, err = parseFD("target", s)
	return err
}

func parseGrab(src *Source, s string) error {
	src.Kind = KindGrab
	pid, fd, ok := strings.Cut(s, ":")
	if !ok {
		return errors.New("grab needs PID:FD")
	}
	if !allDigits(pid) {
		return fmt.Errorf("pid %q is not a decimal number", pid)
	}
	n, err := strconv.ParseUint(pid, 10, 31)
	if err != nil || n == 0 {
		return fmt.Errorf("pid %s is out of range", pid)
	}
	src.PID = int(n)
	src.FD, err = parseFD("fd", fd)
	return err
}

func parseHold(src *Source, s string) error {
	src.Kind = KindHold
	sock, id, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return errors.New("hold needs SOCKET:ID")
	case sock == "":
		return errors.New("missing holder socket path")
	case id == "":
		return errors.New("missing holder id")
	case len(id) > maxHoldID:
		return fmt.Errorf("holder id is longer than %d bytes", maxHoldID)
	}
	src.Socket, src.ID = sock, id
	return nil
}

// ParseFlag parses the argument of -f, [N=]SOURCE. N= counts only when the
// text before the first '=' is all digits; otherwise the whole argument is
// the SOURCE. Errors are usage errors naming the fd when one is given.
func ParseFlag(s string) (target int, hasTarget bool, src Source, err error) {
	n, rest, ok := strings.Cut(s, "=")
	if ok && n != "" && !allDigits(n) && !strings.Contains(n, ":") && parserFor(n) == nil {
		// "abc=null": no source type has a '=' before its first ':'.
		return 0, false, Source{}, exitcode.Errorf(exitcode.Usage, "-f %s: %q is not an fd number: N=SOURCE needs a decimal N", s, n)
	}
	if ok && allDigits(n) {
		t, err := parseFD("fd", n)
		if err != nil {
			return 0, false, Source{}, exitcode.Errorf(exitcode.Usage, "fd %s is out of range", n)
		}
		src, err := ParseSource(rest)
		if err != nil {
			return 0, false, Source{}, exitcode.Errorf(exitcode.Usage, "invalid source for fd %d: %w", t, unwrapUsage(err))
		}
		return t, true, src, nil
	}
	src, err = ParseSource(s)
	if err != nil {
		return 0, false, Source{}, exitcode.Errorf(exitcode.Usage, "invalid source: %w", unwrapUsage(err))
	}
	return 0, false, src, nil
}

// unwrapUsage strips the exitcode layer, so a message does not nest it twice.
func unwrapUsage(err error) error {
	var e *exitcode.Error
	if errors.As(err, &e) && e.Err != nil {
		return e.Err
	}
	return err
}
