//go:build linux

package proc

import (
	"os"
	"os/exec"
)

// Self returns a path that runs this very binary again, for applets that
// spawn a sibling applet (supervise's setlock prefix, setlock's helper,
// svscan's supervisors): /proc/self/exe when /proc is mounted (it names
// the running binary even if it was replaced or removed since), else what
// os.Executable resolved, else "gotools" as found in PATH. Without any of
// them it still returns /proc/self/exe, which then fails to run.
func Self() string {
	const self = "/proc/self/exe"
	if _, err := os.Stat(self); err == nil {
		return self
	}
	if p, err := os.Executable(); err == nil {
		return p
	}
	if p, err := exec.LookPath("gotools"); err == nil {
		return p
	}
	return self
}
