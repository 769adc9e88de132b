//go:build linux

package servicedir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Exit codes of a wait (spec/supervise.md §4, §7); a number of permanent
// failures n (1-98) is the third outcome.
const (
	CodeTimedOut = 99  // the deadline passed first
	CodeDied     = 102 // a supervisor exited before its service got there
	maxFailures  = 98  // n is capped so that it never reads as 99 or 102
)

// Goal is the state a [Waiter] waits for: svwait's -u -U -d -D -r -R and
// svc's -wSTATE.
type Goal struct {
	Up      bool // up (true) or down
	Ready   bool // and ready too
	Restart bool // first down (ready or not), then Up/Ready
}

// ParseGoal returns the Goal of a state letter: u U d D r R.
func ParseGoal(c byte) (Goal, bool) {
	switch c {
	case 'u':
		return Goal{Up: true}, true
	case 'U':
		return Goal{Up: true, Ready: true}, true
	case 'd':
		return Goal{}, true
	case 'D':
		return Goal{Ready: true}, true
	case 'r':
		return Goal{Up: true, Restart: true}, true
	case 'R':
		return Goal{Up: true, Ready: true, Restart: true}, true
	}
	return Goal{}, false
}

// Waiter watches the event fifodirs of service directories: it knows, for
// each, whether the service is up and ready, as svwait and svc -w need.
type Waiter struct {
	dirs   []*watched
	events chan event
	done   chan struct{}
	stop   sync.Once
	wg     sync.WaitGroup
}

// watched is one service directory of a Waiter.
type watched struct {
	dir       string
	l         *ftrig.Listener
	up, ready bool
	anyReady  bool // readiness is not waited for (svc's fallback)
	settled   bool // no more events: failed, or the supervisor is gone
	failed    bool // permanent failure ('O' while up was wanted)
	died      bool // the supervisor exited short of the goal
}

type event struct {
	i   int
	b   []byte
	err error
}

// Watch subscribes to the event fifodir of every dir (making dir/event,
// mode 03730, if it is missing), and only then reads each status file, so
// that no change after the status was read can be missed. A missing
// supervise/status counts as down and not ready (the supervisor has not
// started yet); a missing dir is an error. The error is an
// [exitcode.Error] (111). Close the Waiter to unlink its FIFOs.
func Watch(dirs []string) (*Waiter, error) {
	w := &Waiter{events: make(chan event), done: make(chan struct{})}
	for _, dir := range dirs {
		ev := filepath.Join(dir, "event")
		if _, err := ftrig.MkFifodir(ev); err != nil {
			w.Close()
			return nil, exitcode.New(exitcode.Sys, err)
		}
		l, err := ftrig.Subscribe(ev)
		if err != nil {
			w.Close()
			return nil, exitcode.New(exitcode.Sys, err)
		}
		w.dirs = append(w.dirs, &watched{dir: dir, l: l})
	}
	for _, d := range w.dirs {
		b, err := os.ReadFile(filepath.Join(d.dir, "supervise", "status"))
		if errors.Is(err, os.ErrNotExist) {
			continue // down, not ready: s6-svwait would exit 111 here
		}
		if err == nil {
			var st Status
			if st, err = UnmarshalStatus(b); err == nil {
				d.up, d.ready = st.Up(), st.Flags&FlagReady != 0
				continue
			}
		}
		w.Close()
		return nil, exitcode.New(exitcode.Sys, fmt.Errorf("unable to read status for %s: %w", d.dir, sys.Errno(err)))
	}
	return w, nil
}

// AnyReady makes the i-th dir's goal up (or down) without readiness: svc
// -wU on a service that cannot notify readiness.
func (w *Waiter) AnyReady(i int) { w.dirs[i].anyReady = true }

// Close unlinks the Waiter's FIFOs and stops its readers. It may be
// called more than once.
func (w *Waiter) Close() error {
	var first error
	w.stop.Do(func() {
		close(w.done)
		for _, d := range w.dirs {
			if err := d.l.Close(); err != nil && first == nil {
				first = err
			}
		}
		w.wg.Wait()
	})
	return first
}

