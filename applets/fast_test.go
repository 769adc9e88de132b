package applets

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotools-dev/gotools/lib/cli"
)

// TestFastPathsMatchKong runs the command lines the fast paths take (and
// some they must leave to kong) through each applet with and without its
// Fast parser: the exit code and both streams must be the same, and the
// common forms must be taken by Fast, or the test proves nothing.
func TestFastPathsMatchKong(t *testing.T) {
	tmp := t.TempDir()
	svc := filepath.Join(tmp, "svc") // a service without a supervisor
	if err := os.MkdirAll(filepath.Join(svc, "supervise"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(svc, "run"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tmp, "nosuch")
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		applet string
		args   []string
		fast   bool // Fast must take it
	}{
		{"svok", []string{svc}, true},
		{"svok", []string{"--", svc}, true},
		{"svok", []string{missing}, true},
		{"svok", []string{file}, true},
		{"svok", []string{svc, svc}, false},
		{"svok", []string{"-x"}, false},
		{"svok", nil, false},
		{"svstat", []string{svc}, true},
		{"svstat", []string{missing, svc}, true},
		{"svstat", []string{tmp}, true},
		{"svstat", []string{"-u", svc}, false},
		{"svstat", []string{"--json", svc}, false},
		{"svc", []string{"-u", svc}, true},
		{"svc", []string{"-dx", svc, missing}, true},
		{"svc", []string{svc}, true},
		{"svc", []string{"-u", "-O", file}, true},
		{"svc", []string{"-wu", "-T", "50", svc}, false},
		{"svc", []string{"-z", svc}, false},
		{"svc", []string{"-u"}, false},
		{"svc", []string{"--help"}, false},
	} {
		a, ok := cli.Find(All, tt.applet)
		if !ok || a.Fast == nil {
			t.Fatalf("%s: no Fast parser in the registry", tt.applet)
		}
		run := func(a cli.Applet) (int, string, string) {
			var out, errb bytes.Buffer
			code := cli.Run(a, tt.args, &cli.Env{Name: tt.applet, Stdout: &out, Stderr: &errb})
			return code, out.String(), errb.String()
		}
		fc, fo, fe := run(a)
		slow := a
		slow.Fast = nil
		kc, ko, ke := run(slow)
		if fc != kc || fo != ko || fe != ke {
			t.Errorf("%s %q: with Fast %d, %q, %q; with kong %d, %q, %q", tt.applet, tt.args, fc, fo, fe, kc, ko, ke)
		}
		var sink bytes.Buffer
		env := &cli.Env{Name: tt.applet, Args: tt.args, Stdout: &sink, Stderr: &sink}
		if done, _ := a.Fast(tt.args, env); done != tt.fast {
			t.Errorf("%s %q: Fast took it: %v; want %v", tt.applet, tt.args, done, tt.fast)
		}
	}
}
