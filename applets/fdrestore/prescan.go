package fdrestore

import (
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
	cmd, ok := c.(*command)
	if !ok || len(args) == 0 || args[0] != "restore" {
		return args
	}
	var pre []string
	rest := []string{args[0]}
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--" || !strings.HasPrefix(a, "-") || a == "-":
			cmd.Restore.pre = pre
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
	cmd.Restore.pre = pre
	return rest
}
