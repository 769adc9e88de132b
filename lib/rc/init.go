//go:build linux

package rc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/sys"
)

// maxScanName is svscan's default -L: the longest name in a scan directory.
const maxScanName = 251

// selfPath is the gotools binary, for script-mode files.
func selfPath() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return "/proc/self/exe"
}

// Init creates the live directory o.Live over svscan's scandir from
// sources (rc init, spec/rc.md §6).
func Init(scandir string, sources []string, o Options) error {
	scandir, err := filepath.Abs(scandir)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to resolve %s: %w", scandir, sys.Errno(err))
	}
	live := o.Live
	db, err := Check(sources, o)
	if err != nil {
		return err
	}
	for _, n := range db.Names() {
		if db.Services[n].Type == Longrun && len(o.Prefix)+len(n) > maxScanName {
			return exitcode.Errorf(1, "%s: name too long for the scan directory", n)
		}
	}
	for c := range db.Pipes {
		if len(c) > 243 {
			return exitcode.Errorf(1, "%s: name too long for the scan directory", c)
		}
	}
	db.Self = selfPath()
	if err := os.MkdirAll(filepath.Dir(live), 0o755); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", filepath.Dir(live), sys.Errno(err))
	}
	lf, err := lockLive(live, true, o.Block)
	if err != nil {
		return err
	}
	defer lf.Close()
	sds := Servicedirs(live)
	if _, err := os.Lstat(live); err == nil {
		if supervised(sds) {
			return exitcode.Errorf(1, "%s is live: use rc update", live)
		}
		o.warn("removing stale live directory %s", live)
		removeLive(live, scandir)
	}
	removeGarbage(live, "")
	environ := o.Environ
	if environ == nil {
		environ = os.Environ()
	}
	umask := unix.Umask(0)
	unix.Umask(umask)
	l := &Live{Path: live, DB: db, Scandir: scandir, Prefix: o.Prefix, Environ: environ, Umask: umask, State: map[string]Entry{}}
	for n := range db.Services {
		l.State[n] = Entry{S: 'D'}
	}
	ok := false
	defer func() {
		if !ok {
			removeLive(live, scandir)
		}
	}()
	if err := os.Mkdir(sds, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", sds, sys.Errno(err))
	}
	var longruns []string
	for _, n := range db.Names() {
		if s := db.Services[n]; s.Type == Longrun {
			if err := buildServicedir(sds, s, db.Self, live); err != nil {
				return err
			}
			longruns = append(longruns, n)
		}
	}
	if err := l.writeGeneration(); err != nil {
		return err
	}
	if err := l.switchTo(); err != nil {
		return err
	}
	if err := l.startSupervisors(longruns, nil, o); err != nil {
		return err
	}
	ok = true
	return nil
}

// writeGeneration writes a new generation directory for l and sets l.Gen.
func (l *Live) writeGeneration() error {
	dir, base := filepath.Split(l.Path)
	gen := filepath.Join(dir, base+":g:"+randSuffix())
	if err := os.Mkdir(gen, 0o755); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to mkdir %s: %w", gen, sys.Errno(err))
	}
	var env []byte
	for _, e := range l.Environ {
		env = append(append(env, e...), 0)
	}
	files := []struct {
		name string
		data []byte
	}{
		{"db", l.DB.Marshal()},
		{"state", marshalState(l.State)},
		{"environ", env},
		{"umask", []byte(fmt.Sprintf("%04o\n", l.Umask))},
		{"prefix", []byte(l.Prefix)},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(gen, f.name), f.data, 0o644); err != nil {
			os.RemoveAll(gen)
			return exitcode.New(exitcode.Sys, err)
		}
	}
	for _, ln := range [][2]string{{l.Scandir, "scandir"}, {"../" + base + ":servicedirs", "servicedirs"}} {
		if err := os.Symlink(ln[0], filepath.Join(gen, ln[1])); err != nil {
			os.RemoveAll(gen)
			return exitcode.Errorf(exitcode.Sys, "unable to symlink %s: %w", filepath.Join(gen, ln[1]), sys.Errno(err))
		}
	}
	l.Gen = gen
	return nil
}

// switchTo points LIVE at l.Gen atomically.
func (l *Live) switchTo() error {
	tmp := l.Path + ".new"
	os.Remove(tmp)
	if err := os.Symlink(filepath.Base(l.Gen), tmp); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to symlink %s: %w", tmp, sys.Errno(err))
	}
	if err := os.Rename(tmp, l.Path); err != nil {
		os.Remove(tmp)
		return exitcode.Errorf(exitcode.Sys, "unable to rename %s to %s: %w", tmp, l.Path, sys.Errno(err))
	}
	return nil
}

