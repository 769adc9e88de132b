//go:build linux

package shm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// podmanImage builds a synthetic podman segment of nb groups in layout l:
// index 3 allocated and held by tid with waiters, index 40 allocated and
// marked OWNER_DIED.
func podmanImage(l podmanLayout, nb uint32, tid int) []byte {
	b := make([]byte, l.groups+int(nb)*l.groupSize)
	le := binary.LittleEndian
	le.PutUint16(b, podmanMagic)
	le.PutUint32(b[l.counts:], nb)
	le.PutUint32(b[l.counts+4:], 32*nb)
	le.PutUint32(b[l.groups:], 1<<3)
	le.PutUint32(b[l.groups+8+3*l.mutex:], uint32(tid)|futexWaiters)
	g1 := l.groups + l.groupSize
	le.PutUint32(b[g1:], 1<<8)
	le.PutUint32(b[g1+8+8*l.mutex:], futexOwnerDied)
	return b
}

func TestInspectPodman(t *testing.T) { // 32, library part
	dir := t.TempDir()
	for _, l := range podmanLayouts {
		t.Run(l.name, func(t *testing.T) {
			img := podmanImage(l, 64, os.Getpid())
			p := filepath.Join(dir, "libpod_lock")
			if err := os.WriteFile(p, img, 0o600); err != nil {
				t.Fatal(err)
			}
			seg, err := InspectPodman("/libpod_lock", WithDir(dir))
			if err != nil {
				t.Fatalf("InspectPodman = %v", err)
			}
			if seg.Layout != l.name || seg.NumLocks != 2048 || seg.NumBitmaps != 64 || len(seg.Locks) != 2048 {
				t.Fatalf("InspectPodman = %s, %d locks, %d bitmaps", seg.Layout, seg.NumLocks, seg.NumBitmaps)
			}
			for _, pl := range seg.Locks {
				want := PodmanLock{Index: pl.Index}
				switch pl.Index {
				case 3:
					want = PodmanLock{Index: 3, Allocated: true, TID: os.Getpid(), Waiters: true, Comm: pl.Comm}
					if pl.Comm == "" {
						t.Errorf("lock 3: no comm for a live owner")
					}
				case 40:
					want = PodmanLock{Index: 40, Allocated: true, OwnerDied: true}
				}
				if pl != want {
					t.Errorf("lock %d = %+v; want %+v", pl.Index, pl, want)
				}
			}
			if seg2, err := InspectPodman(p); err != nil || seg2.NumLocks != 2048 {
				t.Errorf("InspectPodman(%q) = %v", p, err)
			}
			after, _ := os.ReadFile(p)
			if !bytes.Equal(after, img) {
				t.Errorf("InspectPodman changed the file")
			}
			// one byte more or less, or a count mismatch: EBADF
			for _, bad := range [][]byte{img[:len(img)-1], append(append([]byte(nil), img...), 0)} {
				os.WriteFile(p, bad, 0o600)
				_, err := InspectPodman("libpod_lock", WithDir(dir))
				wantErrno(t, "InspectPodman(wrong size)", err, unix.EBADF)
			}
			img[l.counts+4]++
			os.WriteFile(p, img, 0o600)
			_, err = InspectPodman("libpod_lock", WithDir(dir))
			wantErrno(t, "InspectPodman(num_locks != 32 × num_bitmaps)", err, unix.EBADF)
		})
	}
	// a gotools segment is not a podman one
	_, name := newSegment(t, 64)
	_, err := InspectPodman(name)
	wantErrno(t, "InspectPodman(gotools segment)", err, unix.EBADF)
}

