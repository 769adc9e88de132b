// Package shmlock is the shmlock applet: the command line of lib/shm's
// shared-memory lock segments (spec/shmlock.md, "The applet").
//
// Synopsis
//
//	shmlock [ --dir DIR ] [ --any-owner ] COMMAND ...
//
//	create [ -m MODE ] [ --max N ] NAME COUNT
//	open NAME [ COUNT ]
//	alloc [ --index I ] [ --tag T ] NAME
//	free NAME IDX... | free --all NAME
//	lock [ -n | -t MS ] [ -k ] NAME IDX prog...
//	unlock NAME IDX
//	status [ --json ] [ --all ] NAME [ IDX... ]
//	grow NAME COUNT
//	gc NAME
//	unlink NAME
//	inspect [ --podman ] NAME
//
// A NAME is podman's form, "/name" or "name", a file in DIR (/dev/shm by
// default). Numbers are decimal; tags also take 0x hex. open and inspect
// print a summary of "key value" lines; status prints one tab-separated
// line per index, "index state pid comm held_ms waiters tag flags", or one
// JSON object per line with --json. inspect --podman decodes one of
// podman's own segments (x86_64 or aarch64 glibc layout) without mapping or
// writing it: a summary, then "index state allocated tid pid comm flags"
// for every allocated or locked index, as podman#29646 needed by hand.
//
// lock takes lock IDX (-n: fails at once if it is busy; -t MS: gives up
// after MS milliseconds, 0 meaning never; -n wins), then spawns prog as its
// child (it must not exec: the kernel treats an exec as the holder's death
// and would hand the lock on), forwards it every signal it catches, and
// when prog exits unlocks and exits with prog's status, approximated. -k
// gives prog PR_SET_PDEATHSIG=SIGKILL, so that prog dies with shmlock.
//
// Exit codes
//
//	0        success
//	1        refused by the segment's state: busy (-n), timed out (-t), exists
//	         (create, alloc --index), a free index freed, full, not held or a
//	         live owner's lock (unlock)
//	100      usage error, an index out of range, a bad name or count, a bad
//	         live tag on gc's stdin
//	111      the segment cannot be created, opened, mapped or read, grow past
//	         its capacity (EFBIG), or another system call failed
//	126/127  prog could not be run / was not found (the lock is released first)
//	n, 128+n prog's exit code (approximated), or the signal that killed it;
//	         128+n also when signal n (TERM, INT, HUP, QUIT) ends a lock wait
//
// # Differences from podman
//
// podman has no command line for its locks. lib/shm keeps its own
// architecture-independent format (podman's segments are only decoded by
// inspect --podman), in multiples of 64 locks, owned by processes rather
// than threads, and adds try-lock, timeouts, owner queries, forced release
// of dead owners' locks, growth and allocation tags with GC.
//
// # Test hooks
//
// GOTOOLS_SHM_NO_ROBUST=1, read by lib/shm, skips the registration of the
// kernel's robust-futex list: a dead holder's locks are then recovered by
// the owner liveness check alone (status shows them "uncovered").
package shmlock

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"
	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/shm"
)

