//go:build linux

package fdrestore

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

// Limits are the fd number limits of section 6.1, read by the caller (the
// plan stays pure). A zero field is unknown and not checked.
type Limits struct {
	HardNOFILE uint64 // hard RLIMIT_NOFILE; RLIM_INFINITY is fine
	NrOpen     uint64 // /proc/sys/fs/nr_open
}

// EngineFDs is the room kept above the lifted masters for the engine's own
// fds (control socket, stderr copy, plan memfd, pidfd, a few spare).
const EngineFDs = 8

// FlagsConfig is the command line of `restore` in flags mode.
type FlagsConfig struct {
	Flags       []string // -f arguments, in command-line order
	Names       []string // --name N=NAME arguments
	ListenFDs   bool     // --listen-fds
	CloseOthers bool     // -C
	Setsid      bool     // --setsid
	// Ctty is the target --ctty makes the controlling terminal (it implies
	// Setsid); -1 or 0 without --ctty, as HasCtty says.
	Ctty       int
	HasCtty    bool
	AllowDirFD bool // --allow-dirfd
	// HoldTimeout bounds each round trip to a holder of a hold: source (0:
	// none); HoldDelete deletes the retrieved ids once every file is open.
	HoldTimeout time.Duration
	HoldDelete  bool
	// Holds are hold: sources given apart from Flags, after them, so
	// that a socket path may contain ':' (hold retrieve's SOCKET).
	Holds  []Hold `json:",omitempty"`
	Limits Limits
	// Inherited lists the fds open in fdrestore that it did not create (its
	// census); with -C those >= 3 that are not targets go in [Plan.Close].
	Inherited []int
}

// Entry is one target of the plan: fd Target of the program gets Source.
type Entry struct {
	Target int
	Source Source // as written: a dup:N stays dup:N
	Flag   int    // index of the -f flag in [FlagsConfig.Flags]
	// Object is the index in [Plan.Objects] of the file placed at Target,
	// after dup: is resolved; -1 for close.
	Object int
	End    int    // the end of a pipe, socketpair or pty object
	Name   string // the LISTEN_FDNAMES name (--name, else the default of 8.5)
}

// Object is one kernel object the engine creates or obtains once: a file,
// or the one pipe2, socketpair or /dev/ptmx behind every end named NAME.
type Object struct {
	Kind    Kind
	Source  Source // the first -f naming it (for a shared kind, one end)
	Name    string // pipe, socketpair, pty: NAME
	Flag    int    // the first -f naming it
	Targets []int  // every target holding it (any end), ascending
	Ends    [2]bool
}

// MasterFDs is how many fds the engine holds for the object: both ends for a
// pipe and a socketpair (pipe2 and socketpair(2) make both), the used ends
// for a pty, else one.
func (o *Object) MasterFDs() int {
	switch o.Kind {
	case KindPipe, KindSocketpair:
		return 2
	case KindPTY:
		if o.Ends[PTYSlave] {
			return 2
		}
	}
	return 1
}

// Plan is the result of section 6.1 for one process in flags mode.
type Plan struct {
	Entries []Entry  // ascending by Target
	Objects []Object // in -f order
	// Order is the master opening order of 6.2, as indices in Objects: live
	// sources, then listening sockets, then the rest in -f order.
	Order []int
	// EpollOrder lists the epoll objects so that an epoll watched by another
	// is registered (step 4 of 6.5) before the one that contains it.
	EpollOrder []int
	MaxTarget  int // the highest target, -1 when there is none
	ListenFDs  bool
	// ListenNames are the LISTEN_FDNAMES entries of targets 3.. with --listen-fds.
	ListenNames []string
	CloseOthers bool
	// Close lists the inherited fds >= 3 that -C closes, ascending.
	Close      []int
	Setsid     bool // setsid() before exec (also with a ctty)
	Ctty       int  // the target made the controlling terminal; -1: none
	AllowDirFD bool // directory and O_PATH fds may be placed (section 11)
	// HoldTimeout and HoldDelete are [FlagsConfig]'s.
	HoldTimeout time.Duration
	HoldDelete  bool
}

func usagef(format string, args ...any) error {
	return exitcode.Errorf(exitcode.Usage, format, args...)
}

func badSource(target int, src Source, format string, args ...any) error {
	return exitcode.New(exitcode.Usage, fmt.Errorf("invalid source for fd %d: %w", target,
		&SyntaxError{Source: src.Text, Msg: fmt.Sprintf(format, args...)}))
}

