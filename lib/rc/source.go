//go:build linux

package rc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/decimal"
	"github.com/gotools-dev/gotools/lib/execline"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/servicedir"
	"github.com/gotools-dev/gotools/lib/sys"
)

// Type is a service's type.
type Type int

// The service types of s6-rc.
const (
	Oneshot Type = iota + 1
	Longrun
	Bundle
)

func (t Type) String() string {
	switch t {
	case Oneshot:
		return "oneshot"
	case Longrun:
		return "longrun"
	case Bundle:
		return "bundle"
	}
	return "invalid"
}

// FdholderName is the internal longrun that holds the pipes of pipelines.
const FdholderName = "s6rc-fdholder"

// Service is one atomic service (oneshot or longrun) of a database.
type Service struct {
	Name        string
	Type        Type
	Essential   bool
	TimeoutUp   uint32 // ms, 0 none
	TimeoutDown uint32
	// StartAttempts (longruns, gotools extension): deaths of run before
	// readiness that fail an up transition; 0 none.
	StartAttempts uint32
	Deps          []string // atomic, sorted, implicit ones included
	// Oneshots: the lexed argvs.
	Up, Down, Reload []string
	// Longruns: Dir is the source directory (empty for internal ones);
	// Files holds the servicedir files that are written live.
	Dir   string
	Files []File
	// Pipelines: the consumer this longrun writes to, and the consumer
	// whose pipe it reads (itself when it is a consumer).
	ProducerFor string
	ReadsPipe   bool
	Hash        string // FNV-128a of what the service runs: tells update what changed (no adversary: the sources are the admin's)
}

// File is one entry of a longrun's live servicedir, built from its source.
type File struct {
	Name string      // relative to the servicedir: "run", "data", "env/FOO"
	Mode fs.FileMode // type bits and permissions
	Data []byte      // regular files: content; symlinks: target
	UID  int
	GID  int
}

// DB is a resolved set of services: what sources define, validated.
type DB struct {
	Sources  []string
	Services map[string]*Service
	Bundles  map[string][]string // atomic members, sorted
	Pipes    map[string][]string // consumer -> producers, sorted
	Self     string
}

// Names returns the atomic services in byte order.
func (db *DB) Names() []string {
	names := make([]string, 0, len(db.Services))
	for n := range db.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SourceError is a source problem: exit 1 (spec/rc.md §1.6).
func sourceErr(format string, args ...any) error {
	return exitcode.Errorf(1, format, args...)
}

// sysErr is a system call failure while reading sources: exit 111.
func sysErr(verb, path string, err error) error {
	return exitcode.Errorf(exitcode.Sys, "unable to %s %s: %w", verb, path, sys.Errno(err))
}

// reserved reports whether name uses a prefix s6-rc keeps for itself.
func reserved(name string) bool {
	return strings.HasPrefix(name, "s6rc-") || strings.HasPrefix(name, "s6-rc-")
}

// def is a service as read, before resolution.
type def struct {
	name, src, dir string
	typ            Type
	essential      bool
	deps           []string // as listed
	depsFile       string
	contents       []string // bundles
	contentsFile   string
	producerFor    []string
	consumerFor    []string
	pipelineName   []string
	svc            *Service
}

// Reader reads sources; Warn, when set, receives warnings (one line each,
// without the "rc: warning: " prefix). Verbose is -v.
type Reader struct {
	Warn    func(msg string)
	Verbose int
}

func (r *Reader) warn(format string, args ...any) {
	if r.Warn != nil {
		r.Warn(fmt.Sprintf(format, args...))
	}
}

// Read reads and validates the sources, as s6-rc-compile would, and
// resolves them into a DB. Errors are exitcode errors: 1 for a source
// problem, 111 for a system call failure.
func (r *Reader) Read(sources []string) (*DB, error) {
	defs := map[string]*def{}
	var order []*def
	var abs []string
	for _, src := range sources {
		a, err := filepath.Abs(src)
		if err != nil {
			return nil, sysErr("resolve", src, err)
		}
		abs = append(abs, a)
		ents, err := os.ReadDir(src)
		if err != nil {
			return nil, sysErr("read directory", src, err)
		}
		n := 0
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			dir := filepath.Join(src, name)
			st, err := os.Stat(dir)
			if err != nil {
				return nil, sysErr("stat", dir, err)
			}
			if !st.IsDir() {
				continue
			}
			n++
			if strings.IndexByte(name, '\n') >= 0 {
				return nil, sourceErr("%s: entry name contains a newline", src)
			}
			if reserved(name) {
				return nil, sourceErr("%s: %s uses the reserved prefix s6rc- or s6-rc-", dir, name)
			}
			if old, ok := defs[name]; ok {
				return nil, sourceErr("duplicate service %s (%s and %s)", name, old.src, src)
			}
			d, err := r.readDef(src, name)
			if err != nil {
				return nil, err
			}
			defs[name] = d
			order = append(order, d)
		}
		if n == 0 {
			r.warn("source %s is empty", src)
		}
	}
	db, err := r.resolve(defs, order)
	if err != nil {
		return nil, err
	}
	db.Sources = abs
	return db, nil
}

