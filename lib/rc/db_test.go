package rc

import (
	"bytes"
	"slices"
	"testing"
)

func readTestTree(t testing.TB, sources ...string) *DB {
	t.Helper()
	var srcs []string
	for _, s := range sources {
		srcs = append(srcs, "../../tests/testdata/rc/"+s)
	}
	db, err := (&Reader{}).Read(srcs)
	if err != nil {
		t.Fatalf("Read(%q): %v", srcs, err)
	}
	return db
}

func TestDBRoundTrip(t *testing.T) {
	for _, srcs := range [][]string{{"example/source"}, {"router/src1", "router/src2"}, {"overlay/base", "overlay/s6-rc.d"}} {
		db := readTestTree(t, srcs...)
		db.Self = "/usr/bin/gotools"
		text := db.Marshal()
		back, err := ParseDB(text, "db")
		if err != nil {
			t.Fatalf("ParseDB(Marshal(%q)): %v", srcs, err)
		}
		if again := back.Marshal(); !bytes.Equal(again, text) {
			t.Errorf("Marshal(ParseDB(x)) != x for %q:\n%s\n---\n%s", srcs, again, text)
		}
		for n, s := range db.Services {
			b := back.Services[n]
			if !slices.Equal(s.Deps, b.Deps) || !slices.Equal(s.Up, b.Up) || s.ProducerFor != b.ProducerFor || s.ReadsPipe != b.ReadsPipe {
				t.Errorf("%s: read back %+v; want %+v", n, b, s)
			}
		}
	}
}

func TestParseDBRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"\"format\" \"gotools-rc-db\" \"2\"\n",
		"\"format\" \"gotools-rc-db\" \"1\"\n\"deps\" \"x\" \"y\"\n",
		"\"format\" \"gotools-rc-db\" \"1\"\n\"oneshot\" \"x\" \"0\" \"0\" \"-\" \"h\"\n\"deps\" \"x\" \"y\"\n",
		"\"format\" \"gotools-rc-db\" \"1\"\n\"oneshot\" \"x\" \"0\" \"0\" \"-\" \"h\"",
		"\"format\" \"gotools-rc-db\" \"1\"\n\"oneshot\" \"x\" \"-1\" \"0\" \"-\" \"h\"\n",
		"\"format\" \"gotools-rc-db\" \"1\"\n\"bogus\" \"x\"\n",
	} {
		if _, err := ParseDB([]byte(in), "db"); err == nil {
			t.Errorf("ParseDB(%q) = nil error; want one", in)
		}
	}
}

func FuzzParseDB(f *testing.F) {
	db := readTestTree(f, "router/src1", "router/src2")
	f.Add(db.Marshal())
	f.Add([]byte("\"format\" \"gotools-rc-db\" \"1\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		db, err := ParseDB(b, "db")
		if err != nil {
			return
		}
		if _, err := ParseDB(db.Marshal(), "db"); err != nil {
			t.Fatalf("ParseDB(Marshal(ParseDB(%q))): %v", b, err)
		}
	})
}

func FuzzParseState(f *testing.F) {
	db := readTestTree(f, "example/source")
	st := map[string]Entry{}
	for n := range db.Services {
		st[n] = Entry{S: 'u', PID: 12, Start: 99}
	}
	f.Add(marshalState(st))
	f.Add([]byte("gotools-rc-state 1\nU 0 0 a b c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := map[string]Entry{}
		got, err := parseState(b, "state", m, db)
		if err != nil {
			return
		}
		if _, err := parseState(marshalState(got), "state", map[string]Entry{}, db); err != nil {
			t.Fatalf("state %q does not read back: %v", b, err)
		}
	})
}
