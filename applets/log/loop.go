package logapplet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
	"github.com/gotools-dev/gotools/lib/logscript"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/sys"
	"github.com/gotools-dev/gotools/lib/tai"
)

const (
	readSize   = 64 << 10 // one read of stdin
	pendingCap = 1 << 20  // pending bytes of every destination, then back-pressure
	keepBuf    = 64 << 10 // line and scratch buffers grown past this are released once used
	// Pending buffers double up to bigBuf (a few reads' records, the
	// steady state of a busy logger, kept across reads); past it they go at
	// once to the cap plus one read, and are released once drained.
	bigBuf = 4 * readSize
)

// op is a step of the script with its destination resolved.
type op struct {
	kind logscript.OpKind
	re   interface{ Match([]byte) bool }
	act  *logscript.Action
	dir  *logdir // logdir actions
}

// The waiter's fds.
const (
	waitSig = iota // the signal pipe
	waitIn         // stdin
	waitOut        // stdout
)

type logger struct {
	env  *cli.Env
	o    opts
	sc   *logscript.Script
	ops  []op
	dirs []*logdir
	fake *tai.Stamp
	mode uint32 // 0666 minus the umask
	loc  *time.Location

	sigR int
	w    *waiter // the loop's fds: waitSig, waitIn, waitOut

	// Input.
	inOpen    bool
	rbuf      []byte
	part      []byte    // a partial line
	lastLine  bool      // last-line mode (§7.2)
	lastLineT time.Time // its deadline; zero: none
	stopping  bool      // a termination signal came

	// stdout (the 1 action).
	outUsed bool // the script has a 1 action
	outOpen bool
	out     []byte
	outWait bool // the last write gave EAGAIN: poll for POLLOUT

	// Per line.
	label, iso     []byte
	hasLabel, hasT bool
	scratch        []byte

	procs map[int]*logdir
}

func newLogger(env *cli.Env, o opts, sc *logscript.Script, fake *tai.Stamp) *logger {
	l := &logger{env: env, o: o, sc: sc, fake: fake, sigR: -1, procs: map[int]*logdir{}}
	for _, a := range sc.Actions {
		l.hasLabel = l.hasLabel || a.Label
		l.hasT = l.hasT || a.ISO
		l.outUsed = l.outUsed || a.Kind == logscript.Stdout
	}
	byAction := map[*logscript.Action]*logdir{}
	for _, a := range sc.Actions {
		if a.Kind == logscript.Logdir {
			d := &logdir{l: l, a: a, dir: a.Path, fd: -1, lockFD: -1, pid: 0}
			l.dirs = append(l.dirs, d)
			byAction[a] = d
		}
	}
	for _, so := range sc.Ops {
		p := op{kind: so.Kind, act: so.Action}
		if so.Re != nil {
			p.re = so.Re
		}
		if so.Action != nil {
			p.dir = byAction[so.Action]
		}
		l.ops = append(l.ops, p)
	}
	return l
}

// now is the wall clock, or the fake one.
func (l *logger) now() tai.Stamp {
	if l.fake != nil {
		return *l.fake
	}
	return tai.Now()
}

func (l *logger) warnf(format string, a ...any) {
	if l.o.verbosity >= 1 {
		l.env.Warnf(format, a...)
	}
}

