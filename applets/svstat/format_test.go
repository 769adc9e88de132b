package svstat

import (
	"testing"
	"time"

	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/tai"
)

// at returns a state observed at now, with the up/down change upFor
// seconds and readiness readyFor seconds earlier.
func at(now time.Time, upFor, readyFor int, st servicedir.Status) state {
	st.Stamp = tai.FromTime(now.Add(-time.Duration(upFor)*time.Second - 300*time.Millisecond))
	st.ReadyStamp = tai.FromTime(now.Add(-time.Duration(readyFor)*time.Second - 300*time.Millisecond))
	return state{Status: st, now: now}
}

const (
	paused    = servicedir.FlagPaused
	finishing = servicedir.FlagFinishing
	wantUp    = servicedir.FlagWantUp
	ready     = servicedir.FlagReady
)

func TestLegacy(t *testing.T) {
	now := time.Now()
	withUp := func(s state, normallyUp bool, pgid int) state {
		s.normallyUp, s.pgid = normallyUp, pgid
		return s
	}
	for _, tt := range []struct {
		name    string
		s       state
		numeric bool
		want    string
	}{
		{name: "up ready", s: withUp(at(now, 3, 2, servicedir.Status{PID: 812, Flags: wantUp | ready}), true, 812),
			want: "up (pid 812 pgid 812) 3 seconds, ready 2 seconds"},
		{name: "up not ready", s: withUp(at(now, 7, 9, servicedir.Status{PID: 812, Flags: wantUp}), true, 800),
			want: "up (pid 812 pgid 800) 7 seconds"},
		{name: "up paused normally down want down", s: withUp(at(now, 1, 1, servicedir.Status{PID: 5, Flags: paused}), false, 5),
			want: "up (pid 5 pgid 5) 1 seconds, normally down, paused, want down"},
		{name: "down exitcode", s: withUp(at(now, 4, 4, servicedir.Status{WStat: 3 << 8, Flags: ready}), true, 0),
			want: "down (exitcode 3) 4 seconds, normally up, ready 4 seconds"},
		{name: "down exitcode 0 want up", s: withUp(at(now, 0, 0, servicedir.Status{Flags: wantUp}), true, 0),
			want: "down (exitcode 0) 0 seconds, normally up, want up"},
		{name: "down signal", s: withUp(at(now, 2, 1, servicedir.Status{WStat: 15, Flags: ready}), true, 0),
			want: "down (signal SIGTERM) 2 seconds, normally up, ready 1 seconds"},
		{name: "down signal numeric", s: withUp(at(now, 2, 1, servicedir.Status{WStat: 15, Flags: ready}), true, 0), numeric: true,
			want: "down (signal 15) 2 seconds, normally up, ready 1 seconds"},
		{name: "down signal with core", s: withUp(at(now, 2, 1, servicedir.Status{WStat: 0x80 | 11}), false, 0),
			want: "down (signal SIGSEGV) 2 seconds"},
		{name: "finishing counts as down", s: withUp(at(now, 2, 1, servicedir.Status{PID: 99, WStat: 1 << 8, Flags: finishing | wantUp}), true, 0),
			want: "down (exitcode 1) 2 seconds, normally up, want up"},
		{name: "not started yet with down file", s: withUp(at(now, 0, 0, servicedir.Status{Flags: paused | ready}), false, 0),
			want: "down (not started yet) "},
		{name: "not started yet without down file", s: withUp(at(now, 0, 0, servicedir.Status{Flags: paused | wantUp | ready}), true, 0),
			want: "down (not started yet) , normally up, want up"},
		{name: "normally down want up", s: withUp(at(now, 6, 6, servicedir.Status{WStat: 0, Flags: wantUp}), false, 0),
			want: "down (exitcode 0) 6 seconds, want up"},
		{name: "stamps in the future count as now", s: withUp(at(now, -100, -5, servicedir.Status{PID: 1, Flags: wantUp | ready}), true, 1),
			want: "up (pid 1 pgid 1) 0 seconds, ready 0 seconds"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := legacy(tt.s, tt.numeric); got != tt.want {
				t.Errorf("legacy(%+v, %v) = %q; want %q", tt.s, tt.numeric, got, tt.want)
			}
		})
	}
}

