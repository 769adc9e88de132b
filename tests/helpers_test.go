package tests

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// roles are the helper programs of the end-to-end tests. TestMain runs
// roles[NAME] instead of the tests when the test binary is started as NAME
// (through the farm's symlink NAME, or with argv[0] set to NAME), and exits
// with what it returns. A full run must use every role (TestMain checks).
//
// Conventions shared by the roles:
//   - A role the test must wait for prints "ready" on stdout once it is
//     ready (signal handlers installed, children started). No role sleeps
//     for synchronisation.
//   - Signal names are written without "SIG": "HUP", "USR1"; a signal
//     without a name as its number. Signal arguments accept "TERM",
//     "SIGTERM", "term" and "15".
//   - A FATE is how a role ends: a decimal exit code (0..255), or a signal
//     name, by which the role then kills itself with the default disposition
//     restored, so its parent sees "killed by SIG".
//   - Go roles never see SIGURG: the Go runtime sends it to itself for
//     preemption, so it is dropped, never recorded or acted on. A test that
//     must see a forwarded SIGURG needs a non-Go helper (a shell trap).
//   - A role that cannot do its job prints "ROLE: fatal: ..." on stderr and
//     exits 111 (100 for bad arguments).
var roles = map[string]func(args []string) int{
	"daemonize": roleDaemonize,
	"daemon":    roleDaemon,
	"trapsig":   roleTrapsig,
	"exitwith":  roleExitwith,
	"killself":  roleKillself,
	"sleeper":   roleSleeper,
	"orphans":   roleOrphans,
	"noreap":    roleNoreap,
	"leakfd":    roleLeakfd,
	"fdlist":    roleFdlist,

	"epollprobe": roleEpollprobe,
	"lineserver": roleLineserver,
	"ttyprobe":   roleTtyprobe,
	"dumptopo":   roleDumptopo, // fdrestore_dump_test.go

	"fdstoreprobe": roleFdstoreprobe, // supervise_fdstore_test.go
}

