//go:build linux

// Package overlay holds what init's overlay mode shares with the applets
// that run under it (with-contenv, printcontenv): the fixed paths of the
// s6-overlay v3 layout (spec/init.md §3), prefixed by the test hook
// GOTOOLS_INIT_ROOT, and the S6_KEEP_ENV rule.
package overlay