// Applet is shmlock's registry entry.
var Applet = cli.Applet{
	Name:    "shmlock",
	Summary: "create, inspect and hold locks in a shared-memory lock segment",
	Usage:   "[ --dir DIR ] [ --any-owner ] create|open|alloc|free|lock|unlock|status|grow|gc|unlink|inspect ...",
	Help: `Commands (NAME is "/name" or "name", a file in DIR, /dev/shm by default):
  create [-m MODE] [--max N] NAME COUNT   create a segment of COUNT locks
  open NAME [COUNT]                       check it opens (with COUNT), print a summary
  alloc [--index I] [--tag T] NAME        allocate a lock, print its index
  free NAME IDX... | free --all NAME      deallocate
  lock [-n | -t MS] [-k] NAME IDX prog... run prog while holding lock IDX
  unlock NAME IDX                         release a dead owner's lock
  status [--json] [--all] NAME [IDX...]   held locks, or the given ones, or all allocated
  grow NAME COUNT                         grow the segment to COUNT locks
  gc NAME                                 free tagged locks whose tag is not on stdin
  unlink NAME                             remove the segment's name
  inspect [--podman] NAME                 print the header and counters, or
                                          decode a podman segment (read-only)
A segment that belongs to neither you nor root is refused (exit 111):
another user who created the name first could hold or forge its locks;
--any-owner accepts it. status and inspect only read, and accept any.
Numbers are decimal; tags also 0x hex. A status line is "index state pid
comm held_ms waiters tag flags", tab-separated; state is held, held-dead,
held-reused, held-unknown, owner-died or free; flags among recovered and
uncovered, "-" for none. inspect --podman prints a summary, then per
allocated or locked index "index state allocated tid pid comm flags",
flags among waiters, owner-died and gone.

lock spawns prog (never execs it: that would hand the lock on), forwards
it every signal but CHLD and URG, and exits with its status; -n fails at
once if the lock is busy, -t MS gives up after MS ms (0: never), -k kills
prog if shmlock dies. After a dead owner's lock is taken over, prog gets
SHMLOCK_OWNER_DIED=PID.

Exit codes: 1 refused (busy, timed out, exists, not allocated, full, not
held, a live owner's lock); 100 usage, an index out of range; 111 the
segment cannot be created, opened or read, or a system call failed; 126/127
prog not runnable/not found; otherwise prog's code, approximated.

Differences from podman: its own arch-independent format (multiples of 64
locks), locks owned by processes, not threads; try-lock, timeouts, owner
queries, forced release of dead owners, growth, tags and GC. Works without
cgo in a static binary.

Test hooks: GOTOOLS_SHM_NO_ROBUST=1 (read by lib/shm) skips the kernel's
robust-futex list, so that a dead holder's lock is recovered only by the
owner liveness check (the "uncovered" flag).`,
	New: func() cli.Command { return new(command) },
}

type command struct {
	Dir      string `name:"dir" placeholder:"DIR" help:"The directory of the segments (a tmpfs; default /dev/shm)."`
	AnyOwner bool   `name:"any-owner" help:"Use a segment that belongs to neither you nor root (refused by default)."`

	Create  createCmd  `cmd:"" synopsis:"[ -m MODE ] [ --max N ] NAME COUNT" help:"Create a segment of COUNT locks (rounded up to a multiple of 64)."`
	Open    openCmd    `cmd:"" synopsis:"NAME [ COUNT ]" help:"Open a segment (checking COUNT if given) and print its summary."`
	Alloc   allocCmd   `cmd:"" synopsis:"[ --index I ] [ --tag T ] NAME" help:"Allocate a lock and print its index."`
	Free    freeCmd    `cmd:"" synopsis:"NAME IDX... | free --all NAME" help:"Deallocate locks."`
	Lock    lockCmd    `cmd:"" synopsis:"[ -n | -t MS ] [ -k ] NAME IDX prog..." help:"Run prog while holding a lock."`
	Unlock  unlockCmd  `cmd:"" synopsis:"NAME IDX" help:"Release a lock whose owner died."`
	Status  statusCmd  `cmd:"" synopsis:"[ --json ] [ --all ] NAME [ IDX... ]" help:"Print the state of held locks, or of the given ones."`
	Grow    growCmd    `cmd:"" synopsis:"NAME COUNT" help:"Grow a segment to COUNT locks."`
	GC      gcCmd      `cmd:"" name:"gc" synopsis:"NAME" help:"Free every tagged, unlocked lock whose tag is not listed on stdin."`
	Unlink  unlinkCmd  `cmd:"" synopsis:"NAME" help:"Remove a segment's name."`
	Inspect inspectCmd `cmd:"" synopsis:"[ --podman ] NAME" help:"Print a segment's header and counters."`
}

