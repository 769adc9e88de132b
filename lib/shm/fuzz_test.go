//go:build linux

package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzOpenHeader opens files made of a fuzzed header block truncated or
// extended to a fuzzed size: Open must return EBADF or EPROTONOSUPPORT, or
// a segment whose every read-only operation and lock 0 work, and never
// fault. Seeds live in testdata/fuzz/FuzzOpenHeader.
func FuzzOpenHeader(f *testing.F) {
	good := (&header{version: 1, maxLocks: 64, initLocks: 64, numLocks: 64, bitmapOff: 4096, slotsOff: 8192}).encode()
	f.Add(good, uint32(12288))
	f.Add(good, uint32(8192))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, hdr []byte, size uint32) {
		size %= 1 << 20
		path := filepath.Join(dir, "f")
		if len(hdr) > int(size) {
			hdr = hdr[:size]
		}
		if err := os.WriteFile(path, hdr, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, int64(size)); err != nil {
			t.Fatal(err)
		}
		s, err := OpenExisting("f", WithDir(dir))
		if err != nil {
			if !errors.Is(err, unix.EBADF) && !errors.Is(err, unix.EPROTONOSUPPORT) {
				t.Fatalf("OpenExisting = %v; want EBADF or EPROTONOSUPPORT", err)
			}
			return
		}
		defer s.Close()
		n := s.MaxLocks()
		if n == 0 || n%64 != 0 || uint64(size) < s.Info().Size {
			t.Fatalf("opened a segment of %d locks from %d bytes", n, size)
		}
		if _, err := s.FreeLocks(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakenLocks(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Status(); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.TryLock(n - 1); err != nil {
			t.Fatal(err)
		} else if ok {
			if err := s.Unlock(n - 1); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzOpenHeader when
// GOTOOLS_SHM_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("GOTOOLS_SHM_WRITE_SEEDS") != "1" {
		t.Skip("set GOTOOLS_SHM_WRITE_SEEDS=1 to regenerate the seeds")
	}
	h := header{version: 1, maxLocks: 128, initLocks: 64, numLocks: 64, bitmapOff: 4096, slotsOff: 8192}
	good := h.encode()
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	recrc := func(b []byte) { binary.LittleEndian.PutUint32(b[crcEnd:], crc32c(b[:crcEnd])) }
	seeds := map[string]struct {
		b    []byte
		size uint32
	}{
		"valid":          {good, 12288},
		"grown":          {mod(func(b []byte) { b[offNumLocks] = 128 }), 16384},
		"grown-short":    {mod(func(b []byte) { b[offNumLocks] = 128 }), 12288},
		"truncated":      {good, 8192},
		"empty":          {nil, 0},
		"short-header":   {good[:100], 4095},
		"bad-magic":      {mod(func(b []byte) { b[1] = 0 }), 12288},
		"bad-crc":        {mod(func(b []byte) { b[crcEnd] ^= 1 }), 12288},
		"version2":       {mod(func(b []byte) { b[8] = 2; recrc(b) }), 12288},
		"flag":           {mod(func(b []byte) { b[20] = 4; recrc(b) }), 12288},
		"huge-max":       {mod(func(b []byte) { binary.LittleEndian.PutUint32(b[24:], 1<<24); recrc(b) }), 12288},
		"bad-slots-off":  {mod(func(b []byte) { b[41]++; recrc(b) }), 12288},
		"num-not-64":     {mod(func(b []byte) { b[offNumLocks] = 65 }), 12288},
		"num-above-max":  {mod(func(b []byte) { binary.LittleEndian.PutUint32(b[offNumLocks:], 192) }), 32768},
		"slot-size-32":   {mod(func(b []byte) { b[16] = 32; recrc(b) }), 12288},
		"header-size-0":  {mod(func(b []byte) { b[13] = 0; recrc(b) }), 12288},
		"count-zero-max": {mod(func(b []byte) { binary.LittleEndian.PutUint32(b[24:], 0); recrc(b) }), 12288},
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzOpenHeader")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, sd := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint32(%d)\n", trimZeros(sd.b), sd.size)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// trimZeros drops trailing zero bytes: the header block is mostly zeros,
// and a short header reads the same once the file is extended.
func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
