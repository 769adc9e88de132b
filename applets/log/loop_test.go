package logapplet

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/logscript"
)

func benchLogger(b *testing.B, script ...string) *logger {
	sc, err := logscript.Parse(script, func() bool { return true })
	if err != nil {
		b.Fatal(err)
	}
	o := opts{notif: -1, verbosity: 1, lineMax: 8192, lastLine: 2000}
	l := newLogger(&cli.Env{Name: "log", Stdout: io.Discard, Stderr: io.Discard}, o, sc, nil)
	l.label = make([]byte, 0, 25)
	l.iso = make([]byte, 0, 64)
	l.loc = nil
	return l
}

// BenchmarkLineToBuffer: read chunk -> select -> record -> buffer, per
// line; 0 allocations per line in steady state (spec/log.md §13).
func BenchmarkLineToBuffer(b *testing.B) {
	var chunk bytes.Buffer
	for i := 0; chunk.Len() < 64<<10-80; i++ {
		fmt.Fprintf(&chunk, "%010d %s\n", i, strings.Repeat("m", 68))
	}
	lines := bytes.Count(chunk.Bytes(), []byte("\n"))
	for _, script := range [][]string{{"t", "./d"}, {"-", "+^[a-z]+ is", "+fatal:", "./d", "f", "./e"}} {
		b.Run(strings.Join(script, " "), func(b *testing.B) {
			l := benchLogger(b, script...)
			b.ReportAllocs()
			b.SetBytes(int64(chunk.Len()))
			for b.Loop() {
				l.feed(chunk.Bytes())
				for _, d := range l.dirs {
					d.pend = d.pend[:0]
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
		})
	}
}
