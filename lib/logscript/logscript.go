// Package logscript parses s6-log's logging script (spec/log.md §2): the
// selection, control and action directives, checked whole, in upstream's
// two-pass order, before anything is touched on disk.
//
// It deliberately does not run the script: it returns the actions with the
// control values in force where each appears, and the selection program
// that a logger walks for every line.
package logscript

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/gotools-dev/gotools/lib/decimal"
	"github.com/gotools-dev/gotools/lib/ere"
)

// OpKind is the kind of one step of the script's program.
type OpKind uint8

// The steps: selection directives and actions.
const (
	Select   OpKind = iota // +re: set selected if clear and re matches
	Deselect               // -re: clear selected if set and re matches
	Filter                 // f: selected = !acted
	Act                    // an action: runs if selected, then sets acted
)

// ActionKind says where an action sends its record.
type ActionKind uint8

// The actions.
const (
	Stdout ActionKind = iota // 1
	Alert                    // 2
	Status                   // =FILE
	Logdir                   // DIR
)

// Op is one step of the program.
type Op struct {
	Kind   OpKind
	Re     *ere.Regexp // Select, Deselect; nil: the empty ERE, matching every line
	Action *Action     // Act
}

// Action is an action with the control values in force where it appears.
type Action struct {
	Kind   ActionKind
	Label  bool   // t: a TAI64N label first
	ISO    bool   // T: an ISO 8601 time
	Prefix string // p: with a space after it; empty: none
	Path   string // the logdir, or the status file

	// Logdirs.
	Keep      uint32 // n: archives kept
	Size      uint32 // s: rotation size, clamped to 4096..268435455
	Total     uint64 // S: archives' total size; 0 = no limit
	Tolerance uint32 // l
	Cooldown  uint32 // r, in ms, at least 50
	Period    uint32 // R, in seconds; 0 = never
	Processor string // ! or ?: the processor's script; empty: none
	Shell     bool   // ?: run Processor with /bin/sh -c (else execlineb -Pc)

	AlertMax  uint32 // E: alerts keep the first AlertMax bytes of the line; 0 = all
	StatusPad uint32 // ^: the status file's size; 0 = the record
}

// Script is a parsed logging script.
type Script struct {
	Ops        []Op
	Actions    []*Action // in script order
	Time       bool      // some action has t or T: read the clock once per line
	Extraneous bool      // non-action directives after the last action (ignored)
}

// Error is a script error: exit 100 with "fatal: " + Msg.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errf(format string, a ...any) error { return &Error{Msg: fmt.Sprintf(format, a...)} }

// Default control values.
const (
	DefaultKeep      = 10
	DefaultSize      = 99999
	DefaultTolerance = 2000
	DefaultCooldown  = 2000
	DefaultAlertMax  = 200
	DefaultStatusPad = 1001
	MinSize          = 4096
	MaxSize          = 268435455
	MinCooldown      = 50
)

