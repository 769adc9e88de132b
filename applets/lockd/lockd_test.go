package lockd

import (
	"testing"
	"time"

	"github.com/gotools-dev/gotools/lib/lockproto"
)

func TestFormatEntry(t *testing.T) {
	for _, tt := range []struct {
		e    lockproto.Entry
		want string
	}{
		{lockproto.Entry{ID: 3, PID: 10, UID: 0, HelperPID: 11, Name: "db", Mode: lockproto.Exclusive, Held: true, Age: 1500 * time.Millisecond},
			"10\t0\t3\tex\theld\t1500\t-\t11\tdb"},
		{lockproto.Entry{ID: 4, PID: 10, UID: 65534, HelperPID: 12, Name: "a b\t\xff", Left: -1},
			"10\t65534\t4\tsh\tpending\t0\t-\t12\ta b\\x09\\xff"},
		{lockproto.Entry{ID: 5, PID: 10, HelperPID: 13, Name: "x", Left: 250 * time.Millisecond, Age: 5 * time.Millisecond},
			"10\t0\t5\tsh\tpending\t5\t250\t13\tx"},
	} {
		if got := formatEntry(tt.e); got != tt.want {
			t.Errorf("formatEntry(%+v) = %q; want %q", tt.e, got, tt.want)
		}
	}
}

func TestParseUIDs(t *testing.T) {
	if m, ok := parseUIDs("1000,65534"); !ok || len(m) != 2 || !m[1000] || !m[65534] {
		t.Errorf("parseUIDs(1000,65534) = %v, %v", m, ok)
	}
	if m, ok := parseUIDs(""); !ok || len(m) != 0 {
		t.Errorf("parseUIDs(\"\") = %v, %v", m, ok)
	}
	for _, bad := range []string{"x", "1,,2", "-1", "1,", "0x10"} {
		if _, ok := parseUIDs(bad); ok {
			t.Errorf("parseUIDs(%q) accepted it", bad)
		}
	}
}
