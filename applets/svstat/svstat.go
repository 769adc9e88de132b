// Package svstat is the svstat applet: it prints the state of a supervised
// service.
//
// Synopsis
//
//	svstat [ -uwNrpgest | -o FIELD,... ] [ -n ] [ --json ] DIR...
//
// Without a field option it prints upstream's human-readable line, e.g.
// "up (pid 812 pgid 812) 3 seconds, ready 2 seconds". With letters or -o it
// prints the values of the fields asked for, in command-line order, on one
// line (spec/supervise.md §5). It checks first that a supervisor holds
// DIR/supervise/lock (fcntl(2) F_OFD_GETLK), then reads DIR/supervise/status
// (35 bytes, or s6 2.13's 43) and whether DIR/down exists.
//
// Exit codes
//
//	0    the status was printed
//	1    no supervisor runs on DIR (DIR missing included)
//	100  usage error, more than 16 fields, or an unknown field
//	111  a system call failed, or the status file is malformed
//
// # Differences from s6
//
// --help prints help; --fields= and --numeric are long forms of -o and -n,
// and each field letter also has its field's name as a long option
// (--up, --pid, ...). The legacy line includes the process group ("up (pid
// P pgid G)", upstream HEAD; s6 2.11 prints "up (pid P)"). The ready field
// is the ready flag: a down-and-ready service prints true, as upstream
// documents (its code prints false). pgid is getpgid(2) of the pid while up
// (upstream prints the pid), -1 when down. The 43-byte status layout of s6
// 2.13 is read too.
package svstat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/lock"
	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Applet is svstat's registry entry.
var Applet = cli.Applet{
	Name:    "svstat",
	Aliases: []string{"s6-svstat"},
	Summary: "print the state of a supervised service",
	Usage:   "[ -uwNrpgest | -o FIELD,... ] [ -n ] [ --json ] DIR...",
	Help: `Without field options, prints one line such as
"up (pid 812 pgid 812) 3 seconds, ready 2 seconds" or
"down (signal SIGTERM) 5 seconds, normally up, ready 5 seconds".
With letters or -o, prints the values of the fields, in command-line order,
separated by spaces. Fields: up wantedup normallyup ready paused pid pgid
exitcode signal signum updownsince readysince updownfor readyfor (at most
16). Letters: u=up w=wantedup N=normallyup r=ready p=pid g=pgid e=exitcode
s=signal t=updownfor.

Several DIRs, or a scan directory (a directory with neither run nor
supervise in it), print one line per service, named and aligned: each
subdirectory of the scan directory not starting with ".", sorted, then its
log/ if any; a service without a supervisor says "supervise not running"
on its line. --json prints one JSON object per line and service: "dir",
then every field (or those asked for) with -1 and NA as null; a service
that cannot be read has "error" instead. JSON strings are UTF-8: a name
byte that is not shows as U+FFFD there.

pgid is read only if the process at the status file's pid is the
service's (its working directory is DIR, or it started when the service
went up): from another pid namespace the pid names another process, and
the line then shows "up (pid P)" and the field -1.

Exit codes: 0 printed; 1 no supervisor runs on DIR (on one of the DIRs);
100 usage, too many or unknown fields; 111 system failure or malformed
status file (the line says what is wrong with it).

Differences from s6-svstat: long options; the line shows the pgid (as
upstream HEAD; s6 2.11 does not); ready is the ready flag (true when down
and ready, as upstream documents); pgid is the real process group while
up and -1 when down; s6 2.13's 43-byte status file is read too.`,
	New:  func() cli.Command { return new(command) },
	Fast: fast,
}

// fast runs "svstat DIR..." without options, the common command line,
// without kong; anything else is kong's to parse.
func fast(args []string, env *cli.Env) (bool, error) {
	if len(args) == 0 {
		return false, nil
	}
	for _, a := range args {
		if a == "" || a[0] == '-' {
			return false, nil
		}
	}
	return true, (&command{Args: args}).Run(env)
}

// maxFields is how many fields one command line may ask for, as
// s6-svstat's fixed array.
const maxFields = 16

// letterField returns the field of a field letter (a switch: nothing built
// at init).
func letterField(c byte) (string, bool) {
	switch c {
	case 'u':
		return "up", true
	case 'w':
		return "wantedup", true
	case 'N':
		return "normallyup", true
	case 'r':
		return "ready", true
	case 'p':
		return "pid", true
	case 'g':
		return "pgid", true
	case 'e':
		return "exitcode", true
	case 's':
		return "signal", true
	case 't':
		return "updownfor", true
	}
	return "", false
}

