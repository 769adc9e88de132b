package svscan

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/supervisor"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Delays of spec/supervise.md §8.
const (
	throttle      = time.Second      // between two starts of one supervisor
	spawnRetry    = 10 * time.Second // after a failed spawn
	tooManyRetry  = 60 * time.Second // after finding more than -C services
	readdirRetry  = 5 * time.Second  // after a failed opendir/readdir
	pipeRetry     = 3 * time.Second  // after a failed pipe(2)
	logSubdirName = "log"
)

// key identifies a service directory: a rename keeps it, a symlink to it
// is the same service.
type key struct{ dev, ino uint64 }

// sup is one supervisor process of a service: the service's own or its
// logger's.
type sup struct {
	pid     int                 // 0 when not running
	svc     *supervisor.Service // --one-process: the in-process supervisor
	started time.Time           // the last spawn, for the throttle
	next    time.Time           // the pending (re)start; zero: none
}

// service is a service directory of SCANDIR and, if it has a log/
// subdirectory, its logger.
type service struct {
	name   string
	key    key
	active bool // present at the last scan: dead supervisors restart
	seen   bool // found by the scan in progress
	main   sup
	// The logger: hasLog once NAME/log was found and the pipe made.
	hasLog    bool
	logActive bool // NAME/log still a directory at the last scan
	log       sup
	pr, pw    *os.File // the pipe, both ends kept by svscan (nil once closed)
}

func (sv *service) running() bool { return sv.main.alive() || sv.log.alive() }

// alive reports whether the supervisor runs: a process, or an in-process
// supervisor with --one-process.
func (su *sup) alive() bool { return su.pid != 0 || su.svc != nil }

// signal sends sg to the supervisor, as a signal or, in-process, as the
// same event.
func (su *sup) signal(sg unix.Signal) {
	switch {
	case su.svc != nil:
		su.svc.Signal(sg)
	case su.pid != 0:
		_ = sys.Kill(su.pid, sg)
	}
}

func (sv *service) closePipe() {
	sv.closeWrite()
	if sv.pr != nil {
		sv.pr.Close()
		sv.pr = nil
	}
}

func (sv *service) closeWrite() {
	if sv.pw != nil {
		sv.pw.Close()
		sv.pw = nil
	}
}

