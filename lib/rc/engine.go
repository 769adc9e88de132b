//go:build linux

package rc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Exit codes of change (spec/rc.md §4).
const (
	CodeFailed   = 1
	CodeTimedOut = 2
	CodeUnknown  = 3
)

// Command runs one of change, list, listall, diff, reload on o.Live.
func Command(cmd string, names []string, o Options) error {
	writer := cmd == "change" || cmd == "reload"
	l, err := Open(o.Live, writer, o.Block)
	if err != nil {
		return err
	}
	defer l.Close()
	switch cmd {
	case "change":
		return l.Change(context.Background(), names, o)
	case "list", "listall":
		return l.List(names, cmd == "listall", o)
	case "diff":
		return l.Diff(o)
	case "reload":
		return l.Reload(names, o)
	}
	return exitcode.ErrUsage
}

// selection resolves names (and -a) to atomic services.
func (l *Live) selection(names []string, o Options) ([]string, error) {
	sel, err := l.DB.Lookup(names)
	if err != nil {
		return nil, err
	}
	if o.All {
		set := map[string]bool{}
		for _, n := range sel {
			set[n] = true
		}
		for n, e := range l.State {
			if e.S != 'D' {
				set[n] = true
			}
		}
		sel = sortedKeys(set)
	}
	return sel, nil
}

// dependents returns the reverse dependency graph.
func (db *DB) dependents() map[string][]string {
	rev := map[string][]string{}
	for _, n := range db.Names() {
		for _, d := range db.Services[n].Deps {
			rev[d] = append(rev[d], n)
		}
	}
	return rev
}

// Closure adds to sel every dependency (up) or every dependent (down),
// recursively.
func (db *DB) Closure(sel []string, up bool) []string {
	rev := db.dependents()
	set := map[string]bool{}
	var walk func(n string)
	walk = func(n string) {
		if set[n] {
			return
		}
		set[n] = true
		next := db.Services[n].Deps
		if !up {
			next = rev[n]
		}
		for _, m := range next {
			walk(m)
		}
	}
	for _, n := range sel {
		walk(n)
	}
	return sortedKeys(set)
}

// List prints the selection (listall: its closure), one per line.
func (l *Live) List(names []string, all bool, o Options) error {
	sel, err := l.selection(names, o)
	if err != nil {
		return err
	}
	var out []string
	switch {
	case all:
		out = l.DB.Closure(sel, o.Up)
	case o.Up:
		out = sel
	default:
		in := map[string]bool{}
		for _, n := range sel {
			in[n] = true
		}
		for _, n := range l.DB.Names() {
			if !in[n] {
				out = append(out, n)
			}
		}
	}
	var b strings.Builder
	for _, n := range out {
		if o.HideEssential && l.DB.Services[n].Essential {
			continue
		}
		b.WriteString(n + "\n")
	}
	_, err = fmt.Fprint(o.Stdout, b.String())
	return err
}

// Diff compares the state with what supervisors want.
func (l *Live) Diff(o Options) error {
	var b strings.Builder
	for _, n := range l.DB.Names() {
		if l.DB.Services[n].Type != Longrun {
			continue
		}
		e := l.State[n]
		if e.S == 'u' || e.S == 'd' {
			b.WriteString("?" + n + "\n")
			continue
		}
		st, err := readStatus(l.ServiceDir(n))
		if err != nil {
			continue
		}
		want := st.Flags&servicedir.FlagWantUp != 0
		switch {
		case want && e.S == 'D':
			b.WriteString("+" + n + "\n")
		case !want && e.S == 'U':
			b.WriteString("-" + n + "\n")
		}
	}
	if b.Len() == 0 {
		return nil
	}
	fmt.Fprint(o.Stdout, b.String())
	return exitcode.Exit(1)
}

func readStatus(dir string) (servicedir.Status, error) {
	b, err := os.ReadFile(filepath.Join(dir, "supervise", "status"))
	if err != nil {
		return servicedir.Status{}, err
	}
	return servicedir.UnmarshalStatus(b)
}

