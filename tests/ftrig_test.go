package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/ftrig"
)

// ftrigListeners returns the listener FIFOs in the fifodir dir.
func ftrigListeners(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if ftrig.IsListenerName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names
}

func ftrigFifodir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "event")
	if _, err := ftrig.MkFifodir(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFtrigNotifyReachesRealListeners: real s6 listeners, subscribed
// through s6-ftrigrd, get what ftrig.Notify writes, and leave no FIFO.
func TestFtrigNotifyReachesRealListeners(t *testing.T) {
	t.Parallel()
	tools := requireS6(t, "s6-ftrig-wait", "s6-ftrig-listen1")
	for _, tt := range []struct {
		name string
		argv func(dir string) []string
	}{
		{"s6-ftrig-wait", func(dir string) []string { return []string{tools[0], "-t", "5000", dir, "U"} }},
		{"s6-ftrig-listen1", func(dir string) []string { return []string{tools[1], "-t", "5000", dir, "U", "true"} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := ftrigFifodir(t)
			p := start(t, tt.argv(dir)...)
			waitFor(t, tt.name+" to subscribe", func() bool { return len(ftrigListeners(t, dir)) == 1 })
			if n, err := ftrig.Notify(dir, []byte("dU")); n != 1 || err != nil {
				t.Fatalf("Notify = %d, %v; want 1, nil", n, err)
			}
			if r := p.Wait(t); r.Code != 0 || r.Stdout != "U\n" {
				t.Errorf("%s = %s, stdout %q, stderr %q; want exit 0, %q", tt.name, r.Status(), r.Stdout, r.Stderr, "U\n")
			}
			if left := ftrigListeners(t, dir); len(left) != 0 {
				t.Errorf("after %s the fifodir holds %q; want nothing", tt.name, left)
			}
		})
	}
}

// TestFtrigListenerGetsRealNotify: an ftrig.Listener gets what the real
// s6-ftrig-notify sends, and its FIFO has the name s6 expects.
func TestFtrigListenerGetsRealNotify(t *testing.T) {
	t.Parallel()
	notify := requireS6(t, "s6-ftrig-notify")[0]
	dir := ftrigFifodir(t)
	l, err := ftrig.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if r := run(t, notify, dir, "sU"); r.Code != 0 {
		t.Fatalf("s6-ftrig-notify = %s, stderr %q; want exit 0", r.Status(), r.Stderr)
	}
	var got strings.Builder
	b := make([]byte, 16)
	for got.Len() < 2 {
		n, err := l.Read(b, deadline(t))
		if err != nil {
			t.Fatalf("Read after %q: %v", got.String(), err)
		}
		got.Write(b[:n])
	}
	if got.String() != "sU" {
		t.Errorf("listener read %q; want %q", got.String(), "sU")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if left := ftrigListeners(t, dir); len(left) != 0 {
		t.Errorf("after Close the fifodir holds %q; want nothing", left)
	}
	// And with no listener left, s6-ftrig-notify has nobody to tell.
	if r := run(t, notify, dir, "x"); r.Code != 0 {
		t.Errorf("s6-ftrig-notify with no listener = %s; want exit 0", r.Status())
	}
}

// TestSuperviseEventIgnoresPlantedFiles: a user who may write into a
// service's event/ (the fifodir is group-writable) plants a symbolic link
// and a regular file under listener names. supervise, running as root,
// must write its events neither through the link nor into the file, and
// a real listener beside them still gets every event.
func TestSuperviseEventIgnoresPlantedFiles(t *testing.T) {
	t.Parallel()
	dir := svcDir(t, map[string]string{"run": "#!/bin/sh\nexec sleep 1000\n"})
	event := filepath.Join(dir, "event")
	if _, err := ftrig.MkFifodir(event); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(event, "ftrig1:@400000000000000000000000:linkAA")
	file := filepath.Join(event, "ftrig1:@400000000000000000000000:fileAA")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := startSupervise(t, dir)
	s.expect("su")
	s.control("d")
	s.expect("dD")
	for _, name := range []string{victim, file} {
		if b := mustRead(t, name); len(b) != 0 {
			t.Errorf("%s holds %q after supervise's events; want nothing written", name, b)
		}
	}
	s.quit("x", "x")
}
