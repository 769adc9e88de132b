//go:build linux

package fdrestore

// Images (spec/fdrestore.md sections 4 and 5, version 1): the JSON document
// `dump` writes and `restore IMAGE` reads.
//
//   - [DecodeImage] is strict: it refuses unknown, misspelt (JSON keys are
//     matched exactly, not case-insensitively as encoding/json does) and
//     duplicate keys, wrong types, null, integers above 2^53, trailing
//     data, missing required fields, fields that do not belong to a file's
//     type, unknown types and flag words, and dangling references. Every
//     error is a usage error (exit 100) of one line that starts with
//     "image: "; errors about the JSON text give its line and column.
//   - [EncodeImage] writes the canonical form: two-space indent, processes
//     in the given order, map keys sorted, a file's fields in the order of
//     [File], empty optional fields left out, a trailing newline. It refuses
//     what [DecodeImage] would refuse, so what it writes can be read back.
//   - [Image.Validate] runs the checks that do not need the JSON text.
//
// encoding/json is used for the syntax check (its messages and offsets)
// and for writing; reading is a small walker over the checked text, driven
// by the Go types, because encoding/json matches keys case-insensitively,
// takes the last of duplicate keys, accepts null anywhere, silently
// replaces invalid UTF-8 and does not say where a field error is.
//
// The checks here are those that need nothing but the image. The plan
// (section 6.1) adds the rest: fd limits, exec paths, refusals of
// unrestorable files, --inherit-stdio and -- PROG.

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"golang.org/x/sys/unix"
)

// The values of an image's format and version fields that this code reads
// and writes.
const (
	ImageFormat  = "gotools-fdimage"
	ImageVersion = 1
)

// MaxImageInt is the largest integer an image holds as a JSON number (2^53,
// what a float64 reader keeps exactly); larger values are strings.
const MaxImageInt = 1 << 53

// Process group values of [Process.Pgrp] other than a process id.
const (
	PgrpInherit = "inherit" // the default: stay in the coordinator's group
	PgrpNew     = "new"     // setpgid(0, 0)
)

// File types (section 5).
const (
	TypeFile        = "file"
	TypeFIFO        = "fifo"
	TypePipe        = "pipe"
	TypeUnix        = "unix"
	TypeTCP         = "tcp"
	TypeUDP         = "udp"
	TypePTY         = "pty"
	TypeEpoll       = "epoll"
	TypeEventfd     = "eventfd"
	TypeSignalfd    = "signalfd"
	TypeTimerfd     = "timerfd"
	TypeMemfd       = "memfd"
	TypeInotify     = "inotify"
	TypeFanotify    = "fanotify"
	TypePidfd       = "pidfd"
	TypeUnsupported = "unsupported"
)

// Image is a decoded image. [DecodeImage] returns nil for every empty list
// and optional map, and a non-nil Files.
type Image struct {
	Format    string                `json:"format" image:"required"`
	Version   int                   `json:"version" image:"required"`
	Created   string                `json:"created,omitempty"` // RFC 3339, informational
	Racy      bool                  `json:"racy,omitempty"`    // dumped without --freeze
	Processes []*Process            `json:"processes" image:"required"`
	Files     map[string]*File      `json:"files" image:"required"`
	Pipes     map[string]*PipeState `json:"pipes,omitempty"`
	Ptys      map[string]*PTYState  `json:"ptys,omitempty"`
}

// Process is one process of an image.
type Process struct {
	ID   string   `json:"id" image:"required"`
	PID  int      `json:"pid,omitempty"`  // informational; what grab: sources name
	PPID int      `json:"ppid,omitempty"` // informational
	Comm string   `json:"comm,omitempty"` // informational
	Exec []string `json:"exec,omitempty"` // argv; nil: -- PROG must be given
	// Exe is the file the process ran (/proc/PID/exe), exec'd with Exec
	// as argv: a program that rewrote its argv (nginx's "nginx: worker
	// process") restores. Empty: Exec[0] is searched in PATH.
	Exe    string    `json:"exe,omitempty"`
	Setsid bool      `json:"setsid,omitempty"`
	Pgrp   string    `json:"pgrp,omitempty"` // "" or PgrpInherit, PgrpNew, or an earlier process's ID
	Ctty   string    `json:"ctty,omitempty"` // a file ID held by this process; implies setsid
	FDs    []ImageFD `json:"fds,omitempty"`
}

// Session reports whether the process starts a session: setsid, or a ctty
// (which needs one).
func (p *Process) Session() bool { return p.Setsid || p.Ctty != "" }

// ImageFD is one fd entry of a process: {fd, file, cloexec} or {fd, closed}.
type ImageFD struct {
	FD      int    `json:"fd" image:"required"`
	File    string `json:"file,omitempty"`
	Cloexec bool   `json:"cloexec,omitempty"` // informational in v1: fds are placed without it
	Closed  bool   `json:"closed,omitempty"`
}

// File is one open file description. It is flat: the fields after the
// common ones belong to the types named in their comments (section 5), and
// an image that sets a field its type lacks is refused.
type File struct {
	// Common to all types.
	Type    string   `json:"type"`
	Flags   []string `json:"flags,omitempty"`   // access mode and status flags; see [File.OpenFlags]
	Name    string   `json:"name,omitempty"`    // LISTEN_FDNAMES entry
	Source  string   `json:"source,omitempty"`  // a live source (fd:, grab:, hold:)
	Missing []string `json:"missing,omitempty"` // fields dump could not read

	Path    string  `json:"path,omitempty"`    // file, fifo, unix
	Pos     int64   `json:"pos,omitempty"`     // file, memfd
	Mode    uint32  `json:"mode,omitempty"`    // file
	Verify  *Verify `json:"verify,omitempty"`  // file
	Deleted bool    `json:"deleted,omitempty"` // file
	Pending int64   `json:"pending,omitempty"` // fifo, unix, tcp, udp: bytes queued
	DataB64 string  `json:"data_b64,omitempty"`

	Pipe string `json:"pipe,omitempty"` // pipe: key into Image.Pipes
	// End is "r", "w" or "rw" for a pipe, "master" or "slave" for a pty,
	// "0" or "1" for a unix socketpair end.
	End string `json:"end,omitempty"`

	SockType     string `json:"socktype,omitempty"` // unix: stream, dgram, seqpacket
	State        string `json:"state,omitempty"`    // unix: unbound bound listen connected; tcp, udp: bound listen established
	Backlog      int    `json:"backlog,omitempty"`  // unix, tcp, udp
	Pair         string `json:"pair,omitempty"`     // unix: socketpair name, with End
	Connect      string `json:"connect,omitempty"`  // unix: file ID of a listener in the image
	PeerExternal bool   `json:"peer_external,omitempty"`

	Addr      string `json:"addr,omitempty"` // tcp, udp: IP:PORT, [IPv6]:PORT
	Peer      string `json:"peer,omitempty"` // tcp, udp
	V6Only    bool   `json:"v6only,omitempty"`
	ReusePort bool   `json:"reuseport,omitempty"`

	PTY string `json:"pty,omitempty"` // pty: key into Image.Ptys

	Targets []EpollTarget `json:"targets,omitempty"` // epoll

	Count     string `json:"count,omitempty"` // eventfd: see [File.EventfdCount]
	Semaphore bool   `json:"semaphore,omitempty"`

	Sigmask string `json:"sigmask,omitempty"` // signalfd: see [File.SignalMask]

	Clock    string    `json:"clock,omitempty"`    // timerfd
	Value    *[2]int64 `json:"value,omitempty"`    // timerfd: [s, ns] remaining
	Interval *[2]int64 `json:"interval,omitempty"` // timerfd: [s, ns]
	Ticks    int64     `json:"ticks,omitempty"`
	Abstime  bool      `json:"abstime,omitempty"`

	MName string   `json:"mname,omitempty"` // memfd: name without "memfd:"
	Size  int64    `json:"size,omitempty"`  // memfd
	Seals []string `json:"seals,omitempty"` // memfd

	Link   string `json:"link,omitempty"`   // inotify, fanotify, pidfd, unsupported
	Reason string `json:"reason,omitempty"` // unsupported
}

