//go:build linux

package rc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gotools-dev/gotools/lib/execline"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fdholder"
	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/sys"
	"github.com/gotools-dev/gotools/lib/tai"

	"golang.org/x/sys/unix"
)

// Exit codes of update (spec/rc.md §4).
const (
	CodeBundleInConv = 5
	CodeTwiceInConv  = 6
	CodeStopFailed   = 9
	CodeStopTimedOut = 10
)

// conversion is one line of a conversion file: OLD [-> NEW] [restart].
type conversion struct {
	to      string
	restart bool
}

// readConv reads a conversion file against the old db.
func readConv(path string, old *DB) (map[string]conversion, error) {
	conv := map[string]conversion{}
	if path == "" {
		return conv, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, exitcode.Errorf(exitcode.Sys, "unable to read %s: %w", path, sys.Errno(err))
	}
	for i, line := range strings.Split(string(b), "\n") {
		w, err := execline.Lex([]byte(line))
		if err != nil {
			return nil, exitcode.Errorf(exitcode.Usage, "%s: line %d: syntax error", path, i+1)
		}
		if len(w) == 0 {
			continue
		}
		c := conversion{to: w[0]}
		rest := w[1:]
		if len(rest) >= 2 && rest[0] == "->" {
			c.to, rest = rest[1], rest[2:]
		}
		if len(rest) == 1 && rest[0] == "restart" {
			c.restart, rest = true, nil
		}
		if len(rest) > 0 {
			return nil, exitcode.Errorf(exitcode.Usage, "%s: line %d: syntax error", path, i+1)
		}
		if _, ok := old.Bundles[w[0]]; ok {
			return nil, exitcode.Errorf(CodeBundleInConv, "%s: line %d: %s is a bundle", path, i+1, w[0])
		}
		if old.Services[w[0]] == nil {
			return nil, exitcode.Errorf(CodeUnknown, "%s: line %d: unknown service %s", path, i+1, w[0])
		}
		if _, dup := conv[w[0]]; dup {
			return nil, exitcode.Errorf(CodeTwiceInConv, "%s: line %d: %s is named twice", path, i+1, w[0])
		}
		conv[w[0]] = c
	}
	return conv, nil
}

// Update switches the live directory to new sources (rc update, spec/rc.md
// §7). Renamed services (-f OLD -> NEW) are stopped under the old name and
// started under the new one.
func Update(sources []string, o Options) error {
	l, err := Open(o.Live, true, o.Block)
	if err != nil {
		return err
	}
	defer l.Close()
	ndb, err := Check(sources, o)
	if err != nil {
		return exitcode.New(CodeBadLive, errors.Unwrap(err))
	}
	ndb.Self = selfPath()
	conv, err := readConv(o.ConvFile, l.DB)
	if err != nil {
		return err
	}
	old := l.DB
	// Decide what stops (gone, renamed, type change, restart) and what is
	// kept; a kept service restarts when it depends on one that restarts,
	// stops, is new or was down.
	stop := map[string]bool{}
	image := map[string]string{} // old name -> new name of kept services
	var changed []string
	for _, n := range old.Names() {
		s := old.Services[n]
		c, has := conv[n]
		to := n
		if has {
			to = c.to
		}
		ns := ndb.Services[to]
		switch {
		case ns == nil, ns.Type != s.Type, to != n, c.restart:
			stop[n] = true
		case ns.Hash != s.Hash && s.Name != FdholderName:
			if o.RestartChanged {
				stop[n] = true
			} else {
				changed = append(changed, n)
			}
		}
		if ns != nil && ns.Type == s.Type && to == n {
			image[n] = to
		}
	}
	oldOf := map[string]string{} // new name -> old name, kept services
	for o2, n2 := range image {
		oldOf[n2] = o2
	}
	for again := true; again; {
		again = false
		for n, to := range image {
			if stop[n] || l.State[n].S == 'D' {
				continue
			}
			for _, d := range ndb.Services[to].Deps {
				od, kept := oldOf[d]
				if !kept || stop[od] || l.State[od].S == 'D' {
					stop[n], again = true, true
					break
				}
			}
		}
	}
	wasUp := map[string]bool{}
	for n, e := range l.State {
		if e.S != 'D' {
			wasUp[n] = true
		}
	}
	var toStart []string
	for n := range wasUp {
		if c, ok := conv[n]; ok && ndb.Services[c.to] != nil {
			toStart = append(toStart, c.to)
		} else if ndb.Services[n] != nil {
			toStart = append(toStart, n)
		}
	}
	sort.Strings(toStart)
	sort.Strings(changed)
	if o.DryRun > 0 {
		restarted := map[string]bool{}
		for _, n := range old.Names() {
			if stop[n] && wasUp[n] {
				c, has := conv[n]
				if ndb.Services[n] != nil && (!has || c.to == n) {
					restarted[n] = true
					fmt.Fprintf(o.Stdout, "restart %s\n", n)
				} else {
					fmt.Fprintf(o.Stdout, "stop %s\n", n)
				}
			}
		}
		for _, n := range ndb.Closure(toStart, true) {
			if od, kept := oldOf[n]; !restarted[n] && (!kept || !wasUp[od]) {
				fmt.Fprintf(o.Stdout, "start %s\n", n)
			}
		}
		return nil
	}
	for _, n := range changed {
		o.warn("changed, not restarted: %s", n)
	}
	// Stop phase, on the old db.
	var stopSel []string
	for n := range stop {
		if wasUp[n] {
			stopSel = append(stopSel, n)
		}
	}
	sort.Strings(stopSel)
	if len(stopSel) > 0 {
		so := o
		so.Up, so.Force, so.Prune, so.All, so.DryRun = false, true, false, false, 0
		if err := l.Change(context.Background(), stopSel, so); err != nil {
			if exitcode.Of(err) == CodeTimedOut {
				return exitcode.Errorf(CodeStopTimedOut, "stop phase timed out; database not switched")
			}
			return exitcode.Errorf(CodeStopFailed, "stop phase failed; database not switched")
		}
	}
	if err := l.switchDB(ndb, image, stop, o); err != nil {
		return err
	}
	// Start phase, on the new db.
	if len(toStart) == 0 {
		return nil
	}
	so := o
	so.Up, so.Prune, so.All, so.DryRun = true, false, false, 0
	return l.Change(context.Background(), toStart, so)
}

