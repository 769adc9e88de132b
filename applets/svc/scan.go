package svc

import (
	"errors"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/sig"
)

// MaxCommands is the most letters one svc sends: they go in one write of
// at most 62 bytes (spec/supervise.md §2.5, s6-svc's "too many commands").
const MaxCommands = 62

// letters lists every command letter and its long option (the names of
// [command]'s fields' name tags), in pairs: a string, not a map, so that
// nothing is built at init for every applet of the binary.
const letters = "a alrm b abrt q quit h hup k kill t term i int 1 usr1 2 usr2 p stop c cont y winch " +
	"r restart l reload P pgstop C pgcont K pgkill o once d down u up D down-file U up-file " +
	"x exit O once-at-most Q down-quiet"

// letterOf returns the command letter of the option named name: a letter
// itself, or a long name.
func letterOf(name string) (byte, bool) {
	f := strings.Fields(letters)
	for i := 0; i+1 < len(f); i += 2 {
		if f[i] == name || f[i+1] == name {
			return f[i][0], true
		}
	}
	return 0, false
}

// signalLetter returns the letter -s sends for sig, for the signals it
// accepts.
func signalLetter(sig unix.Signal) (byte, bool) {
	switch sig {
	case unix.SIGALRM:
		return 'a', true
	case unix.SIGABRT:
		return 'b', true
	case unix.SIGQUIT:
		return 'q', true
	case unix.SIGHUP:
		return 'h', true
	case unix.SIGKILL:
		return 'k', true
	case unix.SIGTERM:
		return 't', true
	case unix.SIGINT:
		return 'i', true
	case unix.SIGUSR1:
		return '1', true
	case unix.SIGUSR2:
		return '2', true
	case unix.SIGSTOP:
		return 'p', true
	case unix.SIGCONT:
		return 'c', true
	case unix.SIGWINCH:
		return 'y', true
	}
	return 0, false
}

// scan reads the command letters off args, in order, as getopt would:
// options end at "--", at "-" or at the first operand. kong has checked
// the syntax already (scan skips what it does not know); scan checks -s
// values and the count, in command-line order, as s6-svc does.
func scan(args []string) ([]byte, error) {
	var out []byte
	add := func(c byte) error {
		if len(out) == MaxCommands {
			return exitcode.Errorf(exitcode.Usage, "too many commands")
		}
		out = append(out, c)
		return nil
	}
	addSignal := func(s string) error {
		n, err := sig.Parse(s)
		if err != nil {
			return exitcode.Errorf(exitcode.Usage, "invalid signal: %s", s)
		}
		c, ok := signalLetter(n)
		if !ok {
			return exitcode.Errorf(exitcode.Usage, "%s is not in the list of user-available signals", s)
		}
		return add(c)
	}
	valued := func(name string) bool {
		switch name {
		case "w", "T", "s", "wait", "timeout", "signal":
			return true
		}
		return false
	}
	err := cli.Options(args, valued, func(name, val string) error {
		switch name {
		case "s", "signal":
			return addSignal(val)
		case "w", "T", "wait", "timeout":
			return nil
		}
		c, ok := letterOf(name)
		switch {
		case ok:
			return add(c)
		case len(name) == 1:
			return errors.New("internal error: unknown option letter left by the parser")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