// roleDaemonize is a launcher that backgrounds a daemon, the prog of
// background-watch:
//
//	daemonize [-write daemon|self|none] [-content TEXT] [-early] [-setsid]
//	          [-orphans N] PIDFILE FATE [DAEMON-FLAGS...]
//
// It starts the daemon role with DAEMON-FLAGS (see [roleDaemon]) as its
// child, in its own process group and session (a new session with
// -setsid), giving it every fd it inherited itself, at the same numbers, as
// fork(2) would. It
// waits until the daemon is ready (-early: it does not), writes PIDFILE, and
// ends with FATE without waiting for the daemon, which then outlives it.
//
// PIDFILE gets the daemon's pid and a newline (-write daemon, the default),
// the launcher's own pid and a newline (-write self: a dead process by the
// time anyone reads it), nothing at all (-write none: no file is created), or
// TEXT exactly (-content TEXT: "" for an empty file, "abc", "12x", "1\n" for
// a live process that is not a descendant). The daemon is started in every
// case. -orphans N first starts N sleeper children that outlive it too
// (stdin and stdout on /dev/null) and prints "orphan PID" for each.
func roleDaemonize(args []string) int {
	fs := flag.NewFlagSet("daemonize", flag.ContinueOnError)
	write := fs.String("write", "daemon", "what PIDFILE gets: daemon, self or none")
	content := fs.String("content", "", "write this text to PIDFILE instead")
	early := fs.Bool("early", false, "exit without waiting for the daemon to be ready")
	setsid := fs.Bool("setsid", false, "start the daemon in a new session")
	orphans := fs.Int("orphans", 0, "also leave this many sleeper children behind")
	if fs.Parse(args) != nil || fs.NArg() < 2 || !slices.Contains([]string{"daemon", "self", "none"}, *write) {
		return usage("daemonize", "[-write daemon|self|none] [-content TEXT] [-early] [-setsid] [-orphans N] PIDFILE FATE [DAEMON-FLAGS...]")
	}
	contentSet := false
	fs.Visit(func(f *flag.Flag) { contentSet = contentSet || f.Name == "content" })
	pidfile := fs.Arg(0)
	end, err := parseFate(fs.Arg(1))
	if err != nil {
		return usage("daemonize", err.Error())
	}
	daemonArgs := fs.Args()[2:]

	if *orphans > 0 {
		quiet, err := quietStdio()
		if err != nil {
			return fatal("daemonize", err)
		}
		for range *orphans {
			pid, err := spawnRole("sleeper", nil, quiet, false)
			if err != nil {
				return fatal("daemonize", err)
			}
			fmt.Printf("orphan %d\n", pid)
		}
	}

	// The daemon gets our inherited fds at the same numbers, plus the write
	// end of a readiness pipe at the next free number.
	inherited, err := inheritedFDs()
	if err != nil {
		return fatal("daemonize", err)
	}
	n := 0
	if len(inherited) > 0 {
		n = slices.Max(inherited) + 1
	}
	files := make([]uintptr, n)
	for i := range files {
		files[i] = ^uintptr(0) // closed in the daemon
	}
	for _, fd := range inherited {
		files[fd] = uintptr(fd)
	}
	var ready *os.File
	if !*early {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return fatal("daemonize", fmt.Errorf("pipe2: %w", err))
		}
		ready = os.NewFile(uintptr(p[0]), "ready")
		defer ready.Close()
		daemonArgs = append([]string{"-notify", strconv.Itoa(len(files))}, daemonArgs...)
		files = append(files, uintptr(p[1]))
	}
	pid, err := spawnRole("daemon", daemonArgs, files, *setsid)
	if ready != nil {
		unix.Close(int(files[len(files)-1])) // the daemon holds the write end now
	}
	if err != nil {
		return fatal("daemonize", err)
	}
	if ready != nil {
		b, err := io.ReadAll(ready)
		if err != nil || string(b) != "\n" {
			return fatal("daemonize", fmt.Errorf("daemon %d died before it was ready (read %q, %v)", pid, b, err))
		}
	}

	var text string
	switch {
	case contentSet:
		text = *content
	case *write == "daemon":
		text = fmt.Sprintf("%d\n", pid)
	case *write == "self":
		text = fmt.Sprintf("%d\n", os.Getpid())
	}
	if contentSet || *write != "none" {
		if err := os.WriteFile(pidfile, []byte(text), 0o644); err != nil {
			return fatal("daemonize", err)
		}
	}
	return end.end("daemonize")
}

