//go:build linux

package fdrestore

import (
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

// ImageConfig is the command line of `restore IMAGE`.
type ImageConfig struct {
	Image      *Image
	Prog       []string // -- PROG: replaces the exec of a one-process image
	Lossy      bool     // --lossy: unrestorable files leave their fds closed
	ListenFDs  bool     // --listen-fds, in every process
	AllowDirFD bool     // --allow-dirfd
	// InheritStdio makes fds 0-2 of every process fdrestore's own, whatever
	// the image says (--inherit-stdio).
	InheritStdio bool
	Limits       Limits
}

// ImagePlan is section 6.1 for an image: one global plan whose targets are
// virtual numbers (process k's fd n is Base(k)+n), so that a file the image
// shares between processes is one object opened once, and a view of it per
// process with the real numbers.
type ImagePlan struct {
	Global *Plan
	Procs  []*ProcPlan
	// Warnings are the --lossy losses, one line each.
	Warnings []string
	stride   int
}

// ProcPlan is one process of an image: its plan with real fd numbers and
// only its own objects, the argv to exec and its process group.
type ProcPlan struct {
	ID   string
	Exec []string
	// Exe is the file the image says the process ran (its
	// /proc/PID/exe), run with Exec as argv; "" runs Exec[0] from PATH.
	// Path is the file [ImagePlan.ResolveExecs] found.
	Exe, Path string
	Plan      *Plan
	// Pgrp is -1 to stay in the coordinator's group, -2 for a new group of
	// its own, else the index of the earlier process whose group it joins.
	Pgrp int
	// Masters are the global plan's indexes of the view's masters.
	Masters []int
}

// NewImagePlan checks an image against what this engine can create and
// plans it. Files it cannot restore are refused (exit 1) unless they have
// a live source, or --lossy closes their fds.
func NewImagePlan(cfg ImageConfig) (*ImagePlan, error) {
	img := cfg.Image
	if err := img.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Prog) > 0 && len(img.Processes) != 1 {
		return nil, usagef("-- PROG needs an image of one process; this one has %d", len(img.Processes))
	}
	ip := &ImagePlan{stride: 3}
	for _, p := range img.Processes {
		for _, f := range p.FDs {
			ip.stride = max(ip.stride, f.FD+1)
		}
	}
	if err := checkRange(cfg.Limits, ip.stride-1); err != nil {
		return nil, err
	}

	var flags []flag
	first := map[string]int{} // file id -> virtual target of its first fd
	for k, p := range img.Processes {
		base := k * ip.stride
		for _, f := range p.FDs {
			v := base + f.FD
			switch {
			case cfg.InheritStdio && f.FD <= 2:
				continue
			case f.Closed:
				flags = append(flags, flag{target: v, explicit: true, src: Source{Kind: KindClose, Text: "close"}})
				continue
			}
			if at, ok := first[f.File]; ok {
				flags = append(flags, flag{target: v, explicit: true, src: Source{Kind: KindDup, FD: at, Text: "file " + f.File}})
				continue
			}
			src, err := ip.source(img, f.File, p, k)
			if err != nil {
				if !cfg.Lossy {
					if exitcode.Of(err) == exitcode.Refused {
						err = exitcode.Errorf(exitcode.Refused, "unable to restore fd %d of process %s: %w", f.FD, p.ID, unwrapUsage(err))
					}
					return nil, err
				}
				ip.Warnings = append(ip.Warnings, fmt.Sprintf("fd %d of process %s left closed: %v", f.FD, p.ID, unwrapUsage(err)))
				flags = append(flags, flag{target: v, explicit: true, src: Source{Kind: KindClose, Text: "close"}})
				first[f.File] = -1
				continue
			}
			first[f.File] = v
			flags = append(flags, flag{target: v, explicit: true, src: src})
		}
	}
	// A dup of a file left closed is closed too.
	for i := range flags {
		if flags[i].src.Kind == KindDup && flags[i].src.FD < 0 {
			flags[i].src = Source{Kind: KindClose, Text: "close"}
		}
	}
	slices.SortFunc(flags, func(a, b flag) int { return a.target - b.target })
	g, err := buildPlan(flags, FlagsConfig{AllowDirFD: cfg.AllowDirFD})
	if err != nil {
		return nil, err
	}
	ip.Global = g
	for k, p := range img.Processes {
		pp := &ProcPlan{ID: p.ID, Exec: p.Exec, Exe: p.Exe, Pgrp: -1}
		if k == 0 && len(cfg.Prog) > 0 {
			pp.Exec, pp.Exe = cfg.Prog, ""
		}
		if len(pp.Exec) == 0 {
			return nil, usagef("image: process %s has no exec: give -- PROG", p.ID)
		}
		switch p.Pgrp {
		case "", PgrpInherit:
		case PgrpNew:
			pp.Pgrp = -2
		default:
			pp.Pgrp = slices.IndexFunc(img.Processes, func(q *Process) bool { return q.ID == p.Pgrp })
		}
		if pp.Plan, pp.Masters, err = ip.view(k, p, cfg); err != nil {
			return nil, err
		}
		if err := pp.Plan.checkRoom(cfg.Limits); err != nil {
			return nil, err
		}
		ip.Procs = append(ip.Procs, pp)
	}
	return ip, nil
}