// Change brings the named services (and their closure) up (o.Up) or down,
// in dependency order, in parallel where the graph allows (spec/rc.md §5).
func (l *Live) Change(ctx context.Context, names []string, o Options) error {
	sel, err := l.selection(names, o)
	if err != nil {
		return err
	}
	if o.DryRun == 0 {
		unix.Umask(l.Umask)
		l.waitPrevious(o)
	}
	e := newEngine(ctx, l, o)
	defer e.stop()
	if o.Prune {
		all := l.DB.Names()
		closure := l.DB.Closure(sel, o.Up)
		in := map[string]bool{}
		for _, n := range closure {
			in[n] = true
		}
		var other []string
		for _, n := range all {
			if !in[n] {
				other = append(other, n)
			}
		}
		if o.Up {
			e.run(other, false)
			e.run(sel, true)
		} else {
			e.run(sel, false)
			e.run(other, true)
		}
	} else {
		e.run(sel, o.Up)
	}
	return e.result()
}

// waitPrevious waits for the scripts a killed rc left running.
func (l *Live) waitPrevious(o Options) {
	for _, n := range l.DB.Names() {
		en := l.State[n]
		if (en.S != 'u' && en.S != 'd') || en.PID == 0 || procStart(en.PID) != en.Start {
			continue
		}
		what := "up"
		if en.S == 'd' {
			what = "down"
		}
		o.info("waiting for the previous %s of %s (pid %d)", what, n, en.PID)
		if p, err := proc.OpenPidfd(en.PID); err == nil {
			_ = p.Wait()
			p.Close()
		}
	}
}

// engine runs transitions; its loop (run) owns the state.
type engine struct {
	l        *Live
	o        Options
	ctx      context.Context
	cancel   context.CancelCauseFunc
	msgs     chan msg
	failed   bool
	err      error // a system error (state write)
	sigs     chan os.Signal
	stopSigs func()
	kill     chan struct{} // closed at the second SIGTERM/SIGINT
	killOnce sync.Once
	maxFly   int
	release  func()
}

// msg is what a transition reports to the loop.
type msg struct {
	name   string
	done   bool   // the transition ended
	ok     bool   // and succeeded
	state  byte   // the state to record when done
	reason string // why it failed
	pid    int    // a script was spawned
	start  uint64
}

var errTimeout = errors.New("global timeout")

func newEngine(ctx context.Context, l *Live, o Options) *engine {
	e := &engine{l: l, o: o, msgs: make(chan msg, 64), kill: make(chan struct{})}
	var cancel context.CancelCauseFunc
	ctx, cancel = context.WithCancelCause(ctx)
	if o.Timeout > 0 {
		var c2 func()
		ctx, c2 = context.WithTimeoutCause(ctx, time.Duration(o.Timeout)*time.Millisecond, errTimeout)
		e.release = c2
	}
	e.ctx, e.cancel = ctx, cancel
	e.sigs = make(chan os.Signal, 4)
	if o.HostSignals {
		e.stopSigs = func() {}
	} else {
		e.catchSignals()
	}
	return e.limits()
}

// catchSignals handles SIGTERM and SIGINT (the first stops new
// transitions, the second kills running scripts) and ignores SIGHUP,
// SIGQUIT and SIGPIPE while transitions run (spec/rc.md §5.5).
func (e *engine) catchSignals() {
	signal.Notify(e.sigs, unix.SIGTERM, unix.SIGINT)
	signal.Ignore(unix.SIGHUP, unix.SIGQUIT, unix.SIGPIPE)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case s := <-e.sigs:
				n++
				if n == 1 {
					e.cancel(fmt.Errorf("interrupted by %s", sig.Name(s.(unix.Signal))))
				} else {
					e.killOnce.Do(func() { close(e.kill) })
				}
			case <-done:
				return
			}
		}
	}()
	e.stopSigs = func() {
		signal.Stop(e.sigs)
		signal.Reset(unix.SIGHUP, unix.SIGQUIT, unix.SIGPIPE)
		close(done)
	}
}

// limits raises the soft RLIMIT_NOFILE and sizes the transitions in flight.
func (e *engine) limits() *engine {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
		if rl.Cur < rl.Max {
			rl.Cur = rl.Max
			_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
		}
		e.maxFly = int(rl.Cur-64) / 3
	}
	if e.maxFly < 1 {
		e.maxFly = 1
	}
	return e
}

func (e *engine) stop() {
	e.stopSigs()
	e.cancel(nil)
	if e.release != nil {
		e.release()
	}
}

