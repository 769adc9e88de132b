package containerinit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/overlay"
	"github.com/gotools-dev/gotools/lib/sys"
)

// fixAttrs is the fix-attrs.d stage (spec §5.1 step 4, deprecated in
// s6-overlay v3 and warned about): each file in byte order, each line's
// GLOB matched, each match (and, with RECURSE, what is below it, dot
// entries only with S6_FIX_ATTRS_HIDDEN) chowned to ACCOUNT, then given
// FMODE if not a directory, DMODE if one; symlinks are chowned, not
// followed. Not root, the chowns are skipped (one info line, spec §8).
// Any error is reported and makes the stage fail: it returns 1.
func (b *boot) fixAttrs() int {
	dir := b.etcPath("fix-attrs.d")
	ents, _ := os.ReadDir(dir)
	var files []string
	for _, e := range ents {
		if e.Name()[0] != '.' {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		return 0
	}
	b.o.warn("fix-attrs.d is deprecated: set ownership and modes in the image, or in a cont-init.d script")
	passwd, _ := os.ReadFile(overlay.Path("/etc/passwd"))
	group, _ := os.ReadFile(overlay.Path("/etc/group"))
	root := os.Geteuid() == 0
	if !root {
		b.o.info("fix-attrs.d: not root: ownership left alone")
	}
	failed := 0
	fail := func(where string, err error) {
		b.o.warn("%s: %s", where, cli.Message(err))
		failed = 1
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fail(f, fmt.Errorf("unable to read it: %w", sys.Errno(err)))
			continue
		}
		attrs, err := overlay.ParseFixAttrs(data)
		if err != nil {
			fail(f, err)
			continue
		}
		for _, a := range attrs {
			uid, gid, err := a.Account.Resolve(passwd, group)
			if err != nil {
				fail(fmt.Sprintf("%s line %d", f, a.Line), err)
				continue
			}
			matches, _ := filepath.Glob(a.Glob)
			if len(matches) == 0 {
				b.o.warn("%s line %d: nothing matches %s", f, a.Line, a.Glob)
			}
			for _, m := range matches {
				b.o.info("fix-attrs: %s", m)
				if err := fixTree(m, a, uid, gid, root, b.v.fixAttrsHidden); err != nil {
					fail(fmt.Sprintf("%s line %d", f, a.Line), err)
				}
			}
		}
	}
	return failed
}

// fixTree applies a to top and, with a.Recurse, to everything below it.
func fixTree(top string, a overlay.FixAttr, uid, gid int, chown, hidden bool) error {
	var errs []error
	_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if p != top && !hidden && d.Name()[0] == '.' {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if err := fixOne(p, d, a, uid, gid, chown); err != nil {
			errs = append(errs, err)
		}
		if p == top && d.IsDir() && !a.Recurse {
			return filepath.SkipDir
		}
		return nil
	})
	return errors.Join(errs...)
}

// fixOne chowns p (without following a symlink), then sets its mode.
func fixOne(p string, d fs.DirEntry, a overlay.FixAttr, uid, gid int, chown bool) error {
	if chown {
		if err := unix.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("unable to chown %s: %w", p, err)
		}
	}
	mode := a.FMode
	switch {
	case d.Type()&fs.ModeSymlink != 0:
		return nil // no mode of its own
	case d.IsDir():
		mode = a.DMode
	}
	// unix.Chmod keeps setuid, setgid and sticky as given (os.Chmod
	// would want them as os.FileMode bits).
	if err := unix.Chmod(p, mode); err != nil {
		return fmt.Errorf("unable to chmod %s: %w", p, err)
	}
	return nil
}