// readFile reads dir/name; a missing file is (nil, false, nil).
func readFile(path string) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, sysErr("read", path, err)
	}
	return b, true, nil
}

// readList reads the list X.d (a directory) or X (a file) of dir; file is
// the one that was used ("" when neither exists).
func (r *Reader) readList(dir, x string) (names []string, file string, err error) {
	dpath := filepath.Join(dir, x+".d")
	st, err := os.Lstat(dpath)
	switch {
	case err == nil:
		if st.Mode()&fs.ModeSymlink != 0 {
			st, err = os.Stat(dpath)
			if err != nil {
				return nil, "", sysErr("stat", dpath, err)
			}
		}
		if !st.IsDir() {
			return nil, "", sourceErr("%s is not a directory", dpath)
		}
		if _, err := os.Lstat(filepath.Join(dir, x)); err == nil {
			r.warn("%s: %s.d exists, %s is ignored", dir, x, x)
		}
		ents, err := os.ReadDir(dpath)
		if err != nil {
			return nil, "", sysErr("read directory", dpath, err)
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
		return names, x + ".d", nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, "", sysErr("stat", dpath, err)
	}
	b, ok, err := readFile(filepath.Join(dir, x))
	if err != nil || !ok {
		return nil, "", err
	}
	names = r.parseList(b, filepath.Join(dir, x))
	return names, x, nil
}

// parseList reads a list file: one name per line, leading blanks removed,
// empty and # lines skipped, duplicates dropped.
func (r *Reader) parseList(b []byte, path string) []string {
	var names []string
	seen := map[string]bool{}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimLeft(line, " \t")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		n := string(line)
		if seen[n] {
			if r.Verbose >= 2 {
				r.warn("%s lists %s twice", path, n)
			}
			continue
		}
		seen[n] = true
		names = append(names, n)
	}
	return names
}

// readNumber reads a timeout-up-like file: at most 63 bytes, trailing
// newlines removed, 1-10 digits up to 2^32-1.
func readNumber(path string) (uint32, bool, error) {
	b, ok, err := readFile(path)
	if err != nil || !ok {
		return 0, ok, err
	}
	t := bytes.TrimRight(b, "\n")
	v, good := decimal.Parse(t, 10, 1<<32-1)
	if len(b) > 63 || !good {
		return 0, true, sourceErr("invalid %s: %s", path, servicedir.Quote(b))
	}
	return uint32(v), true, nil
}