// NewFlagsPlan builds the plan of `restore -f ...`. Every error is a usage
// error (exit 100) with one line naming the bad flag, fd or source.
func NewFlagsPlan(cfg FlagsConfig) (*Plan, error) {
	flags := make([]flag, len(cfg.Flags), len(cfg.Flags)+len(cfg.Holds))
	taken := map[int]bool{}
	for i := range len(cfg.Flags) + len(cfg.Holds) {
		var t int
		var has bool
		var src Source
		var err error
		if i < len(cfg.Flags) {
			t, has, src, err = ParseFlag(cfg.Flags[i])
		} else {
			t, has, src, err = cfg.Holds[i-len(cfg.Flags)].parse()
		}
		if err != nil {
			return nil, err
		}
		if i < len(cfg.Flags) {
			flags[i] = flag{t, has, src}
		} else {
			flags = append(flags, flag{t, has, src})
		}
		if has {
			if taken[t] {
				return nil, usagef("fd %d is given twice", t)
			}
			taken[t] = true
		}
	}
	next := 3
	for i := range flags {
		if flags[i].explicit {
			continue
		}
		for taken[next] {
			next++
		}
		flags[i].target = next
		taken[next] = true
	}
	return buildPlan(flags, cfg)
}

// Hold is a hold:SOCKET:ID source given apart from the -f grammar:
// fd Target (-1: the next free number from 3) gets ID from the holder at
// Socket, whatever bytes the path holds.
type Hold struct {
	Target     int
	Socket, ID string
}

func (h Hold) parse() (int, bool, Source, error) {
	text := "hold:" + h.Socket + ":" + h.ID
	src := Source{Kind: KindHold, Text: text, Socket: h.Socket, ID: h.ID}
	switch {
	case h.Socket == "":
		return 0, false, src, syntaxErr(text, "missing holder socket path")
	case h.ID == "":
		return 0, false, src, syntaxErr(text, "missing holder id")
	case len(h.ID) > maxHoldID:
		return 0, false, src, syntaxErr(text, "holder id is longer than %d bytes", maxHoldID)
	case h.Target > MaxFD:
		return 0, false, src, usagef("fd %d is out of range", h.Target)
	}
	return max(h.Target, 0), h.Target >= 0, src, nil
}

// flag is one parsed -f: its target and source.
type flag struct {
	target   int
	explicit bool
	src      Source
}

