package tai

import (
	"testing"
	"time"
)

func TestTextLeapISO(t *testing.T) {
	s := Stamp{Sec: 0x400000004b3dcf9a, Nsec: 5}
	if got := string(s.AppendText(nil)); got != "@400000004b3dcf9a00000005" || got != s.String() {
		t.Errorf("AppendText = %q; want %q", got, s.String())
	}
	for _, tt := range []struct {
		text string
		ok   bool
		sec  int64
		leap bool
	}{
		{"@400000004B3DCF9A00000000", true, 1262342008, false},
		{"@40000000586846a400000000", true, 1483228799, true},
		{"@400000004b3dcf9a3b9aca00", false, 0, false},
		{"@400000004b3dcf9a0000000g", false, 0, false},
	} {
		st, ok := ParseText([]byte(tt.text))
		if ok != tt.ok {
			t.Errorf("ParseText(%q) ok = %v; want %v", tt.text, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if sec, leap := st.UTC(); sec != tt.sec || leap != tt.leap {
			t.Errorf("ParseText(%q).UTC() = %d, %v; want %d, %v", tt.text, sec, leap, tt.sec, tt.leap)
		}
	}
	t.Setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")
	loc := LocalZone()
	for _, tt := range []struct {
		unix int64
		want string
	}{
		{1700000000, "2023-11-14 23:13:20.000000007"},
		{1720000000, "2024-07-03 11:46:40.000000007"},
	} {
		if got := string(AppendISO(nil, time.Unix(tt.unix, 7).In(loc))); got != tt.want {
			t.Errorf("AppendISO(%d) under a POSIX TZ rule = %q; want %q", tt.unix, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = AppendISO(make([]byte, 0, 64)[:0], time.Unix(1, 0).In(loc)) }); n > 1 {
		t.Errorf("AppendISO allocates %v times", n)
	}
}