// readDef reads one service directory.
func (r *Reader) readDef(src, name string) (*def, error) {
	dir := filepath.Join(src, name)
	d := &def{name: name, src: src, dir: dir}
	tb, ok, err := readFile(filepath.Join(dir, "type"))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, sysErr("read", filepath.Join(dir, "type"), unix.ENOENT)
	}
	first, rest := tb, []byte(nil)
	if i := bytes.IndexByte(tb, '\n'); i >= 0 {
		first, rest = tb[:i], tb[i+1:]
	}
	switch string(first) {
	case "oneshot":
		d.typ = Oneshot
	case "longrun":
		d.typ = Longrun
	case "bundle":
		d.typ = Bundle
	default:
		return nil, sourceErr("invalid %s/type: must be oneshot, longrun or bundle", dir)
	}
	if len(bytes.Trim(rest, "\n")) > 0 {
		r.warn("%s/type: bytes after the first line are ignored", dir)
	}
	if _, err := os.Lstat(filepath.Join(dir, "flag-essential")); err == nil {
		d.essential = true
	}
	if d.typ == Bundle {
		d.contents, d.contentsFile, err = r.readList(dir, "contents")
		if err != nil {
			return nil, err
		}
		if d.contentsFile == "" {
			return nil, sourceErr("%s: missing contents.d or contents", dir)
		}
		for _, x := range []string{"dependencies.d", "dependencies"} {
			if _, err := os.Lstat(filepath.Join(dir, x)); err == nil {
				r.warn("%s: %s of a bundle is ignored", dir, x)
			}
		}
		return d, nil
	}
	d.deps, d.depsFile, err = r.readList(dir, "dependencies")
	if err != nil {
		return nil, err
	}
	s := &Service{Name: name, Type: d.typ, Essential: d.essential, Dir: dir}
	d.svc = s
	for _, t := range []struct {
		file string
		v    *uint32
	}{{"timeout-up", &s.TimeoutUp}, {"timeout-down", &s.TimeoutDown}} {
		if *t.v, _, err = readNumber(filepath.Join(dir, t.file)); err != nil {
			return nil, err
		}
	}
	if d.typ == Oneshot {
		return d, r.readOneshot(d)
	}
	if s.StartAttempts, ok, err = readNumber(filepath.Join(dir, "start-attempts")); err != nil {
		return nil, err
	} else if ok && s.StartAttempts == 0 {
		return nil, sourceErr("invalid %s/start-attempts: \"0\"", dir)
	}
	return d, r.readLongrun(d)
}

// readOneshot lexes up, down and reload.
func (r *Reader) readOneshot(d *def) error {
	s := d.svc
	for _, f := range []struct {
		name     string
		argv     *[]string
		required bool
	}{{"up", &s.Up, true}, {"down", &s.Down, false}, {"reload", &s.Reload, false}} {
		path := filepath.Join(d.dir, f.name)
		b, ok, err := readFile(path)
		if err != nil {
			return err
		}
		if !ok {
			if f.required {
				return sourceErr("%s: missing up", d.dir)
			}
			continue
		}
		argv, err := execline.Lex(b)
		switch {
		case errors.Is(err, execline.ErrSyntax):
			return sourceErr("syntax error in %s", path)
		case err != nil:
			return sourceErr("syntax error in %s: %v", path, err)
		}
		if f.name != "reload" && bytes.HasPrefix(b, []byte("#!")) {
			r.warn("%s/%s is one command line, not a script: its #! line is a comment; put the script in a file and name that file in %s", d.name, f.name, f.name)
		}
		*f.argv = argv
		if len(argv) > 0 && execlineHint(argv[0]) != "" {
			if _, err := exec.LookPath(argv[0]); err != nil {
				r.warn("%s/%s: %s is an execline command and is not in PATH", d.name, f.name, argv[0])
			}
		}
	}
	h := fnv.New128a()
	for _, argv := range [][]string{s.Up, s.Down, s.Reload} {
		fmt.Fprintf(h, "%s\n", execline.Line(argv...))
	}
	s.Hash = hex.EncodeToString(h.Sum(nil))
	return nil
}

// Files copied verbatim, as numbers, or as flags into a live servicedir.
var (
	numberFiles = []string{"notification-fd", "lock-fd", "timeout-kill", "timeout-finish", "max-death-tally"}
	signalFiles = []string{"down-signal", "reload-signal"}
	verbatim    = []string{"pidfile", "notify-socket", "fdstore-max", "flag-fdstore-preserve", "halt-on-exit"}
	emptyFlags  = []string{"flag-newpidns", "flag-timeout-killpg"}
	treeDirs    = []string{"data", "env", "template"}
)

