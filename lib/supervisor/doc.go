//go:build linux

// Package supervisor is the supervision of s6 service directories inside
// one process (spec/supervise.md §2, §3): a [Service] is s6-supervise's
// state machine for one directory, with no process of its own, and a
// [Loop] drives any number of them from one poll(2). The supervise applet
// is a Loop with one Service; `svscan --one-process` (and the init
// applet) run one Service per service directory on a single Loop.
//
// Each directory is kept exactly as a supervise process keeps it:
// supervise/lock held by an OFD write lock on an fd of this process,
// supervise/control (read non-blocking, a write end kept), status written
// atomically, event/ notified without blocking, the death tally, down,
// finish, notification-fd, lock-fd, pidfile, the fd store and its notify
// socket. Clients (svc, svstat, svok, svwait, s6-svc, s6-svstat, s6-svok,
// s6-svwait, s6-rc) cannot tell the difference, except that no supervise
// process exists per service: the holder of DIR/supervise/lock is the
// process running the Loop (`fuser DIR/supervise/lock`; /proc/locks shows
// an OFD lock's pid as -1).
//
// One service's trouble never delays another's: nothing blocks (files
// are read non-blocking and only if regular, finish runs as a child with
// its own deadline, a failed write warns and the state stays in memory).
//
// # API for an in-process tree (init)
//
//	sigR, _ := sig.SelfPipe()                  // every signal, as bytes
//	l := &supervisor.Loop{Env: env, Signals: sigR}
//	l.OnSignal = func(s unix.Signal) { ... }   // signals other than SIGCHLD
//	l.Reaped = func(pid int, ws unix.WaitStatus) { ... } // children no service owns (PID 1's orphans, the CMD)
//	l.Events = func(s *supervisor.Service, ev string) { ... } // every event of every service
//	l.Ended = func(s *supervisor.Service) { ... }          // a service's supervision ended (x, error)
//	l.Poll, l.Handle = ...                     // the owner's own fds (a control FIFO)
//	l.Deadline, l.Tick = ...                   // the owner's own timers
//	l.Done = func() bool { ... }               // Run returns when true
//	svc, err := supervisor.Open(l, supervisor.Config{Env: e, Dir: "NAME", Applet: "supervise", Stdio: files})
//	svc.Control([]byte("d"))                   // as svc -d; Signal(SIGTERM) brings it down and ends it
//	err = l.Run()
//
// Adding a service is [Open]; removing one is Control("dx") or
// Signal(unix.SIGTERM) (it ends once down, and Ended is called); bringing
// everything down is Signal(SIGTERM) to every service of [Loop.Services],
// then Run until Done. The Loop reaps every child with one wait4(-1) loop:
// run's and finish's statuses go to their service, every other one to
// Reaped, so a PID 1 owns the reaping through that hook. Everything runs
// in Run's goroutine: hooks may call Open, Control and Signal, and nothing
// else may.
//
// # A whole scan directory (svscan, init)
//
// [OpenTree] attaches s6-svscan's scanner to a Loop: it holds
// SCANDIR/.s6-svscan/lock, reads .s6-svscan/control, scans SCANDIR at
// Run's first turn, supervises each service (in-process, or as supervise
// processes with TreeConfig.Spawn) with log/ pipes, restarts dead
// supervisors, and ends as svscanctl asks:
//
//	l := &supervisor.Loop{Env: env, Signals: sigR}         // the owner's hooks as above
//	t, err := supervisor.OpenTree(l, supervisor.TreeConfig{Env: env, Dir: "/run/service"})
//	l.OnSignal = func(s unix.Signal) { if s == unix.SIGTERM { t.Command('t') } }
//	err = l.Run()             // returns once t.Done() (or the owner's Done)
//	t.Err()                   // non-nil: unrecoverable (s6-svscan runs crash)
//	t.Close()
//
// Command('t') is svscanctl -t (loggers get SIGHUP and drain their pipe),
// 'q' is -q, 'h' -h, 'a' -a, 'b' ends at once; the tree is done once every
// supervisor is gone. Signals are the owner's: the tree maps none.
//
// Memory: the Go collector is off ([QuietRuntime]); before each sleep
// without a deadline the Loop collects if more than 256 KiB were
// allocated since the last collection, so an idle tree never wakes up and
// a restart storm leaves nothing behind. A death and restart allocate
// nothing: paths, files read and written, event notifications, fd tables
// and the spawn (a proc.Spawner) go through buffers that the Loop keeps
// for all its services (scratch.go); TestDeathAllocations measures it.
package supervisor