func TestDecodePodmanRejects(t *testing.T) {
	x86 := podmanLayouts[0]
	good := podmanImage(x86, 2, 0)
	if _, err := decodePodman(good); err != nil {
		t.Fatalf("decodePodman(good) = %v", err)
	}
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	le := binary.LittleEndian
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0xD1}},
		{"header only", good[:x86.groups]},
		{"one byte short", good[:len(good)-1]},
		{"one byte long", append(append([]byte(nil), good...), 0)},
		{"bad magic", mutate(func(b []byte) { b[0]++ })},
		{"padding not 0", mutate(func(b []byte) { b[2] = 1 })},
		{"locks not 32 per bitmap", mutate(func(b []byte) { le.PutUint32(b[x86.counts+4:], 63) })},
		{"bitmaps disagree with size", mutate(func(b []byte) { le.PutUint32(b[x86.counts:], 3); le.PutUint32(b[x86.counts+4:], 96) })},
		{"zero bitmaps", mutate(func(b []byte) { le.PutUint32(b[x86.counts:], 0); le.PutUint32(b[x86.counts+4:], 0) })[:x86.groups]},
		{"huge count", mutate(func(b []byte) { le.PutUint32(b[x86.counts:], 1<<31); le.PutUint32(b[x86.counts+4:], 0) })},
	} {
		if seg, err := decodePodman(tt.b); !errors.Is(err, unix.EBADF) {
			t.Errorf("decodePodman(%s) = %v, %v; want EBADF", tt.name, seg, err)
		}
	}
}

// FuzzDecodePodman: no input crashes the decoder, and what it accepts is
// consistent with its size. An input is small, so that each iteration (and
// the fuzzer's minimisation of an interesting input, quadratic in its
// length) stays cheap: raw bytes decoded as they are, and a recipe for a
// real-sized image, a valid one of groups groups in one of the layouts
// with patches applied (6-byte records: a u16 offset, a u32 value) and
// its length changed by cut bytes. Seeds live in
// testdata/fuzz/FuzzDecodePodman.
func FuzzDecodePodman(f *testing.F) {
	f.Add([]byte{0xd1, 0x87}, uint8(0), uint8(2), int16(0), []byte{})
	f.Add([]byte{}, uint8(1), uint8(2), int16(-1), []byte{})
	f.Add([]byte{}, uint8(0), uint8(1), int16(0), []byte{48, 0, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte, layout, groups uint8, cut int16, patches []byte) {
		checkDecodePodman(t, raw)
		img := podmanRecipe(layout, groups, cut, patches)
		checkDecodePodman(t, img)
	})
}

// podmanRecipe builds FuzzDecodePodman's image from its recipe.
func podmanRecipe(layout, groups uint8, cut int16, patches []byte) []byte {
	l := podmanLayouts[int(layout)%len(podmanLayouts)]
	img := podmanImage(l, 2+uint32(groups%6), 1234)
	le := binary.LittleEndian
	for ; len(patches) >= 6; patches = patches[6:] {
		if off := int(le.Uint16(patches)); off+4 <= len(img) {
			le.PutUint32(img[off:], le.Uint32(patches[2:]))
		}
	}
	switch c := int(cut) % 256; {
	case c < 0 && -c <= len(img):
		img = img[:len(img)+c]
	case c > 0:
		img = append(img, make([]byte, c)...)
	}
	return img
}

func checkDecodePodman(t *testing.T, b []byte) {
	seg, err := decodePodman(b)
	if err != nil {
		if !errors.Is(err, unix.EBADF) {
			t.Fatalf("decodePodman = %v; want EBADF", err)
		}
		return
	}
	if seg.NumLocks != seg.NumBitmaps*32 || len(seg.Locks) != int(seg.NumLocks) {
		t.Fatalf("decodePodman accepted %d bitmaps, %d locks, %d decoded", seg.NumBitmaps, seg.NumLocks, len(seg.Locks))
	}
}

// TestFuzzDecodePodmanSeedsSmall keeps FuzzDecodePodman's corpus small: a
// fuzzer minimises every interesting input by trying to remove bytes, at a
// cost quadratic in its length, and ran 116 iterations a minute on 10 kB
// images (issue 20 item 14).
func TestFuzzDecodePodmanSeedsSmall(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodePodman")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) == 0 {
		t.Fatalf("%s: no seeds", dir)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 512 {
			t.Errorf("%s/%s: %d bytes; a seed must stay under 512", dir, e.Name(), fi.Size())
		}
	}
}
