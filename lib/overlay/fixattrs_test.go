//go:build linux

package overlay

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseFixAttrs(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want []FixAttr
		err  bool
	}{
		{"s6-overlay's example", "/var/lib/mysql true mysql 0600 0700\n\n# comment\n  #also a comment\n/var/log/x false nobody,32768:32768 0644 2700\n",
			[]FixAttr{
				{Line: 1, Glob: "/var/lib/mysql", Recurse: true, Account: Account{User: "mysql"}, FMode: 0o600, DMode: 0o700},
				{Line: 5, Glob: "/var/log/x", Account: Account{User: "nobody", Fallback: true, UID: 32768, GID: 32768}, FMode: 0o644, DMode: 0o2700},
			}, false},
		{"user:group", "/a true www:adm 644 755", []FixAttr{{Line: 1, Glob: "/a", Recurse: true, Account: Account{User: "www", Group: "adm"}, FMode: 0o644, DMode: 0o755}}, false},
		{"#word comment", "#/a true root 0644 0755\n", nil, false},
		{"four words", "/a true root 0644\n", nil, true},
		{"bad recurse", "/a yes root 0644 0755\n", nil, true},
		{"bad mode", "/a true root 0648 0755\n", nil, true},
		{"mode too big", "/a true root 0644 17777\n", nil, true},
		{"no user", "/a true :root 0644 0755\n", nil, true},
		{"bad fallback", "/a true x,1 0644 0755\n", nil, true},
		{"negative fallback", "/a true x,-1:2 0644 0755\n", nil, true},
	} {
		got, err := ParseFixAttrs([]byte(tt.in))
		if (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrFixAttrs)) {
			t.Errorf("%s: ParseFixAttrs(%q) error %v; want error %v", tt.name, tt.in, err, tt.err)
			continue
		}
		if !tt.err && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: ParseFixAttrs(%q) = %+v; want %+v", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestAccountResolve(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\nbroken:x:abc:1::/:/bin/sh\n")
	group := []byte("root:x:0:\nadm:x:4:www\n")
	for _, tt := range []struct {
		acct     string
		uid, gid int
		err      bool
	}{
		{"www", 33, 33, false},
		{"www:adm", 33, 4, false},
		{"www:nosuch,1:2", 33, 2, false},
		{"nosuch,1000:1001", 1000, 1001, false},
		{"nosuch", 0, 0, true},
		{"www:nosuch", 0, 0, true},
		{"broken", 0, 0, true},
		{"1234", 0, 0, true},
		{"1234:adm", 1234, 4, false},
	} {
		a, err := parseAccount(tt.acct)
		if err != nil {
			t.Fatalf("parseAccount(%q): %v", tt.acct, err)
		}
		uid, gid, err := a.Resolve(passwd, group)
		if (err != nil) != tt.err || (!tt.err && (uid != tt.uid || gid != tt.gid)) {
			t.Errorf("Resolve(%q) = %d, %d, %v; want %d, %d, error %v", tt.acct, uid, gid, err, tt.uid, tt.gid, tt.err)
		}
	}
}

func FuzzParseFixAttrs(f *testing.F) {
	f.Add([]byte("/var/lib/mysql true mysql 0600 0700\n"))
	f.Add([]byte("# c\n/a false u:g,1:2 7777 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseFixAttrs(b)
		if err != nil {
			return
		}
		for _, a := range l {
			if a.Glob == "" || a.Glob[0] == '#' || a.FMode > 0o7777 || a.DMode > 0o7777 || a.Account.User == "" || a.Account.UID < 0 || a.Account.GID < 0 {
				t.Fatalf("ParseFixAttrs(%q) = %+v: out of range", b, a)
			}
		}
	})
}
