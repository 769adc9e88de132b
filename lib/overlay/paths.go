//go:build linux

package overlay

import (
	"os"
	"path/filepath"
)

// RootEnv names the test hook that prefixes every fixed path of the layout
// (spec/init.md §1), so that tests run on a temporary tree.
const RootEnv = "GOTOOLS_INIT_ROOT"

// Path returns the fixed path p ("/run/s6/...") under the root that
// GOTOOLS_INIT_ROOT gives, or p itself without it.
func Path(p string) string {
	if r := os.Getenv(RootEnv); r != "" {
		return filepath.Join(r, p)
	}
	return p
}

// The fixed paths of spec/init.md §3, before [Path].
const (
	RunDir         = "/run"
	S6Dir          = "/run/s6"
	ContainerEnv   = "/run/s6/container_environment"
	LegacyServices = "/run/s6/legacy-services"
	BaseDirBin     = "/run/s6/basedir/bin"
	ScanDir        = "/run/service"
	ResultsDir     = "/run/s6-linux-init-container-results"
	ExitCodeFile   = "/run/s6-linux-init-container-results/exitcode"
	UncaughtLogs   = "/run/uncaught-logs"
)

// KeepEnv reports the S6_KEEP_ENV rule of spec/init.md §4: services and
// the CMD keep the container environment unless S6_KEEP_ENV is given as
// 0 (v3's minimal environment). Any value that is not a plain 0 keeps it.
func KeepEnv() bool {
	v, ok := os.LookupEnv("S6_KEEP_ENV")
	return !ok || !isZero(v)
}

// isZero reports whether v is a decimal zero ("0", "00").
func isZero(v string) bool {
	if v == "" {
		return false
	}
	for _, c := range v {
		if c != '0' {
			return false
		}
	}
	return true
}