// scan reads SCANDIR (§8): every entry not starting with '.', at most
// namemax long, that stat(2)s as a directory is a service; new ones and
// active ones without a supervisor get one now; vanished ones become
// inactive.
func (s *scanner) scan() {
	now := time.Now()
	s.nextScan = time.Time{}
	if s.rescan > 0 {
		s.nextScan = now.Add(s.rescan)
	}
	ents, err := readNames()
	if err != nil {
		s.env.Warnf("unable to read %s: %w", s.dir, sys.Errno(err))
		s.scanAt(now.Add(readdirRetry))
		return
	}
	for _, sv := range s.services {
		sv.seen = false
	}
	// -C counts supervised directories, loggers included: the services
	// known already (vanished ones whose supervisors still run too), then
	// each new one.
	count, tooMany := 0, false
	for _, sv := range s.services {
		count += 1 + boolInt(sv.hasLog)
	}
	for _, name := range ents {
		if name[0] == '.' || len(name) > s.nameMax {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(name, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		k := key{dev: st.Dev, ino: st.Ino}
		sv := s.byKey[k]
		if sv == nil {
			need := 1 + boolInt(isDir(name+"/"+logSubdirName))
			if count+need > s.max {
				tooMany = true
				continue
			}
			count += need
			sv = &service{name: name, key: k}
			s.byKey[k] = sv
			s.services = append(s.services, sv)
		}
		sv.seen = true
	}
	if tooMany {
		s.env.Warnf("unable to supervise more than %d services; rescanning in 60 seconds", s.max)
		s.scanAt(now.Add(tooManyRetry))
	}
	for _, sv := range s.services {
		sv.active = sv.seen
		if sv.active {
			s.activate(sv)
		}
	}
}

// activate starts what an active service lacks: the logger pipe if
// NAME/log appeared, the logger's supervisor, then the service's (the
// pipe must exist before the service's supervisor gets it as stdout).
func (s *scanner) activate(sv *service) {
	sv.logActive = isDir(sv.name + "/" + logSubdirName)
	if sv.logActive && !sv.hasLog {
		r, w, err := pipe()
		if err != nil {
			s.env.Warnf("unable to create a pipe for %s: %w", sv.name, err)
			s.scanAt(time.Now().Add(pipeRetry))
			return
		}
		sv.pr, sv.pw, sv.hasLog = r, w, true
	}
	if sv.hasLog && sv.logActive && !sv.log.alive() && sv.log.next.IsZero() {
		s.spawn(sv, true)
	}
	if !sv.main.alive() && sv.main.next.IsZero() {
		s.spawn(sv, false)
	}
}

// spawn starts the supervisor of sv, or of its logger: "supervise NAME"
// (or "supervise NAME/log") in SCANDIR, with the logger pipe as stdout
// (stdin for the logger) and svscan's other stdio. A failure warns and is
// retried in 10 s.
func (s *scanner) spawn(sv *service, logger bool) {
	su, name := &sv.main, sv.name
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	if logger {
		su, name = &sv.log, sv.name+"/"+logSubdirName
		files[0] = sv.pr
	} else if sv.pw != nil {
		files[1] = sv.pw
	}
	su.next = time.Time{}
	if s.tree != nil {
		s.open(su, name, files)
		return
	}
	argv := append(append([]string(nil), s.argv...), name)
	pid, err := proc.Spawn(argv, proc.Attr{Path: s.path, Files: files})
	if err != nil {
		s.env.Warnf("unable to spawn %s for %s: %w", s.argv[len(s.argv)-1], name, sys.Errno(unwrapSpawn(err)))
		su.next = time.Now().Add(spawnRetry)
		return
	}
	su.pid = pid
	su.started = time.Now()
}

// unwrapSpawn keeps the errno of a proc.Spawn error, whose own text names
// the program again.
func unwrapSpawn(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// reaped handles the death of a child: a supervisor of an active service
// is restarted no sooner than a second after its last start; a vanished
// service is forgotten once its supervisors are gone. Other children
// (orphans, .s6-svscan/SIGNAME programs) need nothing more than the reap.
func (s *scanner) reaped(pid int) {
	for _, sv := range s.services {
		var su *sup
		switch pid {
		case sv.main.pid:
			su = &sv.main
		case sv.log.pid:
			su = &sv.log
		default:
			continue
		}
		su.pid = 0
		s.supervisorGone(sv, su)
		return
	}
}

// supervisorGone handles the end of a supervisor, a process or an
// in-process one: it is restarted no sooner than a second after its last
// start if its service is active; a vanished service is forgotten once
// its supervisors are gone.
func (s *scanner) supervisorGone(sv *service, su *sup) {
	{
		logger := su == &sv.log
		switch {
		case s.quitting:
		case sv.active && (!logger || sv.logActive):
			su.next = maxTime(time.Now(), su.started.Add(throttle))
		case !logger:
			// The logger reads to EOF once the service's side is gone.
			sv.closeWrite()
		}
		if !sv.active && !sv.running() {
			s.forget(sv)
		}
	}
}

// forget drops an inactive service whose supervisors are all gone.
func (s *scanner) forget(sv *service) {
	sv.closePipe()
	delete(s.byKey, sv.key)
	for i, x := range s.services {
		if x == sv {
			s.services = append(s.services[:i], s.services[i+1:]...)
			break
		}
	}
}

// stopInactive sends SIGTERM to the supervisors of vanished services and
// logSig to their loggers' (n: SIGHUP, so the logger drains the pipe; N:
// SIGTERM), and closes svscan's write end of their pipes so that the
// logger sees EOF once the service's side is gone.
func (s *scanner) stopInactive(logSig unix.Signal) {
	// A copy: an in-process supervisor may end at once and be forgotten.
	for _, sv := range append([]*service(nil), s.services...) {
		if sv.active {
			continue
		}
		sv.main.signal(unix.SIGTERM)
		sv.log.signal(logSig)
		sv.closeWrite()
	}
}

// scanAt makes the next scan happen no later than t.
func (s *scanner) scanAt(t time.Time) {
	if s.nextScan.IsZero() || t.Before(s.nextScan) {
		s.nextScan = t
	}
}

// readNames returns the names in the working directory (SCANDIR).
func readNames() ([]string, error) {
	f, err := os.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
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
