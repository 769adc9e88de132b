//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64 || ppc64le || s390x || mips64 || mips64le)

package sys

import "golang.org/x/sys/unix"

// sysFstatat is fstatat(2) with this port's unix.Stat_t.
const sysFstatat = unix.SYS_NEWFSTATAT
