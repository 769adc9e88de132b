package containerinit

import (
	"os"
	"strings"
	"time"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/overlay"
)

// s6vars are the S6_* variables of spec/init.md §4 that overlay mode
// uses, with gotools' defaults for absent ones.
type s6vars struct {
	keepEnv        bool
	behaviour      int // S6_BEHAVIOUR_IF_STAGE2_FAILS
	waitServices   bool
	waitMax        time.Duration // 0: none
	servicesGrace  time.Duration
	killFinishMax  time.Duration // 0: none
	killGrace      time.Duration
	cmdArg0        []string
	stage2Hook     string
	logging        int      // S6_LOGGING: 0, 1 or 2
	loggingScript  []string // S6_LOGGING_SCRIPT's words
	catchallUser   string
	cmdUseTerminal bool
	receiveSignals bool
	syncDisks      bool
	fixAttrsHidden bool
	closingFD      int
	bundleDir      string
	invalid        int    // how many variables were malformed
	etc            string // /etc, or /etc/cont-profile.d/P
}

// readVars reads the S6_* variables; a malformed number warns and takes
// the default.
func readVars(o *options, verboseGiven bool) *s6vars {
	invalid := 0
	num := func(name string, def int) int {
		v, ok := os.LookupEnv(name)
		if !ok {
			return def
		}
		n, err := cli.ParseDecimal(v)
		if err != nil {
			o.warn("invalid %s: %q", name, v)
			invalid++
			return def
		}
		return int(n)
	}
	ms := func(name string, def int) time.Duration {
		return time.Duration(num(name, def)) * time.Millisecond
	}
	v := &s6vars{
		keepEnv:        overlay.KeepEnv(),
		behaviour:      num("S6_BEHAVIOUR_IF_STAGE2_FAILS", 1),
		waitServices:   num("S6_CMD_WAIT_FOR_SERVICES", 1) != 0,
		waitMax:        ms("S6_CMD_WAIT_FOR_SERVICES_MAXTIME", 0),
		servicesGrace:  ms("S6_SERVICES_GRACETIME", 3000),
		killFinishMax:  ms("S6_KILL_FINISH_MAXTIME", 5000),
		killGrace:      ms("S6_KILL_GRACETIME", 3000),
		cmdArg0:        strings.Fields(os.Getenv("S6_CMD_ARG0")),
		stage2Hook:     strings.TrimSpace(os.Getenv("S6_STAGE2_HOOK")),
		logging:        min(num("S6_LOGGING", 0), 2),
		catchallUser:   "root",
		cmdUseTerminal: num("S6_CMD_USE_TERMINAL", 0) != 0,
		receiveSignals: num("S6_CMD_RECEIVE_SIGNALS", 0) != 0,
		syncDisks:      num("S6_SYNC_DISKS", 0) != 0,
		fixAttrsHidden: num("S6_FIX_ATTRS_HIDDEN", 0) != 0,
		closingFD:      num("S6_WAIT_FOR_CLOSING_FD", 0),
		etc:            "/etc",
	}
	if !verboseGiven {
		o.verbosity = num("S6_VERBOSITY", 2)
	}
	if p := os.Getenv("S6_RUNTIME_PROFILE"); p != "" && !strings.Contains(p, "/") {
		v.etc = "/etc/cont-profile.d/" + p
	}
	v.loggingScript = strings.Fields(os.Getenv("S6_LOGGING_SCRIPT"))
	if len(v.loggingScript) == 0 {
		v.loggingScript = []string{"n20", "s1000000", "T"}
	}
	if u := os.Getenv("S6_CATCHALL_USER"); u != "" {
		v.catchallUser = u
	}
	v.invalid = invalid
	v.bundleDir = os.Getenv("S6_RUNTIME_BUNDLEDIR")
	if v.bundleDir == "" {
		v.bundleDir = "/etc/s6-overlay/user-bundles.d"
	}
	return v
}

// layoutDirs are the directories whose presence selects overlay mode
// (spec/init.md §1).
var layoutDirs = [...]string{"s6-overlay", "services.d", "cont-init.d", "cont-finish.d", "fix-attrs.d"}

// hasLayout reports whether the image holds an s6-overlay layout.
func hasLayout() bool {
	etc := "/etc"
	if p := os.Getenv("S6_RUNTIME_PROFILE"); p != "" && !strings.Contains(p, "/") {
		etc = "/etc/cont-profile.d/" + p
	}
	for _, d := range layoutDirs {
		if st, err := os.Stat(overlay.Path(etc + "/" + d)); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}
