//go:build linux

package fdrestore

// dump (spec/fdrestore.md section 4): an image of running processes' fd
// tables, with sharing (kcmp KCMP_FILE), peers (pipe inodes, sock_diag,
// pty indexes) and epoll targets (kcmp KCMP_EPOLL_TFD).
//
// Everything is read from outside: /proc/PID/fd links and stat,
// /proc/PID/fdinfo, and for the state only an fd can tell (socket options,
// pipe size, termios) a pidfd_getfd(2) copy that is closed at once, since
// a held connection would delay its peer's EOF. Pipe, FIFO and memfd
// contents are read through a fresh open of /proc/PID/fd/N, a new
// description of the same object, so that the process's own offsets and
// flags are never touched.

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"golang.org/x/sys/unix"
)

// DefaultDataMax is the default of [DumpOptions.DataMax]: 16 MiB per file.
const DefaultDataMax = 16 << 20

// DumpOptions are dump's settings (section 4).
type DumpOptions struct {
	PIDs    []int // the processes to dump
	Tree    bool  // and their descendants
	Live    bool  // give files that cannot be recreated faithfully a grab: source
	Data    bool  // add pipe, FIFO and memfd contents
	DataMax int64 // with Data: the most bytes per file; more is an error. 0: DefaultDataMax
	Now     time.Time
}

// DumpStats counts the work of a dump, for the benchmark of section 13.
type DumpStats struct {
	FDs   int // fds read
	Kcmp  int // kcmp(2) calls (KCMP_FILE and KCMP_EPOLL_TFD)
	Files int // distinct open file descriptions
}

// Dump writes the image of the processes o names. Processes that vanish
// while being read and fds closed meanwhile are left out (the image is
// racy: nothing is frozen); a pid that does not exist at the start is an
// error (exit 111), as is --data finding more than DataMax bytes in a file
// (exit 1).
func Dump(o DumpOptions) (*Image, DumpStats, error) {
	d := &dumper{o: o, pipes: map[uint64]string{}, ptys: map[int]string{}}
	if d.o.DataMax <= 0 {
		d.o.DataMax = DefaultDataMax
	}
	defer d.close()
	img, err := d.run()
	return img, d.stats, err
}

type dumper struct {
	o     DumpOptions
	stats DumpStats
	procs []*dproc

	img    *Image
	groups []*dgroup // in order of first appearance
	pipes  map[uint64]string
	ptys   map[int]string
	pairs  int

	unix     map[uint64]*unixDiag
	unixErr  error
	unixDone bool

	members map[*dgroup][]*dfd // fds by description, for the epolls
}

// dproc is one process being dumped.
type dproc struct {
	pid   int
	stat  procStat
	exec  []string
	exe   string // /proc/PID/exe; "" when unreadable or deleted
	pidfd int    // -1: not opened, or refused
	fds   []*dfd
	img   *Process
}

// dfd is one fd of a process.
type dfd struct {
	p       *dproc
	fd      int
	link    string
	st      unix.Stat_t
	stErr   error
	info    fdinfo
	infoErr error
	g       *dgroup
}

// dgroup is one open file description: the fds kcmp found equal.
type dgroup struct {
	id    string
	first *dfd // the first fd by (pid, fd)
	file  *File
	// For the second pass.
	sockIno  uint64    // a unix socket's inode
	diag     *unixDiag // its sock_diag record, if any
	sockPeer bool      // connected, peer known only by getpeername
	epoll    bool
}

func (d *dumper) close() {
	for _, p := range d.procs {
		if p.pidfd >= 0 {
			unix.Close(p.pidfd)
			p.pidfd = -1
		}
	}
}