// result is the error Change returns.
func (e *engine) result() error {
	if e.err != nil {
		return e.err
	}
	if c := context.Cause(e.ctx); c != nil && e.ctx.Err() != nil {
		if errors.Is(c, errTimeout) || errors.Is(c, context.DeadlineExceeded) {
			return exitcode.Errorf(CodeTimedOut, "timed out")
		}
		return exitcode.Errorf(CodeFailed, "%v", c)
	}
	if e.failed {
		return exitcode.Exit(CodeFailed)
	}
	return nil
}

// save writes the state, unless dry-running.
func (e *engine) save() {
	if e.o.DryRun > 0 || e.err != nil {
		return
	}
	if err := e.l.SaveState(); err != nil {
		e.err = err
		e.cancel(err)
	}
}

// run brings sel's closure up or down.
func (e *engine) run(sel []string, up bool) {
	db := e.l.DB
	closure := db.Closure(sel, up)
	inClosure := map[string]bool{}
	for _, n := range closure {
		inClosure[n] = true
	}
	if !up && !e.o.Force {
		keep := map[string]bool{}
		var hold func(n string)
		hold = func(n string) {
			if keep[n] {
				return
			}
			keep[n] = true
			for _, d := range db.Services[n].Deps {
				hold(d)
			}
		}
		for _, n := range closure {
			if db.Services[n].Essential && e.l.State[n].S != 'D' {
				e.o.warn("service %s is essential, not stopping it", n)
				hold(n)
			}
		}
		for n := range keep {
			delete(inClosure, n)
		}
	}
	want := byte('D')
	if up {
		want = 'U'
	}
	todo := map[string]bool{}
	for n := range inClosure {
		if e.l.State[n].S != want {
			todo[n] = true
		}
	}
	rev := db.dependents()
	waits := func(n string) []string {
		if up {
			return db.Services[n].Deps
		}
		return rev[n]
	}
	const (
		pending = iota
		running
		succeeded
		failedSt
	)
	status := map[string]int{}
	inFlight := 0
	remaining := len(todo)
	for remaining > 0 || inFlight > 0 {
		// Find what can start; propagate failures.
		var ready []string
		if e.ctx.Err() == nil {
			changed := true
			for changed {
				changed = false
				for _, n := range sortedKeys(todo) {
					if status[n] != pending {
						continue
					}
					ok := true
					for _, d := range waits(n) {
						if !todo[d] {
							continue
						}
						switch status[d] {
						case failedSt:
							verb := "starting"
							if !up {
								verb = "stopping"
							}
							e.o.warn("not %s %s: dependency %s failed", verb, n, d)
							status[n] = failedSt
							e.failed = true
							remaining--
							changed = true
							ok = false
						case succeeded:
						default:
							ok = false
						}
						if status[n] == failedSt {
							break
						}
					}
					if ok && status[n] == pending && !slices.Contains(ready, n) {
						ready = append(ready, n)
					}
				}
			}
			if room := e.maxFly - inFlight; len(ready) > room {
				ready = ready[:max(room, 0)]
			}
		} else {
			// No new transitions: what has not started never will.
			for n := range todo {
				if status[n] == pending {
					status[n] = failedSt
					remaining--
				}
			}
		}
		if len(ready) > 0 {
			for _, n := range ready {
				status[n] = running
				inFlight++
				remaining--
				if e.o.DryRun > 0 {
					verb := "start"
					if !up {
						verb = "stop"
					}
					fmt.Fprintf(e.o.Stdout, "%s %s\n", verb, n)
				} else {
					m := byte('u')
					if !up {
						m = 'd'
					}
					e.l.State[n] = Entry{S: m}
				}
			}
			e.save()
			// Scripts are spawned here, between two state writes, so that
			// a killed rc always left the PID of every script it started.
			pre := map[string]*spawned{}
			if e.o.DryRun == 0 {
				spawnedAny := false
				for _, n := range ready {
					s := db.Services[n]
					if s.Type != Oneshot {
						continue
					}
					e.announce(n, up)
					sp := e.spawnOneshot(s, up)
					pre[n] = sp
					if sp != nil && sp.fail == nil {
						en := e.l.State[n]
						en.PID, en.Start = sp.pid, procStart(sp.pid)
						e.l.State[n] = en
						spawnedAny = true
					}
				}
				if spawnedAny {
					e.save()
				}
			}
			for _, n := range ready {
				sp, ok := pre[n]
				go e.transition(n, up, sp, ok)
			}
			continue
		}
		if inFlight == 0 {
			break
		}
		// Wait for messages; batch what is queued into one write.
		m := <-e.msgs
		dirty := e.apply(m, status, &inFlight)
		for more := true; more; {
			select {
			case m := <-e.msgs:
				if e.apply(m, status, &inFlight) {
					dirty = true
				}
			default:
				more = false
			}
		}
		if dirty {
			e.save()
		}
	}
}