// base is the first virtual target of process k.
func (ip *ImagePlan) base(k int) int { return k * ip.stride }

// refuse is the error of a file this engine cannot create (exit 1).
func refuse(id string, f *File, why string) error {
	what := f.Type
	if f.Link != "" {
		what += " " + f.Link
	}
	return exitcode.Errorf(exitcode.Refused, "file %s (%s) is not restorable: %s: give it a source or use --lossy", id, what, why)
}

// source turns image file id, first met in process k, into a Source.
func (ip *ImagePlan) source(img *Image, id string, proc *Process, k int) (Source, error) {
	f := img.Files[id]
	text := "file " + id
	if f.Source != "" {
		src, err := ParseSource(f.Source)
		if err != nil {
			return Source{}, exitcode.Errorf(exitcode.Usage, "image: files.%s: invalid source: %v", id, unwrapUsage(err))
		}
		return src, nil
	}
	if len(f.Missing) > 0 {
		return Source{}, refuse(id, f, fmt.Sprintf("fields %v could not be read", f.Missing))
	}
	status := f.OpenFlags() &^ unix.O_ACCMODE
	src := Source{Text: text}
	switch f.Type {
	case TypeFile:
		if f.Deleted {
			return Source{}, refuse(id, f, "it was deleted")
		}
		src.Kind, src.Path, src.Flags = KindFile, f.Path, f.OpenFlags()
		src.Pos, src.HasPos = f.Pos, f.Pos != 0
		if v := f.Verify; v != nil {
			c := &FileCheck{}
			dev, okd, _ := v.Device()
			ino, oki, _ := v.Inode()
			c.Dev, c.Ino, c.HasIno = dev, ino, okd && oki
			if v.Size != nil {
				c.Size, c.HasSize = *v.Size, true
			}
			c.RDev, c.HasRDev, _ = v.RDevice()
			src.Verify = c
		}
	case TypeFIFO:
		data, err := f.Data()
		if err != nil || int64(len(data)) != f.Pending {
			return Source{}, refuse(id, f, "its queued bytes were not dumped (--data)")
		}
		// The temporary O_RDWR open keeps a reader and a writer: the real
		// open does not block.
		src.Kind, src.Path, src.Flags, src.FIFO, src.Data = KindFile, f.Path, f.OpenFlags(), true, data
	case TypePipe:
		st := img.Pipes[f.Pipe]
		src.Kind, src.Name = KindPipe, "p:"+f.Pipe
		switch f.End {
		case "r":
			src.End = PipeRead
		case "w":
			src.End = PipeWrite
		default:
			return Source{}, refuse(id, f, "a pipe end opened read-write (through /proc) is not built")
		}
		if st != nil && st.Size != 0 {
			if err := checkPipeSize(st.Size); err != nil {
				return Source{}, exitcode.Errorf(exitcode.Usage, "image: pipes.%s: %v", f.Pipe, err)
			}
			src.Size = st.Size
		}
		if st != nil && st.Pending > 0 {
			data, err := st.Data()
			if err != nil || int64(len(data)) != st.Pending {
				return Source{}, refuse(id, f, "its queued bytes were not dumped (--data)")
			}
			src.Data = data
		}
	case TypeUnix:
		switch {
		case f.Pair != "":
			src.Kind, src.Name = KindSocketpair, "s:"+f.Pair
			src.SockType = map[string]int{"stream": unix.SOCK_STREAM, "dgram": unix.SOCK_DGRAM, "seqpacket": unix.SOCK_SEQPACKET}[f.SockType]
			src.End = map[string]int{"0": 0, "1": 1}[f.End]
		case f.State == "listen" && f.SockType == "stream" && f.Path != "":
			src.Kind, src.Network, src.Path, src.Backlog = KindListen, "unix", f.Path, f.Backlog
		case f.Connect != "" && img.Files[f.Connect] != nil && img.Files[f.Connect].Path != "":
			// Into the queue of a listener of the image, created before it.
			src.Kind, src.Path = KindConnect, img.Files[f.Connect].Path
			src.SockType = map[string]int{"stream": unix.SOCK_STREAM, "dgram": unix.SOCK_DGRAM, "seqpacket": unix.SOCK_SEQPACKET}[f.SockType]
		default:
			return Source{}, refuse(id, f, fmt.Sprintf("a %s %s unix socket without a peer in the image is live only", f.State, f.SockType))
		}
	case TypeTCP, TypeUDP:
		if (f.Type == TypeTCP && f.State != "listen") || (f.Type == TypeUDP && f.State != "bound") {
			return Source{}, refuse(id, f, f.State+" sockets are live only")
		}
		ap, err := netip.ParseAddrPort(f.Addr)
		if err != nil {
			return Source{}, exitcode.Errorf(exitcode.Usage, "image: files.%s: invalid addr %q", id, f.Addr)
		}
		src.Kind, src.Network, src.Addr, src.Backlog = KindListen, f.Type, ap, f.Backlog
	case TypePTY:
		src.Kind, src.Name = KindPTY, "t:"+f.PTY
		src.End = map[string]int{"master": PTYMaster, "slave": PTYSlave}[f.End]
		if st := img.Ptys[f.PTY]; st != nil {
			ws := st.Winsize
			src.Winsize = &ws
			if st.Termios != nil {
				cc, err := st.Termios.CCBytes()
				if err != nil {
					return Source{}, exitcode.Errorf(exitcode.Usage, "image: ptys.%s: %v", f.PTY, err)
				}
				src.Termios = &unix.Termios{Iflag: st.Termios.Iflag, Oflag: st.Termios.Oflag,
					Cflag: st.Termios.Cflag, Lflag: st.Termios.Lflag, Line: st.Termios.Line}
				copy(src.Termios.Cc[:], cc[:])
			}
		}
	case TypeEpoll:
		reg := registrar(img, id, f)
		if reg < 0 {
			return Source{}, refuse(id, f, "no process holds every target at its registered number (escaped targets are not built)")
		}
		src.Kind = KindEpoll
		for _, t := range f.Targets {
			ev, _ := t.EventMask()
			data, _ := t.UserData()
			src.Items = append(src.Items, EpollItem{Target: ip.base(reg) + t.FD, Events: ev, Data: data, HasData: true})
		}
	case TypeEventfd:
		n, _ := f.EventfdCount()
		if n > 1<<32-1 {
			return Source{}, refuse(id, f, "a count above 2^32-1 is not built")
		}
		src.Kind, src.Count = KindEventfd, uint32(n)
		if f.Semaphore {
			src.EventfdFlags |= unix.EFD_SEMAPHORE
		}
	case TypeSignalfd:
		mask, err := f.SignalMask()
		if err != nil {
			return Source{}, exitcode.Errorf(exitcode.Usage, "image: files.%s: sigmask: %v", id, err)
		}
		src.Kind, src.SigMask = KindSignalfd, mask
	case TypeMemfd:
		if len(f.Seals) > 0 {
			return Source{}, refuse(id, f, "seals are not built")
		}
		data, err := f.Data()
		if err != nil || (f.Size > 0 && f.DataB64 == "") {
			return Source{}, refuse(id, f, "its contents were not dumped (--data)")
		}
		src.Kind, src.Name, src.Data, src.Size, src.Pos = KindMemfd, f.MName, data, f.Size, f.Pos
	default:
		return Source{}, refuse(id, f, "this type is restorable from a live source only")
	}
	switch {
	case src.Kind.Shared():
		// Every end's flags, from every file of the object: the object
		// keeps the Source of its first end.
		for _, of := range img.Files {
			if of.Type != f.Type || of.Pipe != f.Pipe || of.Pair != f.Pair || of.PTY != f.PTY {
				continue
			}
			end := map[string]int{"r": 0, "w": 1, "0": 0, "1": 1, "master": 0, "slave": 1}[of.End]
			src.EndFlags[end] = of.OpenFlags() &^ unix.O_ACCMODE
		}
	case src.Kind != KindFile:
		src.StatusFlags = status
	}
	return src, nil
}