// roleDaemon is the daemon that daemonize starts, and a signal recorder
// of its own:
//
//	daemon [-record FILE] [-on SIG|none] [-code FATE] [-after MS]
//	       [-fds FILE] [-notify FD]
//
// It catches every signal and appends each one's name to FILE (opened and
// closed for each line, so it holds no fd for it), one per line. It ends
// when it receives the -on signal (default TERM) or after MS milliseconds:
// with FATE if -code is given, else by the signal it received, re-raised
// with the default disposition (so TERM kills it by SIGTERM), or with exit 0
// after MS. -fds writes the fds it inherited to FILE, as fdlist prints them
// (the -notify fd left out). Once ready it prints "ready" on stdout, then
// writes "\n" to the -notify fd and closes it.
func roleDaemon(args []string) int {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	record := fs.String("record", "", "append each received signal's name to this file")
	fdsFile := fs.String("fds", "", "write the inherited fds to this file")
	notify := fs.Int("notify", -1, "write a newline to this fd once ready")
	var l sigLoop
	l.flags(fs, "TERM")
	if fs.Parse(args) != nil || fs.NArg() != 0 {
		return usage("daemon", "[-record FILE] [-on SIG|none] [-code FATE] [-after MS] [-fds FILE] [-notify FD]")
	}
	if *record != "" {
		l.record = func(name string) error {
			f, err := os.OpenFile(*record, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				return err
			}
			_, err = f.WriteString(name + "\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		}
	}
	ch := l.notify()
	if *fdsFile != "" {
		table, err := fdTable(*notify)
		if err == nil {
			err = os.WriteFile(*fdsFile, []byte(table), 0o644)
		}
		if err != nil {
			return fatal("daemon", err)
		}
	}
	os.Stdout.WriteString("ready\n")
	if *notify >= 0 {
		_, err := unix.Write(*notify, []byte("\n"))
		unix.Close(*notify)
		if err != nil {
			return fatal("daemon", fmt.Errorf("write to notify fd %d: %w", *notify, err))
		}
	}
	return l.run("daemon", ch)
}

// roleTrapsig prints "ready", then the name of each signal it receives on
// stdout, one per line, each written at once:
//
//	trapsig [-on SIG|none] [-code FATE] [-after MS]
//
// It never ends by itself (-on none, the default): SIGKILL ends it. The
// flags end it as they end [roleDaemon].
func roleTrapsig(args []string) int {
	fs := flag.NewFlagSet("trapsig", flag.ContinueOnError)
	var l sigLoop
	l.flags(fs, "none")
	if fs.Parse(args) != nil || fs.NArg() != 0 {
		return usage("trapsig", "[-on SIG|none] [-code FATE] [-after MS]")
	}
	l.record = func(name string) error {
		_, err := os.Stdout.WriteString(name + "\n")
		return err
	}
	ch := l.notify()
	os.Stdout.WriteString("ready\n")
	return l.run("trapsig", ch)
}

// roleExitwith exits with the code given: "exitwith N", N in 0..255.
func roleExitwith(args []string) int {
	if len(args) != 1 {
		return usage("exitwith", "N")
	}
	f, err := parseFate(args[0])
	if err != nil || f.sig != 0 {
		return usage("exitwith", "N")
	}
	return f.code
}

// roleKillself kills itself with the signal given, its default disposition
// restored: "killself SIG". Its parent sees "killed by SIG".
func roleKillself(args []string) int {
	if len(args) != 1 {
		return usage("killself", "SIG")
	}
	sig, err := parseSig(args[0])
	if err != nil {
		return usage("killself", "SIG")
	}
	return fate{sig: sig}.end("killself")
}

// roleSleeper prints "ready" and sleeps until a signal ends it. Every signal
// has its default effect, as for /bin/sleep, except that the stop signals
// (TSTP, TTIN, TTOU) are ignored like CHLD, URG, WINCH and CONT: HUP, TERM,
// USR1... kill it by that signal. (A plain Go program would ignore USR1.)
func roleSleeper(args []string) int {
	if len(args) != 0 {
		return usage("sleeper", "")
	}
	ch := make(chan os.Signal, 64)
	signal.Notify(ch)
	os.Stdout.WriteString("ready\n")
	return sleepUntilKilled("sleeper", ch)
}

// roleOrphans starts N sleeper children (stdin and stdout on /dev/null),
// prints their pids on stdout, one per line, and exits 0 at once without
// waiting for them: "orphans N". They outlive it until killed.
func roleOrphans(args []string) int {
	n, ok := count(args)
	if !ok {
		return usage("orphans", "N")
	}
	quiet, err := quietStdio()
	if err != nil {
		return fatal("orphans", err)
	}
	for range n {
		pid, err := spawnRole("sleeper", nil, quiet, false)
		if err != nil {
			return fatal("orphans", err)
		}
		fmt.Printf("%d\n", pid)
	}
	return 0
}

// roleNoreap is a parent that never reaps, the zombie detector's negative
// control: "noreap N" starts N children that exit 0 at once, prints "ready",
// and sleeps as [roleSleeper] does without ever waiting for them, so each
// child stays a zombie (state Z) under it.
func roleNoreap(args []string) int {
	n, ok := count(args)
	if !ok {
		return usage("noreap", "N")
	}
	ch := make(chan os.Signal, 64)
	signal.Notify(ch)
	quiet, err := quietStdio()
	if err != nil {
		return fatal("noreap", err)
	}
	for range n {
		if _, err := spawnRole("exitwith", []string{"0"}, quiet, false); err != nil {
			return fatal("noreap", err)
		}
	}
	os.Stdout.WriteString("ready\n")
	return sleepUntilKilled("noreap", ch)
}

// roleLeakfd opens FILE read-only without close-on-exec, the fd-leak
// detector's negative control: "leakfd FILE [PROG ARGS...]". With PROG it
// executes PROG (looked up in $PATH), which inherits the fd; without, it
// prints "ready" and sleeps as [roleSleeper] does, holding the fd.
func roleLeakfd(args []string) int {
	if len(args) < 1 {
		return usage("leakfd", "FILE [PROG ARGS...]")
	}
	if _, err := unix.Open(args[0], unix.O_RDONLY, 0); err != nil {
		return fatal("leakfd", fmt.Errorf("open %s: %w", args[0], err))
	}
	if len(args) > 1 {
		path, err := exec.LookPath(args[1])
		if err != nil {
			return fatal("leakfd", err)
		}
		err = unix.Exec(path, args[1:], os.Environ())
		return fatal("leakfd", fmt.Errorf("exec %s: %w", path, err))
	}
	ch := make(chan os.Signal, 64)
	signal.Notify(ch)
	os.Stdout.WriteString("ready\n")
	return sleepUntilKilled("leakfd", ch)
}

// roleFdlist prints the fds it inherited, "N -> TARGET" per line in
// increasing order (TARGET as readlink /proc/self/fd/N gives it), and exits
// 0. Inherited fds are told from the Go runtime's own by their
// close-on-exec flag: the runtime opens everything close-on-exec, and
// execve(2) keeps only the fds without it.
func roleFdlist(args []string) int {
	if len(args) != 0 {
		return usage("fdlist", "")
	}
	table, err := fdTable(-1)
	if err != nil {
		return fatal("fdlist", err)
	}
	os.Stdout.WriteString(table)
	return 0
}

// sigLoop is the signal handling of daemon and trapsig.
type sigLoop struct {
	record func(name string) error // where each received signal goes; nil: nowhere
	on     unix.Signal             // the signal that ends the loop; 0: none
	fate   *fate                   // how the loop ends; nil: by the signal, or 0
	after  int                     // milliseconds until the loop ends; < 0: never
}

func (l *sigLoop) flags(fs *flag.FlagSet, on string) {
	l.on, _ = parseSig(on)
	l.after = -1
	fs.Func("on", "end on this signal (none: never; default "+on+")", func(s string) (err error) {
		l.on = 0
		if s != "none" {
			l.on, err = parseSig(s)
		}
		return err
	})
	fs.Func("code", "end with this FATE", func(s string) error {
		f, err := parseFate(s)
		l.fate = &f
		return err
	})
	fs.IntVar(&l.after, "after", -1, "end after this many milliseconds")
}

// notify catches every signal. Call it before announcing readiness: once it
// returns, no signal can take its default effect any more.
func (l *sigLoop) notify() chan os.Signal {
	ch := make(chan os.Signal, 64)
	signal.Notify(ch)
	return ch
}

func (l *sigLoop) run(role string, ch chan os.Signal) int {
	var timeout <-chan time.Time
	if l.after >= 0 {
		timeout = time.After(time.Duration(l.after) * time.Millisecond)
	}
	for {
		select {
		case s := <-ch:
			sig := s.(syscall.Signal)
			if sig == unix.SIGURG {
				continue
			}
			if l.record != nil {
				if err := l.record(sigName(sig)); err != nil {
					return fatal(role, err)
				}
			}
			if sig != l.on {
				continue
			}
			if l.fate != nil {
				return l.fate.end(role)
			}
			return fate{sig: sig}.end(role)
		case <-timeout:
			if l.fate != nil {
				return l.fate.end(role)
			}
			return 0
		}
	}
}

// sleepUntilKilled gives each signal from ch its default effect: it returns
// (dies) on those that terminate a process and ignores the others.
func sleepUntilKilled(role string, ch chan os.Signal) int {
	ignored := []unix.Signal{unix.SIGURG, unix.SIGCHLD, unix.SIGWINCH, unix.SIGCONT,
		unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU}
	for s := range ch {
		if sig := s.(syscall.Signal); !slices.Contains(ignored, sig) {
			return fate{sig: sig}.end(role)
		}
	}
	return 0
}

// fate is how a role ends: by exit code, or by a signal if sig is not 0.
type fate struct {
	code int
	sig  unix.Signal
}

// parseFate reads a decimal exit code (0..255) or a signal name.
func parseFate(s string) (fate, error) {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		n, err := strconv.Atoi(s)
		if err != nil || n > 255 {
			return fate{}, fmt.Errorf("exit code %q out of range", s)
		}
		return fate{code: n}, nil
	}
	sig, err := parseSig(s)
	return fate{sig: sig}, err
}

// end ends the role with f: it returns the exit code, or kills the process
// by the signal and returns 111 only if the signal did not kill it.
func (f fate) end(role string) int {
	if f.sig == 0 {
		return f.code
	}
	dieBy(f.sig)
	return fatal(role, fmt.Errorf("%s did not kill me", unix.SignalName(f.sig)))
}

// dieBy kills the process by sig so that its parent sees "killed by sig".
// The Go runtime catches every signal, and ignores those it is not asked
// for (os/signal: SIGUSR1 would be caught and dropped), so first set the
// default disposition back with a raw rt_sigaction(2) (os/signal cannot:
// signal.Reset restores the runtime's handler), then unblock sig and send it
// to this very thread with tgkill(2). The signal is fatal at once. Returns
// only if sig's default action is not to terminate.
func dieBy(sig unix.Signal) {
	runtime.LockOSThread()
	if sig != unix.SIGKILL && sig != unix.SIGSTOP {
		// An all-zero struct sigaction is SIG_DFL with no flags and an empty
		// mask, whatever the architecture's field order; 8 words cover it.
		var act [8]uint64
		_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig),
			uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
		if errno != 0 {
			fmt.Fprintf(os.Stderr, "rt_sigaction(%s): %v\n", unix.SignalName(sig), errno)
		}
		var set unix.Sigset_t
		set.Val[(sig-1)/64] |= 1 << ((uint(sig) - 1) % 64)
		unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
	}
	unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
}

