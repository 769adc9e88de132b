//go:build linux

package fdholder

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		in     string
		who    Who
		id     uint32
		rights Rights
		re     string // "" no regex
		bad    bool
	}{
		{in: "65534", who: WhoUID, id: 65534, rights: RightAll},
		{in: "65534,retrieve", who: WhoUID, id: 65534, rights: RightRetrieve},
		{in: "@100,store,list:^tcp:", who: WhoGID, id: 100, rights: RightStore | RightList, re: "^tcp:"},
		{in: "*,getdump,setdump", who: WhoAny, rights: RightGetDump | RightSetDump},
		{in: "0,all:a|b", who: WhoUID, rights: RightAll, re: "a|b"},
		{in: "7:", who: WhoUID, id: 7, rights: RightAll, re: ""},
		{in: "", bad: true},
		{in: "x", bad: true},
		{in: "0x10", bad: true},
		{in: "-1", bad: true},
		{in: "4294967296", bad: true},
		{in: "@", bad: true},
		{in: "0,", bad: true},
		{in: "0,read", bad: true},
		{in: "0:(", bad: true},
	} {
		r, err := ParseRule(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrRule) {
				t.Errorf("ParseRule(%q) = %+v, %v; want ErrRule", tc.in, r, err)
			}
			continue
		}
		re := ""
		if r.Regex != nil {
			re = r.Regex.String()
		}
		if err != nil || r.Who != tc.who || r.ID != tc.id || r.Rights != tc.rights || re != tc.re {
			t.Errorf("ParseRule(%q) = %+v, %v", tc.in, r, err)
		}
	}
}