func (d *dumper) run() (*Image, error) {
	pids := slices.Clone(d.o.PIDs)
	if d.o.Tree {
		pids = append(pids, descendants(d.o.PIDs)...)
	}
	slices.Sort(pids)
	pids = slices.Compact(pids)
	for _, pid := range pids {
		p, err := d.readProc(pid)
		if err != nil {
			if slices.Contains(d.o.PIDs, pid) {
				return nil, err
			}
			if p == nil {
				continue // a descendant that exited meanwhile
			}
		}
		d.procs = append(d.procs, p)
	}
	if len(d.procs) == 0 {
		return nil, exitcode.Errorf(exitcode.Usage, "no process to dump")
	}
	d.share()
	d.img = &Image{
		Format: ImageFormat, Version: ImageVersion, Racy: true,
		Files: map[string]*File{}, Pipes: map[string]*PipeState{}, Ptys: map[string]*PTYState{},
	}
	if !d.o.Now.IsZero() {
		d.img.Created = d.o.Now.UTC().Format(time.RFC3339)
	}
	names := map[string]bool{}
	for _, p := range d.procs {
		p.img = &Process{ID: processID(p.stat.Comm, names), PID: p.pid, PPID: p.stat.PPID, Comm: p.stat.Comm, Exec: p.exec}
		if p.exec != nil {
			p.img.Exe = p.exe
		}
		d.img.Processes = append(d.img.Processes, p.img)
		for _, e := range p.fds {
			if e.g.id == "" {
				e.g.id = "f" + strconv.Itoa(len(d.groups)+1)
				d.groups = append(d.groups, e.g)
				f, err := d.describe(e.g)
				if err != nil {
					return nil, err
				}
				e.g.file = f
				d.img.Files[e.g.id] = f
			}
			p.img.FDs = append(p.img.FDs, ImageFD{FD: e.fd, File: e.g.id, Cloexec: e.info.Flags&unix.O_CLOEXEC != 0})
		}
	}
	d.stats.Files = len(d.groups)
	d.sanitize()
	d.linkSockets()
	d.resolveEpolls()
	d.processFields()
	if len(d.img.Pipes) == 0 {
		d.img.Pipes = nil
	}
	if len(d.img.Ptys) == 0 {
		d.img.Ptys = nil
	}
	if err := d.img.Validate(); err != nil {
		return nil, exitcode.Errorf(exitcode.Internal, "dump made an invalid image: %w", err)
	}
	return d.img, nil
}

// sanitize keeps the image encodable: an image's strings are UTF-8
// without NUL, while Linux names are bytes. A file whose name is not
// becomes unsupported (a unix socket only loses its path); a process keeps
// its comm with the bad bytes replaced and loses its exec.
func (d *dumper) sanitize() {
	ok := func(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }
	clean := func(s string) string {
		return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	}
	for _, g := range d.groups {
		f := g.file
		switch {
		case ok(f.Path) && ok(f.Link) && ok(f.MName):
		case f.Type == TypeUnix && ok(f.Link):
			f.Path = ""
			f.Missing = appendMissing(f.Missing, "path")
		default:
			g.file = &File{Type: TypeUnsupported, Link: clean(g.first.link), Reason: "its name is not valid UTF-8", Flags: f.Flags, Source: f.Source}
			if d.o.Live && g.file.Source == "" {
				g.file.Source = fmt.Sprintf("grab:%d:%d", g.first.p.pid, g.first.fd)
			}
			d.img.Files[g.id] = g.file
		}
	}
	for _, p := range d.procs {
		if !ok(p.img.Comm) {
			p.img.Comm = clean(p.img.Comm)
		}
		for _, a := range p.img.Exec {
			if !ok(a) {
				p.img.Exec = nil
				break
			}
		}
		if !ok(p.img.Exe) || p.img.Exec == nil {
			p.img.Exe = ""
		}
	}
}

// processID makes an image id from a command name: printable ASCII
// without spaces, unique in the image ("sh", "sh-2", ...), and free of
// pids, so that dumps of two runs of one topology compare equal.
func processID(comm string, used map[string]bool) string {
	b := []byte(comm)
	for i, c := range b {
		if c <= ' ' || c > '~' {
			b[i] = '_'
		}
	}
	base := string(b)
	if base == "" {
		base = "proc"
	}
	id := base
	for n := 2; used[id]; n++ {
		id = base + "-" + strconv.Itoa(n)
	}
	used[id] = true
	return id
}