// switchDB writes the servicedirs and generation of ndb, points LIVE at
// it, fixes the scan directory and the holder's pipes.
func (l *Live) switchDB(ndb *DB, image map[string]string, stopped map[string]bool, o Options) error {
	old := l.DB
	sds := Servicedirs(l.Path)
	var added, removed []string
	for _, n := range ndb.Names() {
		s := ndb.Services[n]
		if s.Type != Longrun {
			continue
		}
		if prev := old.Services[n]; prev != nil && prev.Type == Longrun {
			if err := writeOnline(l.ServiceDir(n), s, ndb.Self, l.Path); err != nil {
				return exitcode.New(exitcode.Sys, err)
			}
			continue
		}
		if err := buildServicedir(sds, s, ndb.Self, l.Path); err != nil {
			return err
		}
		added = append(added, n)
	}
	for _, n := range old.Names() {
		s := old.Services[n]
		if s.Type == Longrun && (ndb.Services[n] == nil || ndb.Services[n].Type != Longrun) {
			removed = append(removed, n)
		}
	}
	state := map[string]Entry{}
	for n := range ndb.Services {
		state[n] = Entry{S: 'D'}
		if _, kept := image[n]; kept && !stopped[n] {
			state[n] = l.State[n]
		}
	}
	oldGen := l.Gen
	l.DB, l.State = ndb, state
	if err := l.writeGeneration(); err != nil {
		return err
	}
	if err := l.switchTo(); err != nil {
		return err
	}
	os.RemoveAll(oldGen)
	// Removed supervisors: unlink, then svscan's h stops them.
	var gone []*ftrig.Listener
	for _, n := range removed {
		if x, err := ftrig.Subscribe(filepath.Join(l.ServiceDir(n), "event")); err == nil {
			gone = append(gone, x)
		}
		os.Remove(filepath.Join(l.Scandir, l.Prefix+n))
	}
	if err := l.startSupervisors(added, nil, o); err != nil {
		return err
	}
	if len(removed) > 0 {
		if err := svscanControl(l.Scandir, "h"); err != nil {
			return err
		}
		buf := make([]byte, 64)
		deadline := time.Now().Add(10 * time.Second)
		for _, x := range gone {
			for {
				n, err := x.Read(buf, deadline)
				if err != nil || strings.IndexByte(string(buf[:n]), 'x') >= 0 {
					break
				}
			}
			x.Close()
		}
		for _, n := range removed {
			os.RemoveAll(l.ServiceDir(n))
		}
	}
	l.updatePipes(old, ndb, o)
	return nil
}

// updatePipes creates the pipes of new consumers and deletes those of
// vanished ones in a running holder (spec/rc.md §7 step 6).
func (l *Live) updatePipes(old, ndb *DB, o Options) {
	if ndb.Services[FdholderName] == nil || old.Services[FdholderName] == nil {
		return
	}
	c, err := fdholder.Dial(filepath.Join(l.ServiceDir(FdholderName), "s"), 5*time.Second)
	if err != nil {
		return // not running: it makes every pipe when it starts
	}
	defer c.Close()
	for cons := range old.Pipes {
		if _, ok := ndb.Pipes[cons]; !ok {
			_ = c.Delete(readID(cons))
			_ = c.Delete(writeID(cons))
		}
	}
	for cons := range ndb.Pipes {
		if _, ok := old.Pipes[cons]; ok {
			continue
		}
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			o.warn("unable to create the pipe of %s: %v", cons, err)
			continue
		}
		if err := errors.Join(c.Store(p[0], readID(cons), tai.Stamp{}), c.Store(p[1], writeID(cons), tai.Stamp{})); err != nil {
			o.warn("unable to store the pipe of %s: %v", cons, err)
		}
		unix.Close(p[0])
		unix.Close(p[1])
	}
}

// writeOnline rewrites a kept longrun's files in place (spec/rc.md §3.2):
// each file F.new then renamed; supervise/, event/ and down are left alone.
func writeOnline(dir string, s *Service, self, live string) error {
	tmp := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+":"+randSuffix())
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("unable to mkdir %s: %w", tmp, sys.Errno(err))
	}
	defer os.RemoveAll(tmp)
	if err := writeServiceFiles(tmp, s, self, live); err != nil {
		return err
	}
	keep := map[string]bool{"supervise": true, "event": true, "down": true}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range ents {
		keep[e.Name()] = true
		dst := filepath.Join(dir, e.Name())
		if e.IsDir() {
			if st, err := os.Lstat(dst); err == nil && st.IsDir() {
				aside := dst + ":old" + randSuffix()
				if err := os.Rename(dst, aside); err != nil {
					return err
				}
				defer os.RemoveAll(aside)
			}
		}
		if err := os.Rename(filepath.Join(tmp, e.Name()), dst); err != nil {
			return fmt.Errorf("unable to rename into %s: %w", dst, sys.Errno(err))
		}
	}
	olds, _ := os.ReadDir(dir)
	for _, e := range olds {
		if !keep[e.Name()] && !strings.Contains(e.Name(), ":old") {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}
