//go:build linux

package shm

import (
	"hash/crc32"
	"testing"
)

// TestCRC32CMatchesStdlib checks the bitwise CRC-32C of the header against
// hash/crc32's Castagnoli table, which the package itself must not link
// (its init builds a table in every gotools process).
func TestCRC32CMatchesStdlib(t *testing.T) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	b := make([]byte, 300)
	for i := range b {
		b[i] = byte(i*131 + i>>3)
	}
	for n := range len(b) + 1 {
		if got, want := crc32c(b[:n]), crc32.Checksum(b[:n], tab); got != want {
			t.Fatalf("crc32c(%d bytes) = %#08x; want %#08x", n, got, want)
		}
	}
	// The check value of CRC-32C (RFC 3720 B.4 and the Rocksoft model).
	if got := crc32c([]byte("123456789")); got != 0xe3069283 {
		t.Errorf("crc32c(123456789) = %#08x; want 0xe3069283", got)
	}
}