func (l *logger) run() error {
	um := unix.Umask(0)
	unix.Umask(um)
	l.mode = 0o666 &^ uint32(um)
	if l.hasT {
		l.loc = tai.LocalZone() // only T shows local time
	}
	if err := fd.EnsureStdio(); err != nil {
		return exitcode.New(exitcode.Sys, err)
	}
	var err error
	sigs, err := l.catchSignals()
	if err != nil {
		return exitcode.New(exitcode.Sys, err)
	}
	// Same-directory check by device and inode, then every start-up.
	type key struct{ dev, ino uint64 }
	seen := map[key]string{}
	for _, d := range l.dirs {
		if err := unix.Mkdir(d.dir, 0o2700); err != nil && !errors.Is(err, unix.EEXIST) {
			return l.fatal(exitcode.Sys, fmt.Errorf("unable to mkdir %s: %w", d.dir, err))
		}
		var st unix.Stat_t
		if err := unix.Stat(d.dir, &st); err != nil {
			return l.fatal(exitcode.Sys, fmt.Errorf("unable to stat %s: %w", d.dir, err))
		}
		k := key{st.Dev, st.Ino}
		if first, ok := seen[k]; ok {
			return l.fatal(exitcode.Usage, fmt.Errorf("logdir %s is the same as %s", d.dir, first))
		}
		seen[k] = d.dir
	}
	for _, d := range l.dirs {
		if err := d.start(); err != nil {
			return l.fatal(exitcode.Sys, err)
		}
	}
	if err := setNonblock(0); err != nil {
		return l.fatal(exitcode.Sys, fmt.Errorf("unable to set stdin non-blocking: %w", err))
	}
	l.inOpen = true
	if l.outUsed {
		l.outOpen = true
		_ = setNonblock(1)
	}
	if l.o.notif >= 0 {
		_ = fd.Notify(l.o.notif)
	}
	sig.NotifyAll(sigs) // the signals log ignores, once ready (catchSignals)
	l.rbuf = make([]byte, readSize)
	l.label = make([]byte, 0, tai.TextSize)
	l.iso = make([]byte, 0, 64)
	return l.loop()
}

// catchSignals catches the signals log acts on (spec/log.md §7.1) into a
// self-pipe, l.sigR, whose relay reads the channel it returns; the caller
// adds the ignored ones with [sig.NotifyAll] once ready. os/signal enables
// each signal with a round trip to a thread of its own, ~30 µs; all 58
// catchable ones took 1-2 ms, most of log's start-up. The others are
// caught only to be ignored (upstream dies of them), so they wait until
// the readiness notification is out.
func (l *logger) catchSignals() (chan os.Signal, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, fmt.Errorf("unable to create the signal pipe: %w", err)
	}
	c := make(chan os.Signal, 64)
	signal.Notify(c, unix.SIGTERM, unix.SIGHUP, unix.SIGINT, unix.SIGALRM, unix.SIGCHLD, unix.SIGPIPE)
	go func() {
		var b [1]byte
		for v := range c {
			b[0] = byte(v.(unix.Signal))
			_, _ = unix.Write(p[1], b[:])
		}
	}()
	l.sigR = p[0]
	return c, nil
}

// fatal prints err and returns it as exit code code, silently.
func (l *logger) fatal(code int, err error) error {
	l.env.Fatal(err)
	return exitcode.Exit(code)
}

func setNonblock(fd int) error {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl|unix.O_NONBLOCK)
	return err
}

// pending is the bytes waiting in every destination.
func (l *logger) pending() int {
	n := 0
	if l.outOpen {
		n = len(l.out)
	}
	for _, d := range l.dirs {
		n += len(d.pend)
	}
	return n
}

// wantRead reports whether stdin should be read now (§6).
func (l *logger) wantRead() bool {
	if !l.inOpen {
		return false
	}
	p := l.pending()
	if l.o.blocking {
		if p > 0 {
			return false
		}
		for _, d := range l.dirs {
			if d.rot != 0 || d.flushing {
				return false
			}
		}
		return true
	}
	return p < pendingCap
}

func (l *logger) loop() error {
	sigbuf := make([]byte, 64)
	w, err := newWaiter(l.sigR, 0, 1)
	if err != nil {
		return l.fatal(exitcode.Sys, err)
	}
	l.w = w
	w.want(waitSig, unix.EPOLLIN)
	for {
		l.flushAll()
		if garbage > garbageMax {
			// A collection that also returns the free pages: with the GC
			// off the scavenger, whose goal follows the GC percent or a
			// memory limit, returns nothing, and after a burst RssAnon
			// stayed at the burst's peak (5.5 MB after 8 MB through
			// s4096; now ~2.2 MB, the buffers a busy logger keeps).
			garbage = 0
			debug.FreeOSMemory()
		}
		if !l.inOpen && l.drained() {
			if l.finalizeAll() {
				return nil
			}
		}
		var in, out uint32
		if l.wantRead() {
			in = unix.EPOLLIN
		}
		if l.outOpen && len(l.out) > 0 && l.outWait {
			out = unix.EPOLLOUT
		}
		w.want(waitIn, in)
		w.want(waitOut, out)
		evs, err := w.wait(l.deadline())
		if err != nil {
			return l.fatal(exitcode.Sys, fmt.Errorf("unable to poll: %w", sys.Errno(err)))
		}
		inReady := false
		for _, ev := range evs {
			switch ev.Fd {
			case int32(l.sigR):
				if err := l.readSignals(sigbuf); err != nil {
					return err
				}
			case 0:
				inReady = in != 0
			case 1:
				l.outWait = false
			}
		}
		l.deadlines()
		if inReady && l.inOpen {
			l.read()
		}
	}
}

