package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/execline"
)

// writeTree creates files (path relative to dir -> content) under dir; a
// path ending in "/" is a directory.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if filepath.Base(p) == "run" || filepath.Base(p) == "finish" {
			mode = 0o755
		}
		if err := writeExecutable(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// dumpRecords runs rc check --dump and returns its records, lexed.
func dumpRecords(t testing.TB, sources ...string) map[string][][]string {
	t.Helper()
	r := run(t, append([]string{"rc", "check", "--dump"}, sources...)...)
	if r.Code != 0 {
		t.Fatalf("rc check --dump %q = %s, stderr %q", sources, r.Status(), r.Stderr)
	}
	recs := map[string][][]string{}
	for _, line := range lines(r.Stdout) {
		w, err := execline.Lex([]byte(line))
		if err != nil || len(w) == 0 {
			t.Fatalf("dump line %q does not lex: %v", line, err)
		}
		recs[w[0]] = append(recs[w[0]], w[1:])
	}
	return recs
}

// record returns the words after "KIND NAME" of the record for name.
func record(recs map[string][][]string, kind, name string) ([]string, bool) {
	for _, r := range recs[kind] {
		if len(r) > 0 && r[0] == name {
			return r[1:], true
		}
	}
	return nil, false
}

func TestRcCheckAcceptsUpstreamShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sources []string
		deps    map[string][]string
		bundles map[string][]string
		pipes   map[string][]string
		argv    map[string][]string
		types   map[string]string
	}{
		{
			name:    "s6-rc 0.5 examples/source shape",
			sources: []string{"example/source"},
			deps: map[string][]string{
				"net-lo":   {"mount-proc", "setup-tmp"},
				"sshd":     {"hostname", "net-lo", "syslogd"},
				"getty-1":  {"hostname", "net-lo", "sshd", "syslogd"},
				"cron":     {"cron-log", "s6rc-fdholder"},
				"cron-log": {"s6rc-fdholder"},
			},
			bundles: map[string][]string{"networking": {"hostname", "net-lo"}, "ok-all": {"hostname", "net-lo", "sshd", "syslogd"}},
			pipes:   map[string][]string{"cron-log": {"cron"}},
			argv: map[string][]string{
				"setup-tmp": {"if", " mkdir", " -p", " /tmp/rc-example", "", "if", " chmod", " 1777", " /tmp/rc-example", "", "true"},
				"hostname":  {"redirfd", "-w", "1", "/dev/null", "echo", "example.org"},
			},
			types: map[string]string{"setup-tmp": "oneshot", "syslogd": "longrun", "s6rc-fdholder": "longrun"},
		},
		{
			name:    "s6-rc 0.7 source-router shape: two sources, .d dirs, funnel",
			sources: []string{"router/src1", "router/src2"},
			deps: map[string][]string{
				"httpd":    {"dns-cache", "dns-log", "dns-udp", "httpd-filter", "s6rc-fdholder"},
				"init-lan": {"init-clock"},
			},
			bundles: map[string][]string{"dns-pipeline": {"dns-cache", "dns-log", "dns-udp"}, "services": {"dns-cache", "dns-log", "dns-udp", "httpd"}},
			pipes:   map[string][]string{"dns-log": {"dns-cache", "dns-udp"}, "httpd-filter": {"httpd"}, "httpd-log": {"httpd-filter"}},
			argv:    map[string][]string{"init-clock": {"hwclock", "-s"}},
			types:   map[string]string{"init-clock": "oneshot"},
		},
		{
			name:    "s6-overlay v3 shape: s6-rc.d, base, logger pipelines",
			sources: []string{"overlay/base", "overlay/s6-rc.d"},
			deps: map[string][]string{
				"myapp":       {"fix-attrs", "init-myapp", "legacy-cont-init", "myapp-log", "s6rc-fdholder"},
				"syslogd-log": {"s6rc-fdholder", "syslogd-prepare"},
			},
			bundles: map[string][]string{
				"user":            {"init-myapp", "myapp", "myapp-log"},
				"myapp-pipeline":  {"myapp", "myapp-log"},
				"syslogd-overlay": {"syslogd", "syslogd-log"},
				"top":             {"fix-attrs", "init-myapp", "legacy-cont-init", "legacy-services", "myapp", "myapp-log"},
			},
			pipes: map[string][]string{"myapp-log": {"myapp"}, "syslogd-log": {"syslogd"}},
			argv:  map[string][]string{"legacy-cont-init": {"/package/admin/overlay/scripts/cont-init"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var srcs []string
			for _, s := range tt.sources {
				srcs = append(srcs, filepath.Join("testdata/rc", s))
			}
			recs := dumpRecords(t, srcs...)
			for n, want := range tt.deps {
				got, _ := record(recs, "deps", n)
				if !slices.Equal(got, want) {
					t.Errorf("deps of %s = %q; want %q", n, got, want)
				}
			}
			for n, want := range tt.bundles {
				if got, _ := record(recs, "bundle", n); !slices.Equal(got, want) {
					t.Errorf("bundle %s = %q; want %q", n, got, want)
				}
			}
			if len(recs["pipe"]) != len(tt.pipes) {
				t.Errorf("pipe records %q; want %d", recs["pipe"], len(tt.pipes))
			}
			for n, want := range tt.pipes {
				if got, _ := record(recs, "pipe", n); !slices.Equal(got, want) {
					t.Errorf("pipe %s = %q; want %q", n, got, want)
				}
			}
			for n, want := range tt.argv {
				if got, _ := record(recs, "up", n); !slices.Equal(got, want) {
					t.Errorf("up of %s = %q; want %q", n, got, want)
				}
			}
			for n, want := range tt.types {
				if _, ok := record(recs, want, n); !ok {
					t.Errorf("%s is not a %s", n, want)
				}
			}
		})
	}
}

