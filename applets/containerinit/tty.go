package containerinit

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// ownsTerminal reports whether fd 0 is init's controlling terminal with
// init's process group in the foreground (docker run -it): the CMD is
// then given the terminal (spec §2.2), as tini does.
func ownsTerminal() bool {
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// giveTerminal makes the process group pgid the terminal's foreground
// group, then wakes it: the CMD has exec'd already (Go's fork waits for
// the exec), and had it read the terminal before this, SIGTTIN stopped
// it.
func giveTerminal(pgid int) {
	if setForeground(pgid) == nil {
		_ = unix.Kill(-pgid, unix.SIGCONT)
	}
}

// takeTerminal makes init's own group the foreground group again, once
// the CMD is gone.
func takeTerminal() { _ = setForeground(unix.Getpgrp()) }

// setForeground is tcsetpgrp(0, pgid) on a locked thread with SIGTTOU
// blocked: from a background group, tcsetpgrp(3) would otherwise stop the
// caller (termios(3)); a blocked SIGTTOU lets it through.
func setForeground(pgid int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	set.Val[(unix.SIGTTOU-1)/64] |= 1 << ((unix.SIGTTOU - 1) % 64)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
		return err
	}
	err := unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, pgid)
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return err
}

// releaseTerminal gives up init's controlling terminal, fd 0, so that the
// CMD, leader of a session of its own with --setsid, can make it its
// controlling terminal (spec §2.2, dumb-init's behaviour). It reports
// whether it did: only a session leader can hand its terminal over
// (another session's terminal stays that session's after a TIOCNOTTY).
// The kernel then sends SIGHUP and SIGCONT to the terminal's foreground
// group; when that is init's own, one of each is counted to be dropped.
func (l *loop) releaseTerminal() bool {
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	if err != nil {
		return false // fd 0 is not init's controlling terminal
	}
	if sid, err := unix.Getsid(0); err != nil || sid != unix.Getpid() {
		return false
	}
	if err := unix.IoctlSetInt(0, unix.TIOCNOTTY, 0); err != nil {
		return false
	}
	if pgrp == unix.Getpgrp() {
		l.dropHUP, l.dropCONT = 1, 1
	}
	return true
}

// dropped reports whether s is one of the signals giving up the terminal
// sent to init ([loop.releaseTerminal]), which no one else sent and the
// CMD must not get: a forwarded SIGHUP would end it.
func (l *loop) dropped(s unix.Signal) bool {
	switch {
	case s == unix.SIGHUP && l.dropHUP > 0:
		l.dropHUP--
	case s == unix.SIGCONT && l.dropCONT > 0:
		l.dropCONT--
	default:
		return false
	}
	return true
}
