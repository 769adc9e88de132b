package cli

import (
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

// Version is set at build time with -ldflags "-X .../lib/cli.Version=...":
// the Makefile puts "git describe --tags --always --dirty" there (v0.1.0,
// or v0.1.0-3-gabcdef0 three commits later).
var Version = "dev"

// version is [Version], or, for a binary built without the Makefile's
// flags, "dev" and the commit the go command stamped into it, if any.
func version() string {
	if Version != "dev" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Version
	}
	v := Version
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			v += "-" + s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			v += "-dirty"
		}
	}
	return v
}

// Main dispatches argv to an applet of all: by basename(argv[0]) first
// (a symlink such as supervise -> gotools), then by argv[1]
// ("gotools supervise DIR"). It returns the process exit code.
//
// Before anything else, and before any argument is looked at, it refuses to
// run setuid or setgid ([Privileged]): an applet that opens files or runs
// programs for its caller would hand the caller the file owner's rights.
func Main(all []Applet, argv []string, env *Env) int {
	if Privileged() {
		name := "gotools"
		if len(argv) > 0 {
			if a := filepath.Base(argv[0]); a != "" && a != "." && a != "/" {
				if _, ok := Find(all, a); ok {
					name = a
				}
			}
		}
		fmt.Fprintf(env.Stderr, "%s: fatal: refusing to run with real and effective user or group ids that differ (setuid or setgid install)\n", name)
		return exitcode.Sys
	}
	if len(argv) > 0 {
		name := filepath.Base(argv[0])
		if a, ok := Find(all, name); ok {
			env.Name = name
			return Run(a, argv[1:], env)
		}
	}
	env.Name = "gotools"
	if len(argv) < 2 {
		fmt.Fprintf(env.Stderr, "gotools: usage: gotools applet [args...] (applets: %s)\n", strings.Join(names(all), " "))
		return exitcode.Usage
	}
	switch arg := argv[1]; arg {
	case "--list":
		return list(all, argv[2:], env)
	case "--help", "-h":
		printHelp(all, env)
		return exitcode.OK
	case "--version":
		fmt.Fprintf(env.Stdout, "gotools %s (%s)\n", version(), runtime.Version())
		return exitcode.OK
	case "--install":
		return installCmd(all, argv[2:], env)
	case "help":
		return helpCmd(all, argv[2:], env)
	default:
		a, ok := Find(all, arg)
		if !ok {
			fmt.Fprintf(env.Stderr, "gotools: fatal: unknown applet %s (gotools --list shows them)\n", arg)
			return exitcode.Usage
		}
		env.Name = arg
		return Run(a, argv[2:], env)
	}
}

// Privileged reports whether the process runs with real and effective user
// or group ids that differ: a setuid or setgid install (common.md "No
// privilege crossing", fdrestore.md: grab is ptrace-level access).
func Privileged() bool {
	return unix.Getuid() != unix.Geteuid() || unix.Getgid() != unix.Getegid()
}

// Find looks name up among the applets' names and aliases.
func Find(all []Applet, name string) (Applet, bool) {
	for _, a := range all {
		if a.Name == name {
			return a, true
		}
		for _, al := range a.Aliases {
			if al == name {
				return a, true
			}
		}
	}
	return Applet{}, false
}

func names(all []Applet) []string {
	n := make([]string, len(all))
	for i, a := range all {
		n[i] = a.Name
	}
	return n
}

// list prints one applet per line; with --aliases each line also carries the
// applet's upstream names, tab-separated (install.sh --s6-names reads it).
func list(all []Applet, args []string, env *Env) int {
	aliases := false
	for _, a := range args {
		if a != "--aliases" {
			fmt.Fprintf(env.Stderr, "gotools: usage: gotools --list [--aliases]\n")
			return exitcode.Usage
		}
		aliases = true
	}
	for _, a := range all {
		if aliases && len(a.Aliases) > 0 {
			fmt.Fprintf(env.Stdout, "%s\t%s\n", a.Name, strings.Join(a.Aliases, "\t"))
		} else {
			fmt.Fprintln(env.Stdout, a.Name)
		}
	}
	return exitcode.OK
}

func printHelp(all []Applet, env *Env) {
	w := env.Stdout
	fmt.Fprintf(w, "gotools %s: process supervision and locking, one static binary\n\n", Version)
	fmt.Fprintf(w, "Usage: gotools APPLET [ARGS...], or APPLET [ARGS...] through a symlink\n")
	fmt.Fprintf(w, "       gotools --list [--aliases] | --help | --version | --install [--s6-names] [-f] DIR\n")
	fmt.Fprintf(w, "       gotools help [--man] [APPLET]   an applet's help, or its man page\n\n")
	fmt.Fprintf(w, "Applets:\n")
	for _, a := range all {
		fmt.Fprintf(w, "  %-18s %s\n", a.Name, a.Summary)
	}
	fmt.Fprintf(w, "\nRun \"gotools APPLET --help\" for an applet's options.\n")
}

// Operands drops one leading "--" from the operands of a grammar whose first
// operand is a passthrough:"partial" argument (STYLE.md grammar B): kong
// keeps it there, while skalibs' option parser would have consumed it.
func Operands(args []string) []string {
	if len(args) > 0 && args[0] == "--" {
		return args[1:]
	}
	return args
}