func TestRcCheckRefusesBrokenTrees(t *testing.T) {
	t.Parallel()
	lr := func(name string) map[string]string {
		return map[string]string{name + "/type": "longrun\n", name + "/run": "#!/bin/sh\n"}
	}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	tests := []struct {
		name  string
		files map[string]string
		code  int
		msg   string // the message after "rc: fatal: ", with SRC for the source
	}{
		{"cycle", merge(lr("a"), lr("b"), lr("c"), map[string]string{"a/dependencies": "b\n", "b/dependencies.d/c": "", "c/dependencies": "a"}),
			1, "dependency cycle: a -> b -> c -> a"},
		{"self cycle through a bundle", merge(lr("a"), map[string]string{"a/dependencies": "bu\n", "bu/type": "bundle\n", "bu/contents": "a\n"}),
			1, "dependency cycle: a -> a"},
		{"bundle cycle", map[string]string{"x/type": "bundle", "x/contents": "y", "y/type": "bundle", "y/contents": "x"},
			1, "bundle cycle: x -> y -> x"},
		{"unknown dependency", merge(lr("a"), map[string]string{"a/dependencies": "nope\n"}),
			1, "nope (in SRC/a/dependencies) is not defined"},
		{"unknown bundle member", map[string]string{"b/type": "bundle", "b/contents.d/ghost": ""},
			1, "ghost (in SRC/b/contents.d) is not defined"},
		{"producer names two consumers", merge(lr("p"), lr("c1"), lr("c2"), map[string]string{"p/producer-for": "c1\nc2\n", "c1/consumer-for": "p\n", "c2/consumer-for": "p\n"}),
			1, "p: producer-for must name exactly one service"},
		{"one-sided pipe", merge(lr("p"), lr("c"), map[string]string{"p/producer-for": "c\n"}),
			1, "p is producer-for c, but c does not list p in consumer-for"},
		{"pipeline cycle", merge(lr("a"), lr("b"), map[string]string{"a/producer-for": "b", "b/consumer-for": "a", "b/producer-for": "a", "a/consumer-for": "b"}),
			1, "pipeline cycle: a -> b -> a"},
		{"pipe to a oneshot", merge(lr("p"), map[string]string{"p/producer-for": "o", "o/type": "oneshot", "o/up": "true"}),
			1, "p lists o in its producer-for, but o is a oneshot"},
		{"bad type", map[string]string{"a/type": "daemon\n"}, 1, "invalid SRC/a/type: must be oneshot, longrun or bundle"},
		{"type with spaces", map[string]string{"a/type": " longrun\n", "a/run": ""}, 1, "invalid SRC/a/type: must be oneshot, longrun or bundle"},
		{"type with CR", map[string]string{"a/type": "longrun\r\n", "a/run": ""}, 1, "invalid SRC/a/type: must be oneshot, longrun or bundle"},
		{"type capitalised", map[string]string{"a/type": "Longrun\n", "a/run": ""}, 1, "invalid SRC/a/type: must be oneshot, longrun or bundle"},
		{"type empty", map[string]string{"a/type": "", "a/run": ""}, 1, "invalid SRC/a/type: must be oneshot, longrun or bundle"},
		{"reserved entry", lr("s6rc-mine"), 1, "SRC/s6rc-mine: s6rc-mine uses the reserved prefix s6rc- or s6-rc-"},
		{"reserved s6-rc- entry", lr("s6-rc-x"), 1, "SRC/s6-rc-x: s6-rc-x uses the reserved prefix s6rc- or s6-rc-"},
		{"reserved dependency", merge(lr("a"), map[string]string{"a/dependencies": "s6rc-oneshot-runner\n"}),
			1, "SRC/a: s6rc-oneshot-runner uses the reserved prefix s6rc- or s6-rc-"},
		{"missing run", map[string]string{"a/type": "longrun"}, 1, "SRC/a: missing run"},
		{"missing up", map[string]string{"a/type": "oneshot"}, 1, "SRC/a: missing up"},
		{"missing contents", map[string]string{"a/type": "bundle"}, 1, "SRC/a: missing contents.d or contents"},
		{"run is a directory", map[string]string{"a/type": "longrun", "a/run/": ""}, 1, "SRC/a/run is not a regular file"},
		{"dependencies.d not a dir", merge(lr("a"), map[string]string{"a/dependencies.d": "x"}), 1, "SRC/a/dependencies.d is not a directory"},
		{"bad timeout", merge(lr("a"), map[string]string{"a/timeout-up": "12x\n"}), 1, `invalid SRC/a/timeout-up: "12x\x0a"`},
		{"bad notification-fd", merge(lr("a"), map[string]string{"a/notification-fd": "three\n"}), 1, `invalid SRC/a/notification-fd: "three\x0a"`},
		{"fd clash", merge(lr("a"), map[string]string{"a/notification-fd": "4\n", "a/lock-fd": "4"}), 1, "SRC/a: notification-fd and lock-fd are the same"},
		{"up syntax error", map[string]string{"a/type": "oneshot", "a/up": "echo \"open"}, 1, "syntax error in SRC/a/up"},
		{"up unmatched brace", map[string]string{"a/type": "oneshot", "a/up": "if { true"}, 1, "syntax error in SRC/a/up: unmatched {"},
		{"pipeline-name twice", merge(lr("p"), lr("c"), map[string]string{"p/producer-for": "c", "c/consumer-for": "p", "c/pipeline-name": "x\ny\n"}),
			1, "c: pipeline-name must hold exactly one name"},
		{"pipeline-name clashes", merge(lr("p"), lr("c"), map[string]string{"p/producer-for": "c", "c/consumer-for": "p", "c/pipeline-name": "p\n"}),
			1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := filepath.Join(t.TempDir(), "src")
			writeTree(t, src, tt.files)
			r := run(t, "rc", "check", src)
			want := "rc: fatal: " + strings.ReplaceAll(tt.msg, "SRC", src) + "\n"
			if r.Code != tt.code || (tt.msg != "" && r.Stderr != want) || (tt.msg == "" && !strings.HasPrefix(r.Stderr, "rc: fatal: ")) {
				t.Errorf("rc check = %s, stderr %q; want exit %d, stderr %q", r.Status(), r.Stderr, tt.code, want)
			}
		})
	}
}

