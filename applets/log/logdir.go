package logapplet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/logscript"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sys"
	"github.com/gotools-dev/gotools/lib/tai"
)

// logdir is one logdir action's directory (spec/log.md §5).
type logdir struct {
	l      *logger
	a      *logscript.Action
	dir    string
	fd     int // current
	lockFD int
	b      int64 // bytes in current
	pend   []byte

	flushing bool // a write failed: retried after the cooldown
	warned   bool // this write-failure episode was reported
	wantRot  bool // a rotation request came while flushing
	rot      int  // the next rotation step (1-10); 0: not rotating
	pid      int  // the processor running; 0: none
	final    bool // finalized

	retryAt  time.Time // a failed operation's retry
	periodAt time.Time // the next R rotation
	newest   tai.Stamp // the newest archive stamp seen or made

	dirs sys.DirReader // readNames' buffer and result, reused
}

func (d *logdir) path(name string) string { return d.dir + "/" + name }

func (d *logdir) modeX() uint32 { return d.l.mode | 0o100 }

// errVerb is "unable to VERB FILE: REASON".
func errVerb(verb, file string, err error) error {
	return fmt.Errorf("unable to %s %s: %w", verb, file, sys.Errno(err))
}

// start sets the logdir up (§5.2 steps 2-5; mkdir is done by the caller).
func (d *logdir) start() error {
	f, err := lock.OpenExclusive(d.path("lock"))
	if err != nil {
		return errVerb("open", d.path("lock"), err)
	}
	if err := lock.TryLock(f, lock.Exclusive); err != nil {
		f.Close()
		if errors.Is(err, lock.ErrBusy) {
			err = unix.EBUSY
		}
		return errVerb("lock", d.path("lock"), err)
	}
	// Keep the lock's file open for life, as a bare fd.
	lfd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		f.Close()
		return errVerb("dup", d.path("lock"), err)
	}
	unix.CloseOnExec(lfd)
	f.Close() // an OFD lock belongs to the open file description: the dup keeps it
	d.lockFD = lfd

	var st unix.Stat_t
	err = unix.Stat(d.path("current"), &st)
	switch {
	case err == nil && st.Mode&0o100 != 0:
		d.b = st.Size
		d.scanNewest()
	case err == nil || errors.Is(err, unix.ENOENT):
		if err := d.recover(); err != nil { // scans the archives itself
			return err
		}
	default:
		return errVerb("stat", d.path("current"), err)
	}
	fdn, err := sys.Open(d.path("current"), unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT, 0o666)
	if err != nil {
		return errVerb("open", d.path("current"), err)
	}
	if err := unix.Fchmod(fdn, d.l.mode); err != nil {
		unix.Close(fdn)
		return errVerb("fchmod", d.path("current"), err)
	}
	d.fd = fdn
	if d.a.Period > 0 {
		d.periodAt = time.Now().Add(time.Duration(d.a.Period) * time.Second)
	}
	return nil
}

// recover archives what an unclean stop left (§5.2 step 4).
func (d *logdir) recover() error {
	unix.Unlink(d.path("state"))
	unix.Unlink(d.path("newstate"))
	d.scanNewest()
	var st unix.Stat_t
	err := unix.Stat(d.path("processed"), &st)
	if err == nil && st.Mode&0o100 != 0 {
		if err := unlinkOK(d.path("previous")); err != nil {
			return errVerb("unlink", d.path("previous"), err)
		}
		if err := d.finish("processed", 's'); err != nil {
			return err
		}
	} else {
		if err := unlinkOK(d.path("processed")); err != nil {
			return errVerb("unlink", d.path("processed"), err)
		}
		if err := d.finish("previous", 'u'); err != nil {
			return err
		}
	}
	if err := d.finish("current", 'u'); err != nil {
		return err
	}
	fdn, err := sys.Open(d.path("state"), unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o666)
	if err != nil {
		return errVerb("create", d.path("state"), err)
	}
	unix.Close(fdn)
	d.b = 0
	return nil
}