// readProc reads a process and the link, stat and fdinfo of each of its
// fds. An fd closed meanwhile is left out.
func (d *dumper) readProc(pid int) (*dproc, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, exitcode.Errorf(exitcode.Sys, "unable to dump pid %d: %w", pid, unix.ESRCH)
		}
		return nil, exitcode.Errorf(exitcode.Sys, "unable to read /proc/%d/stat: %w", pid, pathErrno(err))
	}
	st, err := parseProcStat(b)
	if err != nil {
		return nil, exitcode.Errorf(exitcode.Sys, "unable to read /proc/%d/stat: %w", pid, err)
	}
	p := &dproc{pid: pid, stat: st, exec: readCmdline(pid), exe: readExe(pid), pidfd: -1}
	fds, err := listFDs(pid)
	if err != nil {
		return p, exitcode.Errorf(exitcode.Sys, "unable to list the fds of pid %d: %w", pid, pathErrno(err))
	}
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		p.pidfd = fd
	}
	// The directories are opened once: each fd then costs a readlinkat,
	// an fstatat and an openat+read+close of its fdinfo, relative to
	// them.
	dir := fmt.Sprintf("/proc/%d/", pid)
	fdDir, err := unix.Open(dir+"fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return p, exitcode.Errorf(exitcode.Sys, "unable to open %sfd: %w", dir, err)
	}
	defer unix.Close(fdDir)
	infoDir, err := unix.Open(dir+"fdinfo", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return p, exitcode.Errorf(exitcode.Sys, "unable to open %sfdinfo: %w", dir, err)
	}
	defer unix.Close(infoDir)
	buf := make([]byte, 4096)
	for _, n := range fds {
		num := strconv.Itoa(n)
		m, err := unix.Readlinkat(fdDir, num, buf)
		if errors.Is(err, unix.ENOENT) {
			continue // closed meanwhile
		}
		if err != nil {
			// EACCES: not ours to inspect (ptrace access mode); nothing is
			// dropped silently.
			return p, exitcode.Errorf(exitcode.Sys, "unable to read fd %d of pid %d: %w", n, pid, err)
		}
		e := &dfd{p: p, fd: n, link: string(buf[:m])}
		e.stErr = unix.Fstatat(fdDir, num, &e.st, 0)
		info, err := readAt(infoDir, num, buf)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			e.infoErr = err
		} else {
			e.info, e.infoErr = parseFdinfo(info)
		}
		p.fds = append(p.fds, e)
		d.stats.FDs++
	}
	return p, nil
}