// Verify identifies the file a `file` was opened on, to check a reopened
// path.
type Verify struct {
	Dev  string `json:"dev,omitempty"`  // "MAJ:MIN" of st_dev; see [Verify.Device]
	Ino  string `json:"ino,omitempty"`  // see [Verify.Inode]
	RDev string `json:"rdev,omitempty"` // "MAJ:MIN" of st_rdev
	Size *int64 `json:"size,omitempty"` // nil: not checked
}

// EpollTarget is one item of an epoll: file File registered under fd number
// FD of the registering process.
type EpollTarget struct {
	FD     int    `json:"fd" image:"required"`
	File   string `json:"file" image:"required"`
	Events string `json:"events" image:"required"` // see [EpollTarget.EventMask]
	Data   string `json:"data" image:"required"`   // see [EpollTarget.UserData]
}

// PipeState is one pipe of Image.Pipes.
type PipeState struct {
	Size    int64  `json:"size,omitempty"`    // F_GETPIPE_SZ
	Pending int64  `json:"pending,omitempty"` // bytes queued
	DataB64 string `json:"data_b64,omitempty"`
}

// PTYState is one pty of Image.Ptys.
type PTYState struct {
	Index   int       `json:"index"` // informational: a new pty gets a new number
	Termios *Termios  `json:"termios,omitempty"`
	Winsize [4]uint16 `json:"winsize"` // ws_row, ws_col, ws_xpixel, ws_ypixel
	Packet  bool      `json:"packet,omitempty"`
}

// NCCS is the number of c_cc bytes of the kernel's struct termios (not
// glibc's 32).
const NCCS = 19

// Termios is the kernel's struct termios (TCGETS).
type Termios struct {
	Iflag uint32 `json:"iflag" image:"required"`
	Oflag uint32 `json:"oflag" image:"required"`
	Cflag uint32 `json:"cflag" image:"required"`
	Lflag uint32 `json:"lflag" image:"required"`
	Line  uint8  `json:"line" image:"required"`
	CC    string `json:"cc" image:"required"` // "0x" and NCCS bytes in hex; see [Termios.CCBytes]
}

// DecodeImage reads an image. Every error is an [exitcode.Error] with code
// [exitcode.Usage] and a one-line message starting with "image: ".
func DecodeImage(data []byte) (*Image, error) {
	// Syntax first, trailing data included, with the scanner's messages
	// and offsets.
	if !json.Valid(data) {
		var raw json.RawMessage
		return nil, jsonErr(data, json.Unmarshal(data, &raw))
	}
	if !utf8.Valid(data) {
		// encoding/json would turn the bad bytes into U+FFFD: a path
		// would silently name another file.
		i := 0
		for {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, errAt(data, int64(i), "", "invalid UTF-8")
			}
			i += size
		}
	}
	w := walker{data: data, fileKeys: map[string]fieldSet{}}
	img := new(Image)
	if err := w.walk(reflect.ValueOf(img).Elem(), ""); err != nil {
		// An image of another version or format is told as such, rather
		// than by a field this version lacks.
		if herr := checkHeader(data); herr != nil {
			return nil, herr
		}
		return nil, err
	}
	if err := img.validate(w.fileKeys); err != nil {
		return nil, err
	}
	img.normalize()
	return img, nil
}

// EncodeImage writes img in its canonical form (see the top of this file).
// It refuses, with [DecodeImage]'s messages, an image that [DecodeImage]
// would refuse or could not read back as it is: integers beyond 2^53,
// strings with NUL or invalid UTF-8.
func EncodeImage(img *Image) ([]byte, error) {
	if err := img.Validate(); err != nil {
		return nil, err
	}
	if err := checkValues(reflect.ValueOf(img).Elem(), ""); err != nil {
		return nil, err
	}
	c := *img
	if c.Files == nil {
		c.Files = map[string]*File{}
	}
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, exitcode.Errorf(exitcode.Internal, "image: %w", err)
	}
	return append(b, '\n'), nil
}

// checkValues checks the values JSON text cannot carry as they are.
func checkValues(v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() { // left out, or refused by validate
			return nil
		}
		return checkValues(v.Elem(), path)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Field(i)
			if f.IsZero() {
				continue
			}
			if msg := leafErr(f); msg != "" {
				return imageErr("%s: %s", join(path, jsonName(v.Type().Field(i))), msg)
			}
			switch f.Kind() {
			case reflect.Pointer, reflect.Struct, reflect.Map, reflect.Slice, reflect.Array:
				if err := checkValues(f, join(path, jsonName(v.Type().Field(i)))); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			if err := checkValues(v.MapIndex(k), join(path, k.String())); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			p := path + "[" + strconv.Itoa(i) + "]"
			if msg := leafErr(v.Index(i)); msg != "" {
				return imageErr("%s: %s", p, msg)
			}
			if err := checkValues(v.Index(i), p); err != nil {
				return err
			}
		}
	}
	return nil
}

