package svstat

import (
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/sig"
	"github.com/gotools-dev/gotools/lib/tai"
)

// notStarted reports the state supervise writes once at startup, before
// it first spawns run: no pid, not finishing, paused.
func (s state) notStarted() bool {
	return s.PID == 0 && s.Flags&(servicedir.FlagFinishing|servicedir.FlagPaused) == servicedir.FlagPaused
}

func (s state) flag(f byte) bool { return s.Flags&f != 0 }

// since returns the whole seconds from stamp to now; a stamp in the
// future (a clock set back) counts as now.
func (s state) since(stamp tai.Stamp) int64 {
	d := s.now.Sub(stamp.Time())
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}

// died reports how run last died: by a signal (sig != 0) or with code.
// Only meaningful when the service is down and was started.
func (s state) died() (code int, signal unix.Signal) {
	ws := unix.WaitStatus(s.WStat)
	if ws.Signaled() {
		return -1, ws.Signal()
	}
	return ws.ExitStatus(), 0
}

// legacy returns upstream HEAD's human-readable line, without its newline
// (spec/supervise.md §5): "up (pid P pgid G) S seconds", "down (exitcode
// N) S seconds", "down (signal SIGTERM) S seconds" ("signal 15" if
// numeric) or "down (not started yet) ", then the qualifiers.
func legacy(s state, numeric bool) string {
	var b strings.Builder
	up, fresh := s.Up(), s.notStarted()
	switch {
	case up:
		b.WriteString("up (pid " + strconv.FormatUint(s.PID, 10))
		if s.pgid >= 0 {
			// -1: not known (another pid namespace); s6 2.11's form.
			b.WriteString(" pgid " + strconv.Itoa(s.pgid))
		}
		b.WriteString(") ")
	case fresh:
		b.WriteString("down (not started yet) ")
	default:
		b.WriteString("down (")
		if code, signal := s.died(); signal != 0 {
			b.WriteString("signal ")
			if numeric {
				b.WriteString(strconv.Itoa(int(signal)))
			} else {
				b.WriteString(sig.Name(signal))
			}
		} else {
			b.WriteString("exitcode " + strconv.Itoa(code))
		}
		b.WriteString(") ")
	}
	if !fresh {
		b.WriteString(strconv.FormatInt(s.since(s.Stamp), 10) + " seconds")
	}
	switch {
	case up && !s.normallyUp:
		b.WriteString(", normally down")
	case !up && s.normallyUp:
		b.WriteString(", normally up")
	}
	if up && s.flag(servicedir.FlagPaused) {
		b.WriteString(", paused")
	}
	switch wantUp := s.flag(servicedir.FlagWantUp); {
	case !up && wantUp:
		b.WriteString(", want up")
	case up && !wantUp:
		b.WriteString(", want down")
	}
	if s.flag(servicedir.FlagReady) && !fresh {
		b.WriteString(", ready " + strconv.FormatInt(s.since(s.ReadyStamp), 10) + " seconds")
	}
	return b.String()
}

// known reports whether name is a field.
func known(name string) bool {
	switch name {
	case "up", "wantedup", "normallyup", "ready", "paused", "pid", "pgid",
		"exitcode", "signal", "signum", "updownsince", "readysince",
		"updownfor", "readyfor":
		return true
	}
	return false
}

// values returns the values of fields, which are all [known], separated by
// single spaces (spec/supervise.md §5 "Field mode").
func values(s state, fields []string) string {
	vals := make([]string, len(fields))
	for i, f := range fields {
		vals[i] = value(s, f)
	}
	return strings.Join(vals, " ")
}

func value(s state, field string) string {
	up := s.Up()
	// dead: down after run died (finishing included), not "not started yet".
	dead := !up && !s.notStarted()
	code, signal := s.died()
	switch field {
	case "up":
		return strconv.FormatBool(up)
	case "wantedup":
		return strconv.FormatBool(s.flag(servicedir.FlagWantUp))
	case "normallyup":
		return strconv.FormatBool(s.normallyUp)
	case "ready":
		return strconv.FormatBool(s.flag(servicedir.FlagReady))
	case "paused":
		return strconv.FormatBool(s.flag(servicedir.FlagPaused) && s.PID != 0)
	case "pid":
		if up {
			return strconv.FormatUint(s.PID, 10)
		}
	case "pgid":
		if up {
			return strconv.Itoa(s.pgid)
		}
	case "exitcode":
		if dead && signal == 0 {
			return strconv.Itoa(code)
		}
	case "signal":
		if dead && signal != 0 {
			return sig.Name(signal)
		}
		return "NA"
	case "signum":
		if dead && signal != 0 {
			return strconv.Itoa(int(signal))
		}
	case "updownsince":
		return s.Stamp.String()
	case "readysince":
		return s.ReadyStamp.String()
	case "updownfor":
		return strconv.FormatInt(s.since(s.Stamp), 10)
	case "readyfor":
		return strconv.FormatInt(s.since(s.ReadyStamp), 10)
	}
	return "-1"
}