// maxPipeSlots is the most pipe buffers the kernel can give one pipe: its
// ring is one kcalloc of struct pipe_buffer (40 bytes), at most 4 MiB.
const maxPipeSlots = 1 << 16

// checkPipeSize refuses a pipe capacity that F_GETPIPE_SZ can never have
// reported: it is a power of two number of pages, from one page to the
// largest ring the kernel can allocate.
func checkPipeSize(size int64) error {
	page := int64(unix.Getpagesize())
	if size < page || size > page*maxPipeSlots || size&(size-1) != 0 {
		return fmt.Errorf("size %d is not a pipe capacity (a power of two from %d to %d)", size, page, page*maxPipeSlots)
	}
	return nil
}

// registrar is the index of the process that registers epoll file id's
// targets: the first holder of the epoll in which every target's fd holds
// the target's file; -1 if none does.
func registrar(img *Image, id string, f *File) int {
	for k, p := range img.Processes {
		table := map[int]string{}
		holds := false
		for _, e := range p.FDs {
			if !e.Closed {
				table[e.FD] = e.File
				holds = holds || e.File == id
			}
		}
		if !holds {
			continue
		}
		ok := true
		for _, t := range f.Targets {
			ok = ok && table[t.FD] == t.File
		}
		if ok {
			return k
		}
	}
	return -1
}