// buildPlan is section 6.1 for parsed flags with distinct targets: objects,
// dup: resolution, names, checks and the orders.
func buildPlan(flags []flag, cfg FlagsConfig) (*Plan, error) {
	p := &Plan{MaxTarget: -1, ListenFDs: cfg.ListenFDs, CloseOthers: cfg.CloseOthers,
		Setsid: cfg.Setsid || cfg.HasCtty, Ctty: -1, AllowDirFD: cfg.AllowDirFD,
		HoldTimeout: cfg.HoldTimeout, HoldDelete: cfg.HoldDelete}
	byTarget := map[int]int{} // target -> flag index
	for i, f := range flags {
		byTarget[f.target] = i
		p.MaxTarget = max(p.MaxTarget, f.target)
	}
	if err := checkRange(cfg.Limits, p.MaxTarget); err != nil {
		return nil, err
	}

	// Objects: one per -f, except shared ends (one per kind and NAME) and dup:.
	objOf := make([]int, len(flags)) // flag index -> object, -1 close, -2 dup (pending)
	endOf := make([]int, len(flags))
	type sharedKey struct {
		kind Kind
		name string
	}
	shared := map[sharedKey]int{}
	endAt := map[[2]int]int{} // {object, end} -> target holding it
	for i, f := range flags {
		src := f.src
		switch {
		case src.Kind == KindClose:
			objOf[i] = -1
			continue
		case src.Kind == KindDup:
			objOf[i] = -2
			continue
		case src.Kind.Shared():
			k := sharedKey{src.Kind, src.Name}
			o, ok := shared[k]
			if !ok {
				o = len(p.Objects)
				shared[k] = o
				p.Objects = append(p.Objects, Object{Kind: src.Kind, Source: src, Name: src.Name, Flag: i})
			} else if src.Kind == KindSocketpair && p.Objects[o].Source.SockType != src.SockType {
				return nil, badSource(f.target, src, "socketpair %s has another type at fd %d", src.Name,
					flags[p.Objects[o].Flag].target)
			}
			if prev, ok := endAt[[2]int{o, src.End}]; ok {
				return nil, badSource(f.target, src, "%s is already fd %d: use dup:%d", endName(src), prev, prev)
			}
			endAt[[2]int{o, src.End}] = f.target
			p.Objects[o].Ends[src.End] = true
			objOf[i], endOf[i] = o, src.End
		default:
			objOf[i] = len(p.Objects)
			p.Objects = append(p.Objects, Object{Kind: src.Kind, Source: src, Flag: i})
		}
	}

	// dup:N, resolved through chains; a cycle never reaches an object.
	for i, f := range flags {
		if f.src.Kind != KindDup {
			continue
		}
		seen := map[int]bool{f.target: true}
		j := i
		for flags[j].src.Kind == KindDup {
			n := flags[j].src.FD
			k, ok := byTarget[n]
			switch {
			case !ok:
				return nil, badSource(f.target, f.src, "fd %d is not a target of this plan", n)
			case seen[n]:
				return nil, badSource(f.target, f.src, "dup: loop through fd %d", n)
			case flags[k].src.Kind == KindClose:
				return nil, badSource(f.target, f.src, "fd %d is closed", n)
			}
			seen[n] = true
			j = k
		}
		objOf[i], endOf[i] = objOf[j], endOf[j]
	}

	// Entries, names.
	names, err := parseNames(cfg.Names, byTarget)
	if err != nil {
		return nil, err
	}
	for i, f := range flags {
		e := Entry{Target: f.target, Source: f.src, Flag: i, Object: objOf[i], End: endOf[i]}
		if e.Object >= 0 {
			o := &p.Objects[e.Object]
			o.Targets = append(o.Targets, f.target)
			e.Name = defaultName(o.Source)
		}
		if n, ok := names[f.target]; ok {
			e.Name = n
		}
		p.Entries = append(p.Entries, e)
	}
	slices.SortFunc(p.Entries, func(a, b Entry) int { return a.Target - b.Target })
	for i := range p.Objects {
		slices.Sort(p.Objects[i].Targets)
	}

	if cfg.HasCtty {
		i, ok := byTarget[cfg.Ctty]
		switch {
		case !ok:
			return nil, usagef("--ctty %d: fd %d is not a target of this plan", cfg.Ctty, cfg.Ctty)
		case objOf[i] < 0:
			return nil, usagef("--ctty %d: fd %d is closed", cfg.Ctty, cfg.Ctty)
		}
		p.Ctty = cfg.Ctty
	}
	if err := p.checkEpolls(byTarget, objOf); err != nil {
		return nil, err
	}
	if err := p.checkRoom(cfg.Limits); err != nil {
		return nil, err
	}
	p.order()
	if cfg.ListenFDs {
		if err := p.listen(); err != nil {
			return nil, err
		}
	}
	if cfg.CloseOthers {
		for _, fd := range cfg.Inherited {
			if _, ok := byTarget[fd]; fd >= 3 && !ok {
				p.Close = append(p.Close, fd)
			}
		}
		slices.Sort(p.Close)
		p.Close = slices.Compact(p.Close)
	}
	return p, nil
}

func endName(src Source) string {
	switch src.Kind {
	case KindPipe:
		return fmt.Sprintf("pipe %s end %s", src.Name, [2]string{"r", "w"}[src.End])
	case KindPTY:
		return fmt.Sprintf("pty %s %s", src.Name, [2]string{"master", "slave"}[src.End])
	}
	return fmt.Sprintf("socketpair %s end %d", src.Name, src.End)
}

// limit is the first fd number out of range (section 6.1: targets <
// min(hard RLIMIT_NOFILE - 1, fs.nr_open)), and the reason; 0 if unknown.
func (l Limits) limit() (uint64, string) {
	lim, why := uint64(0), ""
	if l.HardNOFILE > 1 {
		lim, why = l.HardNOFILE-1, fmt.Sprintf("the hard open-file limit is %d", l.HardNOFILE)
	}
	if l.NrOpen > 0 && (lim == 0 || l.NrOpen < lim) {
		lim, why = l.NrOpen, fmt.Sprintf("fs.nr_open is %d", l.NrOpen)
	}
	return lim, why
}

func checkRange(l Limits, maxTarget int) error {
	lim, why := l.limit()
	if lim > 0 && maxTarget >= 0 && uint64(maxTarget) >= lim {
		return usagef("fd %d is out of range: %s", maxTarget, why)
	}
	return nil
}