// readAt reads the file name under dirfd into buf, growing it as needed,
// with raw calls (an os.File would be registered with the netpoller).
func readAt(dirfd int, name string, buf []byte) ([]byte, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := unix.Read(fd, buf[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// fdinfo is a single_open seq_file: one read hands out all of
		// it that fits, so a short read is the end.
		if m == 0 || n+m < len(buf) {
			return buf[:n+m], nil
		}
		n += m
	}
}

// pathErrno strips an *os.PathError down to its errno: messages name the
// path themselves.
func pathErrno(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// share partitions the fds into open file descriptions: bucketed by
// (st_dev, st_ino), each bucket sorted with kcmp KCMP_FILE as the
// comparator, equal runs being one description.
func (d *dumper) share() {
	type key struct{ dev, ino uint64 }
	buckets := map[key][]*dfd{}
	var order []key
	for _, p := range d.procs {
		for _, e := range p.fds {
			if e.stErr != nil {
				e.g = &dgroup{first: e}
				continue
			}
			k := key{e.st.Dev, e.st.Ino}
			if _, ok := buckets[k]; !ok {
				order = append(order, k)
			}
			buckets[k] = append(buckets[k], e)
		}
	}
	for _, k := range order {
		b := buckets[k]
		if len(b) == 1 {
			b[0].g = &dgroup{first: b[0]}
			continue
		}
		if len(b) == 2 {
			// The common case (a dup, a fork): one call.
			d.stats.Kcmp++
			g := &dgroup{first: b[0]}
			b[0].g = g
			if r, err := kcmp(b[0].p.pid, b[1].p.pid, kcmpFile, uintptr(b[0].fd), uintptr(b[1].fd)); err != nil || r != 0 {
				g = &dgroup{first: b[1]}
			}
			b[1].g = g
			continue
		}
		pos := make(map[*dfd]int, len(b))
		for i, e := range b {
			pos[e] = i
		}
		// kcmp orders descriptions by their (obfuscated) kernel
		// addresses; on an error (an fd closed meanwhile) the position
		// decides, which keeps the two apart.
		cmp := func(a, c *dfd) int {
			if a == c {
				return 0
			}
			d.stats.Kcmp++
			r, err := kcmp(a.p.pid, c.p.pid, kcmpFile, uintptr(a.fd), uintptr(c.fd))
			switch {
			case err != nil || r == 3:
				return pos[a] - pos[c]
			case r == 1:
				return -1
			case r == 2:
				return 1
			}
			return 0
		}
		sorted := slices.Clone(b)
		slices.SortStableFunc(sorted, cmp)
		var g *dgroup
		for i, e := range sorted {
			if i == 0 || cmp(sorted[i-1], e) != 0 {
				g = &dgroup{first: e}
			}
			e.g = g
			if pos[e] < pos[g.first] {
				g.first = e
			}
		}
	}
}

// grab returns a pidfd_getfd copy of e's fd (close-on-exec); the caller
// closes it at once.
func (d *dumper) grab(e *dfd) (int, error) {
	if e.p.pidfd < 0 {
		return -1, unix.EPERM
	}
	return unix.PidfdGetfd(e.p.pidfd, e.fd, 0)
}

// reopen opens /proc/PID/fd/N again: a new description of the same
// object, to read a pipe, FIFO or memfd without touching the process's
// offset or flags.
func reopen(e *dfd, flags int) (int, error) {
	return unix.Open(fmt.Sprintf("/proc/%d/fd/%d", e.p.pid, e.fd), flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
}

// flagWords renders open(2) flags as an image's flags: the access mode and
// the status flags. Nil when they are the type's default (def) alone.
func flagWords(fl uint32, def string) []string {
	mode := "rdonly"
	switch {
	case fl&unix.O_PATH != 0:
		mode = "path"
	case fl&unix.O_ACCMODE == unix.O_WRONLY:
		mode = "wronly"
	case fl&unix.O_ACCMODE == unix.O_RDWR:
		mode = "rdwr"
	}
	words := []string{mode}
	for _, s := range []struct {
		bit  uint32
		word string
	}{
		{unix.O_APPEND, "append"}, {unix.O_NONBLOCK, "nonblock"}, {unix.O_DIRECT, "direct"},
		{unix.O_NOATIME, "noatime"}, {unix.O_ASYNC, "async"},
	} {
		if fl&s.bit == s.bit {
			words = append(words, s.word)
		}
	}
	switch {
	case fl&unix.O_SYNC == unix.O_SYNC:
		words = append(words, "sync")
	case fl&unix.O_DSYNC != 0:
		words = append(words, "dsync")
	}
	if len(words) == 1 && mode == def {
		return nil
	}
	return words
}

// describe makes the file of a description from its first fd.
func (d *dumper) describe(g *dgroup) (*File, error) {
	e := g.first
	f, err := d.classify(g)
	if err != nil {
		return nil, err
	}
	if e.infoErr != nil {
		f.Missing = appendMissing(f.Missing, "flags")
	}
	if d.o.Live && f.Source == "" && needsLive(f) {
		f.Source = fmt.Sprintf("grab:%d:%d", e.p.pid, e.fd)
	}
	return f, nil
}

func appendMissing(m []string, field string) []string {
	if slices.Contains(m, field) {
		return m
	}
	return append(m, field)
}

// needsLive tells the files that --live gives a grab: source: those a new
// open cannot recreate faithfully (section 4).
func needsLive(f *File) bool {
	switch f.Type {
	case TypeUnsupported, TypeInotify, TypeFanotify, TypePidfd:
		return true
	case TypeFile:
		return f.Deleted
	case TypeTCP:
		return f.State == "listen" || f.State == "established"
	case TypeUDP:
		return f.State == "established"
	case TypeUnix:
		return f.State == "listen" || f.PeerExternal
	}
	return false
}

// classify tells the type of a description and reads its fields.
func (d *dumper) classify(g *dgroup) (*File, error) {
	e := g.first
	link := e.link
	fl := e.info.Flags
	ftype := e.st.Mode & unix.S_IFMT
	switch {
	case strings.HasPrefix(link, "pipe:["):
		return d.pipe(e)
	case strings.HasPrefix(link, "socket:["):
		return d.socket(g)
	case strings.HasPrefix(link, "anon_inode:"):
		return d.anon(g)
	case strings.HasPrefix(link, "/memfd:") && e.stErr == nil && ftype == unix.S_IFREG && e.st.Nlink == 0:
		return d.memfd(e)
	case e.info.HasTTYIndex || (link == "/dev/ptmx" || link == "/dev/pts/ptmx") && fl&unix.O_PATH == 0:
		return d.ptyMaster(e)
	case e.stErr == nil && ftype == unix.S_IFCHR && isPTSMajor(unix.Major(e.st.Rdev)) && fl&unix.O_PATH == 0:
		return d.ptySlave(e)
	case e.stErr == nil && ftype == unix.S_IFIFO && strings.HasPrefix(link, "/") && fl&unix.O_PATH == 0:
		return d.fifo(e)
	case strings.HasPrefix(link, "/"):
		return d.regular(e), nil
	}
	reason := "unknown kind of file"
	if i := strings.Index(link, ":["); i > 0 {
		reason = link[:i] + " namespace or kernel object"
	}
	return &File{Type: TypeUnsupported, Link: link, Reason: reason, Flags: flagWords(fl, "rdwr")}, nil
}

// isPTSMajor tells the majors of Unix98 pty slaves (136 to 143,
// UNIX98_PTY_SLAVE_MAJOR and the next 7).
func isPTSMajor(m uint32) bool { return m >= 136 && m < 144 }

func (d *dumper) regular(e *dfd) *File {
	f := &File{Type: TypeFile, Path: e.link, Flags: flagWords(e.info.Flags, "rdonly")}
	if e.stErr != nil {
		f.Missing = append(f.Missing, "verify")
		return f
	}
	if e.st.Nlink == 0 {
		f.Deleted = true
		f.Path = strings.TrimSuffix(f.Path, " (deleted)")
	}
	f.Verify = &Verify{Dev: FormatDev(e.st.Dev), Ino: strconv.FormatUint(e.st.Ino, 10)}
	switch e.st.Mode & unix.S_IFMT {
	case unix.S_IFCHR, unix.S_IFBLK:
		f.Verify.RDev = FormatDev(e.st.Rdev)
	case unix.S_IFREG:
		size := e.st.Size
		f.Verify.Size = &size
	}
	// A directory's position can be a 64-bit hash (ext4 htree), beyond
	// what an image holds as a number.
	if e.info.Pos > MaxImageInt || e.info.Pos < 0 {
		f.Missing = append(f.Missing, "pos")
	} else if f.AccessMode() != "path" {
		f.Pos = e.info.Pos
	}
	return f
}

func (d *dumper) pipe(e *dfd) (*File, error) {
	fl := e.info.Flags
	end := "r"
	switch fl & unix.O_ACCMODE {
	case unix.O_WRONLY:
		end = "w"
	case unix.O_RDWR:
		end = "rw"
	}
	f := &File{Type: TypePipe, End: end, Flags: flagWords(fl, pipeEndModes.get()[end])}
	ino := e.st.Ino
	if e.stErr != nil {
		ino = e.info.Ino
	}
	if id, ok := d.pipes[ino]; ok {
		f.Pipe = id
		return f, nil
	}
	id := "p" + strconv.Itoa(len(d.pipes)+1)
	d.pipes[ino] = id
	f.Pipe = id
	ps := &PipeState{}
	d.img.Pipes[id] = ps
	size, pending, data, err := d.queue(e)
	if err != nil {
		return nil, err
	}
	if size < 0 {
		f.Missing = append(f.Missing, "pipe")
	} else {
		ps.Size, ps.Pending = size, pending
		if data != nil {
			ps.DataB64 = encodeB64(data)
		}
	}
	return f, nil
}

func (d *dumper) fifo(e *dfd) (*File, error) {
	f := &File{Type: TypeFIFO, Path: strings.TrimSuffix(e.link, " (deleted)"), Flags: flagWords(e.info.Flags, "rdonly")}
	_, pending, data, err := d.queue(e)
	if err != nil {
		return nil, err
	}
	if pending < 0 {
		f.Missing = append(f.Missing, "pending")
	} else {
		f.Pending = pending
		if data != nil {
			f.DataB64 = encodeB64(data)
		}
	}
	return f, nil
}

// queue reads a pipe's or FIFO's size and pending bytes (F_GETPIPE_SZ,
// FIONREAD) through a new read-only, non-blocking description, and with
// --data a copy of the bytes, taken with tee(2) into a private pipe of the
// same size, which leaves them queued. size is -1 when it could not be
// read.
func (d *dumper) queue(e *dfd) (size, pending int64, data []byte, err error) {
	fd, err := reopen(e, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return -1, -1, nil, nil
	}
	defer unix.Close(fd)
	sz, err := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		return -1, -1, nil, nil
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCINQ) // FIONREAD
	if err != nil {
		return int64(sz), -1, nil, nil
	}
	if !d.o.Data || n == 0 {
		return int64(sz), int64(n), nil, nil
	}
	if int64(n) > d.o.DataMax {
		return 0, 0, nil, exitcode.Errorf(exitcode.Refused, "unable to dump the data of fd %d of pid %d: %d bytes queued, more than --data-max %d", e.fd, e.p.pid, n, d.o.DataMax)
	}
	data, err = teeCopy(fd, sz)
	if err != nil {
		return 0, 0, nil, exitcode.Errorf(exitcode.Sys, "unable to copy the data of fd %d of pid %d: %w", e.fd, e.p.pid, err)
	}
	return int64(sz), int64(len(data)), data, nil
}

// teeCopy copies what pipe fd holds, without consuming it: tee(2) into a
// private pipe of size bytes, then a read of that.
func teeCopy(fd, size int) ([]byte, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, size); err != nil {
		return nil, err
	}
	n, err := unix.Tee(fd, p[1], size, unix.SPLICE_F_NONBLOCK)
	if errors.Is(err, unix.EAGAIN) {
		return nil, nil // emptied meanwhile
	}
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	got := 0
	for got < int(n) {
		m, err := unix.Read(p[0], buf[got:])
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		got += m
	}
	return buf[:got], nil
}

func (d *dumper) memfd(e *dfd) (*File, error) {
	name := strings.TrimSuffix(strings.TrimPrefix(e.link, "/memfd:"), " (deleted)")
	f := &File{Type: TypeMemfd, MName: name, Size: e.st.Size, Pos: e.info.Pos, Flags: flagWords(e.info.Flags, "rdwr")}
	if len(name) > maxMemfdName {
		return d.regular(e), nil
	}
	// A pidfd_getfd copy only takes a reference; a new open through
	// /proc would make (and later free) a whole description.
	fd, err := d.grab(e)
	if err != nil {
		fd, err = reopen(e, unix.O_RDONLY)
	}
	if err != nil {
		f.Missing = append(f.Missing, "seals")
		if d.o.Data && f.Size > 0 {
			f.Missing = append(f.Missing, "data_b64")
		}
		return f, nil
	}
	defer unix.Close(fd)
	if seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0); err == nil {
		f.Seals = sealWords(seals)
	} else if !errors.Is(err, unix.EINVAL) {
		f.Missing = append(f.Missing, "seals")
	}
	if !d.o.Data || f.Size == 0 {
		return f, nil
	}
	if f.Size > d.o.DataMax {
		return nil, exitcode.Errorf(exitcode.Refused, "unable to dump the data of fd %d of pid %d: memfd of %d bytes, more than --data-max %d", e.fd, e.p.pid, f.Size, d.o.DataMax)
	}
	// pread leaves the offset alone; a write-only description needs a
	// readable one of its own.
	if e.info.Flags&(unix.O_ACCMODE|unix.O_PATH) != unix.O_RDONLY && e.info.Flags&unix.O_ACCMODE != unix.O_RDWR {
		r, err := reopen(e, unix.O_RDONLY)
		if err != nil {
			return nil, exitcode.Errorf(exitcode.Sys, "unable to read the memfd at fd %d of pid %d: %w", e.fd, e.p.pid, err)
		}
		defer unix.Close(r)
		fd = r
	}
	buf := make([]byte, f.Size)
	got := 0
	for got < len(buf) {
		n, err := unix.Pread(fd, buf[got:], int64(got))
		if err != nil {
			return nil, exitcode.Errorf(exitcode.Sys, "unable to read the memfd at fd %d of pid %d: %w", e.fd, e.p.pid, err)
		}
		if n == 0 {
			break
		}
		got += n
	}
	f.Size = int64(got)
	f.DataB64 = encodeB64(buf[:got])
	return f, nil
}