// Run is the root's: kong runs the selected command's Run first, then
// this one, which has nothing left to do.
func (c *command) Run(*cli.Env) error { return nil }

// AfterApply makes COMMAND required: kong lets a grammar whose root has a
// Run method parse without one.
func (c *command) AfterApply(kctx *kong.Context) error {
	if kctx.Selected() == nil {
		return exitcode.ErrUsage
	}
	return nil
}

// opts returns the lib/shm options for --dir.
func (c *command) opts() []shm.Option {
	var o []shm.Option
	if c.Dir != "" {
		o = append(o, shm.WithDir(c.Dir))
	}
	if c.AnyOwner {
		o = append(o, shm.WithAnyOwner())
	}
	return o
}

// dir is the segments' directory, for messages.
func (c *command) dir() string {
	if c.Dir == "" {
		return "/dev/shm"
	}
	return c.Dir
}

// badUsage is a usage error that names the bad word and why: the command
// prints its synopsis, then the message after "shmlock: fatal: ", and
// exits 100 (see usageOf).
type badUsage struct{ msg string }

func (b badUsage) Error() string { return b.msg }

func usagef(format string, args ...any) error { return badUsage{fmt.Sprintf(format, args...)} }

// synopsis is a command's usage line, after "shmlock"; each command's
// synopsis tag says the same after its name (TestSynopsisTags), so that
// kong's refusals and ours print one line. A switch, not a package-level
// map, which every gotools process would build at start (issue 16 item 3).
func synopsis(cmd string) string {
	switch cmd {
	case "create":
		return "create [ -m MODE ] [ --max N ] NAME COUNT"
	case "open":
		return "open NAME [ COUNT ]"
	case "alloc":
		return "alloc [ --index I ] [ --tag T ] NAME"
	case "free":
		return "free NAME IDX... | free --all NAME"
	case "lock":
		return "lock [ -n | -t MS ] [ -k ] NAME IDX prog..."
	case "unlock":
		return "unlock NAME IDX"
	case "status":
		return "status [ --json ] [ --all ] NAME [ IDX... ]"
	case "grow":
		return "grow NAME COUNT"
	case "gc":
		return "gc NAME"
	case "unlink":
		return "unlink NAME"
	case "inspect":
		return "inspect [ --podman ] NAME"
	}
	return ""
}

// usageOf, deferred by a command's Run, turns a badUsage error into the
// command's own usage line on stderr and a usage error naming the word.
func usageOf(env *cli.Env, cmd string, err *error) {
	var b badUsage
	if errors.As(*err, &b) {
		fmt.Fprintf(env.Stderr, "%s: usage: %s %s\n", env.Name, env.Name, synopsis(cmd))
		*err = exitcode.Errorf(exitcode.Usage, "%s", b.msg)
	}
}

// parseCount reads the decimal operand word (COUNT, IDX, ...); a bad one
// is a usage error naming it.
func parseCount(word, s string) (uint32, error) {
	n, err := cli.ParseDecimal(s)
	if err != nil {
		return 0, usagef("%s: %q is not a decimal number below 2^32", word, s)
	}
	return n, nil
}

// parseIndexes reads IDX operands: decimal, else a usage error.
func parseIndexes(args []string) ([]uint32, error) {
	idx := make([]uint32, len(args))
	for j, a := range args {
		var err error
		if idx[j], err = parseCount("IDX", a); err != nil {
			return nil, err
		}
	}
	return idx, nil
}

// maxCount is lib/shm's largest lock count.
const maxCount = 1 << 24

// checkCount refuses a COUNT of 0 or above lib/shm's limit.
func checkCount(n uint32) error {
	if n == 0 || n > maxCount {
		return usagef("COUNT: %d is out of range: a segment has 1 to %d locks", n, maxCount)
	}
	return nil
}

