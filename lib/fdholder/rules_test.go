//go:build linux

package fdholder

import (
	"errors"
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
	rules := []Rule{rule("*,list"), rule("@50,retrieve"), rule("1000,store:^tcp:"), rule("1000,all"), rule("0,list")}
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
	b := Access{Rights: RightAll, Regex: rule("0:80").Regex}
	if !b.may(RightRetrieve, "tcp:80") || b.may(RightRetrieve, "tcp:443") || !b.may(RightList, "") {
		t.Error("regex: want an unanchored search on ids only")
	}
}