// drained reports whether nothing is left to write or wait for.
func (l *logger) drained() bool {
	if l.outOpen && len(l.out) > 0 {
		return false
	}
	for _, d := range l.dirs {
		if len(d.pend) > 0 || d.rot != 0 {
			return false
		}
	}
	return true
}

// deadline is the nearest deadline, or zero.
func (l *logger) deadline() time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if l.lastLine {
		consider(l.lastLineT)
	}
	for _, d := range l.dirs {
		consider(d.retryAt)
		if l.inOpen {
			consider(d.periodAt)
		}
	}
	return next
}

func (l *logger) deadlines() {
	now := time.Now()
	if l.lastLine && !l.lastLineT.IsZero() && !now.Before(l.lastLineT) {
		l.endInput()
	}
	for _, d := range l.dirs {
		if !d.retryAt.IsZero() && !now.Before(d.retryAt) {
			d.retryAt = time.Time{}
			d.retry()
		}
		if l.inOpen && !d.periodAt.IsZero() && !now.Before(d.periodAt) {
			d.periodAt = now.Add(time.Duration(d.a.Period) * time.Second)
			d.request()
		}
	}
}

func (l *logger) readSignals(buf []byte) error {
	n, err := unix.Read(l.sigR, buf)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return nil
		}
		return l.fatal(exitcode.Sys, fmt.Errorf("unable to read the signal pipe: %w", err))
	}
	for _, b := range buf[:n] {
		switch unix.Signal(b) {
		case unix.SIGTERM:
			if !l.o.protect {
				l.terminate()
			}
		case unix.SIGHUP, unix.SIGINT:
			l.terminate()
		case unix.SIGALRM:
			for _, d := range l.dirs {
				d.alarm()
			}
		case unix.SIGCHLD:
			if err := proc.Reap(l.reaped); err != nil {
				return l.fatal(exitcode.Sys, fmt.Errorf("unable to wait: %w", sys.Errno(err)))
			}
		}
	}
	return nil
}

func (l *logger) reaped(pid int, ws unix.WaitStatus) {
	d, ok := l.procs[pid]
	if !ok {
		return
	}
	delete(l.procs, pid)
	d.processorDone(ws)
}

// terminate starts termination (§7.2).
func (l *logger) terminate() {
	if l.stopping || !l.inOpen {
		return
	}
	l.stopping = true
	if len(l.part) == 0 {
		l.closeInput()
		return
	}
	l.lastLine = true
	if l.o.lastLine > 0 {
		l.lastLineT = time.Now().Add(time.Duration(l.o.lastLine) * time.Millisecond)
	}
}

// endInput processes a pending partial line and closes input.
func (l *logger) endInput() {
	if len(l.part) > 0 {
		l.line(l.part)
		l.part = l.part[:0]
	}
	l.closeInput()
}

func (l *logger) closeInput() {
	if l.inOpen {
		l.w.want(waitIn, 0) // before the close: epoll keys on the open file
		unix.Close(0)
		l.inOpen = false
		l.lastLine = false
		l.rbuf = nil
		l.part = nil
	}
}

