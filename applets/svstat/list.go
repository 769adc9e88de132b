package svstat

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
)

// isScanDir reports whether dir is a scan directory rather than a service
// directory: a directory with neither run nor supervise in it.
func isScanDir(dir string) bool {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false
	}
	for _, f := range []string{"run", "supervise"} {
		if err := unix.Lstat(filepath.Join(dir, f), &st); !errors.Is(err, unix.ENOENT) {
			return false
		}
	}
	return true
}

// entry is one service of a listing: how it is named, and its directory.
type entry struct{ label, dir string }

// services expands the operands: a service directory is itself; a scan
// directory is each of its subdirectories that svscan would supervise (not
// starting with '.'), sorted, each followed by its log/ if it has one. A
// lone scan directory's services are named relative to it.
func services(args []string) []entry {
	var out []entry
	for _, a := range args {
		if !isScanDir(a) {
			out = append(out, entry{a, a})
			continue
		}
		ents, err := os.ReadDir(a)
		if err != nil {
			out = append(out, entry{a, a}) // read says why
			continue
		}
		var names []string
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") && (e.IsDir() || e.Type()&os.ModeSymlink != 0) {
				names = append(names, e.Name())
			}
		}
		slices.Sort(names)
		for _, n := range names {
			label := filepath.Join(a, n)
			if len(args) == 1 {
				label = n
			}
			dir := filepath.Join(a, n)
			out = append(out, entry{label, dir})
			if st, err := os.Stat(filepath.Join(dir, "log")); err == nil && st.IsDir() {
				out = append(out, entry{label + "/log", filepath.Join(dir, "log")})
			}
		}
	}
	return out
}

// printer prints states: the legacy line, the fields asked for, or JSON.
type printer struct {
	env     *cli.Env
	fields  []string // nil: the legacy line (JSON: every field)
	numeric bool
	json    bool
}

// text is what p prints of st, without a newline or label.
func (p printer) text(dir string, st state) string {
	switch {
	case p.json:
		return p.jsonObject(dir, st, "")
	case p.fields == nil:
		return legacy(st, p.numeric)
	default:
		return values(st, p.fields)
	}
}

// print prints st, the state of dir.
func (p printer) print(dir string, st state) {
	fmt.Fprintln(p.env.Stdout, p.text(dir, st))
}

// list prints one line per service, labels aligned (JSON: one object per
// line, each with its "dir"). A service that cannot be read gets the
// reason, in svstat's words, on its line: the exit code is then 1 if no
// supervisor runs on some service, 111 if something else failed.
func (p printer) list(es []entry) error {
	width := 0
	for _, e := range es {
		width = max(width, len(e.label))
	}
	code := exitcode.OK
	for _, e := range es {
		st, err := read(e.dir, p.env.Supervisor())
		var line string
		switch {
		case err != nil && p.json:
			line = p.jsonObject(e.label, st, errText(err))
		case err != nil:
			line = e.label + strings.Repeat(" ", width-len(e.label)+2) + errText(err)
		case p.json:
			line = p.jsonObject(e.label, st, "")
		default:
			line = e.label + strings.Repeat(" ", width-len(e.label)+2) + p.text(e.dir, st)
		}
		fmt.Fprintln(p.env.Stdout, line)
		if err != nil {
			code = max(code, exitcode.Of(err))
		}
	}
	if code != exitcode.OK {
		return exitcode.Exit(code)
	}
	return nil
}

// errText is the reason of a failed read: the message without "unable to
// read status for DIR: ".
func errText(err error) string {
	msg := cli.Message(err)
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "unable to read status for ") {
		return msg[i+2:]
	}
	return msg
}

// allFields are the fields of a JSON object without -o or letters.
var allFields = []string{"up", "wantedup", "normallyup", "ready", "paused", "pid", "pgid",
	"exitcode", "signal", "signum", "updownsince", "readysince", "updownfor", "readyfor"}

// jsonObject returns st as one JSON object: "dir", then each field with
// its field-mode value as a JSON value (true/false, numbers, strings; -1
// and NA become null), or "dir" and "error" for a service that could not
// be read.
func (p printer) jsonObject(dir string, st state, failure string) string {
	var b strings.Builder
	b.WriteString(`{"dir":`)
	b.WriteString(jsonString(dir))
	if failure != "" {
		b.WriteString(`,"error":` + jsonString(failure) + "}")
		return b.String()
	}
	fields := p.fields
	if fields == nil {
		fields = allFields
	}
	for _, f := range fields {
		b.WriteString("," + jsonString(f) + ":")
		v := value(st, f)
		switch {
		case v == "-1" || v == "NA":
			b.WriteString("null")
		case v == "true" || v == "false":
			b.WriteString(v)
		default:
			if _, err := strconv.ParseInt(v, 10, 64); err == nil {
				b.WriteString(v)
			} else {
				b.WriteString(jsonString(v))
			}
		}
	}
	b.WriteString("}")
	return b.String()
}

// jsonString quotes s as a JSON string. JSON text is UTF-8: a byte that
// is not becomes U+FFFD there (the text forms keep the bytes).
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r) // RuneError for a bad byte: U+FFFD
		}
	}
	b.WriteByte('"')
	return b.String()
}
