package shmlock

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/proc"
	"github.com/gotools-dev/gotools/lib/shm"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/sys"
)

// ownerDiedEnv tells prog that the lock was taken over from a dead owner,
// whose pid it holds.
const ownerDiedEnv = "SHMLOCK_OWNER_DIED"

type lockCmd struct {
	NoWait  bool       `short:"n" name:"nb" help:"Fail at once (exit 1) if the lock is busy; wins over -t."`
	Timeout cli.Millis `short:"t" name:"timeout" placeholder:"MS" help:"Give up (exit 1) after MS milliseconds (0: never)."`
	Kill    bool       `short:"k" name:"kill" help:"Give prog PR_SET_PDEATHSIG=SIGKILL: it dies if shmlock dies."`
	Args    []string   `arg:"" passthrough:"partial" name:"name idx prog" help:"The segment's name, the lock's index, then the program and its arguments (passed untouched)."`
}

// holder is one run of "shmlock lock".
type holder struct {
	name string
	idx  uint32
	prog []string
	kill bool
	seg  *shm.Segment
	sigs chan os.Signal
}

func (c *lockCmd) Run(env *cli.Env, top *command) (err error) {
	defer usageOf(env, "lock", &err)
	args := cli.Operands(c.Args)
	if len(args) < 3 {
		return usagef("need NAME, IDX and prog")
	}
	i, err := parseCount("IDX", args[1])
	if err != nil {
		return err
	}
	h := &holder{name: args[0], idx: i, prog: args[2:], kill: c.Kill}
	h.seg, err = shm.OpenExisting(h.name, top.opts()...)
	if err != nil {
		return top.openFail("open", h.name, err)
	}
	defer h.seg.Close()
	if err := checkIndex(h.seg, h.name, i); err != nil {
		return err
	}
	// As its help says, lock refuses an index nobody allocated: a typo
	// would otherwise lock, and wait for, a lock nobody else uses.
	if st, err := h.seg.Owner(i); err != nil {
		return fail("lock", slot(h.name, h.idx), err)
	} else if !st.Allocated {
		return exitcode.Errorf(exitcode.Refused, "unable to lock %s: not allocated (shmlock alloc allocates it)", slot(h.name, h.idx))
	}
	// Catch everything before locking: a TERM during the wait must end
	// us with nothing held, and one sent between the spawn and the first
	// receive must reach prog rather than kill us with the lock held.
	h.sigs = make(chan os.Signal, 64)
	sig.NotifyAll(h.sigs)
	var timeout time.Duration
	if !c.NoWait {
		timeout = time.Duration(c.Timeout) * time.Millisecond
	}
	got, err := h.acquire(c.NoWait, timeout)
	if err != nil {
		return err
	}
	progEnv := environ()
	if got.OwnerDied {
		if got.PrevOwner != 0 {
			env.Warnf("%s: previous owner (pid %d) died holding the lock", slot(h.name, h.idx), got.PrevOwner)
		} else {
			env.Warnf("%s: previous owner died holding the lock", slot(h.name, h.idx))
		}
		// 0 when the dead owner's pid is unknown.
		progEnv = append(progEnv, ownerDiedEnv+"="+strconv.Itoa(got.PrevOwner))
	}
	ws, err := h.run(progEnv)
	// A segment truncated by someone else meanwhile faults: EBADF.
	if uerr := h.seg.NoFault("unlock", func() error { return h.seg.Unlock(h.idx) }); uerr != nil && err == nil {
		err = fail("unlock", slot(h.name, h.idx), uerr)
	}
	if err != nil {
		return err
	}
	if cerr := closeSeg(h.name, h.seg); cerr != nil {
		return cerr
	}
	return exitcode.Exit(exitcode.Approx(ws))
}

// environ is shmlock's environment less any SHMLOCK_OWNER_DIED it
// inherited: prog sees the variable only when its own lock was taken over.
func environ() []string {
	var l []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, ownerDiedEnv+"=") {
			l = append(l, kv)
		}
	}
	return l
}

// acquire takes the lock. It waits in a goroutine, so that TERM, INT, HUP
// or QUIT can end the wait: shmlock then exits 128+n with nothing held.
func (h *holder) acquire(try bool, timeout time.Duration) (shm.Acquired, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	type result struct {
		got shm.Acquired
		err error
	}
	done := make(chan result, 1)
	go func() {
		var got shm.Acquired
		err := h.seg.NoFault("lock", func() (err error) {
			got, err = h.seg.Acquire(ctx, h.idx, try)
			return err
		})
		done <- result{got, err}
	}()
	var ended unix.Signal
	for {
		select {
		case s := <-h.sigs:
			switch s {
			case unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT:
				if ended == 0 {
					ended = s.(unix.Signal)
					cancel()
				}
			}
			continue
		case r := <-done:
			if ended != 0 {
				if r.err == nil && r.got.Locked {
					_ = h.seg.NoFault("unlock", func() error { return h.seg.Unlock(h.idx) })
				}
				return shm.Acquired{}, exitcode.Exit(128 + int(ended))
			}
			return h.acquired(r.got, r.err, try)
		}
	}
}

// acquired turns Acquire's outcome into acquire's.
func (h *holder) acquired(got shm.Acquired, err error, try bool) (shm.Acquired, error) {
	where := slot(h.name, h.idx)
	switch e := errno(err); {
	case err == nil && got.Locked:
		return got, nil
	case err == nil && try:
		return got, exitcode.Errorf(exitcode.Refused, "unable to lock %s: %w", where, unix.EBUSY)
	case err == nil:
		return got, exitcode.Errorf(exitcode.Sys, "unable to lock %s: not locked", where)
	case e == unix.ETIMEDOUT:
		return got, exitcode.Errorf(exitcode.Refused, "lock %s: timed out", where)
	default:
		return got, fail("lock", where, err, unix.EBUSY)
	}
}

// run spawns prog, forwards signals to it until it dies, and returns its
// wait status. With -k, prog is spawned from a goroutine locked to its
// thread, which stays locked until prog is reaped: PR_SET_PDEATHSIG fires
// when the spawning thread ends, not the process (prctl(2);
// golang/go#27505).
func (h *holder) run(env []string) (unix.WaitStatus, error) {
	type spawned struct {
		pid int
		err error
	}
	started := make(chan spawned, 1)
	reaped := make(chan struct{})
	defer close(reaped)
	go func() {
		attr := proc.Attr{Env: env}
		if h.kill {
			runtime.LockOSThread()
			attr.Pdeathsig = unix.SIGKILL
		}
		pid, err := proc.Spawn(h.prog, attr)
		started <- spawned{pid, err}
		if h.kill {
			if err == nil {
				<-reaped
			}
			runtime.UnlockOSThread()
		}
	}()
	sp := <-started
	if sp.err != nil {
		return 0, exitcode.New(proc.SpawnCode(sp.err), sp.err)
	}
	for s := range h.sigs {
		if s != unix.SIGCHLD {
			// prog is our unreaped child: its pid cannot have been
			// reused.
			_ = sys.Kill(sp.pid, s.(unix.Signal))
			continue
		}
		var ws unix.WaitStatus
		found := false
		err := proc.Reap(func(pid int, s unix.WaitStatus) {
			if pid == sp.pid {
				ws, found = s, true
			}
		})
		if err != nil {
			return 0, exitcode.Errorf(exitcode.Sys, "unable to wait for %s: %w", h.prog[0], sys.Errno(err))
		}
		if found {
			return ws, nil
		}
	}
	panic("unreachable: os/signal never closes its channel")
}
