package servicedir

import (
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteControl(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "control")
	if err := WriteControl(fifo, []byte("u")); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing FIFO: %v; want ENOENT", err)
	}
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteControl(fifo, []byte("u")); !errors.Is(err, unix.ENXIO) {
		t.Errorf("FIFO nobody reads: %v; want ENXIO", err)
	}
	r, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(r)
	if err := WriteControl(fifo, nil); err != nil {
		t.Errorf("probe: %v", err)
	}
	if err := WriteControl(fifo, []byte("dx")); err != nil {
		t.Errorf("write: %v", err)
	}
	buf := make([]byte, 16)
	n, err := unix.Read(r, buf)
	if err != nil || string(buf[:n]) != "dx" {
		t.Errorf("read %q, %v; want \"dx\" (the probe writes nothing)", buf[:n], err)
	}
}
