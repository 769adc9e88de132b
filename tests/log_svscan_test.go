package tests

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLogUnderSvscan: a service writing a line every few ms, its logger
// `log -d3 t ./main` under svscan: svwait -U returns; svc -d and svc -u on
// the logger lose and double nothing; svscanctl -t drains to EOF, leaves
// current 0744, and svscan exits 0 (§12 test 23, gotools side).
func TestLogUnderSvscan(t *testing.T) {
	t.Run("gotools", func(t *testing.T) {
		logUnderSvscan(t, "log", [4]string{"svscan", "svwait", "svc", "svscanctl"}, "")
	})
	t.Run("real s6-svscan and s6-supervise running log", func(t *testing.T) {
		s6 := requireS6(t, "s6-svscan", "s6-svwait", "s6-svc", "s6-svscanctl", "s6-supervise")
		// Upstream's own s6-supervise first in PATH, not the farm's alias.
		logUnderSvscan(t, lookPath(t, "log"), [4]string{s6[0], s6[1], s6[2], s6[3]}, "PATH="+filepath.Dir(s6[4])+":"+os.Getenv("PATH"))
	})
	t.Run("gotools svscan running real s6-log", func(t *testing.T) {
		real := requireS6(t, "s6-log")[0]
		logUnderSvscan(t, real, [4]string{"svscan", "svwait", "svc", "svscanctl"}, "")
	})
}

// logUnderSvscan runs the test with logger as the log service's program
// and tools = svscan, svwait, svc, svscanctl.
func logUnderSvscan(t *testing.T, logger string, tools [4]string, env string) {
	scan := t.TempDir()
	svc := filepath.Join(scan, "talk")
	for _, f := range []struct {
		path, data string
		mode       os.FileMode
	}{
		{"talk/run", "#!/bin/sh\nexec 2>&1\ni=0\nwhile [ $i -lt 500 ]; do i=$((i+1)); echo \"n $i\"; sleep 0.002; done\nexec sleep 1000\n", 0o755},
		{"talk/log/run", "#!/bin/sh\nexec " + logger + " -d3 t ./main\n", 0o755},
		{"talk/log/notification-fd", "3\n", 0o644},
	} {
		p := filepath.Join(scan, f.path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := writeExecutable(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	var o Opts
	if env != "" {
		o.Env = []string{env}
	}
	p := startIn(t, o, tools[0], scan)
	waitFor(t, "the logger's supervise/status", func() bool {
		_, err := os.Stat(filepath.Join(svc, "log", "supervise", "status"))
		return err == nil
	})
	if r := run(t, tools[1], "-U", "-t", "10000", filepath.Join(svc, "log")); r.Code != 0 {
		t.Fatalf("svwait -U on the logger: %s %q", r.Status(), r.Stderr)
	}
	time.Sleep(300 * time.Millisecond)
	for _, cmd := range []string{"-d", "-u", "-d", "-u"} {
		if r := run(t, tools[2], cmd, filepath.Join(svc, "log")); r.Code != 0 {
			t.Fatalf("svc %s: %s %q", cmd, r.Status(), r.Stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	main := filepath.Join(svc, "log", "main")
	waitFor(t, "the 500th line", func() bool {
		b, _ := os.ReadFile(filepath.Join(main, "current"))
		return strings.Contains(string(b), " n 500\n")
	})
	if r := run(t, tools[3], "-t", scan); r.Code != 0 {
		t.Fatalf("svscanctl -t: %s %q", r.Status(), r.Stderr)
	}
	if r := p.Wait(t); r.Code != 0 {
		t.Fatalf("svscan: %s %q", r.Status(), r.Stderr)
	}
	info, err := os.Stat(filepath.Join(main, "current"))
	if err != nil || info.Mode().Perm() != 0o744 {
		t.Errorf("current after svscanctl -t: %v %v; want 0744", info.Mode(), err)
	}
	// Every line once, in order, over the archives and current.
	ents, _ := os.ReadDir(main)
	want := 1
	for _, e := range ents {
		if e.Name()[0] != '@' && e.Name() != "current" {
			continue
		}
		f, err := os.Open(filepath.Join(main, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) != 3 || fields[1] != "n" {
				t.Fatalf("%s: record %q", e.Name(), sc.Text())
			}
			if n, _ := strconv.Atoi(fields[2]); n != want {
				t.Fatalf("%s: line %d where %d was due (lost or doubled)", e.Name(), n, want)
			}
			want++
		}
		f.Close()
	}
	if want != 501 {
		t.Errorf("the logdir ends at line %d; want 500", want-1)
	}
}
