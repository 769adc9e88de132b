package containerinit

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/supervisor"
	"github.com/gotools-dev/gotools/lib/sys"
)

// host runs overlay mode's supervision inside init's own process (spec
// §0 "in-process tree"): a supervisor.Loop, in a goroutine of its own,
// reaps every child with one wait4(-1) loop, supervises the services of
// /run/service (a supervisor.Tree, from [host.openTree] on) and hands the
// main goroutine, which runs the boot and the shutdown, what concerns it
// through a queue of closures: signals, the statuses of the children init
// spawned, control bytes, the tree's end. The Loop sleeps in poll(2) and
// the main goroutine on a channel, so an idle init does not wake up.
type host struct {
	loop *supervisor.Loop
	// Loop goroutine only.
	tree     *supervisor.Tree
	quitSeen bool

	mu     sync.Mutex
	owners map[int]func(unix.WaitStatus) // called in the Loop goroutine, mu released
	stages map[int]bool                  // rc's scripts that are init's own stages
	queue  []func()                      // for the main goroutine
	calls  []func()                      // for the Loop goroutine
	wake   chan struct{}                 // capacity 1: the queue has work
	callR  int                           // the Loop polls it: calls has work
	callW  int
	stop   atomic.Bool
	// watch makes every turn of the Loop wake the main goroutine, while
	// it waits for processes to be gone whose reaping it is not told of
	// (a service's).
	watch atomic.Bool
	done  chan struct{} // closed at the Loop goroutine's end
	err   error         // why it ended, once done is closed
}

// hostHooks are the main goroutine's handlers of the host's events.
type hostHooks struct {
	signal    func(unix.Signal)          // a signal other than SIGCHLD
	orphan    func(int, unix.WaitStatus) // a child nobody spawned through the host
	treeQuit  func()                     // the tree began to quit (svscanctl -t)
	treeEnded func(error)                // the tree ended (an error: it failed)
}

