//go:build linux

package rc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/sys"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// Live is an open live directory (spec/rc.md §3): its paths, its current
// generation's db and state, and the lock rc holds on it.
type Live struct {
	Path    string // LIVE
	Gen     string // the generation directory LIVE points to
	DB      *DB
	State   map[string]Entry
	Scandir string
	Prefix  string
	Environ []string
	Umask   int
	lockf   *os.File
	writes  int // state writes, for the crash test hook
	killAt  int
	// owner is the uid and gid oneshots run as: set when root acts on a
	// tree that belongs to another uid (spec/rc.md §5.4).
	owner *[2]int
}

// Entry is one service's line of the state file.
type Entry struct {
	S     byte // U D u d
	PID   int
	Start uint64 // field 22 of /proc/PID/stat
}

const stateHeader = "gotools-rc-state 1"

// Servicedirs is LIVE:servicedirs, where live servicedirs never move.
func Servicedirs(live string) string { return live + ":servicedirs" }

// ServiceDir is the live servicedir of longrun name.
func (l *Live) ServiceDir(name string) string {
	return filepath.Join(Servicedirs(l.Path), name)
}

// lockLive takes the lock of live: exclusive for writers, shared for
// readers; block waits.
func lockLive(live string, exclusive, block bool) (*os.File, error) {
	path := live + ":lock"
	var f *os.File
	var err error
	k := lock.Shared
	if exclusive {
		k = lock.Exclusive
		f, err = lock.OpenExclusive(path)
	} else {
		f, err = lock.OpenShared(path)
	}
	if err != nil {
		return nil, exitcode.New(exitcode.Sys, err)
	}
	if block {
		err = lock.Lock(f, k)
	} else {
		err = lock.TryLock(f, k)
	}
	if errors.Is(err, lock.ErrBusy) {
		f.Close()
		return nil, exitcode.Errorf(exitcode.Sys, "unable to lock %s: %w (another rc is running; -b waits)", live, unix.EAGAIN)
	}
	if err != nil {
		f.Close()
		return nil, exitcode.Errorf(exitcode.Sys, "unable to lock %s: %w", live, sys.Errno(err))
	}
	return f, nil
}

// Open locks and reads the live directory live.
func Open(live string, exclusive, block bool) (*Live, error) {
	if _, err := os.Lstat(live); err != nil {
		return nil, exitcode.Errorf(CodeBadLive, "unable to read live directory %s: %w", live, sys.Errno(err))
	}
	f, err := lockLive(live, exclusive, block)
	if err != nil {
		return nil, err
	}
	l, err := readLive(live)
	if err != nil {
		f.Close()
		return nil, err
	}
	l.lockf = f
	if err := l.checkOwner(exclusive); err != nil {
		f.Close()
		return nil, err
	}
	if n, err := strconv.Atoi(os.Getenv("GOTOOLS_RC_KILL_AFTER_WRITE")); err == nil && n > 0 {
		l.killAt = n
	}
	return l, nil
}

// checkOwner refuses a tree that belongs to another uid, unless root;
// a writer (exclusive) run by root on another uid's tree prepares the
// drop to that uid for oneshots.
func (l *Live) checkOwner(exclusive bool) error {
	var st unix.Stat_t
	if err := unix.Stat(Servicedirs(l.Path), &st); err != nil {
		return exitcode.Errorf(CodeBadLive, "unable to stat %s: %w", Servicedirs(l.Path), err)
	}
	uid := os.Geteuid()
	if uid != 0 && int(st.Uid) != uid {
		return exitcode.Errorf(exitcode.Sys, "unable to act on %s: %w (owned by uid %d)", l.Path, unix.EPERM, st.Uid)
	}
	if uid == 0 && st.Uid != 0 && exclusive {
		l.owner = &[2]int{int(st.Uid), int(st.Gid)}
		// The script-mode file through which oneshots drop to the owner.
		f := scriptFile(selfPath(), "exec-as", strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid)))
		if err := writeFile(filepath.Join(l.Gen, "exec-as"), f, 0o644); err != nil {
			return exitcode.New(exitcode.Sys, err)
		}
	}
	return nil
}

// Close releases the lock.
func (l *Live) Close() error {
	if l.lockf != nil {
		return l.lockf.Close()
	}
	return nil
}

