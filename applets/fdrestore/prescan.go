package fdrestore

import (
	"runtime/debug"
	"slices"
	"strings"

	"github.com/gotools-dev/gotools/lib/cli"
)

// prescan takes the -f/--fd options of `restore` out of args before kong
// parses them (cli.Applet.Prescan): kong's scanner copies every remaining
// argument for each option it reads, so 1000 -f options cost 130 ms in kong
// against 1 ms here. The values keep their command-line order in
// restoreCmd.pre. It stops at "--" or at the first operand (PROG), and
// leaves args alone if an option it cannot read unambiguously (a cluster
// of short options such as -Cf) could hide an -f.
func prescan(c cli.Command, args []string) []string {
	cmd, ok := c.(interface{ restore() *restoreCmd })
	if !ok || len(args) == 0 || args[0] != "restore" {
		return args
	}
	r := cmd.restore()
	var pre []string
	rest := []string{args[0]}
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--" || !strings.HasPrefix(a, "-") || a == "-":
			r.pre = pre
			return append(rest, args[i:]...)
		case a == "-f" || a == "--fd":
			if i+1 >= len(args) {
				return args // let kong report the missing value
			}
			pre = append(pre, args[i+1])
			i++
		case strings.HasPrefix(a, "--fd="):
			pre = append(pre, a[len("--fd="):])
		case strings.HasPrefix(a, "-f"):
			pre = append(pre, a[2:])
		case slices.Contains([]string{"--name", "--ctty"}, a):
			if i+1 >= len(args) {
				return args
			}
			rest = append(rest, a, args[i+1])
			i++
		case strings.HasPrefix(a, "--") || len(a) == 2:
			rest = append(rest, a)
		default:
			return args // -Cf... : a cluster kong must read
		}
	}
	r.pre = pre
	return rest
}

// noGC turns the garbage collector off for the commands that place fds
// (all but the holder daemon): they are short-lived and exec. The GC's
// background scavenger sleeps on a runtime timer, and the first timer makes
// the Go runtime open its netpoller (an epoll fd and an eventfd) at the
// lowest free numbers, at any moment, from another thread: in the middle
// of placement that is a number being dup3'd onto (EBUSY, or a clobbered
// epoll fd and "netpoll failed"). Without GC cycles the scavenger never
// wakes, so no timer starts. It runs before kong builds or parses
// anything (from newFor), while the heap is below the first GC's trigger.
func noGC(args []string) {
	if len(args) > 0 && args[0] == "hold" && (len(args) < 2 || args[1] == "daemon") {
		return
	}
	debug.SetGCPercent(-1)
}
