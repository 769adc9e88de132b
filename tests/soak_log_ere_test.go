//go:build soak

package tests

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestLogEREInterop reruns lib/ere's recorded corpus through real s6-log
// and log: every pattern glibc rejects exits 100 in both; every pattern it
// accepts selects the same lines, or is refused by log with exit 100 and
// the "unsupported" line, never matched differently (§12 test 3).
func TestSoakLogEREInterop(t *testing.T) {
	real := requireS6(t, "s6-log")[0]
	pats, err := os.ReadFile("../lib/ere/testdata/patterns")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := os.ReadFile("../lib/ere/testdata/lines")
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, p := range bytes.Split(bytes.TrimSuffix(pats, []byte("\n")), []byte("\n")) {
		argv := []string{"--", "-", "+" + string(p), "p1", "1", "f", "p0", "1"}
		want := runIn(t, Opts{Stdin: string(lines)}, append([]string{real}, argv...)...)
		got := runIn(t, Opts{Stdin: string(lines)}, append([]string{"log"}, argv...)...)
		switch {
		case want.Code == 100:
			if got.Code != 100 || got.Stderr != "log: fatal: unrecognized directive: +"+string(p)+"\n" {
				t.Errorf("pattern %q: s6-log rejects it; log: %s %q", p, got.Status(), got.Stderr)
			}
		case got.Code == 100 && strings.HasPrefix(got.Stderr, "log: fatal: unsupported regular expression in directive "):
			refused++
		case got.Code != 0 || got.Stdout != want.Stdout:
			t.Errorf("pattern %q: log %s selects %q; s6-log %q", p, got.Status(), got.Stdout, want.Stdout)
		}
	}
	if refused > 12 {
		t.Errorf("%d patterns refused as unsupported; about 9 expected", refused)
	}
}