// readLongrun collects the files of a longrun's live servicedir and its
// pipeline links.
func (r *Reader) readLongrun(d *def) error {
	s := d.svc
	run := filepath.Join(d.dir, "run")
	st, err := os.Stat(run)
	if errors.Is(err, fs.ErrNotExist) {
		return sourceErr("%s: missing run", d.dir)
	}
	if err != nil {
		return sysErr("stat", run, err)
	}
	if !st.Mode().IsRegular() {
		return sourceErr("%s is not a regular file", run)
	}
	b, err := os.ReadFile(run)
	if err != nil {
		return sysErr("read", run, err)
	}
	s.Files = append(s.Files, File{Name: "run", Mode: 0o755, Data: b})
	if b, err := os.ReadFile(filepath.Join(d.dir, "finish")); err == nil {
		s.Files = append(s.Files, File{Name: "finish", Mode: 0o755, Data: b})
	}
	nums := map[string]uint32{}
	for _, f := range numberFiles {
		path := filepath.Join(d.dir, f)
		b, ok, err := readFile(path)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		v, err := servicedir.ParseNumber(b)
		if err != nil {
			return sourceErr("invalid %s: %s", path, servicedir.Quote(b))
		}
		nums[f] = v
		s.Files = append(s.Files, File{Name: f, Mode: 0o644, Data: fmt.Appendf(nil, "%d\n", v)})
	}
	nf, hasN := nums["notification-fd"]
	lf, hasL := nums["lock-fd"]
	if hasN && hasL && nf == lf {
		return sourceErr("%s: notification-fd and lock-fd are the same", d.dir)
	}
	if (hasN && nf < 3) || (hasL && lf < 3) {
		r.warn("%s: notification-fd or lock-fd below 3", d.dir)
	}
	for _, f := range signalFiles {
		b, ok, err := readFile(filepath.Join(d.dir, f))
		if err != nil {
			return err
		}
		if ok {
			if _, err := servicedir.ParseSignal(b); err != nil {
				r.warn("%s/%s: supervise will not accept this signal", d.dir, f)
			}
			s.Files = append(s.Files, File{Name: f, Mode: 0o644, Data: b})
		}
	}
	for _, f := range verbatim {
		path := filepath.Join(d.dir, f)
		b, ok, err := readFile(path)
		if err != nil {
			return err
		}
		if ok {
			s.Files = append(s.Files, File{Name: f, Mode: 0o644, Data: b})
		}
	}
	for _, f := range emptyFlags {
		if _, err := os.Lstat(filepath.Join(d.dir, f)); err == nil {
			s.Files = append(s.Files, File{Name: f, Mode: 0o644})
		}
	}
	for _, f := range treeDirs {
		if err := r.readTree(d.dir, f, &s.Files); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		file string
		dst  *[]string
	}{{"producer-for", &d.producerFor}, {"consumer-for", &d.consumerFor}, {"pipeline-name", &d.pipelineName}} {
		b, ok, err := readFile(filepath.Join(d.dir, l.file))
		if err != nil {
			return err
		}
		if ok {
			*l.dst = r.parseList(b, filepath.Join(d.dir, l.file))
			if l.file != "consumer-for" && len(*l.dst) != 1 {
				return sourceErr("%s: %s must %s", d.name, l.file, map[string]string{
					"producer-for": "name exactly one service", "pipeline-name": "hold exactly one name"}[l.file])
			}
		}
	}
	h := fnv.New128a()
	for _, f := range s.Files {
		fmt.Fprintf(h, "%q %o %d %d %d\n", f.Name, uint32(f.Mode), f.UID, f.GID, len(f.Data))
		h.Write(f.Data)
	}
	s.Hash = hex.EncodeToString(h.Sum(nil))
	return nil
}

// readTree collects dir/name recursively (data/, env/, template/).
func (r *Reader) readTree(dir, name string, files *[]File) error {
	root := filepath.Join(dir, name)
	st, err := os.Lstat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return sysErr("stat", root, err)
	}
	if !st.IsDir() {
		return sourceErr("%s is not a directory", root)
	}
	root0 := os.Geteuid() == 0
	return filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return sysErr("read", path, err)
		}
		rel, _ := filepath.Rel(dir, path)
		info, err := e.Info()
		if err != nil {
			return sysErr("stat", path, err)
		}
		f := File{Name: rel, Mode: info.Mode()}
		if root0 {
			if st, ok := info.Sys().(*unix.Stat_t); ok {
				f.UID, f.GID = int(st.Uid), int(st.Gid)
			}
		}
		switch t := info.Mode().Type(); {
		case t == 0:
			if f.Data, err = os.ReadFile(path); err != nil {
				return sysErr("read", path, err)
			}
		case t == fs.ModeSymlink:
			target, err := os.Readlink(path)
			if err != nil {
				return sysErr("readlink", path, err)
			}
			f.Data = []byte(target)
		case t == fs.ModeDir, t == fs.ModeNamedPipe:
		default:
			return sourceErr("%s: sockets and devices cannot be copied", path)
		}
		*files = append(*files, f)
		if rel == "template" {
			*files = append(*files, File{Name: "template/instances", Mode: fs.ModeDir | 0o755},
				File{Name: "template/instance", Mode: fs.ModeDir | 0o755})
		}
		return nil
	})
}