// The grammar: kong validates the command line and prints help, but the
// order of the fields, which kong does not keep across different flags,
// comes from scanning the arguments again (see [scan]).
type command struct {
	Up         bool     `short:"u" name:"up" help:"Field up."`
	WantedUp   bool     `short:"w" name:"wantedup" help:"Field wantedup."`
	NormallyUp bool     `short:"N" name:"normallyup" help:"Field normallyup."`
	Ready      bool     `short:"r" name:"ready" help:"Field ready."`
	PID        bool     `short:"p" name:"pid" help:"Field pid."`
	PGID       bool     `short:"g" name:"pgid" help:"Field pgid."`
	ExitCode   bool     `short:"e" name:"exitcode" help:"Field exitcode."`
	Signal     bool     `short:"s" name:"signal" help:"Field signal."`
	UpDownFor  bool     `short:"t" name:"updownfor" help:"Field updownfor."`
	Fields     []string `short:"o" name:"fields" sep:"none" placeholder:"FIELD,..." help:"Print these fields (comma-separated)."`
	Numeric    bool     `short:"n" name:"numeric" help:"Legacy line: print signal numbers, not names."`
	JSON       bool     `name:"json" help:"Print one JSON object per service (all fields, or those asked for)."`
	Args       []string `arg:"" passthrough:"partial" name:"dir" help:"Service directories, or scan directories (each service in it, and its log)."`
}

func (c *command) Run(env *cli.Env) error {
	args := cli.Operands(c.Args)
	if len(args) == 0 {
		return exitcode.ErrUsage
	}
	fields, numeric, err := scan(env.Args)
	if err != nil {
		return err
	}
	p := printer{env: env, fields: fields, numeric: numeric, json: c.JSON}
	if len(args) == 1 && !isScanDir(args[0]) {
		st, err := read(args[0], env.Supervisor())
		if err != nil {
			return err
		}
		p.print(args[0], st)
		return nil
	}
	return p.list(services(args))
}

// scan reads the options of args again, as getopt would (up to the first
// operand or "--"; kong has already validated them), and returns the
// fields asked for in order (nil for the legacy line) and -n. An unknown
// field or more than [maxFields] is a fatal usage error.
func scan(args []string) (fields []string, numeric bool, err error) {
	add := func(names ...string) {
		for _, n := range names {
			if err != nil {
				return
			}
			switch {
			case n == "":
				err = exitcode.Errorf(exitcode.Usage, "invalid null option field")
			case !known(n):
				err = exitcode.Errorf(exitcode.Usage, "invalid option field: %s", n)
			case len(fields) == maxFields:
				err = exitcode.Errorf(exitcode.Usage, "too many option fields")
			default:
				fields = append(fields, n)
			}
		}
	}
	valued := func(name string) bool { return name == "o" || name == "fields" }
	werr := cli.Options(args, valued, func(name, val string) error {
		switch {
		case name == "o" || name == "fields":
			add(split(val)...)
		case name == "n" || name == "numeric":
			numeric = true
		case len(name) == 1:
			if f, ok := letterField(name[0]); ok {
				add(f)
			}
		case known(name):
			add(name)
		}
		return err
	})
	if werr != nil {
		err = werr
	}
	if err != nil {
		return nil, false, err
	}
	return fields, numeric, nil
}

// split splits a -o list at its commas as s6-svstat does: one trailing
// comma is allowed, an empty list gives no field, and an empty name
// anywhere else is kept (for "invalid null option field").
func split(list string) []string {
	if list == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(list, ","), ",")
}

// state is what svstat knows of a service when it prints.
type state struct {
	servicedir.Status
	now        time.Time
	normallyUp bool // DIR/down does not exist
	pgid       int  // the process group of PID, while up
}

