// Package shm is a thin adapter that gives lib/shm the API of podman's
// libpod/lock/shm (SHMLocks and its constructors), so that podman's own
// test file, shm_lock_test.go, runs unchanged against lib/shm. "make
// bench-podman" copies that file from the Go module cache next to this one
// in a temporary module (run-podman-tests.sh); nothing of podman's is
// committed. Segments live in a fresh directory under /dev/shm, so that the
// test file's fixed names (/libpod_test, /test1) meet nobody else's.
package shm

import (
	"os"

	"github.com/gotools-dev/gotools/lib/shm"
)

// BitmapSize is lib/shm's count granularity (podman: 32), typed as podman's.
var BitmapSize uint32 = shm.BitmapSize

// dir holds this test process's segments; run-podman-tests.sh removes it.
var dir = os.Getenv("PODMANSHM_DIR")

func opts() []shm.Option {
	if dir == "" {
		panic("PODMANSHM_DIR is not set: run-podman-tests.sh sets it")
	}
	return []shm.Option{shm.WithDir(dir)}
}

// SHMLocks is podman's handle type over a lib/shm segment.
type SHMLocks struct{ s *shm.Segment }

// CreateSHMLock is podman's CreateSHMLock.
func CreateSHMLock(path string, numLocks uint32) (*SHMLocks, error) {
	s, err := shm.Create(path, numLocks, opts()...)
	if err != nil {
		return nil, err
	}
	return &SHMLocks{s}, nil
}

// OpenSHMLock is podman's OpenSHMLock.
func OpenSHMLock(path string, numLocks uint32) (*SHMLocks, error) {
	s, err := shm.Open(path, numLocks, opts()...)
	if err != nil {
		return nil, err
	}
	return &SHMLocks{s}, nil
}

//lint:ignore U1000 podman's test file, copied beside this one at run time, calls it.
func unlinkSHMLock(path string) error { return shm.Unlink(path, opts()...) }

// The methods are podman's names for lib/shm's.

func (l *SHMLocks) GetMaxLocks() uint32                   { return l.s.MaxLocks() }
func (l *SHMLocks) Close() error                          { return l.s.Close() }
func (l *SHMLocks) AllocateSemaphore() (uint32, error)    { return l.s.Allocate() }
func (l *SHMLocks) AllocateGivenSemaphore(i uint32) error { return l.s.AllocateGiven(i) }
func (l *SHMLocks) DeallocateSemaphore(i uint32) error    { return l.s.Deallocate(i) }
func (l *SHMLocks) DeallocateAllSemaphores() error        { return l.s.DeallocateAll() }
func (l *SHMLocks) LockSemaphore(i uint32) error          { return l.s.Lock(i) }
func (l *SHMLocks) UnlockSemaphore(i uint32) error        { return l.s.Unlock(i) }
func (l *SHMLocks) GetFreeLocks() (uint32, error)         { return l.s.FreeLocks() }
func (l *SHMLocks) GetTakenLocks() ([]uint32, error)      { return l.s.TakenLocks() }