// readLive reads the generation LIVE points to.
func readLive(live string) (*Live, error) {
	bad := func(what string, err error) error {
		return exitcode.Errorf(CodeBadLive, "invalid live directory %s: %s: %w", live, what, sys.Errno(err))
	}
	target, err := os.Readlink(live)
	if err != nil {
		return nil, bad("not a gotools rc live directory", err)
	}
	gen := target
	if !filepath.IsAbs(gen) {
		gen = filepath.Join(filepath.Dir(live), gen)
	}
	l := &Live{Path: live, Gen: gen}
	dbPath := filepath.Join(gen, "db")
	b, err := os.ReadFile(dbPath)
	if err != nil {
		return nil, bad("db", err)
	}
	if l.DB, err = ParseDB(b, dbPath); err != nil {
		return nil, err
	}
	if l.State, err = readState(filepath.Join(gen, "state"), l.DB); err != nil {
		return nil, err
	}
	if l.Scandir, err = os.Readlink(filepath.Join(gen, "scandir")); err != nil {
		return nil, bad("scandir", err)
	}
	if b, err = os.ReadFile(filepath.Join(gen, "prefix")); err != nil {
		return nil, bad("prefix", err)
	}
	l.Prefix = string(b)
	if b, err = os.ReadFile(filepath.Join(gen, "environ")); err != nil {
		return nil, bad("environ", err)
	}
	for _, e := range bytes.Split(b, []byte{0}) {
		if len(e) > 0 {
			l.Environ = append(l.Environ, string(e))
		}
	}
	if b, err = os.ReadFile(filepath.Join(gen, "umask")); err != nil {
		return nil, bad("umask", err)
	}
	u, err := strconv.ParseUint(strings.TrimSpace(string(b)), 8, 12)
	if err != nil {
		return nil, bad("umask", unix.EINVAL)
	}
	l.Umask = int(u)
	return l, nil
}

// readState reads a state file; missing services count D.
func readState(path string, db *DB) (map[string]Entry, error) {
	st := map[string]Entry{}
	for n := range db.Services {
		st[n] = Entry{S: 'D'}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, exitcode.Errorf(CodeBadLive, "unable to read %s: %w", path, sys.Errno(err))
	}
	return parseState(b, path, st, db)
}

// parseState reads the text of a state file into st.
func parseState(b []byte, path string, st map[string]Entry, db *DB) (map[string]Entry, error) {
	bad := func(n int) error { return exitcode.Errorf(CodeBadLive, "invalid state file %s: line %d", path, n) }
	lines := strings.Split(string(b), "\n")
	if len(lines) < 2 || lines[0] != stateHeader || lines[len(lines)-1] != "" {
		return nil, bad(1)
	}
	for i, line := range lines[1 : len(lines)-1] {
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 || len(f[0]) != 1 || !strings.Contains("UDud", f[0]) {
			return nil, bad(i + 2)
		}
		pid, err1 := strconv.Atoi(f[1])
		start, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || pid < 0 {
			return nil, bad(i + 2)
		}
		if _, ok := db.Services[f[3]]; ok {
			st[f[3]] = Entry{S: f[0][0], PID: pid, Start: start}
		}
	}
	return st, nil
}

// marshalState renders a state map.
func marshalState(st map[string]Entry) []byte {
	names := make([]string, 0, len(st))
	for n := range st {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString(stateHeader + "\n")
	for _, n := range names {
		e := st[n]
		fmt.Fprintf(&b, "%c %d %d %s\n", e.S, e.PID, e.Start, n)
	}
	return b.Bytes()
}

// writeFile writes path atomically: path.new, then rename.
func writeFile(path string, b []byte, mode fs.FileMode) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("unable to write %s: %w", tmp, sys.Errno(err))
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("unable to rename %s: %w", tmp, sys.Errno(err))
	}
	return nil
}

// SaveState writes the state file (spec/rc.md §3.4 rule 1).
func (l *Live) SaveState() error {
	if err := writeFile(filepath.Join(l.Gen, "state"), marshalState(l.State), 0o644); err != nil {
		return exitcode.New(exitcode.Sys, err)
	}
	l.writes++
	if l.killAt > 0 && l.writes == l.killAt {
		_ = unix.Kill(os.Getpid(), unix.SIGKILL)
		select {}
	}
	return nil
}

// randSuffix returns 6 random [A-Za-z0-9].
func randSuffix() string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	for i := range b {
		b[i] = chars[rand.IntN(len(chars))]
	}
	return string(b)
}

// buildServicedir builds the live servicedir of s offline in dir
// (spec/rc.md §3.2): a temporary name, then a rename.
func buildServicedir(sds string, s *Service, self, live string) error {
	final := filepath.Join(sds, s.Name)
	tmp := filepath.Join(sds, "."+s.Name+":"+randSuffix())
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", tmp, sys.Errno(err))
	}
	err := writeServiceFiles(tmp, s, self, live)
	if err == nil {
		err = writeFile(filepath.Join(tmp, "down"), nil, 0o644)
	}
	if err == nil {
		err = mkEvent(tmp)
	}
	if err == nil {
		if rerr := os.Rename(tmp, final); rerr != nil {
			err = fmt.Errorf("unable to rename %s to %s: %w", tmp, final, sys.Errno(rerr))
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
		return exitcode.New(exitcode.Sys, err)
	}
	return nil
}