// read checks that a supervisor runs on dir and reads its state. supervisor
// names it in the message when none runs: "supervise", or "s6-supervise"
// under s6's name, as s6-svstat says.
func read(dir, supervisor string) (state, error) {
	fail := func(err error) error {
		return exitcode.New(exitcode.Sys, fmt.Errorf("unable to read status for %s: %w", dir, err))
	}
	held, err := lock.Held(filepath.Join(dir, "supervise", "lock"))
	if err != nil {
		return state{}, fail(err)
	}
	if !held {
		return state{}, exitcode.Errorf(exitcode.Refused, "unable to read status for %s: %s not running", dir, supervisor)
	}
	b, err := readAll(filepath.Join(dir, "supervise", "status"))
	if err != nil {
		return state{}, fail(sys.Errno(err))
	}
	st, err := servicedir.UnmarshalStatus(b)
	if err != nil {
		return state{}, fail(malformed(b, err))
	}
	s := state{Status: st, now: time.Now()}
	down := filepath.Join(dir, "down")
	switch err := unix.Access(down, unix.F_OK); {
	case err == nil:
	case errors.Is(err, unix.ENOENT):
		s.normallyUp = true
	default:
		return state{}, exitcode.New(exitcode.Sys, fmt.Errorf("unable to access %s: %w", down, err))
	}
	if s.Up() {
		s.pgid = pgidOf(dir, s.Status)
	}
	return s, nil
}

// readAll reads a whole file with plain system calls. os.ReadFile would
// set the runtime's poller up (epoll_create1, eventfd2, two epoll_ctl,
// four fcntl) and register a cleanup, for one read of 35 bytes in a
// process that ends at once (issue 16 item 3).
func readAll(path string) ([]byte, error) {
	fd, err := sys.Open(path, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	b := make([]byte, 0, 64)
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, len(b))
		}
		n, err := sys.Read(fd, b[len(b):cap(b)])
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// pgidOf returns the process group of the service's process, or -1 when
// it cannot be told. The pid in the status file is in the supervisor's pid
// namespace: svstat run from another one (a host looking into a
// container) would find an unrelated process under that number (issue 14
// item 6). s6 2.13's 43-byte status file records the pgid; otherwise the
// process at the pid must be the service's: its working directory is DIR
// (run starts there), or it started when the status says the service went
// up (within 2 s: /proc/stat's btime has whole seconds).
func pgidOf(dir string, st servicedir.Status) int {
	if st.PGID != 0 {
		return int(st.PGID)
	}
	pid := int(st.PID)
	if !sameFile(dir, "/proc/"+strconv.Itoa(pid)+"/cwd") && !startedAt(pid, st.Stamp.Time()) {
		return -1
	}
	g, err := unix.Getpgid(pid)
	if err != nil {
		return -1
	}
	return g
}

func sameFile(a, b string) bool {
	var sa, sb unix.Stat_t
	return unix.Stat(a, &sa) == nil && unix.Stat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// startedAt reports whether process pid started within 2 s of t, by its
// start time in /proc/PID/stat (clock ticks after boot, USER_HZ 100) and
// the boot time in /proc/stat.
func startedAt(pid int, t time.Time) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// Fields after the command name, which may hold spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(b[i+1:]))
	const startField = 22 - 3 // field 22 of stat(5), counted from field 3
	if len(f) <= startField {
		return false
	}
	ticks, err := strconv.ParseUint(f[startField], 10, 64)
	if err != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return false
	}
	_, rest, ok := strings.Cut(string(stat), "\nbtime ")
	if !ok {
		return false
	}
	line, _, _ := strings.Cut(rest, "\n")
	boot, err := strconv.ParseInt(line, 10, 64)
	if err != nil {
		return false
	}
	start := time.Unix(boot, 0).Add(time.Duration(ticks) * 10 * time.Millisecond)
	d := start.Sub(t)
	return d < 2*time.Second && d > -2*time.Second
}

// malformed says what is wrong with a status file that
// servicedir.UnmarshalStatus refused: its size, or a stamp's nanoseconds
// (issue 20 item 13).
func malformed(b []byte, err error) error {
	if len(b) != servicedir.StatusSize && len(b) != servicedir.StatusSize213 {
		return fmt.Errorf("malformed status file: %d bytes, want %d (or %d)", len(b), servicedir.StatusSize, servicedir.StatusSize213)
	}
	for _, f := range []struct {
		what string
		at   int
	}{{"up/down stamp", 8}, {"ready stamp", 20}} {
		if ns := binary.BigEndian.Uint32(b[f.at:]); ns > 999999999 {
			return fmt.Errorf("malformed status file: nanoseconds of the %s are %d, out of range (at most 999999999)", f.what, ns)
		}
	}
	return err
}
