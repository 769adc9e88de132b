//go:build soak

package tests

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSoakLogGiB sends 1 GiB of 80-byte lines into n100 s16777215 t ./d:
// VmHWM stays <= 8 MiB and the archives plus current, labels removed,
// equal the input (§12 test 16).
func TestSoakLogGiB(t *testing.T) {
	dir := t.TempDir()
	l := startLogger(t, dir, nil, "log", "n100", "s16777215", "t", "./d")
	line := func(i int) string { return fmt.Sprintf("%010d %s\n", i, strings.Repeat("s", 68)) }
	const total = 1 << 30
	n := total / 80
	bw := bufio.NewWriterSize(l.w, 1<<16)
	maxHWM := 0
	for i := 0; i < n; i++ {
		bw.WriteString(line(i))
		if i%(1<<20) == 0 {
			maxHWM = max(maxHWM, vmHWM(t, l.p.Pid))
		}
	}
	bw.Flush()
	maxHWM = max(maxHWM, vmHWM(t, l.p.Pid))
	if res := l.end(); res.Code != 0 {
		t.Fatalf("log: %s %q", res.Status(), res.Stderr)
	}
	if maxHWM > 8<<10 {
		t.Errorf("VmHWM = %d KiB; want <= 8 MiB", maxHWM)
	}
	t.Logf("VmHWM %d KiB", maxHWM)
	// Every line once, in order, in name order of the archives then current.
	ents, _ := os.ReadDir(filepath.Join(dir, "d"))
	var files []string
	for _, e := range ents {
		if e.Name()[0] == '@' {
			files = append(files, e.Name())
		}
	}
	files = append(files, "current")
	next := -1
	for _, f := range files {
		fh, err := os.Open(filepath.Join(dir, "d", f))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			s := sc.Text()
			var i int
			if len(s) < 26 || s[25] != ' ' {
				t.Fatalf("%s: bad record %q", f, s)
			}
			fmt.Sscanf(s[26:36], "%d", &i)
			if next >= 0 && i != next {
				t.Fatalf("%s: line %d after %d", f, i, next-1)
			}
			if s[26:]+"\n" != line(i) {
				t.Fatalf("%s: record %q", f, s)
			}
			next = i + 1
		}
		fh.Close()
	}
	if next != n {
		t.Errorf("the last line kept is %d; want %d (archives pruned to 100 only at the start)", next-1, n-1)
	}
}