// checkName refuses what lib/shm does not take for a segment name.
func checkName(name string) error {
	b := strings.TrimPrefix(name, "/")
	if b == "" || b == "." || b == ".." || len(b) > 255 || strings.ContainsAny(b, "/\x00") {
		return usagef("NAME: %q is not a segment name: one file name in DIR, \"/name\" or \"name\"", name)
	}
	return nil
}

// checkIndex refuses an index beyond the segment's count.
func checkIndex(s *shm.Segment, name string, i uint32) error {
	if n := s.MaxLocks(); i >= n {
		return usagef("IDX: %d is out of range: %s has %d locks (0 to %d)", i, name, n, n-1)
	}
	return nil
}

// withSegment opens the segment name with open (shm.OpenExisting, or
// shm.OpenReadOnly), runs fn on it and closes it once: a failed close is
// the command's error only when fn succeeded. A failed open is the
// command's error, with its exit code.
func (c *command) withSegment(name string, open func(string, ...shm.Option) (*shm.Segment, error), fn func(s *shm.Segment) error) error {
	s, err := open(name, c.opts()...)
	if err != nil {
		return c.openFail("open", name, err)
	}
	if err := fn(s); err != nil {
		_ = s.Close()
		return err
	}
	return closeSeg(name, s)
}

// parseTag reads a tag: decimal, or hex after "0x".
func parseTag(s string) (uint64, bool) {
	base, digits := 10, s
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		base, digits = 16, h
	}
	if digits == "" || strings.ContainsAny(digits, "+-_ ") {
		return 0, false
	}
	v, err := strconv.ParseUint(digits, base, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// errno returns the errno under err, or 0.
func errno(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// reason is what follows "unable to VERB NAME: ": the bare errno when
// there is one (lib/cli capitalises it as strerror does), else err.
func reason(err error) error {
	if e := errno(err); e != 0 {
		return e
	}
	return err
}

// fail turns a lib/shm error into the applet's error: "unable to VERB
// WHAT: REASON" with the exit code of the spec's table. refused lists the
// errnos that mean the segment's state refused this operation (exit 1).
func fail(verb, what string, err error, refused ...unix.Errno) error {
	e := errno(err)
	code := exitcode.Sys
	switch {
	case e == unix.EINVAL:
		code = exitcode.Usage
	case e != 0 && contains(refused, e):
		code = exitcode.Refused
	}
	return exitcode.Errorf(code, "unable to %s %s: %w", verb, what, reason(err))
}

func contains(l []unix.Errno, e unix.Errno) bool {
	for _, x := range l {
		if x == e {
			return true
		}
	}
	return false
}

// openFail reports a failure to open or create NAME, with a hint when DIR
// itself is missing.
func (c *command) openFail(verb, name string, err error, refused ...unix.Errno) error {
	var se *shm.Error
	if errors.As(err, &se) && se.ForeignUID != 0 {
		return exitcode.Errorf(exitcode.Sys, "unable to %s %s: %w (owned by uid %d, neither you nor root: --any-owner accepts it)", verb, name, unix.EPERM, se.ForeignUID)
	}
	if errno(err) == unix.ENOENT {
		if _, serr := os.Stat(c.dir()); serr != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to %s %s: directory %s: %w (use --dir to name a tmpfs)", verb, name, c.dir(), unix.ENOENT)
		}
	}
	return fail(verb, name, err, refused...)
}

// slot names lock IDX of NAME in messages: "NAME[IDX]".
func slot(name string, i uint32) string { return fmt.Sprintf("%s[%d]", name, i) }

type createCmd struct {
	Mode string   `short:"m" name:"mode" placeholder:"MODE" help:"File mode, octal (default 0600; the umask applies)."`
	Max  cli.Uint `name:"max" placeholder:"N" help:"Capacity for grow (default max(COUNT, 262144))."`
	Name string   `arg:"" name:"name" help:"The segment's name."`
	// Count is a string so that a bad number is a usage error from Run,
	// like every other operand.
	Count string `arg:"" name:"count" help:"The number of locks."`
}

func (c *createCmd) Run(env *cli.Env, top *command) (err error) {
	defer usageOf(env, "create", &err)
	n, err := parseCount("COUNT", c.Count)
	if err != nil {
		return err
	}
	if err := checkCount(n); err != nil {
		return err
	}
	if err := checkName(c.Name); err != nil {
		return err
	}
	opts := top.opts()
	if c.Mode != "" {
		m, err := strconv.ParseUint(c.Mode, 8, 32)
		if err != nil || m > 0o7777 {
			return usagef("-m: %q is not an octal mode (0 to 7777)", c.Mode)
		}
		opts = append(opts, shm.WithMode(os.FileMode(m)))
	}
	if c.Max != 0 {
		opts = append(opts, shm.WithMaxLocks(uint32(c.Max)))
	}
	s, err := shm.Create(c.Name, n, opts...)
	if err != nil {
		return top.openFail("create", c.Name, err, unix.EEXIST)
	}
	return closeSeg(c.Name, s)
}

// closeSeg closes s, reporting a failure.
func closeSeg(name string, s *shm.Segment) error {
	if err := s.Close(); err != nil {
		return fail("close", name, err)
	}
	return nil
}

type openCmd struct {
	Name  string `arg:"" name:"name" help:"The segment's name."`
	Count string `arg:"" optional:"" name:"count" help:"The number of locks it must have."`
}

func (c *openCmd) Run(env *cli.Env, top *command) (err error) {
	defer usageOf(env, "open", &err)
	var s *shm.Segment
	if c.Count == "" {
		s, err = shm.OpenExisting(c.Name, top.opts()...)
	} else {
		n, perr := parseCount("COUNT", c.Count)
		if perr != nil {
			return perr
		}
		if perr := checkCount(n); perr != nil {
			return perr
		}
		s, err = shm.Open(c.Name, n, top.opts()...)
	}
	if err != nil {
		return top.openFail("open", c.Name, err)
	}
	werr := summary(env, s)
	if err := closeSeg(c.Name, s); err != nil {
		return err
	}
	return werr
}

type allocCmd struct {
	Index *cli.Uint `name:"index" placeholder:"I" help:"Allocate index I (exit 1 if it is allocated already)."`
	Tag   string    `name:"tag" placeholder:"T" help:"Tag the allocation with T (decimal or 0x hex; for gc)."`
	Name  string    `arg:"" name:"name" help:"The segment's name."`
}

func (c *allocCmd) Run(env *cli.Env, top *command) (err error) {
	defer usageOf(env, "alloc", &err)
	var tag uint64
	if c.Tag != "" {
		var ok bool
		if tag, ok = parseTag(c.Tag); !ok {
			return usagef("--tag: %q is not a decimal or 0x hex number below 2^64", c.Tag)
		}
	}
	return top.withSegment(c.Name, shm.OpenExisting, func(s *shm.Segment) error {
		var i uint32
		var err error
		switch {
		case c.Index != nil:
			i = uint32(*c.Index)
			if err := checkIndex(s, c.Name, i); err != nil {
				return err
			}
			if tag != 0 {
				err = s.AllocateGivenTagged(i, tag)
			} else {
				err = s.AllocateGiven(i)
			}
			if err != nil {
				return fail("allocate", slot(c.Name, i), err, unix.EEXIST)
			}
		default:
			if tag != 0 {
				i, err = s.AllocateTagged(tag)
			} else {
				i, err = s.Allocate()
			}
			if err != nil {
				return fail("allocate in", c.Name, err, unix.ENOSPC)
			}
		}
		if _, err := fmt.Fprintf(env.Stdout, "%d\n", i); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to write to stdout: %w", reason(err))
		}
		return nil
	})
}