// view is process k's plan with real fd numbers: its entries, only the
// objects it holds (renumbered, in the global opening order, so that the
// stage gets a small plan), and the epolls it registers. It also returns,
// for each master of the view, its index in the global plan's masters.
func (ip *ImagePlan) view(k int, proc *Process, cfg ImageConfig) (*Plan, []int, error) {
	g := ip.Global
	lo, hi := ip.base(k), ip.base(k)+ip.stride
	in := func(v int) bool { return v >= lo && v < hi }
	p := &Plan{
		MaxTarget: -1, ListenFDs: cfg.ListenFDs, CloseOthers: true, Ctty: -1,
		Setsid: proc.Session(), AllowDirFD: cfg.AllowDirFD,
	}
	global := map[Master]int{}
	for i, m := range g.Masters() {
		global[m] = i
	}
	newIdx := make([]int, len(g.Objects)) // global object -> view object, -1
	var origIdx []int                     // view object -> global object
	var masters []int
	for i := range newIdx {
		newIdx[i] = -1
	}
	for _, o := range g.Order {
		obj := g.Objects[o]
		var ts []int
		for _, v := range obj.Targets {
			if in(v) {
				ts = append(ts, v-lo)
			}
		}
		if len(ts) == 0 {
			continue
		}
		obj.Targets = ts
		if obj.Kind == KindEpoll {
			items := slices.Clone(obj.Source.Items)
			for j := range items {
				items[j].Target -= lo
			}
			obj.Source.Items = items
		}
		newIdx[o] = len(p.Objects)
		origIdx = append(origIdx, o)
		p.Order = append(p.Order, len(p.Objects))
		p.Objects = append(p.Objects, obj)
	}
	for _, m := range p.Masters() {
		masters = append(masters, global[Master{origIdx[m.Object], m.End}])
	}
	for _, e := range g.Entries {
		if in(e.Target) {
			e.Target -= lo
			if e.Object >= 0 {
				e.Object = newIdx[e.Object]
			}
			p.Entries = append(p.Entries, e)
			p.MaxTarget = max(p.MaxTarget, e.Target)
		}
	}
	for _, o := range g.EpollOrder {
		its := g.Objects[o].Source.Items
		if newIdx[o] >= 0 && len(its) > 0 && in(its[0].Target) {
			p.EpollOrder = append(p.EpollOrder, newIdx[o])
		}
	}
	if proc.Ctty != "" {
		for _, f := range proc.FDs {
			if f.File == proc.Ctty && !f.Closed {
				p.Ctty = f.FD
				break
			}
		}
	}
	if cfg.ListenFDs {
		for i := range p.Entries {
			if n := cfg.Image.Files[fileAt(proc, p.Entries[i].Target)]; n != nil && n.Name != "" {
				p.Entries[i].Name = n.Name
			}
		}
		if err := p.listen(); err != nil {
			return nil, nil, fmt.Errorf("process %s: %w", proc.ID, err)
		}
	}
	return p, masters, nil
}

// ViewMasters returns the masters of process k's view, taken from the
// global masters m: the fds, in the view's order, and the created paths.
func (ip *ImagePlan) ViewMasters(k int, m *Masters) *Masters {
	pp := ip.Procs[k]
	v := &Masters{List: pp.Plan.Masters(), Paths: m.Paths}
	for _, g := range pp.Masters {
		v.FDs = append(v.FDs, m.FDs[g])
	}
	return v
}

// fileAt is the file id at fd n of proc, "" if none.
func fileAt(proc *Process, n int) string {
	for _, f := range proc.FDs {
		if f.FD == n {
			return f.File
		}
	}
	return ""
}
