package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

// UpstreamSynopsis returns the synopsis that the upstream program called
// name prints in its usage line, program name included, as Debian's s6
// 2.11.3.2 binaries print it (run with a bad option); "" for a name that is
// no upstream program. Under an upstream name an applet's usage line is
// upstream's, byte for byte, so that scripts and people who read s6's
// messages see s6's (issue 14 item 3). A switch, not a map: nothing is
// built at init.
func UpstreamSynopsis(name string) string {
	switch name {
	case "s6-svc":
		return "s6-svc [ -wu | -wU | -wd | -wD | -wr | -wR ] [ -T timeout ] [ -abqhkti12pcyroduDUxOQ ] servicedir"
	case "s6-svstat":
		return "s6-svstat [ -uwNrpest | -o up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum,updownsince,readysince,updownfor,readyfor ] [ -n ] servicedir"
	case "s6-svok":
		return "s6-svok servicedir"
	case "s6-svwait":
		return "s6-svwait [ -U | -u | -d | -D | -r | -R ] [ -a | -o ] [ -t timeout ] servicedir..."
	case "s6-svscan":
		return "s6-svscan [ -c maxservices ] [ -t timeout ] [ -d notif ] [ -X consoleholder ] [ dir ]"
	case "s6-svscanctl":
		return "s6-svscanctl [ -zabhitqnN ] svscandir"
	case "s6-supervise":
		return "s6-supervise dir"
	case "s6-setlock":
		return "s6-setlock [ -r | -w ] [ -n | -N | -t timeout ] lockfile prog..."
	case "s6lockd":
		return "s6lockd lockdir"
	case "s6lockd-helper":
		return "s6lockd-helper r|w lockfile"
	case "s6-log":
		return "s6-log [ -d notif ] [ -q | -v ] [ -b ] [ -p ] [ -l linelimit ] [ -- ] logging_script"
	case "s6-background-watch":
		// Not in Debian's s6 2.11: s6's source (src/supervision).
		return "s6-background-watch [ -t timeout ] [ -d notif ] pidfile prog..."
	case "s6-fdholder-store":
		return "s6-fdholder-store [ -d fd ] [ -t timeout ] [ -T fdtimeout ] socket id"
	case "s6-fdholder-retrieve":
		return "s6-fdholder-retrieve [ -D ] [ -t timeout ] socket id prog..."
	case "s6-fdholder-delete":
		return "s6-fdholder-delete [ -t timeout ] socket id"
	case "s6-fdholder-list":
		return "s6-fdholder-list [ -t timeout ] socket"
	case "s6-fdholder-getdump":
		return "s6-fdholder-getdump [ -t timeout ] socket prog..."
	case "s6-fdholder-setdump":
		return "s6-fdholder-setdump [ -t timeout ] socket"
	case "s6-fdholder-transferdump":
		return "s6-fdholder-transferdump [ -t timeoutfrom:timeoutto ] socketfrom socketto"
	case "s6-fdholderd":
		return "s6-fdholderd [ -v verbosity ] [ -1 ] [ -c maxconn ] [ -n maxfds ] [ -t timeout ] [ -T lameducktimeout ] [ -i rulesdir | -x rulesfile ]"
	case "s6-fdholder-daemon":
		return "s6-fdholder-daemon [ -v verbosity ] [ -d | -D ] [ -1 ] [ -c maxconn ] [ -n maxfds ] [ -b backlog ] [ -G gid,gid,... ] [ -g gid ] [ -u uid ] [ -U ] [ -t timeout ] [ -T lameducktimeout ] [ -i rulesdir | -x rulesfile ] path"
	}
	return ""
}

// Upstream reports whether the applet runs under an upstream name (an s6
// alias such as s6-svc), where its messages use upstream's words
// ("s6-supervise not running").
func (e *Env) Upstream() bool { return UpstreamSynopsis(e.Name) != "" }

// Supervisor is the name of the supervisor in messages: s6-supervise under
// an upstream name, supervise otherwise.
func (e *Env) Supervisor() string {
	if e.Upstream() {
		return "s6-supervise"
	}
	return "supervise"
}

