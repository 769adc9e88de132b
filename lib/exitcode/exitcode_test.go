package exitcode

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

func exited(c int) unix.WaitStatus   { return unix.WaitStatus(c << 8) }
func signaled(s int) unix.WaitStatus { return unix.WaitStatus(s) }

func TestApproxExitCodes(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c
		if c >= 128 {
			want = 128
		}
		if got := Approx(exited(c)); got != want {
			t.Errorf("Approx(exited %d) = %d; want %d", c, got, want)
		}
	}
}

func TestApproxSignals(t *testing.T) {
	for s := 1; s < 65; s++ {
		if got := Approx(signaled(s)); got != 128+s {
			t.Errorf("Approx(signal %d) = %d; want %d", s, got, 128+s)
		}
		// A core dump does not change the code.
		if got := Approx(signaled(s) | 0x80); got != 128+s {
			t.Errorf("Approx(signal %d, core) = %d; want %d", s, got, 128+s)
		}
	}
}

func TestApproxStoppedIsNotADeath(t *testing.T) {
	stopped := unix.WaitStatus(0x7f | int(unix.SIGSTOP)<<8)
	if got := Approx(stopped); got != Sys {
		t.Errorf("Approx(stopped) = %d; want %d", got, Sys)
	}
}

func TestOf(t *testing.T) {
	base := errors.New("boom")
	for _, tt := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"plain error", base, Sys},
		{"usage", ErrUsage, Usage},
		{"wrapped usage", fmt.Errorf("x: %w", ErrUsage), Usage},
		{"silent exit", Exit(42), 42},
		{"wrapped Error", fmt.Errorf("ctx: %w", New(104, base)), 104},
		{"errorf", Errorf(127, "unable to spawn %s: %w", "x", unix.ENOENT), 127},
	} {
		if got := Of(tt.err); got != tt.want {
			t.Errorf("%s: Of(%v) = %d; want %d", tt.name, tt.err, got, tt.want)
		}
	}
	if !errors.Is(Errorf(111, "x: %w", unix.ENOENT), unix.ENOENT) {
		t.Errorf("Errorf does not keep its cause for errors.Is")
	}
}