func TestDecide(t *testing.T) {
	rule := func(s string) Rule {
		r, err := ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	rules := []Rule{rule("*,list"), rule("@50,retrieve"), rule("1000,store:^tcp:"), rule("1002,all"), rule("0,list")}
	for _, tc := range []struct {
		name     string
		rules    []Rule
		uid, gid uint32
		euid     int
		ok       bool
		rights   Rights
	}{
		{"uid rule first", rules, 1000, 50, 500, true, RightStore},
		{"gid rule before implicit and star", rules, 1001, 50, 500, true, RightRetrieve},
		{"star", rules, 1001, 51, 500, true, RightList},
		{"rule for root wins over implicit", rules, 0, 0, 0, true, RightList},
		{"implicit daemon uid", rules, 500, 51, 500, true, RightAll},
		{"implicit root", nil, 0, 0, 500, true, RightAll},
		{"denied", nil, 65534, 65534, 0, false, 0},
	} {
		a, ok := Decide(tc.rules, tc.uid, tc.gid, tc.euid)
		if ok != tc.ok || a.Rights != tc.rights {
			t.Errorf("%s: Decide(uid %d gid %d euid %d) = %v, %v; want %v, %v", tc.name, tc.uid, tc.gid, tc.euid, a.Rights, ok, tc.rights, tc.ok)
		}
	}
	a, _ := Decide(rules, 1000, 0, 0)
	for _, tc := range []struct {
		r    Rights
		id   string
		want bool
	}{
		{RightStore, "tcp:80", true}, {RightStore, "xtcp:80", false}, {RightStore, "udp", false},
		{RightRetrieve, "tcp:80", false}, {RightList, "", false},
	} {
		if got := a.may(tc.r, tc.id); got != tc.want {
			t.Errorf("may(%v, %q) = %v; want %v", tc.r, tc.id, got, tc.want)
		}
	}
	// Unanchored search, as s6's regexec.
	b, _ := Decide([]Rule{rule("0:80")}, 0, 0, 0)
	if !b.may(RightRetrieve, "tcp:80") || b.may(RightRetrieve, "tcp:443") || !b.may(RightList, "") {
		t.Error("regex: want an unanchored search on ids only")
	}
	// Several rules for one uid add up, each regex for its own rights.
	c, _ := Decide([]Rule{rule("7,store:^s"), rule("7,retrieve:^r"), rule("7,list")}, 7, 7, 0)
	for _, tc := range []struct {
		r    Rights
		id   string
		want bool
	}{
		{RightStore, "s1", true}, {RightStore, "r1", false}, {RightRetrieve, "r1", true},
		{RightRetrieve, "s1", false}, {RightList, "", true}, {RightGetDump, "", false},
	} {
		if got := c.may(tc.r, tc.id); got != tc.want {
			t.Errorf("combined rules: may(%v, %q) = %v; want %v", tc.r, tc.id, got, tc.want)
		}
	}
}

func TestCompileERE(t *testing.T) {
	for _, tc := range []struct {
		re      string
		ok      bool
		matches string
	}{
		{"^tcp:[0-9]+$", true, "tcp:80"},
		{"", true, "anything"},
		{"a|b", true, "xbx"},
		{"[[:alpha:]]", true, "x"},
		{`\.`, true, "a.b"},
		{"[]a]", true, "]"},
		{`\d`, false, ""},
		{`\w+`, false, ""},
		{`[\.]`, false, ""},
		{"(?i)a", false, ""},
		{"a{,3}", false, ""},
		{"[[:word:]]", false, ""},
		{"[[.a.]]", false, ""},
		{"(", false, ""},
	} {
		re, err := CompileERE(tc.re)
		if (err == nil) != tc.ok {
			t.Errorf("CompileERE(%q) = %v; want ok %v", tc.re, err, tc.ok)
			continue
		}
		if tc.ok && !re.MatchString(tc.matches) {
			t.Errorf("CompileERE(%q) does not match %q", tc.re, tc.matches)
		}
	}
}

func TestDirAccess(t *testing.T) {
	dir := t.TempDir()
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, path), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("uid/1000/allow", "")
	write("uid/1000/env/S6_FDHOLDER_STORE_REGEX", "^s \n second line ignored\n")
	write("uid/1000/env/S6_FDHOLDER_RETRIEVE_REGEX", "\n") // empty: every id
	write("uid/1000/env/S6_FDHOLDER_LIST", "\n")
	write("uid/1000/env/S6_FDHOLDER_GETDUMP", "") // empty file: unset
	write("uid/1001/deny", "")
	write("gid/50/allow", "")
	write("gid/50/env/S6_FDHOLDER_SETDUMP", "yes\n")
	write("uid/default/allow", "")
	write("uid/2000/allow", "")
	write("uid/2000/env/S6_FDHOLDER_STORE_REGEX", "\\d")
	for _, tc := range []struct {
		name     string
		uid, gid uint32
		ok       bool
		rights   Rights
	}{
		{"uid key", 1000, 50, true, RightStore | RightRetrieve | RightList},
		{"deny before gid", 1001, 50, false, 0},
		{"gid key", 1002, 50, true, RightSetDump},
		{"default: allow with no env gives nothing", 1003, 51, true, 0},
	} {
		a, ok, err := DirAccess(dir, tc.uid, tc.gid, 500, 500)
		if err != nil || ok != tc.ok || a.Rights != tc.rights {
			t.Errorf("%s: DirAccess(uid %d gid %d) = %v, %v, %v; want %v, %v", tc.name, tc.uid, tc.gid, a.Rights, ok, err, tc.rights, tc.ok)
		}
	}
	a, _, _ := DirAccess(dir, 1000, 50, 500, 500)
	if !a.may(RightStore, "s1") || a.may(RightStore, "x s") || !a.may(RightRetrieve, "x") {
		t.Errorf("uid 1000: store regex ^s (trailing space chomped) and an empty retrieve regex not applied: %+v", a)
	}
	if _, ok, err := DirAccess(dir, 2000, 2000, 500, 500); ok || err == nil {
		t.Errorf("a Go-only regex: DirAccess = %v, %v; want refused with an error", ok, err)
	}
	// No rule, no access: root too, and uid/self names the daemon's uid.
	empty := t.TempDir()
	if _, ok, _ := DirAccess(empty, 0, 0, 0, 0); ok {
		t.Error("root without a rule: want no access")
	}
	write("uid/self/allow", "")
	if _, ok, _ := DirAccess(dir, 500, 51, 500, 500); !ok {
		t.Error("uid/self: want the daemon's uid allowed")
	}
}
