package svc

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/sig"
)

// MaxCommands is the most letters one svc sends: they go in one write of
// at most 62 bytes (spec/supervise.md §2.5, s6-svc's "too many commands").
const MaxCommands = 62

// letters maps every command letter to its long option (the names of
// [command]'s fields' name tags).
var letters = map[byte]string{
	'a': "alrm", 'b': "abrt", 'q': "quit", 'h': "hup", 'k': "kill", 't': "term",
	'i': "int", '1': "usr1", '2': "usr2", 'p': "stop", 'c': "cont", 'y': "winch",
	'r': "restart", 'l': "reload", 'P': "pgstop", 'C': "pgcont", 'K': "pgkill",
	'o': "once", 'd': "down", 'u': "up", 'D': "down-file", 'U': "up-file",
	'x': "exit", 'O': "once-at-most", 'Q': "down-quiet",
}

// signalLetters are the signals -s accepts and the letters they send.
var signalLetters = map[unix.Signal]byte{
	unix.SIGALRM: 'a', unix.SIGABRT: 'b', unix.SIGQUIT: 'q', unix.SIGHUP: 'h',
	unix.SIGKILL: 'k', unix.SIGTERM: 't', unix.SIGINT: 'i', unix.SIGUSR1: '1',
	unix.SIGUSR2: '2', unix.SIGSTOP: 'p', unix.SIGCONT: 'c', unix.SIGWINCH: 'y',
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
		c, ok := signalLetters[n]
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
		if len(name) == 1 {
			if _, ok := letters[name[0]]; !ok {
				return errors.New("internal error: unknown option letter left by the parser")
			}
			return add(name[0])
		}
		for c, n := range letters {
			if n == name {
				return add(c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
