package cli

import "strings"

// Options walks the options at the front of args in command-line order,
// as getopt_long does, for applets whose options' order matters (svc
// sends its letters in that order; svstat prints its fields in it) — kong
// checks the syntax, but keeps no order across different flags.
//
// Each option is passed to fn once, by name: one letter for a short option
// (bundles such as -du give "d" then "u"), the long name otherwise.
// valued says which names take a value: the rest of the argument (-t100,
// --timeout=100) or the next one. The walk ends at "--", at "-", at the
// first operand, or at fn's first error, which it returns.
func Options(args []string, valued func(name string) bool, fn func(name, value string) error) error {
	next := func(i *int) string {
		*i++
		if *i < len(args) {
			return args[*i]
		}
		return ""
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			return nil
		}
		if long, ok := strings.CutPrefix(a, "--"); ok {
			name, val, has := strings.Cut(long, "=")
			if valued(name) && !has {
				val = next(&i)
			}
			if err := fn(name, val); err != nil {
				return err
			}
			continue
		}
		for j := 1; j < len(a); j++ {
			name := a[j : j+1]
			if !valued(name) {
				if err := fn(name, ""); err != nil {
					return err
				}
				continue
			}
			val := a[j+1:]
			if val == "" {
				val = next(&i)
			}
			if err := fn(name, val); err != nil {
				return err
			}
			break
		}
	}
	return nil
}