// leafErr checks a string or an integer; "" means it is fine.
func leafErr(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		switch s := v.String(); {
		case strings.IndexByte(s, 0) >= 0:
			return "NUL byte in string"
		case !utf8.ValidString(s):
			return "invalid UTF-8"
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n := v.Int(); n > MaxImageInt || n < -MaxImageInt {
			return fmt.Sprintf("%d is out of range (integers are at most 2^53)", n)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n := v.Uint(); n > MaxImageInt {
			return fmt.Sprintf("%d is out of range (integers are at most 2^53)", n)
		}
	}
	return ""
}

// Validate checks what [DecodeImage] checks beyond the JSON text: known
// types and words, fields that fit their file's type, values and
// references. Errors are as [DecodeImage]'s.
func (img *Image) Validate() error { return img.validate(nil) }

// Process returns the process with id, or nil.
func (img *Image) Process(id string) *Process {
	for _, p := range img.Processes {
		if p.ID == id {
			return p
		}
	}
	return nil
}

func imageErr(format string, args ...any) error {
	return exitcode.Errorf(exitcode.Usage, "image: "+format, args...)
}

// position turns a byte offset into a 1-based line and column (in
// characters), as editors count them.
func position(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	start := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte{'\n'}) + 1, utf8.RuneCount(before[start:]) + 1
}

func errAt(data []byte, off int64, path, format string, args ...any) error {
	line, col := position(data, off)
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	return imageErr("line %d column %d: %s", line, col, msg)
}