// sigName returns "HUP" for SIGHUP, and the number of a signal without a name.
func sigName(sig unix.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return strings.TrimPrefix(n, "SIG")
	}
	return strconv.Itoa(int(sig))
}

// parseSig reads "TERM", "SIGTERM", "term" or "15".
func parseSig(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return unix.Signal(n), nil
	}
	u := strings.ToUpper(s)
	if !strings.HasPrefix(u, "SIG") {
		u = "SIG" + u
	}
	if sig := unix.SignalNum(u); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// spawnRole starts the test binary as role with args and the fd table files
// (files[i] becomes fd i; ^uintptr(0) closes it), and returns its pid. It
// uses syscall.ForkExec, not os.StartProcess: a role that leaves children
// behind must hold no pidfd for them, and must not touch the O_NONBLOCK
// flag of fds it passes on as (*os.File).Fd would.
func spawnRole(role string, args []string, files []uintptr, setsid bool) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	pid, err := syscall.ForkExec(exe, append([]string{role}, args...), &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: files,
		Sys:   &syscall.SysProcAttr{Setsid: setsid},
	})
	if err != nil {
		return 0, fmt.Errorf("unable to spawn %s: %w", role, err)
	}
	return pid, nil
}

// quietStdio returns the fd table of children that must not write on our
// stdout: stdin and stdout on /dev/null, stderr shared. The /dev/null fd
// is close-on-exec and stays open in the role, which is about to exit or
// sleep.
func quietStdio() ([]uintptr, error) {
	null, err := unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	return []uintptr{uintptr(null), uintptr(null), 2}, nil
}