func unlinkOK(p string) error {
	if err := unix.Unlink(p); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// isArchive reports whether name is "@" + 24 hex digits + ".s" or ".u".
func isArchive(name string) (tai.Stamp, bool) {
	if len(name) != 27 || name[25] != '.' || (name[26] != 's' && name[26] != 'u') {
		return tai.Stamp{}, false
	}
	return tai.ParseText([]byte(name[:25]))
}

func later(a, b tai.Stamp) bool {
	return a.Sec > b.Sec || (a.Sec == b.Sec && a.Nsec > b.Nsec)
}

// scanNewest notes the newest archive stamp in the directory.
func (d *logdir) scanNewest() {
	names, _ := d.readNames()
	for _, n := range names {
		if s, ok := isArchive(n); ok && later(s, d.newest) {
			d.newest = s
		}
	}
}

// readNames lists the logdir's entries (not "." and ".."), into a slice
// reused by the next call, without the netpoller or an allocation per
// rotation ([sys.DirReader]).
func (d *logdir) readNames() ([]string, error) { return d.dirs.Names(d.dir) }

// stamp returns the next archive stamp: now, but after the newest.
func (d *logdir) stamp() tai.Stamp {
	s := d.l.now()
	if !later(s, d.newest) {
		s = d.newest
		s.Nsec++
		if s.Nsec == 1e9 {
			s.Sec, s.Nsec = s.Sec+1, 0
		}
	}
	return s
}

// finish archives DIR/name with suffix, removes it, then prunes (§5.2).
func (d *logdir) finish(name string, suffix byte) error {
	src := d.path(name)
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return errVerb("stat", src, err)
	}
	if st.Nlink == 1 && st.Size > 0 {
		for {
			s := d.stamp()
			dst := string(append(s.AppendText([]byte(d.dir+"/")), '.', suffix))
			err := unix.Link(src, dst)
			if errors.Is(err, unix.EEXIST) {
				d.newest = s
				continue
			}
			if err != nil {
				return fmt.Errorf("unable to link %s to %s: %w", src, dst, sys.Errno(err))
			}
			d.newest = s
			break
		}
	}
	if err := unlinkOK(src); err != nil {
		return errVerb("unlink", src, err)
	}
	d.prune()
	return nil
}

// prune removes the oldest archives beyond n and S (§5.5).
func (d *logdir) prune() {
	names, err := d.readNames()
	if err != nil {
		d.l.warnf("unable to open directory %s: %w", d.dir, sys.Errno(err))
		return
	}
	type arc struct {
		name string
		size int64
	}
	var arcs []arc
	var total uint64
	for _, n := range names {
		s, ok := isArchive(n)
		if !ok {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(d.path(n), &st); err != nil {
			d.l.warnf("unable to stat %s: %w", d.path(n), sys.Errno(err))
			continue
		}
		if later(s, d.newest) {
			d.newest = s
		}
		arcs = append(arcs, arc{n, st.Size})
		total += uint64(st.Size)
	}
	over := func(count int) bool {
		return count > int(d.a.Keep) || (d.a.Total > 0 && total > d.a.Total)
	}
	if !over(len(arcs)) {
		return
	}
	slices.SortFunc(arcs, func(x, y arc) int { return bytes.Compare([]byte(x.name[1:27]), []byte(y.name[1:27])) })
	count := len(arcs)
	for _, a := range arcs {
		if !over(count) {
			break
		}
		if err := unlinkOK(d.path(a.name)); err != nil {
			d.l.warnf("unable to unlink %s: %w", d.path(a.name), sys.Errno(err))
			continue
		}
		count--
		total -= uint64(a.size)
	}
}

// writable reports whether the logdir may write now.
func (d *logdir) writable() bool { return d.rot == 0 && !d.flushing }

// flush writes the pending bytes, cutting at the rotation threshold
// (§5.3).
func (d *logdir) flush() {
	for d.writable() && len(d.pend) > 0 {
		chunk := d.pend
		rot := false
		need := int64(d.a.Size) - int64(d.a.Tolerance) - d.b
		if need <= int64(len(chunk)) {
			from := max(need-1, 0)
			if k := bytes.IndexByte(chunk[from:], '\n'); k >= 0 {
				chunk = chunk[:from+int64(k)+1]
				rot = true
			}
		}
		n, err := rawWrite(d.fd, chunk)
		if n > 0 {
			d.b += int64(n)
			d.pend = consume(d.pend, n)
		}
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			if !d.warned {
				d.l.warnf("unable to write to %s: %w", d.path("current"), err)
				d.warned = true
			}
			d.flushing = true
			d.retryAt = time.Now().Add(d.cooldown())
			return
		}
		d.warned = false
		if n < len(chunk) {
			continue
		}
		if rot {
			d.rotate()
		}
	}
	if len(d.pend) == 0 {
		if cap(d.pend) > bigBuf {
			d.pend = drop(d.pend)
		} else {
			d.pend = d.pend[:0]
		}
	}
}