// apply records one message; it reports whether the state changed.
func (e *engine) apply(m msg, status map[string]int, inFlight *int) bool {
	if !m.done {
		en := e.l.State[m.name]
		en.PID, en.Start = m.pid, m.start
		e.l.State[m.name] = en
		return true
	}
	*inFlight--
	if m.ok {
		status[m.name] = 2
	} else {
		status[m.name] = 3
		e.failed = true
	}
	if e.o.DryRun > 0 {
		return false
	}
	e.l.State[m.name] = Entry{S: m.state}
	return true
}

// transition runs one service's transition and reports to the loop.
func (e *engine) transition(n string, up bool, sp *spawned, spawnedByLoop bool) {
	s := e.l.DB.Services[n]
	done := "successfully started"
	if !up {
		done = "successfully stopped"
	}
	if e.o.DryRun > 0 {
		time.Sleep(time.Duration(e.o.DryRun-1) * time.Millisecond)
		e.msgs <- msg{name: n, done: true, ok: true}
		return
	}
	if s.Type == Longrun {
		e.announce(n, up)
	}
	var res msg
	if s.Type == Longrun {
		res = e.longrun(s, up)
	} else {
		res = e.oneshot(s, up, sp, spawnedByLoop)
	}
	res.name, res.done = n, true
	if res.ok {
		e.o.info("service %s: %s", n, done)
	} else {
		what := "start"
		if !up {
			what = "stop"
		}
		e.o.warn("unable to %s service %s: %s", what, n, res.reason)
	}
	e.msgs <- res
}

// announce prints the start of a transition (verbosity 2).
func (e *engine) announce(n string, up bool) {
	verb := "starting"
	if !up {
		verb = "stopping"
	}
	e.o.info("service %s: %s", n, verb)
}

// deadline is the transition's deadline: its own timeout, capped by -t.
func (e *engine) deadline(ms uint32) time.Time {
	var d time.Time
	if ms > 0 {
		d = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	if gd, ok := e.ctx.Deadline(); ok && (d.IsZero() || gd.Before(d)) {
		d = gd
	}
	return d
}

// control writes one control byte to a servicedir's FIFO.
func control(dir string, c byte) error {
	return servicedir.WriteControl(filepath.Join(dir, "supervise", "control"), []byte{c})
}

// longrun brings a longrun up or down through its supervisor.
func (e *engine) longrun(s *Service, up bool) msg {
	dir := e.l.ServiceDir(s.Name)
	fail := func(state byte, format string, args ...any) msg {
		return msg{state: state, reason: fmt.Sprintf(format, args...)}
	}
	failState := byte('d')
	if up {
		failState = 'D'
	}
	lst, err := ftrig.Subscribe(filepath.Join(dir, "event"))
	if err != nil {
		return fail(failState, "%v", err)
	}
	defer lst.Close()
	stop := context.AfterFunc(e.ctx, func() { lst.Close() })
	defer stop()
	st, _ := readStatus(dir)
	hasReady := servicedir.HasReadiness(dir)
	c := byte('U')
	if !up {
		c = 'D'
	}
	if err := control(dir, c); err != nil {
		if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENOENT) {
			return fail(failState, "supervisor not running")
		}
		return fail(failState, "unable to control %s: %v", dir, sys.Errno(err))
	}
	upFail := func(format string, args ...any) msg {
		_ = control(dir, 'D')
		return fail('D', format, args...)
	}
	if up && st.Up() && (!hasReady || st.Flags&servicedir.FlagReady != 0) {
		return msg{ok: true, state: 'U'}
	}
	if !up && !st.Up() && st.Flags&servicedir.FlagReady != 0 && st.PID == 0 {
		return msg{ok: true, state: 'D'}
	}
	ms := s.TimeoutDown
	if up {
		ms = s.TimeoutUp
	}
	deadline := e.deadline(ms)
	deaths := 0
	buf := make([]byte, 128)
	for {
		n, err := lst.Read(buf, deadline)
		if err != nil {
			if e.ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
				reason := fmt.Sprintf("timed out after %d ms", ms)
				if ms == 0 || (e.ctx.Err() != nil) {
					reason = "interrupted"
					if errors.Is(context.Cause(e.ctx), errTimeout) || (e.ctx.Err() == nil && errors.Is(err, os.ErrDeadlineExceeded)) {
						reason = "timed out"
					}
				}
				if up {
					return upFail("%s", reason)
				}
				return fail('d', "%s", reason)
			}
			if up {
				return upFail("unable to read events: %v", err)
			}
			return fail('d', "unable to read events: %v", err)
		}
		for _, ev := range buf[:n] {
			switch {
			case up && (ev == 'U' || (ev == 'u' && !hasReady)):
				return msg{ok: true, state: 'U'}
			case !up && ev == 'D':
				return msg{ok: true, state: 'D'}
			case up && ev == 'd':
				deaths++
				if s.StartAttempts > 0 && deaths >= int(s.StartAttempts) {
					return upFail("died %d times before becoming ready", deaths)
				}
			case up && ev == 'O':
				return upFail("permanent failure")
			case ev == 'x':
				if up {
					return upFail("supervisor exited")
				}
				return fail('d', "supervisor exited")
			}
		}
	}
}