// read reads stdin once (one byte at a time in last-line mode).
func (l *logger) read() {
	buf := l.rbuf
	if l.lastLine {
		buf = buf[:1]
	}
	n, err := rawRead(0, buf)
	switch {
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		return
	case err != nil:
		l.warnf("unable to read from stdin: %w", err)
		l.endInput()
		return
	case n == 0:
		l.endInput()
		return
	}
	if l.lastLine {
		c := buf[0]
		if c == '\n' || c == 0 {
			l.endInput()
			return
		}
		l.part = append(l.part, c)
		if l.o.lineMax > 0 && len(l.part) >= l.o.lineMax {
			l.warnf("input line too long, stopping before the end")
			l.endInput()
		}
		return
	}
	l.feed(buf[:n])
}

// term returns the index of the first line terminator (\n or NUL) in b, or
// -1.
func term(b []byte) int {
	k := bytes.IndexByte(b, '\n')
	if k < 0 {
		return bytes.IndexByte(b, 0)
	}
	if z := bytes.IndexByte(b[:k], 0); z >= 0 {
		return z
	}
	return k
}

// feed splits a chunk of input into lines (§4).
func (l *logger) feed(buf []byte) {
	max := l.o.lineMax
	for len(buf) > 0 {
		k := term(buf)
		if len(l.part) == 0 {
			switch {
			case k >= 0 && (max == 0 || k <= max):
				l.line(buf[:k])
				buf = buf[k+1:]
				continue
			case max > 0 && (k > max || (k < 0 && len(buf) > max)):
				l.line(buf[:max])
				buf = buf[max:]
				continue
			}
			l.part = append(reserve(l.part, len(buf)), buf...)
			return
		}
		room := max - len(l.part)
		switch {
		case k >= 0 && (max == 0 || k <= room):
			l.part = append(reserve(l.part, k), buf[:k]...)
			l.line(l.part)
			l.resetPart()
			buf = buf[k+1:]
			continue
		case max > 0 && (k > room || (k < 0 && len(buf) > room)):
			l.part = append(reserve(l.part, room), buf[:room]...)
			l.line(l.part)
			l.resetPart()
			buf = buf[room:]
			continue
		}
		l.part = append(reserve(l.part, len(buf)), buf...)
		return
	}
}

func (l *logger) resetPart() {
	if cap(l.part) > keepBuf {
		l.part = drop(l.part)
	} else {
		l.part = l.part[:0]
	}
}

// line runs the script on one line.
func (l *logger) line(b []byte) {
	if l.hasLabel || l.hasT {
		now := l.now()
		if l.hasLabel {
			l.label = now.AppendText(l.label[:0])
		}
		if l.hasT {
			l.iso = tai.AppendISO(l.iso[:0], now.Time().In(l.loc))
		}
	}
	sel, acted := true, false
	for i := range l.ops {
		o := &l.ops[i]
		switch o.kind {
		case logscript.Select:
			if !sel && (o.re == nil || o.re.Match(b)) {
				sel = true
			}
		case logscript.Deselect:
			if sel && (o.re == nil || o.re.Match(b)) {
				sel = false
			}
		case logscript.Filter:
			sel = !acted
		case logscript.Act:
			if sel {
				l.act(o, b)
				acted = true
			}
		}
	}
}

// garbage counts the bytes dropped since the last collection: buffers,
// and whatever rotations allocate (paths, directory listings: ~1 kB
// each, measured by [allocated]). The loop collects past garbageMax; the
// GC is otherwise off (run), and a logger rotating for weeks must not
// keep every listing. Not counted: a buffer growing up to the cap, which
// is live; a collection costs ~0.5 MB of RssAnon for good (its workers
// and work buffers), so it runs only when there is garbage to collect.
var garbage uint64

const garbageMax = 256 << 10

func drop(b []byte) []byte {
	garbage += uint64(cap(b))
	return nil
}

// allocated is the bytes the heap has allocated so far (runtime/metrics:
// ~0.4 µs, no allocation).
func allocated() uint64 {
	metrics.Read(allocSample[:])
	return allocSample[0].Value.Uint64()
}

// allocSample is static data (no init work); only the loop's goroutine
// reads it.
var allocSample = [1]metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