// inheritedFDs returns this process's fds without close-on-exec: what it
// inherited, since the Go runtime and os open everything close-on-exec.
func inheritedFDs() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			continue // the directory's own fd, closed by now
		}
		if flags&unix.FD_CLOEXEC == 0 {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	return fds, nil
}

// fdTable renders the inherited fds but skip as "N -> TARGET" lines.
func fdTable(skip int) (string, error) {
	fds, err := inheritedFDs()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, fd := range fds {
		if fd == skip {
			continue
		}
		target, err := os.Readlink(filepath.Join("/proc/self/fd", strconv.Itoa(fd)))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d -> %s\n", fd, target)
	}
	return b.String(), nil
}

// count reads a role's only argument, a decimal count.
func count(args []string) (int, bool) {
	if len(args) != 1 {
		return 0, false
	}
	f, err := parseFate(args[0])
	return f.code, err == nil && f.sig == 0
}

func usage(role, synopsis string) int {
	fmt.Fprintf(os.Stderr, "%s: usage: %s %s\n", role, role, synopsis)
	return 100
}

func fatal(role string, err error) int {
	fmt.Fprintf(os.Stderr, "%s: fatal: %v\n", role, err)
	return 111
}

// roleEpollprobe checks an epoll it inherited, as a program restored by
// fdrestore sees it: "epollprobe EPFD TARGET...". It prints "ready" and
// the data of every event epoll_wait(2) reports at once (timeout 0),
// ascending, on one line; then, for each TARGET, "mod T ok" or "mod T
// ERRNO" for epoll_ctl(EPOLL_CTL_MOD) with data T, and then "del T ok" or
// "del T ERRNO" for EPOLL_CTL_DEL. Items keyed by other numbers than the
// final ones give ENOENT.
func roleEpollprobe(args []string) int {
	if len(args) < 2 {
		return usage("epollprobe", "EPFD TARGET...")
	}
	fds := make([]int, len(args))
	for i, a := range args {
		n, err := strconv.Atoi(a)
		if err != nil || n < 0 {
			return usage("epollprobe", "EPFD TARGET...")
		}
		fds[i] = n
	}
	epfd, targets := fds[0], fds[1:]
	events := make([]unix.EpollEvent, 256)
	var n int
	var err error
	for {
		n, err = unix.EpollWait(epfd, events, 0)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fatal("epollprobe", fmt.Errorf("epoll_wait on fd %d: %w", epfd, err))
	}
	var data []uint64
	for _, ev := range events[:n] {
		data = append(data, uint64(uint32(ev.Fd))|uint64(uint32(ev.Pad))<<32)
	}
	slices.Sort(data)
	var b strings.Builder
	b.WriteString("ready")
	for _, d := range data {
		fmt.Fprintf(&b, " %d", d)
	}
	b.WriteString("\n")
	result := func(err error) string {
		var errno unix.Errno
		if err == nil {
			return "ok"
		}
		if errors.As(err, &errno) {
			return unix.ErrnoName(errno)
		}
		return err.Error()
	}
	for _, t := range targets {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT, Fd: int32(t)}
		fmt.Fprintf(&b, "mod %d %s\n", t, result(unix.EpollCtl(epfd, unix.EPOLL_CTL_MOD, t, &ev)))
	}
	for _, t := range targets {
		fmt.Fprintf(&b, "del %d %s\n", t, result(unix.EpollCtl(epfd, unix.EPOLL_CTL_DEL, t, nil)))
	}
	os.Stdout.WriteString(b.String())
	return 0
}