func sealWords(s int) []string {
	var out []string
	for _, w := range []struct {
		bit  int
		word string
	}{
		{unix.F_SEAL_SEAL, "seal"}, {unix.F_SEAL_SHRINK, "shrink"}, {unix.F_SEAL_GROW, "grow"},
		{unix.F_SEAL_WRITE, "write"}, {unix.F_SEAL_FUTURE_WRITE, "future_write"},
	} {
		if s&w.bit != 0 {
			out = append(out, w.word)
		}
	}
	return out
}

func (d *dumper) ptyMaster(e *dfd) (*File, error) {
	f := &File{Type: TypePTY, End: "master", Flags: flagWords(e.info.Flags, "rdwr")}
	index, ok := e.info.TTYIndex, e.info.HasTTYIndex
	cp, err := d.grab(e)
	if err == nil {
		defer unix.Close(cp)
		if !ok {
			if n, err := unix.IoctlGetUint32(cp, unix.TIOCGPTN); err == nil {
				index, ok = int(n), true
			}
		}
	}
	if !ok {
		return &File{Type: TypeUnsupported, Link: e.link, Reason: "pty master without an index", Flags: f.Flags}, nil
	}
	f.PTY = d.ptyState(index, cp, true, f)
	return f, nil
}

func (d *dumper) ptySlave(e *dfd) (*File, error) {
	f := &File{Type: TypePTY, End: "slave", Flags: flagWords(e.info.Flags, "rdwr")}
	index := int(unix.Major(e.st.Rdev)-136)<<8 | int(unix.Minor(e.st.Rdev))
	cp, err := d.grab(e)
	if err == nil {
		defer unix.Close(cp)
	} else {
		cp = -1
	}
	f.PTY = d.ptyState(index, cp, false, f)
	return f, nil
}