// startHost catches every signal into a self-pipe ([sig.RawPipe]: no
// os/signal threads) and starts the Loop on it; the hooks run in the main
// goroutine (when it drains the queue).
func startHost(env *cli.Env, hooks hostHooks) (*host, error) {
	ignoreFaults()
	sigR, err := sig.RawPipe()
	if err != nil {
		return nil, exitcode.New(exitcode.Sys, err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, exitcode.Errorf(exitcode.Sys, "unable to create a pipe: %w", sys.Errno(err))
	}
	h := &host{owners: map[int]func(unix.WaitStatus){}, stages: map[int]bool{}, wake: make(chan struct{}, 1), callR: p[0], callW: p[1],
		done: make(chan struct{})}
	l := &supervisor.Loop{Env: env, Signals: sigR}
	l.OnSignal = func(s unix.Signal) { h.post(func() { hooks.signal(s) }) }
	l.Reaped = func(pid int, ws unix.WaitStatus) {
		h.mu.Lock()
		f := h.owners[pid]
		delete(h.owners, pid)
		delete(h.stages, pid)
		h.mu.Unlock()
		if f != nil {
			f(ws)
			return
		}
		h.post(func() { hooks.orphan(pid, ws) })
	}
	l.Poll = func(fds []unix.PollFd) []unix.PollFd {
		return append(fds, unix.PollFd{Fd: int32(h.callR), Events: unix.POLLIN})
	}
	l.Handle = func([]unix.PollFd) { h.runCalls() }
	l.Tick = func() {
		if h.tree != nil && h.tree.Quitting() && !h.quitSeen {
			h.quitSeen = true
			h.post(hooks.treeQuit)
		}
		if h.watch.Load() {
			h.post(func() {})
		}
	}
	l.Done = h.stop.Load
	h.loop = l
	go func() {
		for {
			err := l.Run()
			if err != nil || h.stop.Load() || h.tree == nil {
				h.err = err
				close(h.done)
				return
			}
			// The tree ended (svscanctl -t, or a failure): the Loop
			// goes on reaping for the rest of the shutdown.
			t := h.tree
			h.tree = nil
			terr := t.Err()
			t.Close()
			h.post(func() { hooks.treeEnded(terr) })
		}
	}()
	return h, nil
}

// post queues f for the main goroutine.
func (h *host) post(f func()) {
	h.mu.Lock()
	h.queue = append(h.queue, f)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// drain runs what was queued for the main goroutine, in order.
func (h *host) drain() {
	for {
		h.mu.Lock()
		q := h.queue
		h.queue = nil
		h.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, f := range q {
			f()
		}
	}
}

// call runs f in the Loop goroutine and waits until it has run. Tree and
// Service methods may only be called there.
func (h *host) call(f func()) {
	done := make(chan struct{})
	h.mu.Lock()
	h.calls = append(h.calls, func() { f(); close(done) })
	h.mu.Unlock()
	_, _ = unix.Write(h.callW, []byte{0})
	select {
	case <-done:
	case <-h.done: // the Loop is gone: f will not run
	}
}

// runCalls runs the calls queued for the Loop goroutine.
func (h *host) runCalls() {
	buf := make([]byte, 64)
	for {
		if n, _ := unix.Read(h.callR, buf); n <= 0 {
			break
		}
	}
	h.mu.Lock()
	q := h.calls
	h.calls = nil
	h.mu.Unlock()
	for _, f := range q {
		f()
	}
}

// spawn starts argv with attr; dead gets its wait status in the main
// goroutine. The pid is registered before the Loop can reap it.
func (h *host) spawn(argv []string, attr proc.Attr, dead func(unix.WaitStatus)) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pid, err := proc.Spawn(argv, attr)
	if err == nil {
		h.owners[pid] = func(ws unix.WaitStatus) { h.post(func() { dead(ws) }) }
	}
	return pid, err
}

// rcSpawn is rc's [rc.Spawner] for its oneshot scripts: rc waits in a
// goroutine of its own, which the Loop wakes with the status. The
// built-ins' "init --stage=NAME" are recorded for [host.killStages].
func (h *host) rcSpawn(argv []string, attr proc.Attr) (int, func() unix.WaitStatus, error) {
	ch := make(chan unix.WaitStatus, 1)
	h.mu.Lock()
	pid, err := proc.Spawn(argv, attr)
	if err == nil {
		h.owners[pid] = func(ws unix.WaitStatus) { ch <- ws }
		if len(argv) > 2 && argv[1] == "init" && strings.HasPrefix(argv[2], "--stage=") {
			h.stages[pid] = true
		}
	}
	h.mu.Unlock()
	if err != nil {
		return 0, nil, err
	}
	return pid, func() unix.WaitStatus { return <-ch }, nil
}

// killStages sends SIGTERM to the process group (rc starts each script
// in a session of its own) of every stage running for rc: services-up
// waits for services that a stopping or ended tree will never bring up.
func (h *host) killStages() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for pid := range h.stages {
		_ = unix.Kill(-pid, unix.SIGTERM)
	}
}

// openTree attaches the scanner of dir to the Loop and scans it.
func (h *host) openTree(c supervisor.TreeConfig) error {
	var err error
	h.call(func() {
		var t *supervisor.Tree
		if t, err = supervisor.OpenTree(h.loop, c); err == nil {
			h.tree = t
			t.Command('a')
		}
	})
	return err
}

// command applies a control byte to the tree, if it still runs.
func (h *host) command(c byte) {
	h.call(func() {
		if h.tree != nil {
			h.tree.Command(c)
		}
	})
}

// close ends the Loop and returns its error; the main goroutine reaps
// from then on.
func (h *host) close() error {
	h.stop.Store(true)
	_, _ = unix.Write(h.callW, []byte{0})
	<-h.done
	unix.Close(h.callR)
	unix.Close(h.callW)
	return h.err
}

// children reports whether init has a child, live or not yet reaped
// (waitid(2) with WNOWAIT reaps nothing).
func children() bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return !errors.Is(err, unix.ECHILD)
}