// resolve checks names and links, expands bundles and adds implicit
// dependencies.
func (r *Reader) resolve(defs map[string]*def, order []*def) (*DB, error) {
	db := &DB{Services: map[string]*Service{}, Bundles: map[string][]string{}, Pipes: map[string][]string{}}
	undefined := func(name string, owner *def, file string) error {
		if reserved(name) {
			return sourceErr("%s/%s: %s uses the reserved prefix s6rc- or s6-rc-", owner.src, owner.name, name)
		}
		return sourceErr("%s (in %s/%s/%s) is not defined", name, owner.src, owner.name, file)
	}
	// Pipeline names define bundles: check them for clashes first.
	pipelineOwner := map[string]*def{}
	for _, d := range order {
		if len(d.pipelineName) == 0 {
			continue
		}
		if len(d.consumerFor) == 0 || len(d.producerFor) > 0 {
			r.warn("%s: pipeline-name is ignored: %s is not a last consumer", d.dir, d.name)
			continue
		}
		p := d.pipelineName[0]
		if reserved(p) {
			return nil, sourceErr("%s/%s: %s uses the reserved prefix s6rc- or s6-rc-", d.src, d.name, p)
		}
		if o, ok := defs[p]; ok {
			return nil, sourceErr("duplicate service %s (%s and %s)", p, o.src, d.src)
		}
		if o, ok := pipelineOwner[p]; ok {
			return nil, sourceErr("duplicate service %s (%s and %s)", p, o.src, d.src)
		}
		pipelineOwner[p] = d
	}
	// Pipelines first: their names are bundles too.
	if err := r.pipelines(db, defs, order, pipelineOwner); err != nil {
		return nil, err
	}
	// Bundles, recursively.
	var expand func(name string, path []string) ([]string, error)
	done := map[string][]string{}
	expand = func(name string, path []string) ([]string, error) {
		if m, ok := done[name]; ok {
			return m, nil
		}
		if i := slices.Index(path, name); i >= 0 {
			return nil, sourceErr("bundle cycle: %s", strings.Join(append(path[i:], name), " -> "))
		}
		d := defs[name]
		set := map[string]bool{}
		for _, m := range d.contents {
			md, ok := defs[m]
			if !ok {
				if _, p := pipelineOwner[m]; p {
					for _, x := range db.Bundles[m] {
						set[x] = true
					}
					continue
				}
				return nil, undefined(m, d, d.contentsFile)
			}
			if md.typ != Bundle {
				set[m] = true
				continue
			}
			sub, err := expand(m, append(path, name))
			if err != nil {
				return nil, err
			}
			for _, s := range sub {
				set[s] = true
			}
		}
		members := sortedKeys(set)
		done[name] = members
		return members, nil
	}
	for _, d := range order {
		if d.typ == Bundle {
			m, err := expand(d.name, nil)
			if err != nil {
				return nil, err
			}
			db.Bundles[d.name] = m
		} else {
			db.Services[d.name] = d.svc
		}
	}
	for _, d := range order {
		if d.typ == Bundle && d.essential {
			for _, m := range db.Bundles[d.name] {
				db.Services[m].Essential = true
			}
		}
	}
	// Dependencies.
	for _, d := range order {
		if d.typ == Bundle {
			continue
		}
		set := map[string]bool{}
		for _, dep := range d.deps {
			dd, ok := defs[dep]
			if !ok {
				if _, p := pipelineOwner[dep]; p {
					for _, x := range db.Bundles[dep] {
						set[x] = true
					}
					continue
				}
				return nil, undefined(dep, d, d.depsFile)
			}
			if dd.typ == Bundle {
				for _, m := range db.Bundles[dep] {
					set[m] = true
				}
			} else {
				set[dep] = true
			}
		}
		s := d.svc
		if s.ProducerFor != "" {
			set[s.ProducerFor] = true
		}
		if s.ProducerFor != "" || s.ReadsPipe {
			set[FdholderName] = true
		}
		s.Deps = sortedKeys(set)
	}
	if len(db.Pipes) > 0 {
		db.Services[FdholderName] = &Service{Name: FdholderName, Type: Longrun, Essential: true, Hash: "internal"}
	}
	if err := checkCycles(db); err != nil {
		return nil, err
	}
	return db, nil
}