// ptyState returns the id of pty index, making its state from fd (a copy
// of one end; -1 if none) the first time.
func (d *dumper) ptyState(index, fd int, master bool, f *File) string {
	if id, ok := d.ptys[index]; ok {
		st := d.img.Ptys[id]
		if master && fd >= 0 {
			if n, err := unix.IoctlGetInt(fd, unix.TIOCGPKT); err == nil {
				st.Packet = n != 0
			}
		}
		return id
	}
	id := "t" + strconv.Itoa(len(d.ptys)+1)
	d.ptys[index] = id
	st := &PTYState{Index: index}
	d.img.Ptys[id] = st
	if fd < 0 {
		f.Missing = append(f.Missing, "termios", "winsize")
		return id
	}
	if t, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
		st.Termios = &Termios{Iflag: t.Iflag, Oflag: t.Oflag, Cflag: t.Cflag, Lflag: t.Lflag, Line: t.Line,
			CC: fmt.Sprintf("0x%x", t.Cc[:NCCS])}
	} else {
		f.Missing = append(f.Missing, "termios")
	}
	if w, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil {
		st.Winsize = [4]uint16{w.Row, w.Col, w.Xpixel, w.Ypixel}
	} else {
		f.Missing = append(f.Missing, "winsize")
	}
	if master {
		if n, err := unix.IoctlGetInt(fd, unix.TIOCGPKT); err == nil {
			st.Packet = n != 0
		}
	}
	return id
}