func TestRcCheckAcceptsTypeFirstLine(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"longrun", "longrun\n", "longrun\n\n", "bundle\n\n", "oneshot\n\n"} {
		src := filepath.Join(t.TempDir(), "src")
		writeTree(t, src, map[string]string{"a/type": typ, "a/run": "#!/bin/sh\n", "a/up": "true", "a/contents": ""})
		if r := run(t, "rc", "check", src); r.Code != 0 {
			t.Errorf("rc check with type %q = %s, stderr %q; want 0", typ, r.Status(), r.Stderr)
		}
	}
}

func TestRcCheckDuplicatesAndWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b, empty := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "empty")
	writeTree(t, a, map[string]string{"x/type": "oneshot", "x/up": "#!/bin/sh\ntrue\n"})
	writeTree(t, b, map[string]string{"x/type": "oneshot", "x/up": "true"})
	writeTree(t, empty, map[string]string{"notaservice": "file"})
	r := run(t, "rc", "check", a, b)
	if want := "rc: fatal: duplicate service x (" + a + " and " + b + ")\n"; r.Code != 1 || !strings.HasSuffix(r.Stderr, want) {
		t.Errorf("rc check a b = %s, %q; want 1, %q", r.Status(), r.Stderr, want)
	}
	r = run(t, "rc", "check", a, empty)
	if r.Code != 0 || !strings.Contains(r.Stderr, "rc: warning: source "+empty+" is empty\n") ||
		!strings.Contains(r.Stderr, "rc: warning: x/up is one command line, not a script") {
		t.Errorf("rc check a empty = %s, %q; want 0 and two warnings", r.Status(), r.Stderr)
	}
	if err := os.Symlink("/nonexistent", filepath.Join(b, "dangling")); err != nil {
		t.Fatal(err)
	}
	if r := run(t, "rc", "check", b); r.Code != 111 {
		t.Errorf("rc check with a dangling entry = %s, %q; want 111", r.Status(), r.Stderr)
	}
	if r := run(t, "rc", "check"); r.Code != 100 {
		t.Errorf("rc check without sources = %s; want 100", r.Status())
	}
}

func TestRcCheckWarnsMissingExecline(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, map[string]string{"x/type": "oneshot", "x/up": "foreground { true } true\n"})
	r := runIn(t, Opts{Env: []string{"PATH=/nonexistent"}}, lookPath(t, "rc"), "check", src)
	if r.Code != 0 || !strings.Contains(r.Stderr, "rc: warning: x/up: foreground is an execline command and is not in PATH") {
		t.Errorf("rc check = %s, %q; want 0 and a warning", r.Status(), r.Stderr)
	}
}