// checkRoom applies the rule of 6.1: every master is first lifted above the
// highest target, so that, the masters and the engine's fds must fit.
func (p *Plan) checkRoom(l Limits) error {
	lim, _ := l.limit()
	if lim == 0 || p.MaxTarget < 0 {
		return nil
	}
	need := uint64(p.MaxTarget) + 1 + EngineFDs
	for i := range p.Objects {
		need += uint64(p.Objects[i].MasterFDs())
	}
	if need > lim {
		return usagef("not enough fd numbers above fd %d: raise the hard open-file limit or lower the targets", p.MaxTarget)
	}
	return nil
}

// checkEpolls checks that every epoll item names a placed target of this
// plan other than the epoll itself, and that epolls do not watch each other
// in a loop (epoll_ctl(2): ELOOP). It sets EpollOrder.
func (p *Plan) checkEpolls(byTarget map[int]int, objOf []int) error {
	targetOf := func(i int) int {
		for _, e := range p.Entries {
			if e.Flag == i {
				return e.Target
			}
		}
		return -1
	}
	// inner[o] lists the epoll objects that epoll object o watches.
	inner := map[int][]int{}
	var epolls []int
	for o := range p.Objects {
		obj := &p.Objects[o]
		if obj.Kind != KindEpoll {
			continue
		}
		epolls = append(epolls, o)
		at := targetOf(obj.Flag)
		for _, it := range obj.Source.Items {
			k, ok := byTarget[it.Target]
			switch {
			case !ok:
				return badSource(at, obj.Source, "fd %d is not a target of this plan", it.Target)
			case objOf[k] == -1:
				return badSource(at, obj.Source, "fd %d is closed", it.Target)
			case objOf[k] == o:
				return badSource(at, obj.Source, "an epoll cannot watch itself (fd %d)", it.Target)
			}
			if p.Objects[objOf[k]].Kind == KindEpoll {
				inner[o] = append(inner[o], objOf[k])
			}
		}
	}
	// Depth-first post-order: inner epolls first; a grey node met again is a loop.
	state := map[int]int{} // 0 white, 1 grey, 2 black
	var visit func(o int) error
	visit = func(o int) error {
		switch state[o] {
		case 1:
			return badSource(targetOf(p.Objects[o].Flag), p.Objects[o].Source, "epolls watch each other in a loop")
		case 2:
			return nil
		}
		state[o] = 1
		for _, in := range inner[o] {
			if err := visit(in); err != nil {
				return err
			}
		}
		state[o] = 2
		p.EpollOrder = append(p.EpollOrder, o)
		return nil
	}
	for _, o := range epolls {
		if err := visit(o); err != nil {
			return err
		}
	}
	return nil
}

// order sets the master opening order of 6.2: live sources first (a failed
// grab or retrieve aborts before anything is bound or created), then bound
// and listening sockets, then the rest, each group in -f order.
func (p *Plan) order() {
	rank := func(k Kind) int {
		switch {
		case k.Live():
			return 0
		case k == KindListen:
			return 1
		case k == KindConnect:
			return 3 // into a listener's queue: after every listener
		}
		return 2
	}
	for i := range p.Objects {
		p.Order = append(p.Order, i)
	}
	slices.SortStableFunc(p.Order, func(a, b int) int {
		return rank(p.Objects[a].Kind) - rank(p.Objects[b].Kind)
	})
}

// listen checks --listen-fds contiguity (section 2): the placed targets >= 3
// must be exactly 3..3+n-1.
func (p *Plan) listen() error {
	want := 3
	p.ListenNames = []string{}
	for _, e := range p.Entries {
		if e.Target < 3 || e.Object < 0 {
			continue
		}
		if e.Target != want {
			return usagef("--listen-fds needs the targets from 3 on without holes: fd %d is missing", want)
		}
		want++
		p.ListenNames = append(p.ListenNames, e.Name)
	}
	return nil
}

// parseNames reads --name N=NAME arguments; N must be a target.
func parseNames(args []string, byTarget map[int]int) (map[int]string, error) {
	names := map[int]string{}
	for _, a := range args {
		n, name, ok := strings.Cut(a, "=")
		if !ok || !allDigits(n) {
			return nil, usagef("invalid --name %q: it must be N=NAME", a)
		}
		t, err := parseFD("fd", n)
		if err != nil {
			return nil, usagef("invalid --name %q: fd %s is out of range", a, n)
		}
		if _, ok := byTarget[t]; !ok {
			return nil, usagef("invalid --name %q: fd %d is not a target", a, t)
		}
		if _, ok := names[t]; ok {
			return nil, usagef("--name for fd %d is given twice", t)
		}
		if err := CheckName(name); err != nil {
			return nil, usagef("invalid --name %q: %w", a, err)
		}
		names[t] = name
	}
	return names, nil
}