// jsonErr turns an encoding/json syntax error into an image error with a
// position.
func jsonErr(data []byte, err error) error {
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		return imageErr("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	off := syn.Offset
	if off > 0 && off <= int64(len(data)) && syn.Error() != "unexpected end of JSON input" {
		off-- // the offset counts the offending byte
	}
	return errAt(data, off, "", "%s", syn.Error())
}

// checkHeader checks format and version before anything else, so that an
// image of another version gets that message rather than one about a field
// this version lacks.
func checkHeader(data []byte) error {
	start := skipSpace(data, 0)
	if start < int64(len(data)) && data[start] != '{' {
		return errAt(data, start, "", "want an object, found %s", kindOf(data[start]))
	}
	var h struct {
		Format  json.RawMessage `json:"format"`
		Version json.RawMessage `json:"version"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return jsonErr(data, err)
	}
	var format string
	switch {
	case h.Format == nil || string(h.Format) == "null":
		return imageErr("format is missing: not a gotools fd image")
	case json.Unmarshal(h.Format, &format) != nil || format != ImageFormat:
		if h.Format[0] != '"' {
			return imageErr("format must be a string, found %s", kindOf(h.Format[0]))
		}
		return imageErr("format %s is not %q", q(format), ImageFormat)
	}
	switch v := string(h.Version); {
	case h.Version == nil || v == "null":
		return imageErr("version is missing")
	case v == strconv.Itoa(ImageVersion):
		return nil
	case v[0] == '-' || v[0] >= '0' && v[0] <= '9':
		return imageErr("version %s is not supported (this gotools reads version %d)", clip(v), ImageVersion)
	default:
		return imageErr("version must be a number, found %s", kindOf(v[0]))
	}
}

// clip shortens text for a message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// q quotes a string of the image for a one-line message.
func q(s string) string { return strconv.Quote(clip(s)) }

func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) && strings.IndexByte(" \t\r\n,:", data[off]) >= 0 {
		off++
	}
	return off
}

// kindOf names the JSON value that starts with c, for messages.
func kindOf(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// A schema lists the JSON fields of a struct type.
type schema struct {
	index    map[string]int // field index by exact JSON name
	names    []string       // JSON name by field index
	required []int          // tagged image:"required", in field order
}

// walker decodes the JSON text (already checked to be valid) into the Go
// types, so that every error has a position and a path: keys are matched
// exactly (encoding/json ignores case), duplicates and null are refused,
// Go arrays get exactly their length, integers fit their type and 2^53,
// and strings hold no NUL. It records the keys of each file, which the
// type-dependent checks of validate need.
type walker struct {
	data     []byte
	pos      int
	fileKeys map[string]fieldSet // by file ID
}

// schemas caches the schema of each struct type, built on first use (no
// init-time work) and shared by every decode: reading struct tags is most
// of a small image's decoding time.
var schemas sync.Map // reflect.Type -> *schema

func (w *walker) schema(t reflect.Type) *schema {
	if s, ok := schemas.Load(t); ok {
		return s.(*schema)
	}
	s := &schema{index: map[string]int{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name := jsonName(f)
		s.index[name] = i
		s.names = append(s.names, name)
		if f.Tag.Get("image") == "required" {
			s.required = append(s.required, i)
		}
	}
	schemas.Store(t, s)
	return s
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (w *walker) errAt(off int, path, format string, args ...any) error {
	return errAt(w.data, int64(off), path, format, args...)
}

// next skips blanks and separators and returns the offset of the next
// token; the text is valid JSON, so separators need no checking.
func (w *walker) next() int {
	for w.pos < len(w.data) && strings.IndexByte(" \t\r\n,:", w.data[w.pos]) >= 0 {
		w.pos++
	}
	return w.pos
}

// more reports whether the object or array being read has another item,
// and consumes its end if not.
func (w *walker) more() bool {
	if i := w.next(); i < len(w.data) && w.data[i] != '}' && w.data[i] != ']' {
		return true
	}
	w.pos++
	return false
}

// str reads the string at w.pos.
func (w *walker) str() string {
	start, esc := w.pos, false
	j := start + 1
	for ; j < len(w.data) && w.data[j] != '"'; j++ {
		if w.data[j] == '\\' {
			esc = true
			j++
		}
	}
	w.pos = j + 1
	if !esc {
		return string(w.data[start+1 : j])
	}
	var s string
	_ = json.Unmarshal(w.data[start:j+1], &s) // valid JSON: cannot fail
	return s
}

// scalar skips the number or literal at w.pos and returns its text.
func (w *walker) scalar() string {
	start := w.pos
	for w.pos < len(w.data) && strings.IndexByte("-+.eE0123456789truefalsn", w.data[w.pos]) >= 0 {
		w.pos++
	}
	return string(w.data[start:w.pos])
}

// walk reads the next value into v.
func (w *walker) walk(v reflect.Value, path string) error {
	off := w.next()
	if off >= len(w.data) {
		return w.errAt(off, path, "unexpected end of JSON input")
	}
	c := w.data[off]
	want := func(what string) error {
		return w.errAt(off, path, "want %s, found %s", what, kindOf(c))
	}
	if v.Kind() == reflect.Pointer {
		if c == 'n' {
			return want(article(v.Type().Elem()))
		}
		v.Set(reflect.New(v.Type().Elem()))
		v = v.Elem()
	}
	t := v.Type()
	switch t.Kind() {
	case reflect.Struct:
		if c != '{' {
			return want("an object")
		}
		w.pos++
		return w.object(v, path, off)
	case reflect.Map:
		if c != '{' {
			return want("an object")
		}
		w.pos++
		m := reflect.MakeMap(t)
		for w.more() {
			koff := w.pos
			key := w.str()
			if err := checkID(key); err != nil {
				return w.errAt(koff, path, "%v", err)
			}
			if m.MapIndex(reflect.ValueOf(key)).IsValid() {
				return w.errAt(koff, path, "%s appears twice", key)
			}
			ev := reflect.New(t.Elem()).Elem()
			if err := w.walk(ev, join(path, key)); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(key), ev)
		}
		v.Set(m)
	case reflect.Slice:
		if c != '[' {
			return want("an array")
		}
		w.pos++
		s := reflect.MakeSlice(t, 0, 0)
		for n := 0; w.more(); n++ {
			ev := reflect.New(t.Elem()).Elem()
			if err := w.walk(ev, path+"["+strconv.Itoa(n)+"]"); err != nil {
				return err
			}
			s = reflect.Append(s, ev)
		}
		v.Set(s)
	case reflect.Array:
		if c != '[' {
			return want("an array")
		}
		w.pos++
		n := 0
		for ; w.more(); n++ {
			if n >= t.Len() {
				return w.errAt(off, path, "want %d items, found more", t.Len())
			}
			if err := w.walk(v.Index(n), path+"["+strconv.Itoa(n)+"]"); err != nil {
				return err
			}
		}
		if n != t.Len() {
			return w.errAt(off, path, "want %d items, found %d", t.Len(), n)
		}
	case reflect.String:
		if c != '"' {
			return want("a string")
		}
		s := w.str()
		if strings.IndexByte(s, 0) >= 0 {
			return w.errAt(off, path, "NUL byte in string")
		}
		v.SetString(s)
	case reflect.Bool:
		if c != 't' && c != 'f' {
			return want("true or false")
		}
		v.SetBool(w.scalar() == "true")
	default: // the integer kinds
		if c != '-' && (c < '0' || c > '9') {
			return want("an integer")
		}
		n, err := parseInt(w.scalar(), t)
		if err != nil {
			return w.errAt(off, path, "%v", err)
		}
		if t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64 {
			v.SetUint(uint64(n))
		} else {
			v.SetInt(n)
		}
	}
	return nil
}

// article names what a Go type wants, for messages.
func article(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a value"
}

func (w *walker) object(v reflect.Value, path string, off int) error {
	s := w.schema(v.Type())
	var seen uint64 // by field index; structs here have fewer than 64 fields
	for w.more() {
		koff := w.pos
		key := w.str()
		i, ok := s.index[key]
		switch {
		case !ok:
			return w.errAt(koff, path, "unknown field %s", q(key))
		case seen&(1<<i) != 0:
			return w.errAt(koff, path, "field %s appears twice", key)
		}
		seen |= 1 << i
		if err := w.walk(v.Field(i), join(path, key)); err != nil {
			return err
		}
	}
	for _, i := range s.required {
		if seen&(1<<i) == 0 {
			return w.errAt(off, path, "%s is missing", s.names[i])
		}
	}
	if id, ok := strings.CutPrefix(path, "files."); ok && v.Type() == reflect.TypeFor[File]() {
		w.fileKeys[id] = fieldSet(seen)
	}
	return nil
}

// parseInt reads the JSON number s as an integer that fits t and 2^53.
func parseInt(s string, t reflect.Type) (int64, error) {
	if strings.ContainsAny(s, ".eE") {
		return 0, fmt.Errorf("%s is not an integer", clip(s))
	}
	digits, neg := strings.CutPrefix(s, "-")
	u, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || u > MaxImageInt {
		return 0, fmt.Errorf("%s is out of range (integers are at most 2^53)", clip(s))
	}
	var lo, hi uint64 // magnitudes allowed below and above 0
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		hi = 1<<(t.Bits()-1) - 1
		lo = hi + 1
	default:
		hi = 1<<t.Bits() - 1
	}
	if neg && u > lo || !neg && u > hi {
		return 0, fmt.Errorf("%s is out of range", clip(s))
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// checkID checks a process, file, pipe or pty id: 1 to 255 printable ASCII
// bytes, so that messages that name it stay one line.
func checkID(id string) error {
	if id == "" || len(id) > 255 {
		return fmt.Errorf("id %s must be 1 to 255 bytes", q(id))
	}
	for i := range len(id) {
		if id[i] <= ' ' || id[i] > '~' {
			return fmt.Errorf("id %s must be printable ASCII without spaces", q(id))
		}
	}
	return nil
}

// ParseNumber reads the numbers an image holds as strings (ino, eventfd
// count, epoll events and data, sigmask): decimal without leading zeros, or
// "0x" and 1 to 16 hex digits.
func ParseNumber(s string) (uint64, error) {
	if hexDigits, ok := strings.CutPrefix(s, "0x"); ok {
		if hexDigits == "" || len(hexDigits) > 16 || strings.TrimLeft(hexDigits, "0123456789abcdefABCDEF") != "" {
			return 0, fmt.Errorf("bad number %s", q(s))
		}
		return strconv.ParseUint(hexDigits, 16, 64)
	}
	if s == "" || s[0] == '0' && s != "0" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("bad number %s: want decimal, or hex with 0x", q(s))
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("number %s is out of range", s)
	}
	return n, nil
}

// ParseDev reads a device number "MAJ:MIN" (decimal) into a dev_t, as
// [unix.Mkdev] makes it.
func ParseDev(s string) (uint64, error) {
	maj, mnr, ok := strings.Cut(s, ":")
	parse := func(p string) (uint32, bool) {
		if p == "" || p[0] == '0' && p != "0" || strings.TrimLeft(p, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseUint(p, 10, 32)
		return uint32(n), err == nil
	}
	ma, ok1 := parse(maj)
	mi, ok2 := parse(mnr)
	if !ok || !ok1 || !ok2 {
		return 0, fmt.Errorf("bad device %s: want MAJOR:MINOR", q(s))
	}
	return unix.Mkdev(ma, mi), nil
}

// FormatDev writes a dev_t as [ParseDev] reads it.
func FormatDev(dev uint64) string {
	return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
}

// Device returns st_dev; ok is false if the image does not give it.
func (v *Verify) Device() (dev uint64, ok bool, err error) { return optional(v.Dev, ParseDev) }

// RDevice returns st_rdev; ok is false if the image does not give it.
func (v *Verify) RDevice() (dev uint64, ok bool, err error) { return optional(v.RDev, ParseDev) }

// Inode returns st_ino; ok is false if the image does not give it.
func (v *Verify) Inode() (ino uint64, ok bool, err error) { return optional(v.Ino, ParseNumber) }

func optional(s string, parse func(string) (uint64, error)) (uint64, bool, error) {
	if s == "" {
		return 0, false, nil
	}
	n, err := parse(s)
	return n, err == nil, err
}

// EventMask returns the epoll_event events.
func (t *EpollTarget) EventMask() (uint32, error) {
	n, err := ParseNumber(t.Events)
	if err == nil && n > 1<<32-1 {
		err = fmt.Errorf("events %s do not fit 32 bits", t.Events)
	}
	return uint32(n), err
}

// UserData returns the epoll_event data.
func (t *EpollTarget) UserData() (uint64, error) { return ParseNumber(t.Data) }

// maxEventfd is the largest eventfd counter, 0xfffffffffffffffe
// (eventfd(2)).
const maxEventfd = 1<<64 - 2

// EventfdCount returns an eventfd's counter.
func (f *File) EventfdCount() (uint64, error) {
	n, err := ParseNumber(f.Count)
	if err == nil && n > maxEventfd {
		err = fmt.Errorf("count %s is above 0xfffffffffffffffe", f.Count)
	}
	return n, err
}

// SignalMask returns a signalfd's mask, bit n-1 for signal n.
func (f *File) SignalMask() (uint64, error) { return ParseNumber(f.Sigmask) }

// Data returns the decoded data_b64 of a fifo or memfd.
func (f *File) Data() ([]byte, error) { return base64.StdEncoding.Strict().DecodeString(f.DataB64) }

// Data returns the decoded data_b64 of a pipe.
func (p *PipeState) Data() ([]byte, error) {
	return base64.StdEncoding.Strict().DecodeString(p.DataB64)
}

// CCBytes returns c_cc.
func (t *Termios) CCBytes() ([NCCS]byte, error) {
	var cc [NCCS]byte
	h, ok := strings.CutPrefix(t.CC, "0x")
	if !ok || len(h) != 2*NCCS {
		return cc, fmt.Errorf("cc must be 0x and %d hex digits", 2*NCCS)
	}
	if _, err := hex.Decode(cc[:], []byte(h)); err != nil {
		return cc, fmt.Errorf("cc must be 0x and %d hex digits", 2*NCCS)
	}
	return cc, nil
}

var accessModes = lazyMap[string, int]{build: func() map[string]int {
	return map[string]int{
		"rdonly": unix.O_RDONLY,
		"wronly": unix.O_WRONLY,
		"rdwr":   unix.O_RDWR,
		"path":   unix.O_PATH,
	}
}}

var statusFlags = lazyMap[string, int]{build: func() map[string]int {
	return map[string]int{
		"append":   unix.O_APPEND,
		"nonblock": unix.O_NONBLOCK,
		"direct":   unix.O_DIRECT,
		"noatime":  unix.O_NOATIME,
		"sync":     unix.O_SYNC,
		"dsync":    unix.O_DSYNC,
		"async":    unix.O_ASYNC,
	}
}}

var pipeEndModes = lazyMap[string, string]{build: func() map[string]string {
	return map[string]string{"r": "rdonly", "w": "wronly", "rw": "rdwr"}
}}

// AccessMode returns the access mode word of the file, its default if
// Flags has none: rdonly for file and fifo, the end's for a pipe, else
// rdwr.
func (f *File) AccessMode() string {
	for _, w := range f.Flags {
		if _, ok := accessModes.get()[w]; ok {
			return w
		}
	}
	switch f.Type {
	case TypeFile, TypeFIFO:
		return "rdonly"
	case TypePipe:
		if m, ok := pipeEndModes.get()[f.End]; ok {
			return m
		}
	}
	return "rdwr"
}

// OpenFlags returns the file's access mode and status flags as open(2)
// flags (without O_CLOEXEC). Unknown words are ignored: a decoded image has
// none.
func (f *File) OpenFlags() int {
	fl := accessModes.get()[f.AccessMode()]
	for _, w := range f.Flags {
		fl |= statusFlags.get()[w]
	}
	return fl
}

// typeFields lists the fields of each type besides the common ones,
// required ones marked with a final '*'.
var typeFields = lazyMap[string, []string]{build: func() map[string][]string {
	return map[string][]string{
		TypeFile:        {"path*", "pos", "mode", "verify", "deleted"},
		TypeFIFO:        {"path*", "pending", "data_b64"},
		TypePipe:        {"pipe*", "end*"},
		TypeUnix:        {"socktype*", "state*", "path", "backlog", "pending", "pair", "end", "connect", "peer_external"},
		TypeTCP:         {"state*", "addr*", "peer", "backlog", "pending", "v6only", "reuseport"},
		TypeUDP:         {"state*", "addr*", "peer", "backlog", "pending", "v6only", "reuseport"},
		TypePTY:         {"pty*", "end*"},
		TypeEpoll:       {"targets*"},
		TypeEventfd:     {"count*", "semaphore"},
		TypeSignalfd:    {"sigmask*"},
		TypeTimerfd:     {"clock*", "value", "interval", "ticks", "abstime"},
		TypeMemfd:       {"mname*", "size", "pos", "seals", "data_b64"},
		TypeInotify:     {"link"},
		TypeFanotify:    {"link"},
		TypePidfd:       {"link"},
		TypeUnsupported: {"link*", "reason"},
	}
}}

var commonFields = []string{"type", "flags", "name", "source", "missing"}

// fieldSet is a set of [File] fields, bit i for field index i.
type fieldSet uint64

// fileSchema describes [File]'s fields: their JSON names and which of them
// each type allows and requires.
type fileSchema struct {
	names    []string // by field index
	index    map[string]int
	allowed  map[string]fieldSet // by type
	required map[string]fieldSet // by type
}

// fileFields is built on first use (no work at package init).
var fileFields = sync.OnceValue(func() *fileSchema {
	t := reflect.TypeFor[File]()
	s := &fileSchema{index: map[string]int{}, allowed: map[string]fieldSet{}, required: map[string]fieldSet{}}
	for i := range t.NumField() {
		s.names = append(s.names, jsonName(t.Field(i)))
		s.index[s.names[i]] = i
	}
	for typ, fields := range typeFields.get() {
		for _, f := range append(commonFields, fields...) {
			name, req := strings.CutSuffix(f, "*")
			bit := fieldSet(1) << s.index[name]
			s.allowed[typ] |= bit
			if req || name == "type" {
				s.required[typ] |= bit
			}
		}
	}
	return s
})

// first returns the JSON name of the first field of set, in struct order.
func (s *fileSchema) first(set fieldSet) string {
	for i, name := range s.names {
		if set&(1<<i) != 0 {
			return name
		}
	}
	return ""
}

// jsonName is a struct field's JSON key.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// emitted returns the fields [File.MarshalJSON] writes: those that are not
// empty (as omitempty means it) and those the type requires.
func (f *File) emitted() fieldSet {
	set := fileFields().required[f.Type]
	v := reflect.ValueOf(f).Elem()
	for i := range v.NumField() {
		fv := v.Field(i)
		if fv.Kind() == reflect.Slice && fv.Len() == 0 || fv.IsZero() {
			continue
		}
		set |= 1 << i
	}
	return set
}

// plainFile is [File] without its MarshalJSON method.
type plainFile File

// MarshalJSON writes the file as encoding/json does with omitempty, plus
// the two fields that a type requires and that can be valid and empty: an
// epoll's "targets": [] and a memfd's "mname": "" (written last).
func (f File) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal((*plainFile)(&f))
	if err != nil {
		return nil, err
	}
	var extra string
	switch {
	case f.Type == TypeEpoll && len(f.Targets) == 0:
		extra = `,"targets":[]`
	case f.Type == TypeMemfd && f.MName == "":
		extra = `,"mname":""`
	default:
		return b, nil
	}
	return append(b[:len(b)-1], extra+"}"...), nil
}

// normalize makes empty lists and optional maps nil, and Files non-nil, so
// that a decoded image compares equal to its re-encoded decoding.
func (img *Image) normalize() {
	if img.Files == nil {
		img.Files = map[string]*File{}
	}
	if len(img.Pipes) == 0 {
		img.Pipes = nil
	}
	if len(img.Ptys) == 0 {
		img.Ptys = nil
	}
	for _, p := range img.Processes {
		if len(p.FDs) == 0 {
			p.FDs = nil
		}
	}
	for _, f := range img.Files {
		for _, s := range []*[]string{&f.Flags, &f.Missing, &f.Seals} {
			if len(*s) == 0 {
				*s = nil
			}
		}
		if len(f.Targets) == 0 {
			f.Targets = nil
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// validate runs the checks of [Image.Validate]. fileKeys holds the JSON keys
// of each file when decoding; nil means the keys [File.MarshalJSON] would
// write.
func (img *Image) validate(fileKeys map[string]fieldSet) error {
	if img.Format != ImageFormat {
		return imageErr("format %s is not %q", q(img.Format), ImageFormat)
	}
	if img.Version != ImageVersion {
		return imageErr("version %d is not supported (this gotools reads version %d)", img.Version, ImageVersion)
	}
	if img.Created != "" {
		if _, err := time.Parse(time.RFC3339, img.Created); err != nil {
			return imageErr("created %s is not an RFC 3339 time", q(img.Created))
		}
	}
	for _, id := range sortedKeys(img.Pipes) {
		if err := validatePipe(id, img.Pipes[id]); err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(img.Ptys) {
		if err := validatePTY(id, img.Ptys[id]); err != nil {
			return err
		}
	}
	ids := sortedKeys(img.Files)
	for _, id := range ids {
		f := img.Files[id]
		if err := checkID(id); err != nil {
			return imageErr("files: %v", err)
		}
		if f == nil {
			return imageErr("files.%s: null file", id)
		}
		keys, ok := fileKeys[id]
		if !ok {
			keys = f.emitted()
		}
		if err := img.validateFile(id, f, keys); err != nil {
			return imageErr("files.%s: %v", id, err)
		}
	}
	if err := img.checkLinks(ids); err != nil {
		return err
	}
	return img.validateProcesses()
}

func validatePipe(id string, p *PipeState) error {
	if err := checkID(id); err != nil {
		return imageErr("pipes: %v", err)
	}
	if p == nil {
		return imageErr("pipes.%s: null pipe", id)
	}
	if p.Size < 0 || p.Pending < 0 || p.Size > 0 && p.Pending > p.Size {
		return imageErr("pipes.%s: pending %d does not fit size %d", id, p.Pending, p.Size)
	}
	if err := checkData(p.DataB64, p.Pending, "pending"); err != nil {
		return imageErr("pipes.%s: %v", id, err)
	}
	return nil
}

func validatePTY(id string, p *PTYState) error {
	if err := checkID(id); err != nil {
		return imageErr("ptys: %v", err)
	}
	if p == nil {
		return imageErr("ptys.%s: null pty", id)
	}
	if p.Index < 0 {
		return imageErr("ptys.%s: index %d is negative", id, p.Index)
	}
	if p.Termios != nil {
		if _, err := p.Termios.CCBytes(); err != nil {
			return imageErr("ptys.%s: termios %v", id, err)
		}
	}
	return nil
}

// checkData checks a data_b64 field against the byte count n it must hold.
func checkData(b64 string, n int64, what string) error {
	if b64 == "" {
		return nil
	}
	data, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return errors.New("data_b64 is not base64")
	}
	if int64(len(data)) != n {
		return fmt.Errorf("data_b64 holds %d bytes, %s says %d", len(data), what, n)
	}
	return nil
}

func checkWord(field, w string, words ...string) error {
	if !slices.Contains(words, w) {
		return fmt.Errorf("bad %s %s (want %s)", field, q(w), strings.Join(words, ", "))
	}
	return nil
}

// validateFile checks one file; keys are its JSON keys. Errors are without
// the "image: files.ID: " prefix.
func (img *Image) validateFile(id string, f *File, keys fieldSet) error {
	if f.Type == "" {
		return errors.New("type is missing")
	}
	s := fileFields()
	allowed, ok := s.allowed[f.Type]
	if !ok {
		return fmt.Errorf("unknown type %s", q(f.Type))
	}
	if extra := keys &^ allowed; extra != 0 {
		return fmt.Errorf("field %s does not apply to type %s", s.first(extra), f.Type)
	}
	if missing := s.required[f.Type] &^ keys; missing != 0 {
		return fmt.Errorf("%s is missing", s.first(missing))
	}
	if err := checkFlags(f); err != nil {
		return err
	}
	if f.Name != "" {
		if err := CheckName(f.Name); err != nil {
			return fmt.Errorf("name %s: %w", q(f.Name), err)
		}
	}
	if f.Source != "" {
		src, err := ParseSource(f.Source)
		if err != nil {
			return fmt.Errorf("invalid source: %v", unwrapUsage(err))
		}
		if !src.Kind.Live() {
			return fmt.Errorf("source %s is not a live source (fd:, grab: or hold:)", q(f.Source))
		}
	}
	for i, m := range f.Missing {
		if m == "" || slices.Contains(f.Missing[:i], m) {
			return fmt.Errorf("missing: bad or repeated entry %s", q(m))
		}
	}
	for _, n := range []struct {
		name string
		v    int64
	}{{"pos", f.Pos}, {"pending", f.Pending}, {"backlog", int64(f.Backlog)}, {"ticks", f.Ticks}, {"size", f.Size}} {
		if n.v < 0 {
			return fmt.Errorf("%s %d is negative", n.name, n.v)
		}
	}
	switch f.Type {
	case TypeFile, TypeFIFO:
		if f.Path == "" {
			return errors.New("path is empty")
		}
		if f.Type == TypeFIFO {
			return checkData(f.DataB64, f.Pending, "pending")
		}
		return checkVerify(f.Verify)
	case TypePipe:
		if _, ok := img.Pipes[f.Pipe]; !ok {
			return fmt.Errorf("pipe %s is not in pipes", f.Pipe)
		}
		if err := checkWord("end", f.End, "r", "w", "rw"); err != nil {
			return err
		}
		if m := f.AccessMode(); m != pipeEndModes.get()[f.End] {
			return fmt.Errorf("access mode %s does not match pipe end %s", m, f.End)
		}
	case TypeUnix:
		return img.checkUnix(id, f)
	case TypeTCP, TypeUDP:
		return checkInet(f)
	case TypePTY:
		if _, ok := img.Ptys[f.PTY]; !ok {
			return fmt.Errorf("pty %s is not in ptys", f.PTY)
		}
		return checkWord("end", f.End, "master", "slave")
	case TypeEpoll:
		return img.checkEpoll(id, f)
	case TypeEventfd:
		if _, err := f.EventfdCount(); err != nil {
			return fmt.Errorf("count: %v", err)
		}
	case TypeSignalfd:
		if _, err := f.SignalMask(); err != nil {
			return fmt.Errorf("sigmask: %v", err)
		}
	case TypeTimerfd:
		return checkTimer(f)
	case TypeMemfd:
		if len(f.MName) > maxMemfdName {
			return fmt.Errorf("mname is longer than %d bytes", maxMemfdName)
		}
		for i, s := range f.Seals {
			if err := checkWord("seal", s, "seal", "shrink", "grow", "write", "future_write"); err != nil {
				return err
			}
			if slices.Contains(f.Seals[:i], s) {
				return fmt.Errorf("seal %s given twice", s)
			}
		}
		return checkData(f.DataB64, f.Size, "size")
	case TypeUnsupported:
		if f.Link == "" {
			return errors.New("link is empty")
		}
	}
	return nil
}

func checkFlags(f *File) error {
	mode := ""
	for i, w := range f.Flags {
		_, isMode := accessModes.get()[w]
		if _, ok := statusFlags.get()[w]; !ok && !isMode {
			return fmt.Errorf("unknown flag %s", q(w))
		}
		if slices.Contains(f.Flags[:i], w) {
			return fmt.Errorf("flag %s given twice", w)
		}
		if isMode {
			if mode != "" {
				return fmt.Errorf("flags %s and %s are both access modes", mode, w)
			}
			mode = w
		}
	}
	return nil
}

func checkVerify(v *Verify) error {
	if v == nil {
		return nil
	}
	if _, _, err := v.Device(); err != nil {
		return fmt.Errorf("verify dev: %v", err)
	}
	if _, _, err := v.RDevice(); err != nil {
		return fmt.Errorf("verify rdev: %v", err)
	}
	if _, _, err := v.Inode(); err != nil {
		return fmt.Errorf("verify ino: %v", err)
	}
	if v.Size != nil && *v.Size < 0 {
		return fmt.Errorf("verify size %d is negative", *v.Size)
	}
	return nil
}

func (img *Image) checkUnix(id string, f *File) error {
	if err := checkWord("socktype", f.SockType, "stream", "dgram", "seqpacket"); err != nil {
		return err
	}
	if err := checkWord("state", f.State, "unbound", "bound", "listen", "connected"); err != nil {
		return err
	}
	if f.State == "listen" && f.SockType == "dgram" {
		return errors.New("a dgram socket cannot listen")
	}
	if (f.Pair == "") != (f.End == "") {
		return errors.New("pair and end go together")
	}
	if f.Pair != "" {
		if err := checkWord("end", f.End, "0", "1"); err != nil {
			return err
		}
		if f.State != "connected" || f.Connect != "" || f.PeerExternal {
			return errors.New("a socketpair end is connected, to its pair only")
		}
	}
	if f.Connect != "" {
		l := img.Files[f.Connect]
		if l == nil {
			return fmt.Errorf("connect refers to unknown file %s", f.Connect)
		}
		if l.Type != TypeUnix || l.State != "listen" || l.SockType != f.SockType {
			return fmt.Errorf("connect target %s is not a listening unix %s socket", f.Connect, f.SockType)
		}
		if f.State != "connected" || f.PeerExternal {
			return errors.New("a socket that connects is connected, to the image's listener only")
		}
	}
	return nil
}

func checkInet(f *File) error {
	if err := checkWord("state", f.State, "bound", "listen", "established"); err != nil {
		return err
	}
	if f.Type == TypeUDP && f.State == "listen" {
		return errors.New("a udp socket cannot listen")
	}
	if _, err := netip.ParseAddrPort(f.Addr); err != nil {
		return fmt.Errorf("bad addr %s: want IP:PORT or [IPv6]:PORT", q(f.Addr))
	}
	if f.Peer != "" {
		if _, err := netip.ParseAddrPort(f.Peer); err != nil {
			return fmt.Errorf("bad peer %s: want IP:PORT or [IPv6]:PORT", q(f.Peer))
		}
	}
	return nil
}

func (img *Image) checkEpoll(id string, f *File) error {
	for i, t := range f.Targets {
		if t.FD < 0 || t.FD > MaxFD {
			return fmt.Errorf("target fd %d is out of range", t.FD)
		}
		if _, ok := img.Files[t.File]; !ok {
			return fmt.Errorf("target fd %d refers to unknown file %s", t.FD, t.File)
		}
		if t.File == id {
			return fmt.Errorf("target fd %d is the epoll itself", t.FD)
		}
		if _, err := t.EventMask(); err != nil {
			return fmt.Errorf("target fd %d: events: %v", t.FD, err)
		}
		if _, err := t.UserData(); err != nil {
			return fmt.Errorf("target fd %d: data: %v", t.FD, err)
		}
		for _, u := range f.Targets[:i] {
			if u.FD == t.FD && u.File == t.File {
				return fmt.Errorf("target fd %d file %s appears twice", t.FD, t.File)
			}
		}
	}
	return nil
}

func checkTimer(f *File) error {
	if err := checkWord("clock", f.Clock, "realtime", "monotonic", "boottime", "realtime_alarm", "boottime_alarm"); err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		ts   *[2]int64
	}{{"value", f.Value}, {"interval", f.Interval}} {
		if v.ts != nil && (v.ts[0] < 0 || v.ts[1] < 0 || v.ts[1] >= 1e9) {
			return fmt.Errorf("%s %v: want [seconds, nanoseconds] with 0 <= nanoseconds < 1e9", v.name, *v.ts)
		}
	}
	return nil
}

// checkLinks checks what relates files to each other: one description per
// socketpair end and per pty master, and no loop of epolls.
func (img *Image) checkLinks(ids []string) error {
	ends := map[[2]string]string{}
	for _, id := range ids {
		f := img.Files[id]
		var key [2]string
		switch {
		case f.Type == TypeUnix && f.Pair != "":
			key = [2]string{"pair " + f.Pair, f.End}
			other := img.Files[ends[[2]string{"pair " + f.Pair, map[string]string{"0": "1", "1": "0"}[f.End]}]]
			if other != nil && other.SockType != f.SockType {
				return imageErr("files.%s: socketpair %s: its ends differ in socktype", id, f.Pair)
			}
		case f.Type == TypePTY && f.End == "master":
			key = [2]string{"pty " + f.PTY, f.End}
		default:
			continue
		}
		if prev, ok := ends[key]; ok {
			return imageErr("files.%s: %s %s is also files.%s", id, key[0], key[1], prev)
		}
		ends[key] = id
	}
	// Epolls form a graph through their targets; the kernel refuses a loop
	// (ELOOP), and the engine registers targets before their epolls.
	state := map[string]int{} // 1: on the path, 2: done
	var visit func(id string) string
	visit = func(id string) string {
		state[id] = 1
		for _, t := range img.Files[id].Targets {
			if img.Files[t.File].Type != TypeEpoll {
				continue
			}
			switch state[t.File] {
			case 1:
				return t.File
			case 0:
				if loop := visit(t.File); loop != "" {
					return loop
				}
			}
		}
		state[id] = 2
		return ""
	}
	for _, id := range ids {
		if img.Files[id].Type == TypeEpoll && state[id] == 0 {
			if loop := visit(id); loop != "" {
				return imageErr("files.%s: epoll targets loop back to %s", id, loop)
			}
		}
	}
	return nil
}

func (img *Image) validateProcesses() error {
	if len(img.Processes) == 0 {
		return imageErr("no processes")
	}
	index := map[string]int{}
	for i, p := range img.Processes {
		if p == nil {
			return imageErr("processes[%d]: null process", i)
		}
		if err := checkID(p.ID); err != nil {
			return imageErr("processes[%d]: %v", i, err)
		}
		if _, ok := index[p.ID]; ok {
			return imageErr("process id %s appears twice", p.ID)
		}
		index[p.ID] = i
		if err := img.validateProcess(p, index); err != nil {
			return imageErr("process %s: %v", p.ID, err)
		}
	}
	return nil
}

// validateProcess checks p; index holds the earlier processes. Errors are
// without the "image: process ID: " prefix.
func (img *Image) validateProcess(p *Process, index map[string]int) error {
	if p.PID < 0 || p.PID > MaxFD || p.PPID < 0 || p.PPID > MaxFD {
		return fmt.Errorf("pid %d or ppid %d is out of range", p.PID, p.PPID)
	}
	if p.Exec != nil && (len(p.Exec) == 0 || p.Exec[0] == "") {
		return errors.New("exec is empty")
	}
	if p.Exe != "" && !strings.HasPrefix(p.Exe, "/") {
		return fmt.Errorf("exe %q is not an absolute path", p.Exe)
	}
	seen := map[int]bool{}
	held := map[string]bool{}
	for _, e := range p.FDs {
		if e.FD < 0 || e.FD > MaxFD {
			return fmt.Errorf("fd %d is out of range", e.FD)
		}
		if seen[e.FD] {
			return fmt.Errorf("fd %d appears twice", e.FD)
		}
		seen[e.FD] = true
		switch {
		case e.Closed && (e.File != "" || e.Cloexec):
			return fmt.Errorf("fd %d is closed and has a file or cloexec", e.FD)
		case e.Closed:
			continue
		case e.File == "":
			return fmt.Errorf("fd %d has no file (give file, or closed: true)", e.FD)
		}
		if _, ok := img.Files[e.File]; !ok {
			return fmt.Errorf("fd %d refers to unknown file %s", e.FD, e.File)
		}
		held[e.File] = true
	}
	switch p.Pgrp {
	case "", PgrpInherit, PgrpNew:
	default:
		leader, ok := index[p.Pgrp]
		if !ok || img.Processes[leader] == p {
			return fmt.Errorf("pgrp %s is not an earlier process", p.Pgrp)
		}
		if p.Session() {
			return fmt.Errorf("pgrp %s: a process that starts a session (setsid, ctty) cannot join a group", p.Pgrp)
		}
		if img.Processes[leader].Session() {
			return fmt.Errorf("pgrp %s: that process starts a session, so its group is in another one", p.Pgrp)
		}
	}
	if p.Ctty != "" {
		f, ok := img.Files[p.Ctty]
		switch {
		case !ok:
			return fmt.Errorf("ctty refers to unknown file %s", p.Ctty)
		case !held[p.Ctty]:
			return fmt.Errorf("ctty %s is not one of its fds", p.Ctty)
		case !(f.Type == TypePTY && f.End == "slave" || f.Type == TypeFile):
			return fmt.Errorf("ctty %s is not a terminal (type %s)", p.Ctty, f.Type)
		}
	}
	return nil
}
