package tests

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/servicedir"
)

// producerFiles is a longrun that writes "NAME N" lines, N counting on
// across restarts (a counter file), one every 20 ms while LOG.go exists;
// without it, it touches LOG.NAME.paused every 20 ms instead.
func producerFiles(name, consumer string) map[string]string {
	counter := "LOG." + name + ".count"
	return map[string]string{
		name + "/type":         "longrun\n",
		name + "/producer-for": consumer + "\n",
		name + "/run": "#!/bin/sh\ni=$(cat " + counter + " 2>/dev/null || echo 0)\n" +
			"while :; do\n  if [ -e LOG.go ]; then\n    i=$((i+1)); echo \"" + name + " $i\"\n" +
			"    echo $i > " + counter + ".new; mv " + counter + ".new " + counter + "\n" +
			"  else\n    : > LOG." + name + ".paused\n  fi\n  sleep 0.02\ndone\n",
	}
}

// lineCounts parses the consumers' output: for each producer, the numbers
// in the order they arrived.
func lineCounts(t *testing.T, path string) map[string][]int {
	t.Helper()
	b, _ := os.ReadFile(path)
	out := map[string][]int{}
	s := string(b)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i+1]
	} else {
		s = ""
	}
	for _, l := range lines(s) {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("output line %q", l)
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("output line %q", l)
		}
		out[f[0]] = append(out[f[0]], n)
	}
	return out
}

// checkNoGap checks that each producer's numbers arrived in order, from 1,
// without a gap (a producer killed between writing a line and counting it
// repeats that line: a duplicate is no loss).
func checkNoGap(t *testing.T, counts map[string][]int) {
	t.Helper()
	for name, ns := range counts {
		want := 1
		for _, n := range ns {
			switch n {
			case want:
				want++
			case want - 1:
			default:
				t.Errorf("%s: got %d, want %d (%v)", name, n, want, ns)
				return
			}
		}
	}
}

func TestRcPipelines(t *testing.T) {
	t.Parallel()
	files := merge(
		producerFiles("p1", "f"), producerFiles("p2", "f"),
		map[string]string{
			"f/type": "longrun\n", "f/consumer-for": "p1\np2\n", "f/pipeline-name": "funnel\n",
			"f/run": "#!/bin/sh\nexec cat >> LOG.out\n",
		},
		producerFiles("a", "b"),
		map[string]string{
			"b/type": "longrun\n", "b/consumer-for": "a\n", "b/producer-for": "c\n", "b/run": "#!/bin/sh\nexec cat\n",
			"c/type": "longrun\n", "c/consumer-for": "b\n", "c/pipeline-name": "chain\n", "c/run": "#!/bin/sh\nexec cat >> LOG.out\n",
			"top/type": "bundle\n", "top/contents": "funnel\nchain\n",
		},
	)
	e := newRcEnv(t, files, "GOTOOLS_SUPERVISE_THROTTLE_MS=1")
	e.init()
	out := e.log + ".out"
	goFile := e.log + ".go"
	resume := func() {
		t.Helper()
		if err := os.WriteFile(goFile, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	resume()
	r := e.mustRc(0, "-v", "2", "-u", "change", "top")
	// Consumers start before their producers.
	started := func(n string) int { return strings.Index(r.Stderr, "service "+n+": successfully started") }
	for _, pc := range [][2]string{{"p1", "f"}, {"p2", "f"}, {"a", "b"}, {"b", "c"}} {
		if started(pc[1]) < 0 || started(pc[0]) < started(pc[1]) {
			t.Errorf("%s started before its consumer %s:\n%s", pc[0], pc[1], r.Stderr)
		}
	}
	reach := func(what string, min int) {
		t.Helper()
		waitFor(t, what, func() bool {
			c := lineCounts(t, out)
			for _, p := range []string{"p1", "p2", "a"} {
				if len(c[p]) < min {
					return false
				}
			}
			return true
		})
	}
	reach("5 lines of each producer", 5)

	l := run(t, "fdholder-list", e.sd("s6rc-fdholder")+"/s")
	for _, id := range []string{"pipe:s6rc-r-f", "pipe:s6rc-w-f", "pipe:s6rc-r-b", "pipe:s6rc-w-b", "pipe:s6rc-r-c", "pipe:s6rc-w-c"} {
		if !slices.Contains(lines(l.Stdout), id) {
			t.Errorf("fdholder-list = %q; lacks %s", l.Stdout, id)
		}
	}

	// SIGKILL either end, and the middle of the chain.
	killRun := func(name string) {
		t.Helper()
		// A pipeline member may die on its own meanwhile (SIGPIPE once
		// its holder and reader are gone): kill whichever process runs.
		var st servicedir.Status
		waitFor(t, "to kill "+name, func() bool {
			var ok bool
			st, ok = readStatus(e.sd(name))
			if !ok || st.PID == 0 {
				return false
			}
			pid := e.hostPid(int(st.PID))
			return pid != 0 && unix.Kill(pid, unix.SIGKILL) == nil
		})
		waitFor(t, name+" to restart", func() bool {
			s, ok := readStatus(e.sd(name))
			return ok && s.PID != 0 && s.PID != st.PID
		})
	}
	// Consumers are killed while nothing is in flight (a consumer killed
	// with bytes it read but did not write yet loses them itself); the
	// producers write again at once, into pipes no consumer reads yet.
	pause := func() {
		t.Helper()
		producers := []string{"p1", "p2", "a"}
		for _, p := range producers {
			if err := os.Remove(e.log + "." + p + ".paused"); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		if err := os.Remove(goFile); err != nil {
			t.Fatal(err)
		}
		// A producer marks itself paused at its first turn without
		// LOG.go, so after the line it may have been writing when
		// LOG.go went; then every line it counted must arrive.
		waitFor(t, "every producer to pause and every line to arrive", func() bool {
			c := lineCounts(t, out)
			for _, p := range producers {
				if _, err := os.Stat(e.log + "." + p + ".paused"); err != nil {
					return false
				}
				b, _ := os.ReadFile(e.log + "." + p + ".count")
				n, err := strconv.Atoi(strings.TrimSpace(string(b)))
				if err != nil || len(c[p]) == 0 || c[p][len(c[p])-1] != n {
					return false
				}
			}
			return true
		})
	}
	pause()
	for _, n := range []string{"f", "b", "c"} {
		killRun(n)
	}
	resume()
	for _, n := range []string{"p1", "a"} {
		killRun(n)
	}
	c := lineCounts(t, out)
	reach("20 more lines", max(len(c["p1"]), len(c["p2"]), len(c["a"]))+20)
	checkNoGap(t, lineCounts(t, out))

	// Without its holder, a pipeline keeps its pipes; a new holder has
	// new ones, which members pick up as they restart.
	killRun("s6rc-fdholder")
	for _, n := range []string{"c", "b", "a", "f", "p1", "p2"} {
		killRun(n)
	}
	c = lineCounts(t, out)
	last := map[string]int{}
	for _, p := range []string{"p1", "p2", "a"} {
		last[p] = c[p][len(c[p])-1]
	}
	waitFor(t, "the flow to resume", func() bool {
		c := lineCounts(t, out)
		for p, n := range last {
			if c[p][len(c[p])-1] < n+5 {
				return false
			}
		}
		return true
	})
	e.mustRc(0, "-d", "change", "top")
	for n, s := range e.state() {
		if s != "D" && n != "s6rc-fdholder" {
			t.Errorf("after -d, %s is %s", n, s)
		}
	}
}