// execlineCommands are the execline programs a block-syntax script needs.
const execlineCommands = " if ifelse ifte ifthenelse foreground background redirfd importas fdmove fdclose fdswap exec execlineb define multisubstitute backtick pipeline piperw elglob forx forbacktickx export unexport emptyenv cd umask heredoc trap wait withstdinas loopwhilex getpid exit s6-echo s6-envdir with-contenv "

// spawned is a oneshot script the loop started.
type spawned struct {
	pid  int
	wait func() unix.WaitStatus
	fail *msg // the spawn failed: the transition's result
}

// spawnOneshot starts a oneshot's up or down argv; nil when there is
// nothing to run.
func (e *engine) spawnOneshot(s *Service, up bool) *spawned {
	argv, what := s.Up, "up"
	failState := byte('D')
	if !up {
		argv, what = s.Down, "down"
		failState = 'U'
	}
	if len(argv) == 0 {
		return nil
	}
	env := append(append([]string{}, e.l.Environ...), "RC_NAME="+s.Name)
	var path string
	var err error
	if e.l.owner != nil {
		// Root on another uid's tree: rc's script mode (Open wrote
		// GEN/exec-as) drops to the owner, then looks argv[0] up and
		// execs it; nothing of root's survives that exec.
		path = selfPath()
		argv = append([]string{path, "rc", filepath.Join(e.l.Gen, "exec-as")}, argv...)
	} else {
		path, err = lookPath(argv[0], env)
	}
	if err == nil {
		attr := proc.Attr{Env: env, Dir: "/", Setsid: true, Path: path}
		spawn := e.o.Spawn
		if spawn == nil {
			spawn = defaultSpawn
		}
		var sp spawned
		if sp.pid, sp.wait, err = spawn(argv, attr); err == nil {
			return &sp
		}
	}
	return &spawned{fail: &msg{state: failState, reason: fmt.Sprintf("%s exited %d%s", what, proc.SpawnCode(err), execlineHint(argv[0]))}}
}

func execlineHint(prog string) string {
	if strings.Contains(execlineCommands, " "+prog+" ") {
		return " (execline commands need execline in PATH)"
	}
	return ""
}

