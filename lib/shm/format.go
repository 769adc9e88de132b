//go:build linux

package shm

import (
	"bytes"
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// BitmapSize is the granularity of a segment's lock count: counts are
// rounded up to a multiple of it (podman: 32). It is the number of bits in
// one allocation-bitmap word.
const BitmapSize = 64

// Segment format, version 1 (spec/shmlock.md "Segment format, version 1"):
// little-endian and identical on every architecture and libc.
const (
	magic          = "GTSHMLK\x00"
	formatVersion  = 1
	headerSize     = 4096
	slotSize       = 64
	maxCount       = 1 << 24 // largest max_locks
	defaultMax     = 262144  // default max_locks when the count is smaller
	crcEnd         = 76      // the CRC covers bytes 0..75
	offNumLocks    = 128     // u32, CAS only
	offRecoveries  = 136     // u64, atomic add
	offForced      = 144     // u64, atomic add
	pageSize       = 4096
	knownFlags     = 0
	maxNameLen     = 255
	robustListSize = 24
)

// Slot layout: each slot is one 64-byte cache line.
const (
	slotNext      = 0  // robust-list next (an address in the owner's memory)
	slotPrev      = 8  // robust-list prev
	slotWord      = 16 // u32 futex word + u32 owner tag: one 64-bit lock word
	slotAcquired  = 24 // CLOCK_MONOTONIC ns of the acquisition
	slotTag       = 32 // allocation tag
	slotWaiters   = 40 // sleeping waiters
	slotFlags     = 44 // flagRecovered
	slotOwnerPID  = 48 // diagnostic copy of the owner's pid, written by the slow path
	slotPrevOwner = 52 // previous owner's pid when flagRecovered
	// slotDiag (u32): the lock word's owner id with diagStamped or
	// diagObserved while slotAcquired (and, if stamped, slotFlags and
	// slotPrevOwner) describe the current holding. Only a holding whose
	// Unlock takes the slow path (WAITERS set, or an uncovered slot) is
	// stamped, and that Unlock clears it: the fast paths never touch it.
	slotDiag = 56
)

// Bits of slotDiag (ids use bits 0-29).
const (
	diagStamped  = 1 << 31 // by the owner's slow path
	diagObserved = 1 << 30 // by a waiter: slotAcquired is when it first saw the holding
)

// Futex word bits: the kernel's robust-futex layout (futex(2), "Robust
// futexes"; linux/futex.h FUTEX_TID_MASK, FUTEX_OWNER_DIED, FUTEX_WAITERS).
const (
	futexPIDMask   = 0x3fffffff
	futexOwnerDied = 0x40000000
	futexWaiters   = 0x80000000
	// owner tag: the kernel will recover this holding. The rest of a
	// covered tag is the owner's pid (the futex half names its keeper
	// thread, and the kernel clears it at death, the tag stays); of an
	// uncovered one, the owner's start time.
	tagKCovered   = 1 << 31
	tagStartMask  = 1<<31 - 1
	flagRecovered = 1
)

// crc32c is the header's checksum, CRC-32C (Castagnoli), bit by bit over
// the few bytes of a header. Not hash/crc32: that package builds its IEEE
// table in its init, in every gotools process (issue 16 item 3).
func crc32c(b []byte) uint32 {
	const castagnoli = 0x82f63b78 // reversed polynomial
	c := ^uint32(0)
	for _, x := range b {
		c ^= uint32(x)
		for range 8 {
			c = c>>1 ^ castagnoli&-(c&1)
		}
	}
	return ^c
}

// header is the decoded header of a segment.
type header struct {
	version    uint32
	flags      uint32
	maxLocks   uint32
	initLocks  uint32
	bitmapOff  uint64
	slotsOff   uint64
	created    int64
	nsIno      uint64
	nsDev      uint64
	creatorPID uint32
	numLocks   uint32
}

func roundup(n, m uint64) uint64 { return (n + m - 1) / m * m }

// layout returns the bitmap and slot offsets for a capacity of max locks.
func layout(max uint32) (bitmapOff, slotsOff uint64) {
	return headerSize, headerSize + roundup(uint64(max)/8, pageSize)
}

// size is the file size for the header's current count.
func (h *header) size() uint64 { return h.slotsOff + uint64(h.numLocks)*slotSize }

// encode returns the 4096-byte header block.
func (h *header) encode() []byte {
	b := make([]byte, headerSize)
	le := binary.LittleEndian
	copy(b, magic)
	le.PutUint32(b[8:], h.version)
	le.PutUint32(b[12:], headerSize)
	le.PutUint32(b[16:], slotSize)
	le.PutUint32(b[20:], h.flags)
	le.PutUint32(b[24:], h.maxLocks)
	le.PutUint32(b[28:], h.initLocks)
	le.PutUint64(b[32:], h.bitmapOff)
	le.PutUint64(b[40:], h.slotsOff)
	le.PutUint64(b[48:], uint64(h.created))
	le.PutUint64(b[56:], h.nsIno)
	le.PutUint64(b[64:], h.nsDev)
	le.PutUint32(b[72:], h.creatorPID)
	le.PutUint32(b[crcEnd:], crc32c(b[:crcEnd]))
	le.PutUint32(b[offNumLocks:], h.numLocks)
	return b
}

// parseHeader checks a header block read from a file of fileSize bytes, in
// the order of spec/shmlock.md "Open" step 3. It returns EBADF for anything
// that is not a consistent gotools segment and EPROTONOSUPPORT for a format
// this version does not know. The version is checked before the CRC, since
// a later version may checksum differently.
func parseHeader(b []byte, fileSize int64) (header, error) {
	var h header
	if fileSize < headerSize || len(b) < headerSize {
		return h, unix.EBADF
	}
	if !bytes.Equal(b[:8], []byte(magic)) {
		return h, unix.EBADF
	}
	le := binary.LittleEndian
	h.version = le.Uint32(b[8:])
	if h.version != formatVersion {
		return h, unix.EPROTONOSUPPORT
	}
	if le.Uint32(b[crcEnd:]) != crc32c(b[:crcEnd]) {
		return h, unix.EBADF
	}
	h.flags = le.Uint32(b[20:])
	if h.flags&^knownFlags != 0 {
		return h, unix.EPROTONOSUPPORT
	}
	if le.Uint32(b[12:]) != headerSize || le.Uint32(b[16:]) != slotSize {
		return h, unix.EBADF
	}
	h.maxLocks = le.Uint32(b[24:])
	h.initLocks = le.Uint32(b[28:])
	h.bitmapOff = le.Uint64(b[32:])
	h.slotsOff = le.Uint64(b[40:])
	h.created = int64(le.Uint64(b[48:]))
	h.nsIno = le.Uint64(b[56:])
	h.nsDev = le.Uint64(b[64:])
	h.creatorPID = le.Uint32(b[72:])
	h.numLocks = le.Uint32(b[offNumLocks:])
	if h.maxLocks == 0 || h.maxLocks%BitmapSize != 0 || h.maxLocks > maxCount {
		return h, unix.EBADF
	}
	if bo, so := layout(h.maxLocks); h.bitmapOff != bo || h.slotsOff != so {
		return h, unix.EBADF
	}
	if h.numLocks == 0 || h.numLocks%BitmapSize != 0 || h.numLocks > h.maxLocks {
		return h, unix.EBADF
	}
	if uint64(fileSize) < h.size() {
		return h, unix.EBADF
	}
	return h, nil
}