// Parse checks and compiles args. haveExeclineb is asked (once, and only if
// a ! directive names a processor) whether execlineb is in PATH.
func Parse(args []string, haveExeclineb func() bool) (*Script, error) {
	// Pass 1: the first byte of every directive.
	acts := 0
	for _, d := range args {
		if d == "" {
			return nil, errf("unrecognized directive: %s", d)
		}
		switch d[0] {
		case '+', '-', 'n', 's', 'S', 'l', 'r', 'R', 'E', '^', 'p', '!', '?':
		case 'f', 't', 'T':
			if len(d) != 1 {
				return nil, errf("syntax error at directive: %s", d)
			}
		case '1', '2':
			if len(d) != 1 {
				return nil, errf("syntax error at directive: %s", d)
			}
			acts++
		case '=':
			if len(d) == 1 {
				return nil, errf("syntax error at directive: %s", d)
			}
			acts++
		case '.', '/':
			acts++
		default:
			return nil, errf("unrecognized directive: %s", d)
		}
	}
	if acts == 0 {
		return nil, errf("no action directive specified")
	}

	// Pass 2: numbers, EREs, l, !, and the program.
	sc := &Script{}
	cur := Action{Keep: DefaultKeep, Size: DefaultSize, Tolerance: DefaultTolerance,
		Cooldown: DefaultCooldown, AlertMax: DefaultAlertMax, StatusPad: DefaultStatusPad}
	execChecked := false
	dirs := map[string]string{}
	pending := 0 // non-action directives since the last action
	for _, d := range args {
		u32 := func() (uint32, error) {
			v, ok := decimal.Parse(d[1:], 0, math.MaxUint32)
			if !ok {
				return 0, errf("unrecognized directive: %s", d)
			}
			return uint32(v), nil
		}
		var err error
		pending++
		switch d[0] {
		case '+', '-':
			op := Op{Kind: Select}
			if d[0] == '-' {
				op.Kind = Deselect
			}
			if len(d) > 1 {
				re, cerr := ere.Compile(d[1:])
				if cerr != nil {
					if _, ok := cerr.(*ere.UnsupportedError); ok {
						return nil, errf("unsupported regular expression in directive %s: %v", d, cerr)
					}
					return nil, errf("unrecognized directive: %s", d)
				}
				op.Re = re
			}
			sc.Ops = append(sc.Ops, op)
		case 'f':
			sc.Ops = append(sc.Ops, Op{Kind: Filter})
		case 'n':
			cur.Keep, err = u32()
		case 's':
			var v uint32
			if v, err = u32(); err == nil {
				cur.Size = min(max(v, MinSize), MaxSize)
			}
		case 'S':
			v, ok := decimal.Parse(d[1:], 0, math.MaxUint64)
			if !ok {
				return nil, errf("unrecognized directive: %s", d)
			}
			cur.Total = v
		case 'l':
			var v uint32
			if v, err = u32(); err == nil {
				if v > cur.Size/2 {
					return nil, errf("directive %s conflicts with previous s directive", d)
				}
				cur.Tolerance = v
			}
		case 'r':
			var v uint32
			if v, err = u32(); err == nil {
				cur.Cooldown = max(v, MinCooldown)
			}
		case 'R':
			cur.Period, err = u32()
		case 'E':
			cur.AlertMax, err = u32()
		case '^':
			cur.StatusPad, err = u32()
		case 'p':
			cur.Prefix = d[1:]
		case '!', '?':
			cur.Processor, cur.Shell = d[1:], d[0] == '?'
			if d[0] == '!' && len(d) > 1 && !execChecked {
				if !haveExeclineb() {
					return nil, errf("unable to find execlineb in PATH for directive: %s", d)
				}
				execChecked = true
			}
		case 't':
			cur.Label = true
		case 'T':
			cur.ISO = true
		default: // actions
			a := cur
			switch d[0] {
			case '1':
				a.Kind = Stdout
			case '2':
				a.Kind = Alert
			case '=':
				a.Kind, a.Path = Status, d[1:]
			default:
				a.Kind, a.Path = Logdir, d
				key := filepath.Clean(d)
				if first, ok := dirs[key]; ok {
					return nil, errf("logdir %s is the same as %s", d, first)
				}
				dirs[key] = d
			}
			sc.Actions = append(sc.Actions, &a)
			sc.Ops = append(sc.Ops, Op{Kind: Act, Action: &a})
			sc.Time = sc.Time || a.Label || a.ISO
			cur.Label, cur.ISO = false, false
			pending = 0
		}
		if err != nil {
			return nil, err
		}
	}
	if pending > 0 {
		sc.Extraneous = true
		// Trailing selections would only cost time.
		for len(sc.Ops) > 0 && sc.Ops[len(sc.Ops)-1].Kind != Act {
			sc.Ops = sc.Ops[:len(sc.Ops)-1]
		}
	}
	return sc, nil
}
