package supervisor

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Delays of spec/supervise.md §8.
const (
	treeThrottle  = time.Second      // between two starts of one supervisor
	treeSpawn     = 10 * time.Second // after a failed spawn or Open
	tooManyRetry  = 60 * time.Second // after finding more than Max services
	readdirRetry  = 5 * time.Second  // after a failed opendir/readdir
	pipeRetry     = 3 * time.Second  // after a failed pipe(2)
	logSubdirName = "log"
)

// Limits of Max and NameMax, as spec/supervise.md §8 gives them.
const (
	DefaultMax, DefaultNameMax = 1000, 251
)

// Paths inside a scan directory.
const (
	TreeCtlDir = ".s6-svscan"
	treeLock   = TreeCtlDir + "/lock"
	treeCtl    = TreeCtlDir + "/control"
)

// TreeConfig is what [OpenTree] needs.
type TreeConfig struct {
	// Env receives the tree's warnings ("svscan: warning: ...").
	Env *cli.Env
	// Dir is the scan directory; "" or "." is the working directory
	// (svscan chdirs there). Otherwise every path is Dir + "/" + name and
	// the service directories are given to their supervisors as such.
	Dir string
	// Name is SCANDIR as messages name it (default: Dir).
	Name string
	// Max is the most service directories, loggers included (0: 1000);
	// NameMax the longest name considered (0: 251).
	Max, NameMax int
	// Rescan is the period of the scan (0: never, so an idle tree has no
	// timer).
	Rescan time.Duration
	// Supervisor is the argv before NAME of each supervisor; its [0] is
	// also the applet name in messages ("supervise" or "s6-supervise").
	// Default: {"supervise"}.
	Supervisor []string
	// Spawn runs each supervisor as a process, SupervisorPath (or
	// Supervisor[0] from PATH) with argv Supervisor + NAME in the scan
	// directory; false supervises every service inside this process, on
	// the Loop ([Service]).
	Spawn          bool
	SupervisorPath string
}

// Tree is s6-svscan's scanner (spec/supervise.md §8) on a [Loop]: it holds
// SCANDIR/.s6-svscan/lock, reads the control FIFO .s6-svscan/control,
// scans SCANDIR for service directories, runs one supervisor for each
// (and for its log/ subdirectory, with a pipe between them that the tree
// keeps open), restarts dead supervisors at most once a second, and ends
// as svscanctl asks. Supervisors are [Service]s of the same Loop, or
// supervise processes with [TreeConfig.Spawn].
//
// Signals are the owner's: the tree only reaps (the Loop's SIGCHLD); the
// owner maps its signals to [Tree.Command] (svscan: TERM is t, HUP is h,
// ...).
type Tree struct {
	env      *cli.Env
	dirs     sys.DirReader // the scan's listing
	at       string        // "" or "DIR/"
	dir      string        // as given
	name     string        // for messages
	max      int
	nameMax  int
	rescan   time.Duration
	argv     []string
	path     string
	spawnSup bool
	loop     *Loop

	lock       *os.File
	ctlR, ctlW int

	services []*treeService // in discovery order
	byKey    map[treeKey]*treeService
	nextScan time.Time // zero: none pending
	quitting bool      // t, i or q: waiting for the supervisors to exit
	pending  bool      // a supervisor's restart may be pending: deadlines look
	started  bool      // the first scan was done
	done     bool
	err      error
}

// treeKey identifies a service directory: a rename keeps it, a symlink to
// it is the same service.
type treeKey struct{ dev, ino uint64 }

// treeSup is one supervisor of a service: the service's own or its
// logger's.
type treeSup struct {
	pid     int      // a supervise process; 0 when not running
	svc     *Service // an in-process supervisor
	started time.Time
	next    time.Time // the pending (re)start; zero: none
}