// reserve makes room for n more bytes in b. Small buffers double; past
// keepBuf a buffer goes at once to the cap plus one read, so that filling
// up to the cap leaves no trail of garbage arrays behind (VmHWM).
func reserve(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	c := max(2*cap(b), len(b)+n, 4096)
	if c > bigBuf {
		c = max(c, pendingCap+readSize+n)
	}
	nb := make([]byte, len(b), c)
	copy(nb, b)
	garbage += uint64(cap(b))
	return nb
}

// consume drops the first n bytes of b, keeping its array.
func consume(b []byte, n int) []byte {
	if n == len(b) {
		return b[:0]
	}
	return b[:copy(b, b[n:])]
}

// record appends the record of line for action a to dst (§2.4).
func (l *logger) record(dst []byte, a *logscript.Action, line []byte) []byte {
	dst = reserve(dst, len(line)+len(a.Prefix)+len(l.label)+len(l.iso)+8)
	if a.Label {
		dst = append(dst, l.label...)
		dst = append(dst, ' ')
	}
	if a.ISO {
		dst = append(dst, l.iso...)
		dst = append(dst, ' ', ' ')
	}
	if a.Prefix != "" {
		dst = append(dst, a.Prefix...)
		dst = append(dst, ' ')
	}
	dst = append(dst, line...)
	return append(dst, '\n')
}

func (l *logger) act(o *op, line []byte) {
	a := o.act
	switch a.Kind {
	case logscript.Stdout:
		if l.outOpen {
			l.out = l.record(l.out, a, line)
		}
	case logscript.Logdir:
		o.dir.pend = l.record(o.dir.pend, a, line)
	case logscript.Alert:
		if a.AlertMax > 0 && len(line) > int(a.AlertMax)+3 {
			line = line[:a.AlertMax]
			b := append(l.scratch[:0], l.env.Name...)
			b = append(b, ": alert: "...)
			b = l.record(b, a, line)
			b = append(b[:len(b)-1], "...\n"...)
			l.scratch = b
		} else {
			b := append(l.scratch[:0], l.env.Name...)
			b = append(b, ": alert: "...)
			l.scratch = l.record(b, a, line)
		}
		_, _ = sys.Write(2, l.scratch)
	case logscript.Status:
		l.status(a, line)
	}
	if cap(l.scratch) > keepBuf {
		l.scratch = drop(l.scratch)
	}
}

// status writes a status file (§2.4).
func (l *logger) status(a *logscript.Action, line []byte) {
	b := l.record(l.scratch[:0], a, line)
	if n := int(a.StatusPad); n > 0 {
		b = b[:len(b)-1]
		if len(b) > n {
			b = b[:n]
		}
		for len(b) < n {
			b = append(b, '\n')
		}
	}
	l.scratch = b
	tmp := a.Path + ".new"
	fdn, err := sys.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o666)
	if err == nil {
		_, err = sys.Write(fdn, b)
		unix.Close(fdn)
		if err == nil {
			err = unix.Rename(tmp, a.Path)
		}
		if err != nil {
			unix.Unlink(tmp)
		}
	}
	if err != nil {
		l.warnf("unable to write status file %s: %w", a.Path, sys.Errno(err))
	}
}

// flushAll writes what every writable destination has pending.
func (l *logger) flushAll() {
	if l.outOpen && len(l.out) > 0 && !l.outWait {
		l.flushStdout()
	}
	for _, d := range l.dirs {
		d.flush()
	}
}

func (l *logger) flushStdout() {
	for len(l.out) > 0 {
		n, err := unix.Write(1, l.out)
		if n > 0 {
			l.out = consume(l.out, n)
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			l.outWait = true
			return
		}
		l.env.Warnf("unable to write to stdout, closing the stream - error was: %s", cli.Message(err))
		l.w.want(waitOut, 0)
		unix.Close(1)
		l.outOpen = false
		l.out = nil
		return
	}
	if cap(l.out) > bigBuf {
		l.out = drop(l.out)
	} else {
		l.out = l.out[:0]
	}
}

// finalizeAll finalizes every logdir; false if one must be retried.
func (l *logger) finalizeAll() bool {
	ok := true
	for _, d := range l.dirs {
		if !d.finalize() {
			ok = false
		}
	}
	return ok
}
