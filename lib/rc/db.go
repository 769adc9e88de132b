//go:build linux

package rc

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"

	"github.com/gotools-dev/gotools/lib/execline"
	"github.com/gotools-dev/gotools/lib/exitcode"
)

// dbFormat is the first record of a db file (spec/rc.md §3.3).
const dbFormat = "gotools-rc-db"

// CodeBadLive is the exit code of an invalid live directory or db.
const CodeBadLive = 4

// Marshal writes db as the text of a live db file: one record per line,
// every word quoted (execline.Quote), so that execline.Lex reads it back.
func (db *DB) Marshal() []byte {
	var b bytes.Buffer
	line := func(words ...string) {
		b.WriteString(execline.Line(words...))
		b.WriteByte('\n')
	}
	line("format", dbFormat, "1")
	if db.Self != "" {
		line("self", db.Self)
	}
	for _, s := range db.Sources {
		line("source", s)
	}
	for _, n := range db.Names() {
		s := db.Services[n]
		flags := "-"
		if s.Essential {
			flags = "essential"
		}
		line(s.Type.String(), n, strconv.FormatUint(uint64(s.TimeoutUp), 10),
			strconv.FormatUint(uint64(s.TimeoutDown), 10), flags, s.Hash)
		if len(s.Deps) > 0 {
			line(append([]string{"deps", n}, s.Deps...)...)
		}
		if s.Type == Oneshot {
			line(append([]string{"up", n}, s.Up...)...)
			if len(s.Down) > 0 {
				line(append([]string{"down", n}, s.Down...)...)
			}
			if len(s.Reload) > 0 {
				line(append([]string{"reload", n}, s.Reload...)...)
			}
		}
		if s.StartAttempts > 0 {
			line("start-attempts", n, strconv.FormatUint(uint64(s.StartAttempts), 10))
		}
	}
	bundles := make([]string, 0, len(db.Bundles))
	for n := range db.Bundles {
		bundles = append(bundles, n)
	}
	sort.Strings(bundles)
	for _, n := range bundles {
		line(append([]string{"bundle", n}, db.Bundles[n]...)...)
	}
	consumers := make([]string, 0, len(db.Pipes))
	for n := range db.Pipes {
		consumers = append(consumers, n)
	}
	sort.Strings(consumers)
	for _, n := range consumers {
		line(append([]string{"pipe", n}, db.Pipes[n]...)...)
	}
	return b.Bytes()
}

// ParseDB reads a db file written by [DB.Marshal]. path is for messages;
// errors are exit code 4.
func ParseDB(b []byte, path string) (*DB, error) {
	db := &DB{Services: map[string]*Service{}, Bundles: map[string][]string{}, Pipes: map[string][]string{}}
	bad := func(n int) error {
		return exitcode.Errorf(CodeBadLive, "invalid database %s: line %d", path, n)
	}
	num := func(s string) (uint32, bool) {
		v, err := strconv.ParseUint(s, 10, 32)
		return uint32(v), err == nil && s != "" && s[0] != '+'
	}
	lines := bytes.Split(b, []byte{'\n'})
	if len(lines) == 0 || len(lines[len(lines)-1]) != 0 {
		return nil, bad(len(lines))
	}
	lines = lines[:len(lines)-1]
	type later struct {
		n     int
		words []string
	}
	var refs []later
	for i, l := range lines {
		n := i + 1
		w, err := execline.Lex(l)
		if err != nil || len(w) < 2 {
			return nil, bad(n)
		}
		if i == 0 {
			if len(w) != 3 || w[0] != "format" || w[1] != dbFormat || w[2] != "1" {
				return nil, bad(n)
			}
			continue
		}
		switch w[0] {
		case "self":
			if len(w) != 2 {
				return nil, bad(n)
			}
			db.Self = w[1]
		case "source":
			if len(w) != 2 {
				return nil, bad(n)
			}
			db.Sources = append(db.Sources, w[1])
		case "longrun", "oneshot":
			if len(w) != 6 || db.Services[w[1]] != nil || (w[4] != "-" && w[4] != "essential") {
				return nil, bad(n)
			}
			up, ok1 := num(w[2])
			down, ok2 := num(w[3])
			if !ok1 || !ok2 {
				return nil, bad(n)
			}
			t := Longrun
			if w[0] == "oneshot" {
				t = Oneshot
			}
			db.Services[w[1]] = &Service{Name: w[1], Type: t, TimeoutUp: up, TimeoutDown: down,
				Essential: w[4] == "essential", Hash: w[5]}
		case "deps", "up", "down", "reload", "start-attempts":
			s := db.Services[w[1]]
			if s == nil {
				return nil, bad(n)
			}
			switch w[0] {
			case "deps":
				s.Deps = append([]string(nil), w[2:]...)
				refs = append(refs, later{n, w[2:]})
			case "up", "down", "reload":
				if s.Type != Oneshot {
					return nil, bad(n)
				}
				argv := append([]string{}, w[2:]...)
				switch w[0] {
				case "up":
					s.Up = argv
				case "down":
					s.Down = argv
				default:
					s.Reload = argv
				}
			default:
				v, ok := num(w[2])
				if len(w) != 3 || !ok || v == 0 || s.Type != Longrun {
					return nil, bad(n)
				}
				s.StartAttempts = v
			}
		case "bundle":
			if _, dup := db.Bundles[w[1]]; dup {
				return nil, bad(n)
			}
			db.Bundles[w[1]] = append([]string{}, w[2:]...)
			refs = append(refs, later{n, w[2:]})
		case "pipe":
			if len(w) < 3 {
				return nil, bad(n)
			}
			db.Pipes[w[1]] = append([]string{}, w[2:]...)
			refs = append(refs, later{n, w[1:]})
		default:
			return nil, bad(n)
		}
	}
	if len(lines) == 0 {
		return nil, bad(1)
	}
	for _, r := range refs {
		for _, name := range r.words {
			if db.Services[name] == nil {
				return nil, bad(r.n)
			}
		}
	}
	for n := range db.Bundles {
		if db.Services[n] != nil {
			return nil, bad(len(lines))
		}
	}
	for c, ps := range db.Pipes {
		db.Services[c].ReadsPipe = true
		for _, p := range ps {
			db.Services[p].ProducerFor = c
		}
	}
	return db, nil
}

// Lookup resolves names to atomic services (bundles expanded), sorted and
// without duplicates; unknown names are exit code 3.
func (db *DB) Lookup(names []string) ([]string, error) {
	set := map[string]bool{}
	for _, n := range names {
		if db.Services[n] != nil {
			set[n] = true
			continue
		}
		m, ok := db.Bundles[n]
		if !ok {
			return nil, exitcode.Errorf(3, "unknown service name %s", n)
		}
		for _, x := range m {
			set[x] = true
		}
	}
	return sortedKeys(set), nil
}

// String is for debugging.
func (s *Service) String() string { return fmt.Sprintf("%s %s", s.Type, s.Name) }

// lineOf renders words as one db line (without the newline).
func lineOf(words []string) string { return execline.Line(words...) }
