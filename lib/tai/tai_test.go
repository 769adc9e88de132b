package tai

import (
	"bytes"
	"testing"
	"time"
)

func TestKnownStamp(t *testing.T) {
	// 2017-01-01T00:00:00Z, the last leap second's first day: Unix
	// 1483228800, TAI64 0x4000000000000000 + 1483228800 (0x58684680) + 37.
	tm := time.Unix(1483228800, 5)
	s := FromTime(tm)
	want := []byte{0x40, 0, 0, 0, 0x58, 0x68, 0x46, 0xa5, 0, 0, 0, 5}
	if got := s.Append(nil); !bytes.Equal(got, want) {
		t.Errorf("FromTime(%v).Append = % x; want % x", tm, got, want)
	}
	if got := s.String(); got != "@40000000586846a500000005" {
		t.Errorf("String() = %q; want %q", got, "@40000000586846a500000005")
	}
	if !s.Time().Equal(tm) {
		t.Errorf("Time() = %v; want %v", s.Time(), tm)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{time.Unix(0, 0), time.Now(), time.Unix(1<<40, 999999999)} {
		s := FromTime(tm)
		u, err := Unpack(s.Append(nil))
		if err != nil || u != s {
			t.Errorf("Unpack(Append(%v)) = %v, %v; want %v", s, u, err, s)
		}
		p, err := Parse(s.String())
		if err != nil || p != s {
			t.Errorf("Parse(%q) = %v, %v; want %v", s.String(), p, err, s)
		}
		if !s.Time().Equal(tm) {
			t.Errorf("FromTime(%v).Time() = %v", tm, s.Time())
		}
	}
}

func TestRejects(t *testing.T) {
	for _, tt := range []struct {
		name string
		text string
	}{
		{"empty", ""},
		{"no at", "400000005868462500000005x"},
		{"short", "@40000000586846250000000"},
		{"long", "@40000000586846a5000000050"},
		{"not hex", "@40000000586846250000000g"},
		{"nanoseconds too big", "@40000000586846253b9aca00"},
	} {
		if s, err := Parse(tt.text); err == nil {
			t.Errorf("%s: Parse(%q) = %v, nil; want ErrFormat", tt.name, tt.text, s)
		}
	}
	if _, err := Unpack(make([]byte, 11)); err == nil {
		t.Errorf("Unpack(11 bytes) = nil error; want ErrFormat")
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add([]byte("@40000000586846a500000005"))
	f.Add(make([]byte, 12))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := Unpack(b); err == nil {
			if got := s.Append(nil); !bytes.Equal(got, b[:Size]) {
				t.Errorf("Append(Unpack(% x)) = % x", b[:Size], got)
			}
			if p, err := Parse(s.String()); err != nil || p != s {
				t.Errorf("Parse(String(%v)) = %v, %v", s, p, err)
			}
		}
		if s, err := Parse(string(b)); err == nil && len(b) != TextSize {
			t.Errorf("Parse(%q) = %v with a wrong length", b, s)
		}
	})
}