// treeService is a service directory of SCANDIR and, if it has a log/
// subdirectory, its logger.
type treeService struct {
	name      string
	key       treeKey
	active    bool // present at the last scan: dead supervisors restart
	seen      bool // found by the scan in progress
	main      treeSup
	hasLog    bool // NAME/log was found and the pipe made
	logActive bool // NAME/log still a directory at the last scan
	log       treeSup
	pr, pw    *os.File // the pipe, both ends kept (nil once closed)
}

// OpenTree takes SCANDIR over (§8's start-up order): .s6-svscan/ made,
// its lock taken before anything else is touched (another scanner on the
// same directory is an exitcode error of code 100), the control FIFO
// opened with a kept write end, dangling symlinks removed. The tree is
// attached to loop: [Loop.Run] scans at once and runs it until it ends
// ([Tree.Done]), then returns; the owner may still set every hook of the
// Loop for its own fds, timers, signals and children. Nothing is started
// before Run.
func OpenTree(loop *Loop, c TreeConfig) (*Tree, error) {
	if loop.tree != nil {
		return nil, exitcode.Errorf(exitcode.Internal, "a loop runs one tree")
	}
	t := &Tree{
		env: c.Env, dir: c.Dir, max: c.Max, nameMax: c.NameMax, rescan: c.Rescan,
		argv: c.Supervisor, path: c.SupervisorPath, spawnSup: c.Spawn, loop: loop,
		ctlR: -1, ctlW: -1, byKey: map[treeKey]*treeService{},
	}
	if t.dir == "" {
		t.dir = "."
	}
	if t.name = c.Name; t.name == "" {
		t.name = t.dir
	}
	if t.dir != "." {
		t.at = t.dir + "/"
	}
	if t.max <= 0 {
		t.max = DefaultMax
	}
	if t.nameMax <= 0 {
		t.nameMax = DefaultNameMax
	}
	if len(t.argv) == 0 {
		t.argv = []string{"supervise"}
	}
	if err := t.setup(); err != nil {
		t.Close()
		return nil, err
	}
	loop.tree = t
	return t, nil
}

func (t *Tree) p(name string) string { return t.at + name }

func (t *Tree) setup() error {
	if err := unix.Mkdir(t.p(TreeCtlDir), 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", TreeCtlDir, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(t.p(TreeCtlDir), &st); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to stat %s: %w", TreeCtlDir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return exitcode.Errorf(exitcode.Usage, "%s exists and is not a directory", TreeCtlDir)
	}
	fd, err := sys.Open(t.p(treeLock), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CREAT, 0o600)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to open %s: %w", treeLock, sys.Errno(err))
	}
	t.lock = os.NewFile(uintptr(fd), treeLock)
	if err := lock.TryLock(t.lock, lock.Exclusive); errors.Is(err, lock.ErrBusy) {
		return exitcode.Errorf(exitcode.Usage, "another instance of svscan is already running on the same directory")
	} else if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to lock %s: %w", treeLock, sys.Errno(err))
	}
	if err := unix.Mkfifo(t.p(treeCtl), 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return exitcode.Errorf(exitcode.Sys, "unable to mkfifo %s: %w", treeCtl, err)
	}
	if err := unix.Stat(t.p(treeCtl), &st); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to stat %s: %w", treeCtl, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return exitcode.Errorf(exitcode.Usage, "%s exists and is not a FIFO", treeCtl)
	}
	if t.ctlR, err = sys.Open(t.p(treeCtl), unix.O_RDONLY|unix.O_NONBLOCK, 0); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to open %s for reading: %w", treeCtl, sys.Errno(err))
	}
	// A kept write end: the FIFO never reads EOF when a writer leaves.
	if t.ctlW, err = sys.Open(t.p(treeCtl), unix.O_WRONLY|unix.O_NONBLOCK, 0); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to open %s for writing: %w", treeCtl, sys.Errno(err))
	}
	t.removeDangling()
	return nil
}