// roleLineserver serves the listening stream socket at fd 3: "lineserver".
// It prints "ready ADDR" (the socket's address, as getsockname(2) gives it)
// once it is about to accept, then accepts forever, answering each
// connection with its own pid and a newline, and closing it. It uses raw
// blocking accept4(2), never net.FileListener, which would make the
// description (shared with whoever else holds the socket) non-blocking.
// Only a signal ends it.
func roleLineserver(args []string) int {
	if len(args) != 0 {
		return usage("lineserver", "")
	}
	const lfd = 3
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		return fatal("lineserver", fmt.Errorf("getsockname on fd %d: %w", lfd, err))
	}
	var addr string
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		addr = fmt.Sprintf("%d.%d.%d.%d:%d", a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3], a.Port)
	case *unix.SockaddrInet6:
		addr = fmt.Sprintf("[%x]:%d", a.Addr, a.Port)
	case *unix.SockaddrUnix:
		addr = a.Name
	default:
		return fatal("lineserver", fmt.Errorf("fd %d: unexpected address %T", lfd, sa))
	}
	answer := []byte(strconv.Itoa(os.Getpid()) + "\n")
	os.Stdout.WriteString("ready " + addr + "\n")
	for {
		c, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
			continue
		case errors.Is(err, unix.EAGAIN):
			// Someone made the description non-blocking: wait for a client.
			unix.Poll([]unix.PollFd{{Fd: lfd, Events: unix.POLLIN}}, -1)
			continue
		case err != nil:
			return fatal("lineserver", fmt.Errorf("accept on fd %d: %w", lfd, err))
		}
		unix.Write(c, answer)
		unix.Close(c)
	}
}

