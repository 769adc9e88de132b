//go:build linux

package fdholder

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/tai"
)

// BenchmarkStoreRetrieve is one store and one retrieve-with-delete round
// trip on one connection, library client against an in-process Serve
// (spec 13: <= 100 us p50).
func BenchmarkStoreRetrieve(b *testing.B) {
	d := startDaemon(b, Config{})
	c := d.dial(b)
	a, _ := socketPair(b)
	b.ResetTimer()
	for b.Loop() {
		if err := c.Store(a, "bench", tai.Stamp{}); err != nil {
			b.Fatal(err)
		}
		fd, err := c.Retrieve("bench", true)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
}
