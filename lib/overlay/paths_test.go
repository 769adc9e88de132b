//go:build linux

package overlay

import "testing"

func TestPath(t *testing.T) {
	t.Setenv(RootEnv, "")
	if got := Path(ExitCodeFile); got != ExitCodeFile {
		t.Errorf("Path(%q) without the hook = %q", ExitCodeFile, got)
	}
	t.Setenv(RootEnv, "/tmp/root")
	if got, want := Path(ExitCodeFile), "/tmp/root"+ExitCodeFile; got != want {
		t.Errorf("Path(%q) = %q; want %q", ExitCodeFile, got, want)
	}
}

func TestKeepEnv(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{{"0", false}, {"00", false}, {"1", true}, {"", true}, {"yes", true}} {
		t.Setenv("S6_KEEP_ENV", tt.v)
		if got := KeepEnv(); got != tt.want {
			t.Errorf("KeepEnv() with S6_KEEP_ENV=%q = %v; want %v", tt.v, got, tt.want)
		}
	}
}