type freeCmd struct {
	All  bool     `name:"all" help:"Deallocate every lock (held locks stay held)."`
	Name string   `arg:"" name:"name" help:"The segment's name."`
	Idx  []string `arg:"" optional:"" name:"idx" help:"The indexes to deallocate."`
}

func (c *freeCmd) Run(env *cli.Env, top *command) (err error) {
	defer usageOf(env, "free", &err)
	if c.All != (len(c.Idx) == 0) {
		return usagef("give either --all or IDX...")
	}
	idx, err := parseIndexes(c.Idx)
	if err != nil {
		return err
	}
	return top.withSegment(c.Name, shm.OpenExisting, func(s *shm.Segment) error {
		if c.All {
			if err := s.DeallocateAll(); err != nil {
				return fail("free", c.Name, err)
			}
		}
		for _, i := range idx {
			if err := checkIndex(s, c.Name, i); err != nil {
				return err
			}
			if err := s.Deallocate(i); err != nil {
				return fail("free", slot(c.Name, i), err, unix.ENOENT)
			}
		}
		return nil
	})
}

type unlockCmd struct {
	Name string `arg:"" name:"name" help:"The segment's name."`
	Idx  string `arg:"" name:"idx" help:"The lock's index."`
}

func (c *unlockCmd) Run(env *cli.Env, top *command) (err error) {
	defer usageOf(env, "unlock", &err)
	i, err := parseCount("IDX", c.Idx)
	if err != nil {
		return err
	}
	return top.withSegment(c.Name, shm.OpenExisting, func(s *shm.Segment) error {
		if err := checkIndex(s, c.Name, i); err != nil {
			return err
		}
		err := s.ForceUnlock(i)
		if errno(err) == unix.EBUSY {
			// A live owner's lock is never released: name the owner,
			// whom the user may decide to kill.
			if st, oerr := s.Owner(i); oerr == nil && st.PID != 0 {
				return exitcode.Errorf(exitcode.Refused, "unable to unlock %s: %w (held by live pid %d, %s)", slot(c.Name, i), unix.EBUSY, st.PID, commOf(st))
			}
		}
		if err != nil {
			return fail("unlock", slot(c.Name, i), err, unix.EPERM, unix.EBUSY)
		}
		return nil
	})
}

