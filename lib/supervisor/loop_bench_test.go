package supervisor

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
)

// BenchmarkLoopTurn measures one turn of a Loop that supervises n idle
// services (each down, so nothing runs) while one of them gets a control
// byte per turn: the cost of a turn must not grow with the services that
// have nothing to do (issue 16 item 2: epoll, not a poll set rebuilt over
// every service). Compare the ns/op of n=10 and n=500.
func BenchmarkLoopTurn(b *testing.B) {
	for _, n := range []int{10, 500} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			root := b.TempDir()
			var stderr bytes.Buffer
			env := &cli.Env{Name: "bench", Stdout: &stderr, Stderr: &stderr}
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
				b.Fatal(err)
			}
			defer unix.Close(p[0])
			defer unix.Close(p[1])
			l := &Loop{Env: env, Signals: p[0]}
			var svcs []*Service
			for i := range n {
				dir := filepath.Join(root, fmt.Sprintf("s%03d", i))
				if err := os.MkdirAll(dir, 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "down"), nil, 0o644); err != nil {
					b.Fatal(err)
				}
				s, err := Open(l, Config{Env: env, Dir: dir, Applet: "supervise"})
				if err != nil {
					b.Fatal(err)
				}
				svcs = append(svcs, s)
			}
			ctl, err := os.OpenFile(filepath.Join(root, "s000", "supervise", "control"), os.O_WRONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer ctl.Close()
			turns := 0
			l.Tick = func() {
				turns++
				if turns < b.N {
					// A signal letter for a down service: read, then nothing.
					if _, err := ctl.Write([]byte{'a'}); err != nil {
						b.Fatal(err)
					}
				}
			}
			l.Done = func() bool { return turns >= b.N }
			if _, err := ctl.Write([]byte{'a'}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			if err := l.Run(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			for _, s := range svcs {
				s.Signal(unix.SIGQUIT)
			}
			if stderr.Len() != 0 {
				b.Fatalf("warnings: %s", stderr.String())
			}
		})
	}
}