// roleTtyprobe reports its session and terminal from /proc/self/stat:
// "ttyprobe [FD]". It prints "pid P pgrp G sid S"; with FD, a terminal,
// also "tty MAJ:MIN rdev MAJ:MIN tpgid T" (its controlling terminal,
// tty_nr, next to FD's device number) and "devtty ok" or "devtty ERRNO"
// for open("/dev/tty").
func roleTtyprobe(args []string) int {
	if len(args) > 1 {
		return usage("ttyprobe", "[FD]")
	}
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return fatal("ttyprobe", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 6 {
		return fatal("ttyprobe", fmt.Errorf("cannot parse /proc/self/stat %q", s))
	}
	// After the command: state ppid pgrp session tty_nr tpgid.
	fmt.Printf("pid %d pgrp %s sid %s\n", os.Getpid(), f[2], f[3])
	if len(args) == 0 {
		return 0
	}
	fd, err := strconv.Atoi(args[0])
	if err != nil {
		return usage("ttyprobe", "[FD]")
	}
	ttyNr, err := strconv.ParseUint(f[4], 10, 32)
	if err != nil {
		return fatal("ttyprobe", fmt.Errorf("tty_nr %q: %w", f[4], err))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fatal("ttyprobe", fmt.Errorf("fstat fd %d: %w", fd, err))
	}
	// proc(5): tty_nr has the major in bits 15-8 and the minor in bits
	// 31-20 and 7-0.
	major, minor := (ttyNr>>8)&0xfff, (ttyNr&0xff)|((ttyNr>>12)&0xfff00)
	fmt.Printf("tty %d:%d rdev %d:%d tpgid %s\n", major, minor, unix.Major(st.Rdev), unix.Minor(st.Rdev), f[5])
	tty, err := unix.Open("/dev/tty", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		var errno unix.Errno
		errors.As(err, &errno)
		fmt.Printf("devtty %s\n", unix.ErrnoName(errno))
		return 0
	}
	unix.Close(tty)
	fmt.Println("devtty ok")
	return 0
}
