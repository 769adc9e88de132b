package logscript

import (
	"errors"
	"strings"
	"testing"
)

func yes() bool { return true }

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"empty directive", []string{"", "1"}, "unrecognized directive: "},
		{"unknown", []string{"x", "1"}, "unrecognized directive: x"},
		{"f with more", []string{"ff", "1"}, "syntax error at directive: ff"},
		{"tt", []string{"tt", "1"}, "syntax error at directive: tt"},
		{"11", []string{"11"}, "syntax error at directive: 11"},
		{"bare =", []string{"=", "1"}, "syntax error at directive: ="},
		{"no action", []string{"+a", "n5"}, "no action directive specified"},
		{"first-byte pass before no action", []string{"n5", "x"}, "unrecognized directive: x"},
		{"negative", []string{"n-1", "1"}, "unrecognized directive: n-1"},
		{"too big", []string{"n4294967296", "1"}, "unrecognized directive: n4294967296"},
		{"S too big", []string{"S18446744073709551616", "1"}, "unrecognized directive: S18446744073709551616"},
		{"l conflicts", []string{"s4096", "l2049", "1"}, "directive l2049 conflicts with previous s directive"},
		{"l conflicts, s clamped", []string{"s1000000000", "l200000000", "1"}, "directive l200000000 conflicts with previous s directive"},
		{"bad ERE", []string{"+a{1", "1"}, "unrecognized directive: +a{1"},
		{"backreference", []string{"+(a)\\1", "1"}, "unsupported regular expression in directive +(a)\\1: backreferences are not supported"},
		{"same logdir", []string{"./d", "./d/"}, "logdir ./d/ is the same as ./d"},
		{"numbers in argument order", []string{"nx", "+a{", "1"}, "unrecognized directive: nx"},
	} {
		_, err := Parse(tt.args, yes)
		var e *Error
		if !errors.As(err, &e) || e.Msg != tt.want {
			t.Errorf("%s: Parse(%q) = %v; want %q", tt.name, tt.args, err, tt.want)
		}
	}
	if _, err := Parse([]string{"!cat", "./d"}, func() bool { return false }); err == nil || err.Error() != "unable to find execlineb in PATH for directive: !cat" {
		t.Errorf("Parse(!cat) without execlineb = %v", err)
	}
	if _, err := Parse([]string{"!", "./d"}, func() bool { t.Error("execlineb looked up for an empty !"); return false }); err != nil {
		t.Errorf("Parse(!) = %v", err)
	}
}

func TestParseValues(t *testing.T) {
	sc, err := Parse([]string{"l2049", "s4096", "n4294967295", "S0", "r10", "R3", "t", "T", "pX", "?gzip", "./a", "s1", "!", "E5", "^0", "p", "./b", "2", "=st", "+x"}, yes)
	if err != nil {
		t.Fatal(err)
	}
	if !sc.Extraneous || len(sc.Actions) != 4 || !sc.Time {
		t.Fatalf("Parse = %+v", sc)
	}
	a, b := sc.Actions[0], sc.Actions[1]
	if a.Size != 4096 || a.Tolerance != 2049 || a.Keep != 4294967295 || a.Cooldown != 50 || a.Period != 3 ||
		!a.Label || !a.ISO || a.Prefix != "X" || a.Processor != "gzip" || !a.Shell {
		t.Errorf("./a = %+v", *a)
	}
	if b.Size != MinSize || b.Label || b.ISO || b.Prefix != "" || b.Processor != "" || b.AlertMax != 5 || b.StatusPad != 0 {
		t.Errorf("./b = %+v", *b)
	}
	if n := len(sc.Ops); sc.Ops[n-1].Kind != Act {
		t.Errorf("trailing selection kept in the program")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"n5 s4096 ./d", "- +fatal: 2 - +^STAT =status f ./d", "t T pX 1", "E5 2", "l2049 s4096 1", "!cat ./d", "+a{1 1", "^0 =st"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, " ")
		sc, err := Parse(args, yes)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q) = %T %v", args, err, err)
			}
			return
		}
		if len(sc.Actions) == 0 {
			t.Fatalf("Parse(%q) accepted a script without actions", args)
		}
		for _, a := range sc.Actions {
			if a.Size < MinSize || a.Size > MaxSize || a.Tolerance > MaxSize/2 || a.Cooldown < MinCooldown {
				t.Fatalf("Parse(%q): action %+v out of bounds", args, *a)
			}
		}
	})
}