func TestValues(t *testing.T) {
	now := time.Now()
	up := at(now, 3, 2, servicedir.Status{PID: 812, Flags: wantUp | ready | paused})
	up.normallyUp, up.pgid = true, 800
	downReady := at(now, 5, 4, servicedir.Status{WStat: 2 << 8, Flags: ready})
	signaled := at(now, 5, 4, servicedir.Status{WStat: 9, Flags: wantUp})
	signaled.normallyUp = true
	fresh := at(now, 0, 0, servicedir.Status{Flags: paused | wantUp | ready})
	for _, tt := range []struct {
		name   string
		s      state
		fields []string
		want   string
	}{
		{name: "up", s: up, fields: []string{"up", "wantedup", "normallyup", "ready", "paused", "pid", "pgid", "exitcode", "signal", "signum", "updownfor", "readyfor"},
			want: "true true true true true 812 800 -1 NA -1 3 2"},
		{name: "down and ready", s: downReady, fields: []string{"up", "ready"}, want: "false true"},
		{name: "down exit code", s: downReady, fields: []string{"up", "wantedup", "normallyup", "paused", "pid", "pgid", "exitcode", "signal", "signum", "updownfor", "readyfor"},
			want: "false false false false -1 -1 2 NA -1 5 4"},
		{name: "down signal", s: signaled, fields: []string{"exitcode", "signal", "signum", "normallyup", "wantedup", "ready"},
			want: "-1 SIGKILL 9 true true false"},
		{name: "not started yet", s: fresh, fields: []string{"up", "paused", "pid", "exitcode", "signal", "signum", "ready"},
			want: "false false -1 -1 NA -1 true"},
		{name: "stamps", s: up, fields: []string{"updownsince", "readysince"}, want: up.Stamp.String() + " " + up.ReadyStamp.String()},
		{name: "order kept, repeats allowed", s: up, fields: []string{"pid", "up", "pid"}, want: "812 true 812"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := values(tt.s, tt.fields); got != tt.want {
				t.Errorf("values(%+v, %q) = %q; want %q", tt.s, tt.fields, got, tt.want)
			}
		})
	}
}

func TestScan(t *testing.T) {
	sixteen := "up,up,up,up,up,up,up,up,up,up,up,up,up,up,up,up"
	for _, tt := range []struct {
		name    string
		args    []string
		fields  []string
		numeric bool
		err     string
	}{
		{name: "legacy", args: []string{"dir"}},
		{name: "legacy numeric", args: []string{"-n", "dir"}, numeric: true},
		{name: "letters in order", args: []string{"-pu", "-N", "dir"}, fields: []string{"pid", "up", "normallyup"}},
		{name: "letters around -o", args: []string{"-u", "-o", "pid,ready", "-tn", "dir"}, fields: []string{"up", "pid", "ready", "updownfor"}, numeric: true},
		{name: "-o attached, in a cluster", args: []string{"-wopgid,signum", "dir"}, fields: []string{"wantedup", "pgid", "signum"}},
		{name: "long options", args: []string{"--fields=up", "--pid", "--fields", "exitcode", "--numeric", "dir"}, fields: []string{"up", "pid", "exitcode"}, numeric: true},
		{name: "all letters", args: []string{"-uwNrpgest", "dir"}, fields: []string{"up", "wantedup", "normallyup", "ready", "pid", "pgid", "exitcode", "signal", "updownfor"}},
		{name: "stops at the operand", args: []string{"dir", "-u"}},
		{name: "stops at dash-dash", args: []string{"--", "-u"}},
		{name: "trailing comma", args: []string{"-o", "up,", "dir"}, fields: []string{"up"}},
		{name: "empty list", args: []string{"-o", "", "dir"}},
		{name: "16 fields", args: []string{"-o", sixteen, "dir"}, fields: []string{"up", "up", "up", "up", "up", "up", "up", "up", "up", "up", "up", "up", "up", "up", "up", "up"}},
		{name: "17 fields", args: []string{"-o", sixteen + ",up", "dir"}, err: "too many option fields"},
		{name: "16 fields and a letter", args: []string{"-o", sixteen, "-p", "dir"}, err: "too many option fields"},
		{name: "unknown", args: []string{"-o", "up,bogus", "dir"}, err: "invalid option field: bogus"},
		{name: "null", args: []string{"-o", "up,,pid", "dir"}, err: "invalid null option field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fields, numeric, err := scan(tt.args)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.err || numeric != tt.numeric || len(fields) != len(tt.fields) {
				t.Fatalf("scan(%q) = %q, %v, %q; want %q, %v, %q", tt.args, fields, numeric, gotErr, tt.fields, tt.numeric, tt.err)
			}
			for i := range fields {
				if fields[i] != tt.fields[i] {
					t.Fatalf("scan(%q) = %q; want %q", tt.args, fields, tt.fields)
				}
			}
		})
	}
}
