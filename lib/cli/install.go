package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/sys"
)

// installCmd is "gotools --install [--s6-names] [-f] DIR": the same symlinks
// as install.sh, made by the binary itself for images without a shell
// (busybox --install -s). Each link is relative to the running binary.
func installCmd(all []Applet, args []string, env *Env) int {
	var s6Names, force bool
	var dir string
	for _, a := range args {
		switch {
		case a == "--s6-names":
			s6Names = true
		case a == "-f":
			force = true
		case dir == "" && a != "" && a[0] != '-':
			dir = a
		default:
			dir = ""
			args = nil
		}
	}
	if dir == "" || args == nil {
		fmt.Fprintf(env.Stderr, "gotools: usage: gotools --install [--s6-names] [-f] DIR\n")
		return exitcode.Usage
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		env.Fatal(fmt.Errorf("unable to find the gotools binary: %w", err))
		return exitcode.Sys
	}
	if err := Install(all, exe, dir, s6Names, force); err != nil {
		env.Fatal(err)
		return exitcode.Of(err)
	}
	return exitcode.OK
}

// Install makes one relative symlink in dir per applet name (and alias, with
// s6Names) pointing at exe. An existing symlink to a file named like exe is
// replaced; any other file is refused (exit 1 "refused") unless force.
func Install(all []Applet, exe, dir string, s6Names, force bool) error {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("unable to resolve %s: %w", dir, err)
	}
	// filepath.Rel fails on a relative exe against an absolute dir, and
	// the link would then hold exe's path relative to the wrong directory.
	absExe, err := filepath.Abs(exe)
	if err != nil {
		return fmt.Errorf("unable to resolve %s: %w", exe, err)
	}
	exe = absExe
	if realDir, err := filepath.EvalSymlinks(absDir); err == nil {
		absDir = realDir
	}
	target, err := filepath.Rel(absDir, exe)
	if err != nil {
		target = exe
	}
	for _, a := range all {
		links := []string{a.Name}
		if s6Names {
			links = append(links, a.Aliases...)
		}
		for _, name := range links {
			if err := link(target, filepath.Join(dir, name), filepath.Base(exe), force); err != nil {
				return err
			}
		}
	}
	return nil
}

func link(target, path, exeName string, force bool) error {
	old, err := os.Readlink(path)
	switch {
	case err == nil && old == target:
		return nil // idempotent
	case err == nil && filepath.Base(old) == exeName:
	case errors.Is(err, fs.ErrNotExist):
	case force:
	default:
		return exitcode.Errorf(exitcode.Refused, "refusing to replace %s: not a symlink to %s (use -f)", path, exeName)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unable to remove %s: %w", path, sys.Errno(err))
	}
	if err := os.Symlink(target, path); err != nil {
		return fmt.Errorf("unable to symlink %s: %w", path, sys.Errno(err))
	}
	return nil
}
