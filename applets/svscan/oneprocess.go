package svscan

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/supervisor"
	"github.com/gotools-dev/gotools/lib/sys"
)

// --one-process: every service is supervised inside svscan's own process
// by a [supervisor.Service] on one [supervisor.Loop], instead of by a
// supervise child. Each service directory is kept exactly as supervise
// keeps it (supervise/lock held by an OFD lock of svscan's, the control
// FIFO, status, event/, the death tally, the fd store), so every client
// sees no difference, except that the directory's supervisor is svscan:
// `fuser DIR/supervise/lock` or /proc/*/fdinfo show svscan's pid.

// open starts the in-process supervisor of name, with files as its
// service's stdin, stdout and stderr. A failure (a supervise process
// already holds the directory, a file of the wrong type) warns and is
// retried in 10 s, as a failed spawn is.
func (s *scanner) open(su *sup, name string, files []*os.File) {
	env := &cli.Env{Name: s.argv[0] + " " + name, Stdout: s.env.Stdout, Stderr: s.env.Stderr}
	svc, err := supervisor.Open(s.tree, supervisor.Config{Env: env, Dir: name, Applet: s.argv[0], Stdio: files})
	if err != nil {
		s.env.Warnf("unable to supervise %s: %s", name, cli.Message(err))
		su.next = time.Now().Add(spawnRetry)
		return
	}
	su.svc = svc
	su.started = time.Now()
}

// treeLoop is the main loop with --one-process: the services' loop, with
// the control FIFO, the scan and the restarts as its owner's part.
func (s *scanner) treeLoop() (end ending) {
	defer func() {
		if r := recover(); r != nil {
			end = ending{crash: true, verb: "run the main loop", err: fmt.Errorf("panic: %v", r)}
		}
	}()
	var done *ending
	buf := make([]byte, 256)
	l := s.tree
	l.Env = s.env
	l.Signals = s.sigR
	l.OnSignal = func(sg unix.Signal) {
		if done == nil {
			if e, ok := s.signal(sg); ok {
				done = &e
			}
		}
	}
	l.Reaped = func(pid int, _ unix.WaitStatus) { s.reaped(pid) }
	l.Ended = func(svc *supervisor.Service) {
		for _, sv := range s.services {
			for _, su := range []*sup{&sv.main, &sv.log} {
				if su.svc == svc {
					if err := svc.Err(); err != nil {
						s.env.Warnf("supervision of %s ended: %s", svc.Dir(), cli.Message(err))
					}
					su.svc = nil
					s.supervisorGone(sv, su)
					return
				}
			}
		}
	}
	l.Poll = func(fds []unix.PollFd) []unix.PollFd {
		return append(fds, unix.PollFd{Fd: int32(s.ctlR), Events: unix.POLLIN})
	}
	l.Handle = func(fds []unix.PollFd) {
		if fds[0].Revents != 0 && done == nil {
			if e, ok := s.readControl(buf); ok {
				done = &e
			}
		}
	}
	l.Deadline = func() time.Time {
		if t := s.timeout(); t >= 0 {
			return time.Now().Add(time.Duration(t) * time.Millisecond)
		}
		return time.Time{}
	}
	l.Tick = s.deadlines
	l.Done = func() bool {
		if done == nil && s.quitting && s.supervisors() == 0 {
			done = &ending{}
		}
		return done != nil
	}
	s.scan()
	if err := l.Run(); err != nil {
		return ending{crash: true, verb: "poll", err: sys.Errno(err)}
	}
	return *done
}
