package containerinit

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/overlay"
	"github.com/gotools-dev/gotools/lib/rc"
	"github.com/gotools-dev/gotools/lib/servicedir"
)

// watchEssential subscribes to the event fifodir of every longrun of the
// user's source marked flag-essential, and has the main goroutine call
// essentialFailed when it fails permanently (event O: finish exited 125), which halts the
// container with the service's last status (spec §5.2).
func (b *boot) watchEssential() {
	src := b.etcPath("s6-overlay/s6-rc.d")
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		name := e.Name()
		typ, _ := os.ReadFile(filepath.Join(src, name, "type"))
		if _, err := os.Stat(filepath.Join(src, name, "flag-essential")); err != nil || strings.TrimSpace(string(typ)) != "longrun" {
			continue
		}
		dir := filepath.Join(rc.Servicedirs(overlay.Path(liveDir)), name)
		if err := b.onEvent(dir, 'O', func() { b.essentialFailed(dir) }); err != nil {
			b.o.warn("unable to watch essential service %s: %s", name, err)
		}
	}
}

// onEvent subscribes to the event fifodir of the service at dir; a
// goroutine then has the main goroutine call f whenever the service
// emits ev.
func (b *boot) onEvent(dir string, ev byte, f func()) error {
	l, err := ftrig.Subscribe(filepath.Join(dir, "event"))
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := l.Read(buf, time.Time{})
			if err != nil {
				return
			}
			if strings.IndexByte(string(buf[:n]), ev) >= 0 {
				b.h.post(f)
			}
		}
	}()
	return nil
}

// lastDeath returns the exit code (or 128+n) of the last death of the
// service at dir, from its death tally; 1 when there is none.
func lastDeath(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "supervise", "death_tally"))
	if err != nil {
		return 1
	}
	ds := servicedir.ParseDeathTally(b)
	if len(ds) == 0 {
		return 1
	}
	return int(ds[len(ds)-1].Code)
}