// UsageLine returns the usage line of a run as name, without its newline:
// "NAME: usage: " then upstream's synopsis under an upstream name, else
// name and a.Usage.
func UsageLine(name string, a Applet) string {
	if s := UpstreamSynopsis(name); s != "" {
		return name + ": usage: " + s
	}
	return name + ": usage: " + name + " " + a.Usage
}

// BadValue is a usage error that names the word at fault: printed after
// the usage line as "APPLET: fatal: OPT: "WORD" WHY", e.g.
// `svc: fatal: -T: "abc" is not a decimal number` (issue 14 item 9).
type BadValue struct {
	Opt  string // the option as s6 spells it (-T), or the operand's name
	Word string // the argument given
	Why  string // "is not a decimal number"
}

func (b *BadValue) Error() string {
	if b.Opt == "" {
		return fmt.Sprintf("%q %s", b.Word, b.Why)
	}
	return fmt.Sprintf("%s: %q %s", b.Opt, b.Word, b.Why)
}

// usageDetail is the error [Usagef] returns.
type usageDetail struct{ msg string }

func (u *usageDetail) Error() string        { return u.msg }
func (u *usageDetail) Is(target error) bool { return target == exitcode.ErrUsage }

// Usagef returns a usage error with a reason: lib/cli prints the usage line,
// then "APPLET: fatal: REASON", and exits 100. For checks an applet makes
// in Run that its grammar cannot express ("svstat: fatal: -o: ...").
func Usagef(format string, args ...any) error {
	return &usageDetail{msg: fmt.Sprintf(format, args...)}
}

// optName is how a flag is named in a message: its short form when it has
// one (s6's letters), else its long form.
func optName(v *kong.Value) string {
	if v == nil {
		return ""
	}
	if v.Flag == nil {
		return v.Name
	}
	if v.Flag.Short != 0 {
		return "-" + string(v.Flag.Short)
	}
	return "--" + v.Flag.Name
}

// parseFailed prints the usage line of a failed parse, the synopsis of the
// subcommand reached if any, then one line naming what was wrong (not for
// an empty command line: the synopsis says it all), and returns 100.
func (e *Env) parseFailed(a Applet, err error, args []string) int {
	line := UsageLine(e.Name, a)
	var pe *kong.ParseError
	if errors.As(err, &pe) && pe.Context != nil {
		if n := pe.Context.Selected(); n != nil && n.Type == kong.CommandNode {
			syn := n.Tag.Get("synopsis")
			if syn == "" {
				syn = n.Summary()
			} else {
				syn = n.Path() + " " + syn
			}
			line = e.Name + ": usage: " + e.Name + " " + syn
		}
	}
	fmt.Fprintln(e.Stderr, line)
	if len(args) > 0 {
		fmt.Fprintf(e.Stderr, "%s: fatal: %s\n", e.Name, Message(reason(err)))
	}
	return exitcode.Usage
}

// reason is the cause of a parse error as a user should read it: a
// [BadValue] or [Usagef] error as is, else kong's message, in s6's words
// where kong says "flag".
func reason(err error) error {
	var bv *BadValue
	if errors.As(err, &bv) {
		return bv
	}
	var ud *usageDetail
	if errors.As(err, &ud) {
		return ud
	}
	msg := err.Error()
	msg = strings.Replace(msg, "unknown flag ", "unknown option ", 1)
	msg, _, _ = strings.Cut(msg, ", did you mean")
	if rest, ok := strings.CutPrefix(msg, "expected "); ok {
		// kong's `expected "<dir> ..."`: the operand's name.
		msg = "missing operand " + strings.NewReplacer(`"`, "", "<", "", ">", "", " ...", "...").Replace(rest)
	}
	return errors.New(msg)
}

// Reword returns err with upstream's words under an upstream name, when
// err's exit code is one match accepts; its code is kept. Elsewhere err is
// returned as is. (s6-svwait says "some services reported permanent
// failure or their supervisor died" where svwait counts them.)
func (e *Env) Reword(err error, match func(code int) bool, words string) error {
	if err == nil || !e.Upstream() {
		return err
	}
	if code := exitcode.Of(err); match(code) {
		return exitcode.New(code, errors.New(words))
	}
	return err
}
