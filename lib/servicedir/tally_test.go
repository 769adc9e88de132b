package servicedir

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/tai"
)

func TestDeathOf(t *testing.T) {
	st := tai.Stamp{Sec: tai.Offset}
	for _, tt := range []struct {
		name string
		ws   unix.WaitStatus
		code byte
		sig  byte
	}{
		{"exit 0", 0, 0, 0},
		{"exit 200 (no cap)", 200 << 8, 200, 0},
		{"SIGTERM", unix.WaitStatus(unix.SIGTERM), 143, 15},
		{"SIGKILL with core bit", unix.WaitStatus(unix.SIGKILL) | 0x80, 137, 9},
	} {
		d := DeathOf(st, tt.ws)
		if d.Code != tt.code || d.Sig != tt.sig {
			t.Errorf("%s: DeathOf(%#x) = %d/%d; want %d/%d", tt.name, tt.ws, d.Code, d.Sig, tt.code, tt.sig)
		}
	}
}

func TestDeathTallyRoundTripAndCap(t *testing.T) {
	var ds []Death
	for i := 0; i < 10; i++ {
		ds = append(ds, Death{Stamp: tai.Stamp{Sec: tai.Offset + uint64(i)}, Code: byte(i)})
	}
	b := MarshalDeathTally(ds, 3)
	if len(b) != 3*DeathSize {
		t.Fatalf("MarshalDeathTally(10 records, max 3) = %d bytes; want %d", len(b), 3*DeathSize)
	}
	got := ParseDeathTally(b)
	if len(got) != 3 || got[0].Code != 7 || got[2].Code != 9 {
		t.Errorf("ParseDeathTally = %+v; want the last 3, oldest first", got)
	}
	if n := len(MarshalDeathTally(ds, 0)); n != 0 {
		t.Errorf("max 0 kept %d bytes; want 0", n)
	}
	if got := ParseDeathTally(append(b, 0)); got != nil {
		t.Errorf("ParseDeathTally(43 bytes) = %v; want empty", got)
	}
}

func FuzzDeathTally(f *testing.F) {
	f.Add(make([]byte, 28))
	f.Add([]byte("@40000000586846a500000005"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ds := ParseDeathTally(b)
		if ds == nil {
			return
		}
		if got := MarshalDeathTally(ds, MaxDeathTally); len(ds) <= MaxDeathTally && !bytes.Equal(got, b) {
			t.Errorf("MarshalDeathTally(ParseDeathTally(% x)) = % x", b, got)
		}
	})
}

// TestAppendDeathTally checks that the append form writes after what dst
// holds, reuses its array when it is large enough, and matches
// MarshalDeathTally.
func TestAppendDeathTally(t *testing.T) {
	var ds []Death
	for i := range 5 {
		ds = append(ds, Death{Stamp: tai.Stamp{Sec: tai.Offset + uint64(i)}, Code: byte(i), Sig: byte(i + 1)})
	}
	buf := make([]byte, 2, 64)
	buf[0], buf[1] = 'x', 'y'
	got := AppendDeathTally(buf, ds, 4)
	want := append([]byte("xy"), MarshalDeathTally(ds, 4)...)
	if !bytes.Equal(got, want) {
		t.Errorf("AppendDeathTally(\"xy\", 5 records, 4) = % x; want % x", got, want)
	}
	if &got[0] != &buf[0] {
		t.Errorf("AppendDeathTally reallocated a buffer of capacity %d for %d bytes", cap(buf), len(got))
	}
	if n := testing.AllocsPerRun(10, func() { got = AppendDeathTally(got[:0], ds, 4) }); n != 0 {
		t.Errorf("AppendDeathTally into a large enough buffer: %v allocations; want 0", n)
	}
}