// Close releases what the tree holds: the logger pipes, the control FIFO
// and the lock. Supervisors still running are not waited for: call it
// once [Tree.Done].
func (t *Tree) Close() {
	for _, sv := range t.services {
		sv.closePipe()
	}
	for _, fd := range []*int{&t.ctlR, &t.ctlW} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	if t.lock != nil {
		t.lock.Close()
		t.lock = nil
	}
	if t.loop != nil && t.loop.tree == t {
		t.loop.tree = nil
	}
}

// Done reports whether the tree has ended: b, or t/i/q once every
// supervisor is gone, or an unrecoverable failure ([Tree.Err]). s6-svscan
// then executes .s6-svscan/finish (or, after a failure, crash).
func (t *Tree) Done() bool { return t.done }

// Err is the unrecoverable failure that ended the tree, if any.
func (t *Tree) Err() error { return t.err }

// Quitting reports whether the tree is bringing its supervisors down (t,
// i or q).
func (t *Tree) Quitting() bool { return t.quitting }

func (t *Tree) fail(verb string, err error) {
	if !t.done {
		t.done, t.err = true, fmt.Errorf("unable to %s: %w", verb, err)
	}
}

// removeDangling unlinks the symlinks among non-dot entries that point
// nowhere (§8), left over from services removed while no scanner ran.
func (t *Tree) removeDangling() {
	ents, err := os.ReadDir(t.dir)
	if err != nil {
		t.env.Warnf("unable to read %s: %w", t.name, sys.Errno(err))
		return
	}
	for _, e := range ents {
		if e.Name()[0] == '.' || e.Type()&os.ModeSymlink == 0 {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(t.p(e.Name()), &st); !errors.Is(err, unix.ENOENT) {
			continue
		}
		if err := unix.Unlink(t.p(e.Name())); err != nil && !errors.Is(err, unix.ENOENT) {
			t.env.Warnf("unable to remove the dangling symlink %s: %w", e.Name(), err)
		}
	}
}

// Command applies one control byte as if read from .s6-svscan/control
// (§8): z reap, a scan, b end now, h scan and stop vanished services, n/N
// stop vanished services (loggers get SIGHUP/SIGTERM), t/i stop
// everything (loggers get SIGHUP, so they drain their pipe), q as t with
// SIGTERM for the loggers. The tree is done once every supervisor is gone
// after t, i or q. Another byte warns.
func (t *Tree) Command(c byte) {
	if t.done {
		return
	}
	switch c {
	case 'z':
		t.loop.reap()
	case 'a':
		if !t.quitting {
			t.scan()
		}
	case 'b':
		t.done = true
	case 'h':
		if !t.quitting {
			t.scan()
		}
		t.stopInactive(unix.SIGHUP)
	case 'n':
		t.stopInactive(unix.SIGHUP)
	case 'N':
		t.stopInactive(unix.SIGTERM)
	case 't', 'i':
		t.stopAll(unix.SIGHUP)
	case 'q':
		t.stopAll(unix.SIGTERM)
	default:
		t.env.Warnf("unknown control command: %s", printable(c))
	}
	t.checkDone()
}

// checkDone ends the tree once quitting and every supervisor is gone.
func (t *Tree) checkDone() {
	if t.quitting && !t.done && t.supervisors() == 0 {
		t.done = true
	}
}

// printable renders a control byte for a warning: itself if printable
// ASCII, else \xNN.
func printable(c byte) string {
	if c > ' ' && c < 0x7f {
		return string(rune(c))
	}
	return fmt.Sprintf("\\x%02x", c)
}

// readControl reads and applies control bytes until the FIFO is empty,
// in order.
func (t *Tree) readControl(buf []byte) {
	for !t.done {
		n, err := sys.Read(t.ctlR, buf)
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if err != nil || n == 0 {
			if err == nil {
				err = unix.EPIPE // a write end is kept: no EOF
			}
			t.fail("read "+treeCtl, sys.Errno(err))
			return
		}
		for _, c := range buf[:n] {
			t.Command(c)
		}
	}
}

// stopAll begins the end (t, i, q): SIGTERM to every service's
// supervisor, logSig to every logger's, and the tree's pipe ends closed.
func (t *Tree) stopAll(logSig unix.Signal) {
	t.quitting = true
	// A copy: an in-process supervisor may end at once and be forgotten.
	for _, sv := range append([]*treeService(nil), t.services...) {
		sv.main.next, sv.log.next = time.Time{}, time.Time{}
		sv.main.signal(unix.SIGTERM)
		sv.log.signal(logSig)
		sv.closePipe()
	}
}

// stopInactive sends SIGTERM to the supervisors of vanished services and
// logSig to their loggers', and closes the tree's write end of their
// pipes so that the logger sees EOF once the service's side is gone.
func (t *Tree) stopInactive(logSig unix.Signal) {
	for _, sv := range append([]*treeService(nil), t.services...) {
		if sv.active {
			continue
		}
		sv.main.signal(unix.SIGTERM)
		sv.log.signal(logSig)
		sv.closeWrite()
	}
}

// supervisors counts the supervisors still running.
func (t *Tree) supervisors() int {
	n := 0
	for _, sv := range t.services {
		n += boolInt(sv.main.alive()) + boolInt(sv.log.alive())
	}
	return n
}

// mayPend notes that a supervisor's restart is pending: until then, a
// turn looks at no service for the tree's timers.
func (t *Tree) mayPend() { t.pending = true }

// deadline is the nearest pending restart or scan, zero if none.
func (t *Tree) deadline() time.Time {
	if t.quitting {
		return time.Time{}
	}
	next := t.nextScan
	if !t.pending {
		return next
	}
	earlier := func(x time.Time) {
		if !x.IsZero() && (next.IsZero() || x.Before(next)) {
			next = x
		}
	}
	for _, sv := range t.services {
		earlier(sv.main.next)
		earlier(sv.log.next)
	}
	return next
}

// deadlines acts on the restarts and the scan that are due.
func (t *Tree) deadlines() {
	if t.quitting || t.done {
		return
	}
	now := time.Now()
	if !t.pending {
		if !t.nextScan.IsZero() && !now.Before(t.nextScan) {
			t.scan()
		}
		return
	}
	t.pending = false
	for _, sv := range t.services {
		if !sv.log.next.IsZero() && !now.Before(sv.log.next) {
			sv.log.next = time.Time{}
			if sv.active && sv.logActive && sv.hasLog && !sv.log.alive() {
				t.spawn(sv, true)
			}
		}
		if !sv.main.next.IsZero() && !now.Before(sv.main.next) {
			sv.main.next = time.Time{}
			if sv.active && !sv.main.alive() {
				t.spawn(sv, false)
			}
		}
		if !sv.log.next.IsZero() || !sv.main.next.IsZero() {
			t.pending = true
		}
	}
	if !t.nextScan.IsZero() && !now.Before(t.nextScan) {
		t.scan()
	}
}

func (sv *treeService) running() bool { return sv.main.alive() || sv.log.alive() }

func (su *treeSup) alive() bool { return su.pid != 0 || su.svc != nil }

// signal sends sg to the supervisor, as a signal or, in-process, as the
// same event.
func (su *treeSup) signal(sg unix.Signal) {
	switch {
	case su.svc != nil:
		su.svc.Signal(sg)
	case su.pid != 0:
		_ = sys.Kill(su.pid, sg)
	}
}

func (sv *treeService) closePipe() {
	sv.closeWrite()
	if sv.pr != nil {
		sv.pr.Close()
		sv.pr = nil
	}
}

func (sv *treeService) closeWrite() {
	if sv.pw != nil {
		sv.pw.Close()
		sv.pw = nil
	}
}

// scan reads SCANDIR (§8): every entry not starting with '.', at most
// NameMax long, that stat(2)s as a directory is a service; new ones and
// active ones without a supervisor get one now; vanished ones become
// inactive.
func (t *Tree) scan() {
	t.started = true
	now := time.Now()
	t.nextScan = time.Time{}
	if t.rescan > 0 {
		t.nextScan = now.Add(t.rescan)
	}
	ents, err := t.dirs.Names(t.dir)
	if err != nil {
		t.env.Warnf("unable to read %s: %w", t.name, sys.Errno(err))
		t.scanAt(now.Add(readdirRetry))
		return
	}
	for _, sv := range t.services {
		sv.seen = false
	}
	// Max counts supervised directories, loggers included: the services
	// known already (vanished ones whose supervisors still run too), then
	// each new one.
	count, tooMany := 0, false
	for _, sv := range t.services {
		count += 1 + boolInt(sv.hasLog)
	}
	for _, name := range ents {
		if name[0] == '.' || len(name) > t.nameMax {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(t.p(name), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		k := treeKey{dev: st.Dev, ino: st.Ino}
		sv := t.byKey[k]
		if sv == nil {
			need := 1 + boolInt(isDir(t.p(name+"/"+logSubdirName)))
			if count+need > t.max {
				tooMany = true
				continue
			}
			count += need
			sv = &treeService{name: name, key: k}
			t.byKey[k] = sv
			t.services = append(t.services, sv)
		}
		sv.seen = true
	}
	if tooMany {
		t.env.Warnf("unable to supervise more than %d services; rescanning in 60 seconds", t.max)
		t.scanAt(now.Add(tooManyRetry))
	}
	// Services without log/ first: they need no pipe, so when fds run
	// short (EMFILE) they still all start; the others are retried when
	// fds come back (pipeRetry, treeSpawn).
	var logged []*treeService
	for _, sv := range t.services {
		sv.active = sv.seen
		switch {
		case !sv.active:
		case sv.hasLog || isDir(t.p(sv.name+"/"+logSubdirName)):
			logged = append(logged, sv)
		default:
			t.activate(sv)
		}
	}
	for _, sv := range logged {
		t.activate(sv)
	}
}

// activate starts what an active service lacks: the logger pipe if
// NAME/log appeared, the logger's supervisor, then the service's (the
// pipe must exist before the service's supervisor gets it as stdout).
func (t *Tree) activate(sv *treeService) {
	sv.logActive = isDir(t.p(sv.name + "/" + logSubdirName))
	made := false
	if sv.logActive && !sv.hasLog {
		r, w, err := pipe()
		if err != nil {
			t.env.Warnf("unable to create a pipe for %s: %w", sv.name, err)
			t.scanAt(time.Now().Add(retryAfter(err, pipeRetry)))
			return
		}
		sv.pr, sv.pw, sv.hasLog, made = r, w, true, true
	}
	if sv.hasLog && sv.logActive && !sv.log.alive() && sv.log.next.IsZero() {
		t.spawn(sv, true)
	}
	if !sv.main.alive() && sv.main.next.IsZero() {
		t.spawn(sv, false)
	}
	if made && !sv.running() {
		// Neither supervisor could start (out of fds, most likely): the
		// new pipe would only hold two fds that others need. It is made
		// again at the retry.
		sv.closePipe()
		sv.hasLog = false
		sv.main.next, sv.log.next = time.Time{}, time.Time{}
		t.scanAt(time.Now().Add(treeThrottle))
	}
}

// spawn starts the supervisor of sv, or of its logger, with the logger
// pipe as the service's stdout (the logger's stdin) and the process's
// other stdio. A failure warns and is retried in 10 s.
func (t *Tree) spawn(sv *treeService, logger bool) {
	su, name := &sv.main, sv.name
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	if logger {
		su, name = &sv.log, sv.name+"/"+logSubdirName
		files[0] = sv.pr
	} else if sv.pw != nil {
		files[1] = sv.pw
	}
	su.next = time.Time{}
	if !t.spawnSup {
		env := &cli.Env{Name: t.argv[0] + " " + t.p(name), Stdout: t.env.Stdout, Stderr: t.env.Stderr}
		svc, err := Open(t.loop, Config{Env: env, Dir: t.p(name), Applet: t.argv[0], Stdio: files})
		if err != nil {
			t.env.Warnf("unable to supervise %s: %s", name, cli.Message(err))
			su.next = time.Now().Add(retryAfter(err, treeSpawn))
			t.mayPend()
			return
		}
		su.svc = svc
		su.started = time.Now()
		return
	}
	argv := append(append([]string(nil), t.argv...), name)
	dir := ""
	if t.at != "" {
		dir = t.dir
	}
	pid, err := proc.Spawn(argv, proc.Attr{Path: t.path, Files: files, Dir: dir})
	if err != nil {
		t.env.Warnf("unable to spawn %s for %s: %w", t.argv[len(t.argv)-1], name, sys.Errno(err))
		su.next = time.Now().Add(retryAfter(err, treeSpawn))
		t.mayPend()
		return
	}
	su.pid = pid
	su.started = time.Now()
}

// retryAfter is the delay before a failed start is tried again: normal
// (§8), but a second when the process is out of fds (EMFILE, ENFILE), so
// that what could not start starts soon after fds come back (issue 20
// item 4) rather than up to 10 s later.
func retryAfter(err error, normal time.Duration) time.Duration {
	if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
		return treeThrottle
	}
	return normal
}

// reaped handles the death of a child: it reports whether pid was one of
// the tree's supervisor processes.
func (t *Tree) reaped(pid int) bool {
	for _, sv := range t.services {
		var su *treeSup
		switch pid {
		case sv.main.pid:
			su = &sv.main
		case sv.log.pid:
			su = &sv.log
		default:
			continue
		}
		su.pid = 0
		t.supervisorGone(sv, su)
		return true
	}
	return false
}

// serviceEnded handles the end of an in-process supervisor: it reports
// whether svc was one of the tree's.
func (t *Tree) serviceEnded(svc *Service) bool {
	for _, sv := range t.services {
		for _, su := range []*treeSup{&sv.main, &sv.log} {
			if su.svc == svc {
				if err := svc.Err(); err != nil {
					t.env.Warnf("supervision of %s ended: %s", svc.Dir(), cli.Message(err))
				}
				su.svc = nil
				t.supervisorGone(sv, su)
				return true
			}
		}
	}
	return false
}

// supervisorGone handles the end of a supervisor: it is restarted no
// sooner than a second after its last start if its service is active; a
// vanished service is forgotten once its supervisors are gone.
func (t *Tree) supervisorGone(sv *treeService, su *treeSup) {
	logger := su == &sv.log
	switch {
	case t.quitting:
	case sv.active && (!logger || sv.logActive):
		su.next = maxTime(time.Now(), su.started.Add(treeThrottle))
		t.mayPend()
	case !logger:
		// The logger reads to EOF once the service's side is gone.
		sv.closeWrite()
	}
	if !sv.active && !sv.running() {
		t.forget(sv)
	}
	t.checkDone()
}

// forget drops an inactive service whose supervisors are all gone.
func (t *Tree) forget(sv *treeService) {
	sv.closePipe()
	delete(t.byKey, sv.key)
	for i, x := range t.services {
		if x == sv {
			t.services = append(t.services[:i], t.services[i+1:]...)
			break
		}
	}
}

// scanAt makes the next scan happen no later than at.
func (t *Tree) scanAt(at time.Time) {
	if t.nextScan.IsZero() || at.Before(t.nextScan) {
		t.nextScan = at
	}
}

func isDir(name string) bool {
	var st unix.Stat_t
	return unix.Stat(name, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// pipe returns a close-on-exec pipe (STYLE.md rule 8): the supervisors get
// its ends only through their fd tables.
func pipe() (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(p[0]), "logger pipe (read)"), os.NewFile(uintptr(p[1]), "logger pipe (write)"), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
