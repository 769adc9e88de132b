package servicedir

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/gotools-dev/gotools/lib/tai"
)

func TestStatusLayout(t *testing.T) {
	s := Status{
		Stamp:      tai.Stamp{Sec: tai.Offset + 1, Nsec: 2},
		ReadyStamp: tai.Stamp{Sec: tai.Offset + 3, Nsec: 4},
		PID:        0x0102030405060708,
		WStat:      0x0f00,
		Flags:      FlagWantUp | FlagReady | 0x80, // 0x80 is not written
	}
	want := []byte{
		0x40, 0, 0, 0, 0, 0, 0, 0x26, 0, 0, 0, 2,
		0x40, 0, 0, 0, 0, 0, 0, 0x28, 0, 0, 0, 4,
		1, 2, 3, 4, 5, 6, 7, 8,
		0x0f, 0,
		0x0c,
	}
	got := s.Marshal()
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal() =\n% x\nwant\n% x", got, want)
	}
	u, err := UnmarshalStatus(got)
	s.Flags &^= 0x80
	if err != nil || u != s {
		t.Errorf("UnmarshalStatus(Marshal()) = %+v, %v; want %+v", u, err, s)
	}
}

func TestStatus213Layout(t *testing.T) {
	now := tai.FromTime(time.Unix(1700000000, 0))
	b := now.Append(nil)
	b = now.Append(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0x30, 0x39) // pid 12345
	b = append(b, 0, 0, 0, 0, 0, 0, 0x30, 0x3a) // pgid 12346
	b = append(b, 0, 0x8f)                      // wstat: SIGTERM + core
	b = append(b, FlagPaused|FlagFinishing)
	s, err := UnmarshalStatus(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.PID != 12345 || s.PGID != 12346 || s.WStat != 0x8f || s.Flags != FlagPaused|FlagFinishing || s.Stamp != now {
		t.Errorf("UnmarshalStatus(43 bytes) = %+v", s)
	}
	if s.Up() {
		t.Errorf("finishing status reads as up")
	}
}

func TestStatusMalformed(t *testing.T) {
	for _, n := range []int{0, 1, 34, 36, 42, 44, 100} {
		_, err := UnmarshalStatus(make([]byte, n))
		var me *MalformedError
		if !errors.Is(err, ErrMalformed) || !errors.As(err, &me) || me.Size != n {
			t.Errorf("UnmarshalStatus(%d bytes) = %v; want malformed (%d bytes)", n, err, n)
		}
	}
	bad := make([]byte, StatusSize)
	copy(bad[8:], []byte{0x3b, 0x9a, 0xca, 0x00}) // 10^9 ns
	if _, err := UnmarshalStatus(bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("UnmarshalStatus(bad nanoseconds) = %v; want malformed", err)
	}
}

func FuzzStatus(f *testing.F) {
	f.Add(make([]byte, StatusSize))
	f.Add(make([]byte, StatusSize213))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalStatus(b)
		if err != nil {
			return
		}
		if len(b) == StatusSize {
			want := append([]byte(nil), b...)
			want[34] &= 0x0f
			if got := s.Marshal(); !bytes.Equal(got, want) {
				t.Errorf("Marshal(UnmarshalStatus(% x)) = % x", b, got)
			}
		}
		if got := s.Append([]byte("x")); !bytes.Equal(got[1:], s.Marshal()) || got[0] != 'x' {
			t.Errorf("Append(\"x\") of %+v = % x; want x then Marshal's % x", s, got, s.Marshal())
		}
		if u, err := UnmarshalStatus(s.Marshal()); err != nil || u.PID != s.PID || u.Flags != s.Flags {
			t.Errorf("round trip of %+v = %+v, %v", s, u, err)
		}
	})
}