type growCmd struct {
	Name  string `arg:"" name:"name" help:"The segment's name."`
	Count string `arg:"" name:"count" help:"The new number of locks."`
}

func (c *growCmd) Run(env *cli.Env, top *command) (err error) {
	defer usageOf(env, "grow", &err)
	n, err := parseCount("COUNT", c.Count)
	if err != nil {
		return err
	}
	if err := checkCount(n); err != nil {
		return err
	}
	return top.withSegment(c.Name, shm.OpenExisting, func(s *shm.Segment) error {
		if cur := s.MaxLocks(); n <= cur-shm.BitmapSize {
			return usagef("COUNT: %d is below %s's count, %d: a segment never shrinks", n, c.Name, cur)
		}
		if err := s.Grow(n); err != nil {
			return fail("grow", c.Name, err)
		}
		return nil
	})
}

type unlinkCmd struct {
	Name string `arg:"" name:"name" help:"The segment's name."`
}

func (c *unlinkCmd) Run(top *command) error {
	if err := shm.Unlink(c.Name, top.opts()...); err != nil {
		return top.openFail("unlink", c.Name, err)
	}
	return nil
}

type inspectCmd struct {
	Podman bool   `name:"podman" help:"Decode a podman segment (x86_64 or aarch64 glibc layout), read-only."`
	Name   string `arg:"" name:"name" help:"The segment's name."`
}

func (c *inspectCmd) Run(env *cli.Env, top *command) error {
	if c.Podman {
		return inspectPodman(env, top, c.Name)
	}
	s, err := shm.OpenReadOnly(c.Name, top.opts()...)
	if err != nil {
		return top.openFail("open", c.Name, err)
	}
	werr := summary(env, s)
	if err := closeSeg(c.Name, s); err != nil {
		return err
	}
	return werr
}
