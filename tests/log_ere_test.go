package tests

import (
	"bytes"
	"os"
	"strconv"
	"testing"

	"github.com/gotools-dev/gotools/lib/ere"
)

// ereCorpus reads lib/ere's recorded corpus: patterns, lines, and what
// real s6-log answered for each pattern ("reject" or one 0/1 per line).
func ereCorpus(t *testing.T) (pats [][]byte, lines []byte, expected [][]byte) {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile("../lib/ere/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	split := func(b []byte) [][]byte { return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) }
	return split(read("patterns")), read("lines"), split(read("expected"))
}

// TestLogEREBatch runs every corpus pattern that glibc accepts and log can
// run in one script (- +RE pN 1 per pattern) through real s6-log and log:
// the same records (§12 test 3; lib/ere's tests check the recorded
// rejections, TestSoakLogEREInterop reruns every pattern alone).
func TestLogEREBatch(t *testing.T) {
	real := requireS6(t, "s6-log")[0]
	pats, lines, expected := ereCorpus(t)
	argv := []string{"--"}
	for i, p := range pats {
		if string(expected[i]) == "reject" {
			continue
		}
		if _, err := ere.Compile(string(p)); err != nil {
			continue // refused as unsupported: lib/ere's tests check it
		}
		argv = append(argv, "-", "+"+string(p), "p"+strconv.Itoa(i), "1")
	}
	want := runIn(t, Opts{Stdin: string(lines)}, append([]string{real}, argv...)...)
	got := runIn(t, Opts{Stdin: string(lines)}, append([]string{"log"}, argv...)...)
	if got.Code != 0 || got.Stdout != want.Stdout || want.Code != 0 {
		t.Errorf("log: %s, %d bytes; s6-log: %s, %d bytes; outputs differ", got.Status(), len(got.Stdout), want.Status(), len(want.Stdout))
	}
}
