package servicedir

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseNumber(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want uint32
		ok   bool
	}{
		{"plain", "5000", 5000, true},
		{"newline", "3\n", 3, true},
		{"second line ignored", "3\ngarbage", 3, true},
		{"zero", "0\n", 0, true},
		{"max", "4294967295", 4294967295, true},
		{"leading zeros", "0007", 7, true},
		{"empty", "", 0, false},
		{"empty line", "\n5", 0, false},
		{"overflow", "4294967296", 0, false},
		{"eleven digits", "00000000001", 0, false},
		{"sign", "+5", 0, false},
		{"negative", "-5", 0, false},
		{"space", " 5", 0, false},
		{"trailing space", "5 ", 0, false},
		{"crlf", "5\r\n", 0, false},
		{"hex", "0x10", 0, false},
		{"long line", strings.Repeat("1", 70), 0, false},
		{"nul", "5\x00", 0, false},
	} {
		got, err := ParseNumber([]byte(tt.in))
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("%s: ParseNumber(%q) = %d, %v; want %d", tt.name, tt.in, got, err, tt.want)
		}
		if !tt.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: ParseNumber(%q) = %d, %v; want ErrInvalid", tt.name, tt.in, got, err)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want unix.Signal
	}{
		{"TERM\n", unix.SIGTERM}, {"SIGHUP", unix.SIGHUP}, {"usr1\n", unix.SIGUSR1}, {"9\n", unix.SIGKILL},
	} {
		if got, err := ParseSignal([]byte(tt.in)); err != nil || got != tt.want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "\n", "FOO", "0", "65", " TERM", "TERM \n", strings.Repeat("A", 80)} {
		if got, err := ParseSignal([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSignal(%q) = %v, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"abc", `"abc"`},
		{"a\nb\x00", `"a\x0ab\x00"`},
		{`q"\`, `"q\"\\"`},
		{strings.Repeat("x", 40), `"` + strings.Repeat("x", 32) + `"`},
	} {
		if got := Quote([]byte(tt.in)); got != tt.want {
			t.Errorf("Quote(%q) = %s; want %s", tt.in, got, tt.want)
		}
	}
}

func FuzzServicedirFile(f *testing.F) {
	for _, s := range []string{"5000\n", "TERM\n", "", "4294967296", "SIGRTMIN+3\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := ParseNumber(b); err == nil {
			line, _ := firstLine(b)
			if len(line) == 0 || len(line) > 10 || strings.TrimLeft(string(line), "0123456789") != "" {
				t.Errorf("ParseNumber(%q) = %d accepted a bad line", b, n)
			}
		}
		if s, err := ParseSignal(b); err == nil && (s < 1 || s > 64) {
			t.Errorf("ParseSignal(%q) = %d out of range", b, s)
		}
		if q := Quote(b); strings.ContainsAny(q, "\n\x00") {
			t.Errorf("Quote(%q) = %q holds a raw control byte", b, q)
		}
	})
}