// ErrBadName is a LISTEN_FDNAMES entry sd_listen_fds_with_names would reject.
var ErrBadName = errors.New("a name must be 1 to 255 printable ASCII bytes without ':'")

// CheckName checks a LISTEN_FDNAMES entry: 1..255 printable ASCII bytes, no ':'.
func CheckName(name string) error {
	if name == "" || len(name) > 255 {
		return ErrBadName
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c > 0x7e || c == ':' {
			return ErrBadName
		}
	}
	return nil
}

// defaultName is the LISTEN_FDNAMES entry without --name: "unknown", or for
// hold: the id with every byte that is not printable ASCII, and every ':',
// replaced by '_' (section 8.5).
func defaultName(src Source) string {
	if src.Kind != KindHold {
		return "unknown"
	}
	b := []byte(src.ID)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == ':' {
			b[i] = '_'
		}
	}
	return string(b)
}

// listenVars are the variables --listen-fds sets or removes (section 2).
var listenVars = []string{"LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID", "LISTEN_PIDFDID"}

// Environ returns env as the program must see it, pid being the pid that
// execs it. With --listen-fds it sets LISTEN_FDS, LISTEN_FDNAMES and
// LISTEN_PID and removes LISTEN_PIDFDID. Without, when env has LISTEN_FDS=n
// and the plan places or closes a fd in 3..3+n-1, it removes all four and
// returns a warning for the caller to print.
func (p *Plan) Environ(env []string, pid int) (out []string, warning string) {
	drop := func() []string {
		return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
			k, _, _ := strings.Cut(kv, "=")
			return slices.Contains(listenVars, k)
		})
	}
	if p.ListenFDs {
		out = drop()
		return append(out,
			"LISTEN_FDS="+strconv.Itoa(len(p.ListenNames)),
			"LISTEN_FDNAMES="+strings.Join(p.ListenNames, ":"),
			"LISTEN_PID="+strconv.Itoa(pid)), ""
	}
	n := -1
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "LISTEN_FDS="); ok {
			if x, err := strconv.ParseUint(v, 10, 31); err == nil && allDigits(v) {
				n = int(x)
			}
		}
	}
	if n <= 0 {
		return env, ""
	}
	touched := p.CloseOthers
	for _, e := range p.Entries {
		if e.Target >= 3 && e.Target < 3+n {
			touched = true
		}
	}
	if !touched {
		return env, ""
	}
	return drop(), fmt.Sprintf("LISTEN_FDS=%d names fds the plan replaces: LISTEN_* removed from the environment", n)
}

// Master is one fd the engine holds for an object: End 0 or 1 of a pipe,
// socketpair or pty, else 0.
type Master struct {
	Object int
	End    int
}

// Masters lists the master fds in opening order (6.2): both ends of a pipe
// and a socketpair, the used ends of a pty, one fd for anything else.
func (p *Plan) Masters() []Master {
	var ms []Master
	for _, o := range p.Order {
		obj := &p.Objects[o]
		switch {
		case obj.Kind == KindPipe || obj.Kind == KindSocketpair:
			ms = append(ms, Master{o, 0}, Master{o, 1})
		case obj.Kind == KindPTY:
			ms = append(ms, Master{o, PTYMaster})
			if obj.Ends[PTYSlave] {
				ms = append(ms, Master{o, PTYSlave})
			}
		default:
			ms = append(ms, Master{o, 0})
		}
	}
	return ms
}

// PlaceTargets returns the targets of the plan for [Place], each naming its
// master by index in [Plan.Masters].
func (p *Plan) PlaceTargets() []PlaceTarget {
	idx := map[Master]int{}
	for i, m := range p.Masters() {
		idx[m] = i
	}
	out := make([]PlaceTarget, 0, len(p.Entries))
	for _, e := range p.Entries {
		m := -1
		if e.Object >= 0 {
			m = idx[Master{e.Object, e.End}]
		}
		out = append(out, PlaceTarget{FD: e.Target, Master: m})
	}
	return out
}
