//go:build linux && (386 || arm || mips || mipsle)

package sys

import "golang.org/x/sys/unix"

// sysFstatat is fstatat(2) with this port's unix.Stat_t (struct stat64).
const sysFstatat = unix.SYS_FSTATAT64