func (d *logdir) cooldown() time.Duration {
	return time.Duration(d.a.Cooldown) * time.Millisecond
}

// retry runs what waited for the cooldown.
func (d *logdir) retry() {
	switch {
	case d.rot != 0 && d.pid == 0:
		d.steps()
	case d.flushing:
		d.flushing = false
		d.flush()
		if d.writable() && d.wantRot {
			d.wantRot = false
			d.request()
		}
	}
}

// request is a rotation request: SIGALRM or the R period (§5.3).
func (d *logdir) request() {
	switch {
	case d.rot != 0:
	case d.flushing:
		d.wantRot = true
	case d.b > 0:
		d.rotate()
	}
}

// alarm is SIGALRM: a rotation request, and a step waiting for its
// cooldown runs at once.
func (d *logdir) alarm() {
	if d.rot != 0 && d.pid == 0 && !d.retryAt.IsZero() {
		d.retryAt = time.Time{}
		d.steps()
		return
	}
	d.request()
}

func (d *logdir) rotate() {
	d.rot = 1
	d.steps()
}

// steps runs rotation steps until done, a failure (retried after the
// cooldown) or a processor to wait for (§5.4).
func (d *logdir) steps() {
	// Everything a rotation allocates is garbage once it is done.
	defer func(before uint64) { garbage += allocated() - before }(allocated())
	for d.rot != 0 {
		if err := d.step(); err != nil {
			d.l.warnf("%w", err)
			d.retryAt = time.Now().Add(d.cooldown())
			return
		}
		if d.pid != 0 {
			return
		}
	}
}

func (d *logdir) step() error {
	cur, prev := d.path("current"), d.path("previous")
	switch d.rot {
	case 1:
		if err := unix.Fsync(d.fd); err != nil {
			return errVerb("fsync", cur, err)
		}
	case 2:
		if err := unix.Rename(cur, prev); err != nil {
			return fmt.Errorf("unable to rename %s to %s: %w", cur, prev, sys.Errno(err))
		}
	case 3:
		fdn, err := sys.Open(cur, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT, 0o666)
		if err != nil {
			return errVerb("open", cur, err)
		}
		unix.Close(d.fd)
		d.fd, d.b = fdn, 0
	case 4:
		if err := unix.Chmod(prev, d.modeX()); err != nil {
			return errVerb("chmod", prev, err)
		}
	case 5:
		if d.a.Processor == "" {
			if err := d.finish("previous", 's'); err != nil {
				return err
			}
			d.rot = 0
			return nil
		}
		return d.spawn()
	case 6:
		if err := syncFile(d.path("processed"), d.modeX()); err != nil {
			return err
		}
	case 7:
		if err := syncFile(d.path("newstate"), 0); err != nil {
			return err
		}
	case 8:
		if err := unlinkOK(prev); err != nil {
			return errVerb("unlink", prev, err)
		}
	case 9:
		if err := unix.Rename(d.path("newstate"), d.path("state")); err != nil {
			return fmt.Errorf("unable to rename %s to %s: %w", d.path("newstate"), d.path("state"), sys.Errno(err))
		}
	case 10:
		if err := d.finish("processed", 's'); err != nil {
			return err
		}
		d.rot = 0
		return nil
	}
	d.rot++
	return nil
}

