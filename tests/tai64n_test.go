package tests

import (
	"os"
	"strings"
	"testing"
)

// TestTai64nGolden: three labelled lines, the last with a newline added,
// under the fake clock; arguments ignored (§12 test 24).
func TestTai64nGolden(t *testing.T) {
	r := runIn(t, Opts{Stdin: "a\n\nb", Env: []string{"GOTOOLS_FAKE_CLOCK=" + fakeClock}}, "tai64n", "ignored")
	want := fakeClock + " a\n" + fakeClock + " \n" + fakeClock + " b\n"
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("tai64n = %s %q; want %q", r.Status(), r.Stdout, want)
	}
	r = runIn(t, Opts{Stdin: "x\ny\n"}, "tai64n")
	lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
	if len(lines) != 2 || lines[0][:25] > lines[1][:25] {
		t.Errorf("tai64n labels %q; want two non-decreasing", lines)
	}
}

const tai64nlocalCorpus = "@40000000586846a400000000 leap\n@400000004b3dcf9a00000000 2010\n" +
	"@400000004B3DCF9A00000000x\n@4000000000000000000000001\n@3fffffffffffffff00000000 pre\n" +
	"@ffffffffffffffffffffffff x\nshort\n\n@4000000069c2a8a3123456780\n@400000004b3dcf9a00000000"

// TestTai64nlocalInterop compares tai64nlocal with real s6-tai64nlocal on
// a corpus in two zones and with -g (§12 test 25).
func TestTai64nlocalInterop(t *testing.T) {
	real := requireS6(t, "s6-tai64nlocal")[0]
	for _, env := range []string{"TZ=UTC", "TZ=Asia/Kolkata"} {
		for _, args := range [][]string{nil, {"-g"}} {
			o := Opts{Stdin: tai64nlocalCorpus, Env: []string{env}}
			got := runIn(t, o, append([]string{"tai64nlocal"}, args...)...)
			want := runIn(t, o, append([]string{real}, args...)...)
			if got.Code != 0 || got.Stdout != want.Stdout {
				t.Errorf("%s tai64nlocal %q = %s %q; s6-tai64nlocal %q", env, args, got.Status(), got.Stdout, want.Stdout)
			}
		}
	}
	r := runIn(t, Opts{Stdin: "@40000000586846a400000000 x\n@400000004b3dcf9a00000000 y\n", Env: []string{"TZ=UTC"}}, "tai64nlocal")
	if want := "2016-12-31 23:59:60.000000000 x\n2010-01-01 10:33:28.000000000 y\n"; r.Stdout != want {
		t.Errorf("tai64nlocal = %q; want %q", r.Stdout, want)
	}
	if r := run(t, "tai64nlocal", "-x"); r.Code != 100 || r.Stderr != "tai64nlocal: usage: tai64nlocal [ -g ]\n" {
		t.Errorf("tai64nlocal -x = %s %q", r.Status(), r.Stderr)
	}
}

// TestTai64nlocalOfLog: under the fake clock, log t 1 | tai64nlocal equals
// log T 1 with one space less.
func TestTai64nlocalOfLog(t *testing.T) {
	env := []string{"GOTOOLS_FAKE_CLOCK=" + fakeClock, "TZ=Asia/Kolkata"}
	lt := runIn(t, Opts{Stdin: "a\nb\n", Env: env}, "log", "t", "1")
	conv := runIn(t, Opts{Stdin: lt.Stdout, Env: env}, "tai64nlocal")
	iso := runIn(t, Opts{Stdin: "a\nb\n", Env: env}, "log", "T", "1")
	if want := strings.ReplaceAll(iso.Stdout, "  ", " "); conv.Stdout != want || want == "" {
		t.Errorf("log t 1 | tai64nlocal = %q; want %q", conv.Stdout, want)
	}
}

// TestTai64nLongLine: a 10 MiB line passes whole with VmHWM <= 8 MiB (the
// label is read at its first byte, nothing is held).
func TestTai64nLongLine(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startIn(t, Opts{StdinFile: r, Env: []string{"GOTOOLS_FAKE_CLOCK=" + fakeClock}}, "tai64n")
	r.Close()
	chunk := []byte(strings.Repeat("L", 1<<20))
	hwm := 0
	for i := 0; i < 10; i++ {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		hwm = max(hwm, vmHWM(t, p.Pid))
	}
	w.WriteString("\n")
	hwm = max(hwm, vmHWM(t, p.Pid))
	w.Close()
	res := p.Wait(t)
	if want := fakeClock + " " + strings.Repeat("L", 10<<20) + "\n"; res.Code != 0 || res.Stdout != want {
		t.Errorf("tai64n on a 10 MiB line: %s, %d bytes; want %d", res.Status(), len(res.Stdout), len(want))
	}
	if hwm > 8<<10 {
		t.Errorf("VmHWM = %d KiB; want <= 8 MiB", hwm)
	}
}