// read sends what the i-th listener reads to w.events until an error (a
// Close included) or until w.done.
func (w *Waiter) read(i int) {
	defer w.wg.Done()
	buf := make([]byte, 256)
	for {
		n, err := w.dirs[i].l.Read(buf, time.Time{})
		ev := event{i: i, b: append([]byte(nil), buf[:n]...), err: err}
		select {
		case w.events <- ev:
		case <-w.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// Wait waits until every dir (or, with any, one dir) reaches goal, and
// returns nil then. Events d D u U set (up, ready) to (0,0) (0,1) (1,0)
// (1,1); O while up is wanted is a permanent failure of that dir and x
// the end of its supervisor, which counts as a death unless the dir was
// already where it should be; either settles the dir. Otherwise Wait
// returns an [exitcode.Error]: 102 "some supervisors died", n (at most
// 98) "N services failed permanently", 99 "timed out" when ctx's deadline
// passes, 111 when a FIFO cannot be read, or context.Cause(ctx) when ctx
// is cancelled otherwise.
func (w *Waiter) Wait(ctx context.Context, goal Goal, any bool) error {
	if err := ctx.Err(); err != nil {
		return cause(ctx)
	}
	for i := range w.dirs {
		w.wg.Add(1)
		go w.read(i)
	}
	p := phase{w: w, up: goal.Up, ready: goal.Ready, any: any}
	if goal.Restart {
		p.up, p.ready = false, false
	}
	// Events are applied one byte at a time, with a check after each: a
	// restart's "du" read at once must still pass through down.
	var pending []byte
	var from *watched
	for {
		if done, err := p.check(); done {
			if err != nil || !goal.Restart || p.up == goal.Up {
				return err
			}
			// Down was reached: now up. A supervisor gone while down
			// can no longer bring its service up.
			p.up, p.ready = goal.Up, goal.Ready
			for _, d := range w.dirs {
				if d.settled && !d.failed {
					d.died = true
				}
			}
			continue
		}
		if len(pending) > 0 {
			p.apply(from, pending[0])
			pending = pending[1:]
			continue
		}
		select {
		case <-ctx.Done():
			return cause(ctx)
		case ev := <-w.events:
			from, pending = w.dirs[ev.i], ev.b
			if ev.err != nil {
				return exitcode.New(exitcode.Sys, fmt.Errorf("unable to read events for %s: %w", from.dir, ev.err))
			}
		}
	}
}

// cause maps the end of ctx to Wait's error.
func cause(ctx context.Context) error {
	if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return exitcode.Errorf(CodeTimedOut, "timed out")
}

// phase is one stage of a wait: the goal of the moment (down first, for a
// restart) and how the dirs are combined.
type phase struct {
	w         *Waiter
	up, ready bool
	any       bool
}

func (p *phase) reached(d *watched) bool {
	return !d.failed && !d.died && d.up == p.up && (!p.ready || d.anyReady || d.ready)
}

func (p *phase) apply(d *watched, c byte) {
	if d.settled {
		return
	}
	switch c {
	case 'd', 'D', 'u', 'U':
		d.up, d.ready = c == 'u' || c == 'U', c == 'U' || c == 'D'
	case 'O':
		if p.up {
			d.failed, d.settled = true, true
		}
	case 'x':
		d.settled = true
		d.died = !p.reached(d)
	}
}

// check reports whether the phase is over, and with which error.
func (p *phase) check() (bool, error) {
	reached, failed, died := 0, 0, 0
	for _, d := range p.w.dirs {
		switch {
		case p.reached(d):
			reached++
		case d.failed:
			failed++
		case d.died:
			died++
		}
	}
	n := len(p.w.dirs)
	switch {
	case p.any && reached > 0, !p.any && reached == n, n == 0:
		return true, nil
	case reached+failed+died < n:
		return false, nil // some are still on their way
	case died > 0:
		return true, exitcode.Errorf(CodeDied, "some supervisors died")
	}
	return true, exitcode.Errorf(min(failed, maxFailures), "%d services failed permanently", failed)
}

// HasReadiness reports whether the service directory dir can notify
// readiness: it has a notification-fd or a notify-socket file.
func HasReadiness(dir string) bool {
	for _, name := range []string{"notification-fd", "notify-socket"} {
		if unix.Access(filepath.Join(dir, name), unix.F_OK) == nil {
			return true
		}
	}
	return false
}

// WaitContext returns the context of a wait: it ends at the timeout (0: no
// timeout), or with a silent [exitcode.Error] of 128+n when signal n
// (SIGINT, SIGTERM, SIGHUP) arrives, so that the waiter's FIFOs are
// unlinked on the way out instead of being left behind by a killed
// process. cancel stops catching the signals.
func WaitContext(timeout time.Duration) (ctx context.Context, cancel func()) {
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	base, stop := context.WithCancelCause(context.Background())
	ctx, cancelTimeout := base, context.CancelFunc(func() {})
	if timeout > 0 {
		ctx, cancelTimeout = context.WithTimeout(base, timeout)
	}
	go func() {
		select {
		case s := <-sigs:
			stop(exitcode.Exit(128 + int(s.(unix.Signal))))
		case <-base.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		cancelTimeout()
		stop(context.Canceled)
	}
}