// syncFile fsyncs the file at p, then sets its mode unless mode is 0.
func syncFile(p string, mode uint32) error {
	fdn, err := sys.Open(p, unix.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return errVerb("open", p, err)
	}
	defer unix.Close(fdn)
	if err := unix.Fsync(fdn); err != nil {
		return errVerb("fsync", p, err)
	}
	if mode != 0 {
		if err := unix.Fchmod(fdn, mode); err != nil {
			return errVerb("fchmod", p, err)
		}
	}
	return nil
}

// spawn starts the processor (§5.6); d.rot stays 5 until it succeeds.
func (d *logdir) spawn() error {
	open := func(name string, flags int) (*os.File, error) {
		fdn, err := sys.Open(d.path(name), flags, 0o666)
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fdn), d.path(name)), nil
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			if f != nil && f != os.Stderr {
				f.Close()
			}
		}
	}()
	fail := func(err error) error {
		return fmt.Errorf("unable to spawn processor for logdir %s: %w", d.dir, sys.Errno(err))
	}
	prev, err := open("previous", unix.O_RDONLY)
	if err != nil {
		return fail(err)
	}
	files = append(files, prev)
	processed, err := open("processed", unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
	if err != nil {
		return fail(err)
	}
	files = append(files, processed, os.Stderr, nil)
	state, err := open("state", unix.O_RDONLY)
	if errors.Is(err, unix.ENOENT) {
		var c *os.File
		if c, err = open("state", unix.O_WRONLY|unix.O_CREAT); err == nil {
			c.Close()
			state, err = open("state", unix.O_RDONLY)
		}
	}
	if err != nil {
		return fail(err)
	}
	files = append(files, state)
	newstate, err := open("newstate", unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
	if err != nil {
		return fail(err)
	}
	files = append(files, newstate)
	argv := []string{"execlineb", "-Pc", d.a.Processor}
	if d.a.Shell {
		argv = []string{"/bin/sh", "-c", d.a.Processor}
	}
	pid, err := proc.Spawn(argv, proc.Attr{Files: files, Dir: d.dir})
	if err != nil {
		return fail(err)
	}
	d.pid = pid
	d.l.procs[pid] = d
	return nil
}

// processorDone acts on the processor's exit (§5.6).
func (d *logdir) processorDone(ws unix.WaitStatus) {
	d.pid = 0
	switch {
	case ws.Exited() && ws.ExitStatus() == 0:
		d.rot = 6
		d.steps()
		return
	case ws.Signaled():
		d.l.warnf("processor crashed in %s", d.dir)
	default:
		d.l.warnf("processor failed in %s", d.dir)
	}
	d.retryAt = time.Now().Add(d.cooldown())
}

// finalize syncs current and marks it clean (§7.2); false: retry later.
func (d *logdir) finalize() bool {
	if d.final {
		return true
	}
	if !d.retryAt.IsZero() {
		return false
	}
	err := unix.Fsync(d.fd)
	if err != nil {
		err = errVerb("fsync", d.path("current"), err)
	} else if err = unix.Fchmod(d.fd, d.modeX()); err != nil {
		err = errVerb("fchmod", d.path("current"), err)
	}
	if err != nil {
		d.l.warnf("%w", err)
		d.retryAt = time.Now().Add(d.cooldown())
		return false
	}
	unix.Close(d.fd)
	d.final = true
	return true
}