// anon describes the anonymous-inode files: eventfd, eventpoll, signalfd,
// timerfd, inotify, fanotify, pidfd, and the unsupported rest.
func (d *dumper) anon(g *dgroup) (*File, error) {
	e := g.first
	kind := strings.Trim(strings.TrimPrefix(e.link, "anon_inode:"), "[]")
	flags := flagWords(e.info.Flags, "rdwr")
	switch kind {
	case "eventfd":
		f := &File{Type: TypeEventfd, Count: "0", Semaphore: e.info.EventfdSemaphore, Flags: flags}
		if e.info.HasEventfd {
			f.Count = strconv.FormatUint(e.info.EventfdCount, 10)
		} else {
			f.Missing = append(f.Missing, "count")
		}
		return f, nil
	case "eventpoll":
		g.epoll = true
		return &File{Type: TypeEpoll, Flags: flags}, nil
	case "signalfd":
		f := &File{Type: TypeSignalfd, Sigmask: fmt.Sprintf("0x%x", e.info.Sigmask), Flags: flags}
		if !e.info.HasSigmask {
			f.Missing = append(f.Missing, "sigmask")
		}
		return f, nil
	case "timerfd":
		return timerFile(e, flags), nil
	case "inotify":
		return &File{Type: TypeInotify, Link: e.link, Flags: flags}, nil
	case "fanotify":
		return &File{Type: TypeFanotify, Link: e.link, Flags: flags}, nil
	case "pidfd":
		return &File{Type: TypePidfd, Link: e.link, Flags: flags}, nil
	}
	reasons := map[string]string{
		"io_uring":    "rings live in process memory",
		"userfaultfd": "fault handling is tied to the process's memory",
		"perf_event":  "perf events are not restorable",
		"bpf-map":     "bpf objects are not restorable",
		"bpf-prog":    "bpf objects are not restorable",
		"bpf_link":    "bpf objects are not restorable",
	}
	reason, ok := reasons[kind]
	if !ok {
		reason = "unknown anonymous inode " + kind
	}
	return &File{Type: TypeUnsupported, Link: e.link, Reason: reason, Flags: flags}, nil
}