// pipelines checks producer-for/consumer-for and fills db.Pipes and the
// pipeline-name bundles.
func (r *Reader) pipelines(db *DB, defs map[string]*def, order []*def, owners map[string]*def) error {
	for _, d := range order {
		for _, file := range []string{"producer-for", "consumer-for"} {
			list := d.producerFor
			if file == "consumer-for" {
				list = d.consumerFor
			}
			for _, o := range list {
				od, ok := defs[o]
				if !ok {
					if d.typ != Longrun {
						continue
					}
					return sourceErr("%s (in %s/%s/%s) is not defined", o, d.src, d.name, file)
				}
				if d.typ != Longrun {
					continue
				}
				if od.typ != Longrun {
					return sourceErr("%s lists %s in its %s, but %s is a %s", d.name, o, file, o, od.typ)
				}
				if file == "producer-for" && !slices.Contains(od.consumerFor, d.name) {
					return sourceErr("%s is producer-for %s, but %s does not list %s in consumer-for", d.name, o, o, d.name)
				}
				if file == "consumer-for" && (len(od.producerFor) == 0 || od.producerFor[0] != d.name) {
					return sourceErr("%s is consumer-for %s, but %s does not list %s in producer-for", d.name, o, o, d.name)
				}
			}
		}
	}
	// Each pipeline is a tree rooted at a last consumer.
	root := map[string]string{}
	for _, d := range order {
		if d.typ != Longrun || len(d.producerFor) == 0 {
			continue
		}
		path := []string{d.name}
		cur := d
		for len(cur.producerFor) > 0 {
			next := cur.producerFor[0]
			if i := slices.Index(path, next); i >= 0 {
				return sourceErr("pipeline cycle: %s", strings.Join(append(path[i:], next), " -> "))
			}
			path = append(path, next)
			cur = defs[next]
		}
	}
	for _, d := range order {
		if d.typ != Longrun || len(d.consumerFor) == 0 || len(d.producerFor) > 0 {
			continue
		}
		var members []string
		var walk func(n string) error
		walk = func(n string) error {
			if r0, ok := root[n]; ok && r0 != d.name {
				return sourceErr("pipeline collision at %s (from %s and %s)", n, r0, d.name)
			}
			root[n] = d.name
			members = append(members, n)
			for _, p := range defs[n].consumerFor {
				if err := walk(p); err != nil {
					return err
				}
			}
			return nil
		}
		if err := walk(d.name); err != nil {
			return err
		}
		if len(d.pipelineName) > 0 && owners[d.pipelineName[0]] == d {
			sort.Strings(members)
			db.Bundles[d.pipelineName[0]] = members
		}
	}
	for _, d := range order {
		if d.typ != Longrun {
			continue
		}
		if len(d.producerFor) > 0 {
			d.svc.ProducerFor = d.producerFor[0]
		}
		if len(d.consumerFor) > 0 {
			d.svc.ReadsPipe = true
			p := slices.Clone(d.consumerFor)
			sort.Strings(p)
			db.Pipes[d.name] = p
		}
	}
	return nil
}

// checkCycles finds a dependency cycle and reports it whole.
func checkCycles(db *DB) error {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(n string) error
	visit = func(n string) error {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range db.Services[n].Deps {
			switch color[d] {
			case grey:
				i := slices.Index(stack, d)
				return sourceErr("dependency cycle: %s", strings.Join(append(slices.Clone(stack[i:]), d), " -> "))
			case white:
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return nil
	}
	for _, n := range db.Names() {
		if color[n] == white {
			if err := visit(n); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
