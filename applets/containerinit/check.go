package containerinit

import (
	"os"
	"os/exec"
	"path/filepath"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

// runCheck is --check (spec §3): the layout is validated without booting.
// Each problem is one line on stderr (rc's own lines for the sources);
// the exit code is 0, or 1 if there was any.
func runCheck(o *options) error {
	b := &boot{loop: &loop{o: o}, v: readVars(o, false)}
	b.self, _ = os.Executable()
	problems := b.v.invalid
	for _, d := range []string{"cont-init.d", "cont-finish.d"} {
		ents, _ := os.ReadDir(b.etcPath(d))
		for _, e := range ents {
			if e.Name()[0] != '.' {
				problems += checkExecutable(o, filepath.Join(b.etcPath(d), e.Name()))
			}
		}
	}
	for _, n := range legacyServices(b.etcPath("services.d")) {
		problems += checkExecutable(o, filepath.Join(b.etcPath("services.d"), n, "run"))
	}
	tmp, err := os.MkdirTemp("", "init-check-")
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to make a temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	sources, err := b.writeSources(filepath.Join(tmp, "user"), filepath.Join(tmp, "builtin"))
	if err != nil {
		return err
	}
	rc := exec.Command(b.self, append([]string{"check"}, sources...)...)
	rc.Args[0] = "rc"
	rc.Stderr = o.env.Stderr
	if err := rc.Run(); err != nil {
		problems++
	}
	if problems > 0 {
		return exitcode.Exit(1)
	}
	return nil
}

// checkExecutable says whether p is an executable regular file; it
// prints a line and returns 1 if not.
func checkExecutable(o *options, p string) int {
	st, err := os.Stat(p)
	switch {
	case err != nil:
		o.env.Warnf("%s: %v", p, err)
	case !st.Mode().IsRegular():
		o.env.Warnf("%s: not a regular file", p)
	case st.Mode().Perm()&0o111 == 0:
		o.env.Warnf("%s: not executable", p)
	default:
		return 0
	}
	return 1
}