// clockNames are the timerfd clocks of an image by clock id.
var clockNames = lazyMap[int, string]{build: func() map[int]string {
	return map[int]string{
		unix.CLOCK_REALTIME: "realtime", unix.CLOCK_MONOTONIC: "monotonic", unix.CLOCK_BOOTTIME: "boottime",
		unix.CLOCK_REALTIME_ALARM: "realtime_alarm", unix.CLOCK_BOOTTIME_ALARM: "boottime_alarm",
	}
}}

func timerFile(e *dfd, flags []string) *File {
	t := e.info.Timer
	if t == nil || clockNames.get()[t.ClockID] == "" {
		reason := "timerfd without readable settings"
		if t != nil {
			reason = fmt.Sprintf("timerfd on clock %d", t.ClockID)
		}
		return &File{Type: TypeUnsupported, Link: e.link, Reason: reason, Flags: flags}
	}
	// fdinfo gives the remaining time, so the value is relative whatever
	// flags it was set with.
	f := &File{Type: TypeTimerfd, Clock: clockNames.get()[t.ClockID], Flags: flags, Ticks: int64(min(t.Ticks, MaxImageInt))}
	if t.Value != [2]int64{} {
		v := t.Value
		f.Value = &v
	}
	if t.Interval != [2]int64{} {
		v := t.Interval
		f.Interval = &v
	}
	return f
}