// mkEvent makes dir/event as supervise would (mode 03730, gid = egid).
func mkEvent(dir string) error {
	ev := filepath.Join(dir, "event")
	if _, err := ftrig.MkFifodir(ev); err != nil {
		return err
	}
	return nil
}

// writeServiceFiles writes s's files into dir.
func writeServiceFiles(dir string, s *Service, self, live string) error {
	files := s.Files
	if s.Name == FdholderName {
		files = []File{
			{Name: "run", Mode: 0o755, Data: scriptFile(self, "fdholder", live)},
			{Name: "notification-fd", Mode: 0o644, Data: []byte("3\n")},
		}
	} else if s.ProducerFor != "" || s.ReadsPipe {
		files = pipeFiles(s, self)
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		var err error
		switch f.Mode.Type() {
		case 0:
			err = os.WriteFile(path, f.Data, f.Mode.Perm())
			if err == nil {
				err = os.Chmod(path, f.Mode.Perm()|f.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
			}
		case fs.ModeDir:
			err = os.Mkdir(path, f.Mode.Perm())
			if err == nil {
				err = os.Chmod(path, f.Mode.Perm())
			}
		case fs.ModeSymlink:
			err = os.Symlink(string(f.Data), path)
		case fs.ModeNamedPipe:
			err = unix.Mkfifo(path, uint32(f.Mode.Perm()))
		}
		if err == nil && os.Geteuid() == 0 && (f.UID != 0 || f.GID != 0) {
			err = os.Lchown(path, f.UID, f.GID)
		}
		if err != nil {
			return fmt.Errorf("unable to write %s: %w", path, sys.Errno(err))
		}
	}
	return nil
}

// pipeFiles are the run and finish of a pipelined longrun: script mode
// fetches its pipe ends from the holder, then execs the user's files.
func pipeFiles(s *Service, self string) []File {
	var out []File
	var args []string
	if s.ReadsPipe {
		args = append(args, "-r", s.Name)
	}
	if s.ProducerFor != "" {
		args = append(args, "-w", s.ProducerFor)
	}
	for _, f := range s.Files {
		switch f.Name {
		case "run", "finish":
			out = append(out, File{Name: f.Name + ".user", Mode: f.Mode, Data: f.Data},
				File{Name: f.Name, Mode: 0o755, Data: scriptFile(self, append(append([]string{"pipe-run"}, args...), "./"+f.Name+".user")...)})
		default:
			out = append(out, f)
		}
	}
	return out
}

// scriptFile is a script-mode file (spec/rc.md §8).
func scriptFile(self string, directive ...string) []byte {
	return []byte("#!" + self + " rc\n" + lineOf(directive) + "\n")
}

// removeGarbage removes what a killed rc may leave (spec/rc.md §3.4 rule
// 4): generations LIVE does not point to, .NAME:XXXXXX dirs, *.new files.
func removeGarbage(live, keepGen string) {
	dir, base := filepath.Split(live)
	ents, _ := os.ReadDir(filepath.Clean(dir))
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, base+":g:") && filepath.Join(dir, n) != keepGen {
			os.RemoveAll(filepath.Join(dir, n))
		}
		if n == base+".new" {
			os.Remove(filepath.Join(dir, n))
		}
	}
	sds := Servicedirs(live)
	ents, _ = os.ReadDir(sds)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ":") {
			os.RemoveAll(filepath.Join(sds, e.Name()))
		}
	}
	if keepGen != "" {
		ents, _ = os.ReadDir(keepGen)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".new") {
				os.Remove(filepath.Join(keepGen, e.Name()))
			}
		}
	}
}

// procStart returns field 22 of /proc/PID/stat (the start time), 0 if
// the process is gone.
func procStart(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// Record sets the recorded state of services without running anything
// (init records fix-attrs and legacy-cont-init up, init.md §5.1 step 7).
// It writes the state file; up false records D.
func (l *Live) Record(up bool, names ...string) error {
	s := byte('D')
	if up {
		s = 'U'
	}
	for _, n := range names {
		if l.DB.Services[n] == nil {
			return exitcode.Errorf(3, "unknown service name %s", n)
		}
		l.State[n] = Entry{S: s}
	}
	return l.SaveState()
}