// oneshot runs a oneshot's up or down argv, or waits for the one the loop
// spawned.
func (e *engine) oneshot(s *Service, up bool, sp *spawned, spawnedByLoop bool) msg {
	what := "up"
	okState, failState := byte('U'), byte('D')
	argv := s.Up
	if !up {
		what, argv = "down", s.Down
		okState, failState = 'D', 'U'
	}
	if !spawnedByLoop {
		sp = e.spawnOneshot(s, up)
	}
	if sp == nil {
		return msg{ok: true, state: okState}
	}
	if sp.fail != nil {
		return *sp.fail
	}
	pid, wait := sp.pid, sp.wait
	hint := execlineHint(argv[0])
	exited := make(chan unix.WaitStatus, 1)
	go func() { exited <- wait() }()
	ms := s.TimeoutDown
	if up {
		ms = s.TimeoutUp
	}
	var timer <-chan time.Time
	if ms > 0 {
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		timer = t.C
	}
	timedOut := false
	kill := e.kill
	var killTimer <-chan time.Time
	for {
		select {
		case ws := <-exited:
			if timedOut {
				return msg{state: failState, reason: fmt.Sprintf("timed out after %d ms", ms)}
			}
			switch {
			case ws.Exited() && ws.ExitStatus() == 0:
				return msg{ok: true, state: okState}
			case ws.Signaled():
				return msg{state: failState, reason: fmt.Sprintf("%s killed by SIG%s", what, sig.Name(ws.Signal()))}
			default:
				if ws.ExitStatus() != 127 {
					hint = ""
				}
				return msg{state: failState, reason: fmt.Sprintf("%s exited %d%s", what, ws.ExitStatus(), hint)}
			}
		case <-timer:
			timer = nil
			timedOut = true
			_ = unix.Kill(-pid, unix.SIGTERM)
			_ = unix.Kill(-pid, unix.SIGCONT)
			killTimer = time.After(5 * time.Second)
		case <-kill:
			kill = nil
			_ = unix.Kill(-pid, unix.SIGTERM)
			_ = unix.Kill(-pid, unix.SIGCONT)
			killTimer = time.After(5 * time.Second)
		case <-killTimer:
			killTimer = nil
			_ = unix.Kill(-pid, unix.SIGKILL)
		}
	}
}

// defaultSpawn spawns with proc.Spawn and reaps through a pidfd.
func defaultSpawn(argv []string, attr proc.Attr) (int, func() unix.WaitStatus, error) {
	pid, err := proc.Spawn(argv, attr)
	if err != nil {
		return 0, nil, err
	}
	pfd, perr := proc.OpenPidfd(pid)
	return pid, func() unix.WaitStatus {
		if perr == nil {
			_ = pfd.Wait()
			pfd.Close()
		}
		var ws unix.WaitStatus
		_, _ = sys.Wait4(pid, &ws, 0)
		return ws
	}, nil
}

// lookPath finds file in env's PATH, as execvp would.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path := "/usr/bin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	var firstErr error = unix.ENOENT
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		if err := unix.Access(p, unix.X_OK); err != nil {
			firstErr = unix.EACCES
			continue
		}
		return p, nil
	}
	return "", firstErr
}

// Reload sends reload to the named services.
func (l *Live) Reload(names []string, o Options) error {
	sel, err := l.DB.Lookup(names)
	if err != nil {
		return err
	}
	failed := false
	var wg sync.WaitGroup
	var mu sync.Mutex
	e := &engine{l: l, o: o, msgs: make(chan msg, len(sel)+1), ctx: context.Background(), kill: make(chan struct{})}
	for _, n := range sel {
		if l.State[n].S != 'U' {
			o.warn("service %s is not up", n)
			failed = true
			continue
		}
		s := l.DB.Services[n]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := true
			if s.Type == Longrun {
				if err := control(l.ServiceDir(n), 'l'); err != nil {
					o.warn("unable to reload service %s: %v", n, sys.Errno(err))
					ok = false
				}
			} else if len(s.Reload) > 0 {
				rs := *s
				rs.Up = s.Reload
				rs.TimeoutUp = 0
				m := e.oneshot(&rs, true, nil, false)
				if !m.ok {
					o.warn("unable to reload service %s: %s", n, strings.Replace(m.reason, "up ", "reload ", 1))
					ok = false
				}
			}
			if !ok {
				mu.Lock()
				failed = true
				mu.Unlock()
			}
		}()
	}
	go func() {
		for range e.msgs {
		}
	}()
	wg.Wait()
	close(e.msgs)
	if failed {
		return exitcode.Exit(1)
	}
	return nil
}
