//go:build linux

package proc

import "golang.org/x/sys/unix"

// cloneFlags: the parent sleeps until the child has exec'd or exited, and
// nothing is copied (vfork); see clone_amd64.s for how the shared stack
// is kept safe.
const cloneFlags = unix.CLONE_VM | unix.CLONE_VFORK

// clone is clone(2) with flags and no new stack.
//
//go:noescape
func clone(flags uintptr) (pid uintptr, errno uintptr)
