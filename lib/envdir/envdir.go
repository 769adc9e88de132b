//go:build linux

package envdir

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// maxClamped is how much of a file is read without [Options.NoClamp]:
// skalibs reads at most 4095 bytes of each (MAXVARSIZE).
const maxClamped = 4095

// Options are s6-envdir's -f, -n, -L and -c.
type Options struct {
	Verbatim bool // -f: the whole file, minus one final newline
	NoChomp  bool // -n: keep trailing blanks (first line) or the final newline (-f)
	NoClamp  bool // -L: read files of any size
	// NullIs replaces each NUL of a value (-c: the option's first byte);
	// 0 means the default, a newline.
	NullIs byte
}

// Modif is one change a file makes: set Name to Value, or unset it.
type Modif struct {
	Name  string
	Value string
	Unset bool
}

// Read reads the environment directory dir and returns its changes, in
// directory order as s6-envdir applies them. Entries whose name starts
// with a dot or holds '=' are skipped. An empty file unsets its variable.
// Any failure to read an entry fails the whole read (an entry that vanished
// meanwhile is EIDRM, as skalibs reports it).
func Read(dir string, o Options) ([]Modif, error) {
	if o.NullIs == 0 {
		o.NullIs = '\n'
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, errnoOf(err)
	}
	defer f.Close()
	ents, err := f.ReadDir(-1) // directory order, as readdir(3) gives it
	if err != nil {
		return nil, errnoOf(err)
	}
	var mods []Modif
	for _, e := range ents {
		name := e.Name()
		if name[0] == '.' || strings.ContainsRune(name, '=') {
			continue
		}
		m, err := readOne(dir+"/"+name, o)
		if err != nil {
			return nil, err
		}
		m.Name = name
		mods = append(mods, m)
	}
	return mods, nil
}

func readOne(path string, o Options) (Modif, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			err = unix.EIDRM
		}
		return Modif{}, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var r io.Reader = f
	if !o.NoClamp {
		r = io.LimitReader(f, maxClamped)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return Modif{}, errnoOf(err)
	}
	if len(b) == 0 {
		return Modif{Unset: true}, nil
	}
	b = Value(b, o)
	return Modif{Value: string(b)}, nil
}

// Value turns a file's non-empty contents into a variable's value: the
// first line without its trailing spaces, tabs and carriage returns, or
// with -f the whole contents minus one final newline; -n keeps what would
// be removed. NULs become o.NullIs (a newline when 0).
func Value(b []byte, o Options) []byte {
	if o.Verbatim {
		if !o.NoChomp && b[len(b)-1] == '\n' {
			b = b[:len(b)-1]
		}
	} else {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		}
		if !o.NoChomp {
			b = bytes.TrimRight(b, " \t\r")
		}
	}
	null := o.NullIs
	if null == 0 {
		null = '\n'
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c == 0 {
			c = null
		}
		out[i] = c
	}
	return out
}

// Merge applies mods to env (KEY=VALUE strings) in order, as skalibs'
// env_merge does, so that the program sees its variables in the same order
// as under s6-envdir: each entry of the modified name is removed by moving
// the last entry into its place, then a set value is appended.
func Merge(env []string, mods []Modif) []string {
	out := append([]string(nil), env...)
	for _, m := range mods {
		for i := 0; i < len(out); {
			if name, _, _ := strings.Cut(out[i], "="); name == m.Name {
				out[i] = out[len(out)-1]
				out = out[:len(out)-1]
				continue
			}
			i++
		}
		if !m.Unset {
			out = append(out, m.Name+"="+m.Value)
		}
	}
	return out
}

// errnoOf returns the errno inside err, or err: messages name the
// directory once, as s6-envdir's "unable to envdir DIR: REASON" does.
func errnoOf(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}