// supervised reports whether a supervisor holds the lock of some
// servicedir in sds.
func supervised(sds string) bool {
	ents, _ := os.ReadDir(sds)
	for _, e := range ents {
		if held, err := lock.Held(filepath.Join(sds, e.Name(), "supervise", "lock")); err == nil && held {
			return true
		}
	}
	return false
}

// removeLive removes a live directory: its links in scandir, its
// servicedirs, its generations and LIVE itself (not the lock file).
func removeLive(live, scandir string) {
	sds := Servicedirs(live)
	if scandir != "" {
		ents, _ := os.ReadDir(scandir)
		for _, e := range ents {
			p := filepath.Join(scandir, e.Name())
			if t, err := os.Readlink(p); err == nil && strings.HasPrefix(t, sds+"/") {
				os.Remove(p)
			}
		}
	}
	os.RemoveAll(sds)
	if t, err := os.Readlink(live); err == nil {
		os.RemoveAll(filepath.Join(filepath.Dir(live), t))
	}
	os.Remove(live)
	removeGarbage(live, "")
}

// controlOpen reports whether dir's supervise/control FIFO has a reader:
// opening it for writing without blocking succeeds only then (fifo(7)).
func controlOpen(dir string) bool {
	fd, err := sys.Open(filepath.Join(dir, "supervise", "control"), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// svscanControl writes cmd to scandir's control FIFO.
func svscanControl(scandir string, cmd string) error {
	err := servicedir.WriteControl(filepath.Join(scandir, ".s6-svscan", "control"), []byte(cmd))
	if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENOENT) {
		return exitcode.Errorf(exitcode.Sys, "svscan is not running on %s", scandir)
	}
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to control %s: %w", scandir, err)
	}
	return nil
}

// stopped waits (at most 5 s) until the supervisors that did start on
// the servicedirs of subs have exited ('x'), after svscan's h, so that a
// rollback never removes a directory a supervisor still runs in.
func stopped(l *Live, subs []struct {
	name string
	l    *ftrig.Listener
}) {
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 64)
	for _, s := range subs {
		for {
			held, err := lock.Held(filepath.Join(l.ServiceDir(s.name), "supervise", "lock"))
			if err != nil || !held {
				break
			}
			n, err := s.l.Read(buf, deadline)
			if err != nil || strings.IndexByte(string(buf[:n]), 'x') >= 0 {
				break
			}
		}
	}
}

// startSupervisors links names into the scan directory, has svscan scan,
// and waits until each has a supervisor (spec/rc.md §6 steps 3-4). links
// maps a name to its old link name when it is renamed (update).
func (l *Live) startSupervisors(names []string, _ map[string]string, o Options) error {
	if len(names) == 0 {
		return nil
	}
	var ls []*ftrig.Listener
	defer func() {
		for _, x := range ls {
			x.Close()
		}
	}()
	type sub = struct {
		name string
		l    *ftrig.Listener
	}
	subs := make([]sub, 0, len(names))
	for _, n := range names {
		x, err := ftrig.Subscribe(filepath.Join(l.ServiceDir(n), "event"))
		if err != nil {
			return exitcode.New(exitcode.Sys, err)
		}
		ls = append(ls, x)
		subs = append(subs, sub{n, x})
	}
	var linked []string
	rollback := func() {
		for _, p := range linked {
			os.Remove(p)
		}
	}
	for _, n := range names {
		link := filepath.Join(l.Scandir, l.Prefix+n)
		target := l.ServiceDir(n)
		if t, err := os.Readlink(link); err == nil && t == target {
			continue
		}
		if err := os.Symlink(target, link); err != nil {
			rollback()
			return exitcode.Errorf(exitcode.Sys, "unable to symlink %s: %w", link, sys.Errno(err))
		}
		linked = append(linked, link)
	}
	if err := svscanControl(l.Scandir, "a"); err != nil {
		rollback()
		return err
	}
	ctx := context.Background()
	if o.Timeout > 0 {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, time.Duration(o.Timeout)*time.Millisecond)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	for _, s := range subs {
		dir := l.ServiceDir(s.name)
		buf := make([]byte, 64)
		for {
			// Started: the lock is held and the control FIFO has its
			// reader (a supervisor takes the lock first, then opens the
			// FIFO; its "s" event comes after both).
			if held, _ := lock.Held(filepath.Join(dir, "supervise", "lock")); held && controlOpen(dir) {
				break
			}
			n, err := s.l.Read(buf, deadline)
			if err != nil {
				rollback()
				_ = svscanControl(l.Scandir, "h")
				stopped(l, subs)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					return exitcode.Errorf(exitcode.Sys, "supervisors not up after %d ms", o.Timeout)
				}
				return exitcode.Errorf(exitcode.Sys, "unable to read events of %s: %w", dir, err)
			}
			if strings.IndexByte(string(buf[:n]), 's') >= 0 {
				break
			}
		}
	}
	return nil
}
