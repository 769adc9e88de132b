package containerinit

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/overlay"
	"github.com/gotools-dev/gotools/lib/rc"
	"github.com/gotools-dev/gotools/lib/servicedir"
)

// haltOnExitFile names the gotools extension of spec §5.2: in a
// services.d directory or an s6-rc longrun (rc copies it to the live
// servicedir), it makes the death of the service's run, while the service
// is wanted up, halt the container with that status. Its content
// "failure" restricts this to a nonzero exit or a signal; empty or
// "always" does not.
const haltOnExitFile = "halt-on-exit"

// watchHaltOnExit subscribes to the event fifodir of every service with a
// halt-on-exit file, once the services are up: the services.d copies and
// rc's live servicedirs. A death missed before the subscription is found
// in the service's status and death tally.
func (b *boot) watchHaltOnExit() {
	var dirs []string
	for _, n := range legacyServices(b.etcPath("services.d")) {
		dirs = append(dirs, filepath.Join(overlay.Path(overlay.LegacyServices), n))
	}
	sds := rc.Servicedirs(overlay.Path(liveDir))
	ents, _ := os.ReadDir(sds)
	for _, e := range ents {
		if e.Name()[0] != '.' {
			dirs = append(dirs, filepath.Join(sds, e.Name()))
		}
	}
	for _, dir := range dirs {
		mode, err := os.ReadFile(filepath.Join(dir, haltOnExitFile))
		if err != nil {
			continue
		}
		failureOnly := strings.TrimSpace(string(mode)) == "failure"
		if err := b.onEvent(dir, 'd', func() { b.serviceExited(dir, failureOnly, false) }); err != nil {
			b.o.warn("unable to watch %s: %s", dir, err)
			continue
		}
		b.serviceExited(dir, failureOnly, true)
	}
}

// serviceExited acts on the death of the run of a halt-on-exit service
// at dir: if it is wanted up (svc -d and the shutdown put it down on
// purpose) and, with failureOnly, died of a nonzero exit or a signal, the
// container halts with its status. check is the look at a service just
// subscribed to: only a death recorded in its tally counts (a service not
// yet started is down too).
func (b *boot) serviceExited(dir string, failureOnly, check bool) {
	if b.stopping {
		return
	}
	raw, err := os.ReadFile(filepath.Join(dir, "supervise", "status"))
	if err != nil {
		return
	}
	st, err := servicedir.UnmarshalStatus(raw)
	if err != nil || st.Up() || st.Flags&servicedir.FlagWantUp == 0 {
		return
	}
	if check {
		tally, _ := os.ReadFile(filepath.Join(dir, "supervise", "death_tally"))
		if len(servicedir.ParseDeathTally(tally)) == 0 {
			return
		}
	}
	code := statusCode(unix.WaitStatus(st.WStat))
	if failureOnly && code == 0 {
		return
	}
	b.o.warn("service %s exited %d: stopping the container (%s)", filepath.Base(dir), code, haltOnExitFile)
	b.writeResult(code)
	b.explicit = true
	b.ask(unix.SIGTERM, endHalt)
}
