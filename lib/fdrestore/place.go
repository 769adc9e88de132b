//go:build linux

package fdrestore

import (
	"fmt"
	"slices"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

// OpKind is one fd operation of the stage process.
type OpKind int

const (
	// OpLift is dup3(From, To, O_CLOEXEC): a master moves to a free number
	// above the highest target (6.5 step 1). F_DUPFD_CLOEXEC(M+1) would pick
	// the same number when the stage's census is complete.
	OpLift OpKind = iota + 1
	// OpPlace is dup3(From, To, 0): the copy at its target, FD_CLOEXEC clear,
	// replacing atomically whatever To held (6.5 step 3).
	OpPlace
	// OpClose is close(From).
	OpClose
	// OpCloseRangeCloexec is close_range(From, ~0U, CLOSE_RANGE_CLOEXEC)
	// (6.5 step 7: the -C sweep above the highest target).
	OpCloseRangeCloexec
)

// Op is one step of a [Placement].
type Op struct {
	Kind OpKind
	From int
	To   int // OpLift, OpPlace only
}

func (o Op) String() string {
	switch o.Kind {
	case OpLift:
		return fmt.Sprintf("dup3(%d, %d, O_CLOEXEC)", o.From, o.To)
	case OpPlace:
		return fmt.Sprintf("dup3(%d, %d, 0)", o.From, o.To)
	case OpClose:
		return fmt.Sprintf("close(%d)", o.From)
	case OpCloseRangeCloexec:
		return fmt.Sprintf("close_range(%d, ~0U, CLOSE_RANGE_CLOEXEC)", o.From)
	}
	return fmt.Sprintf("Op(%d)", int(o.Kind))
}

// PlaceTarget asks for master Master at fd FD; Master -1 means close FD.
type PlaceTarget struct {
	FD     int
	Master int
}

// PlaceInput is the stage process's fd table at placement time.
type PlaceInput struct {
	// Masters are the fds the masters arrived on: any numbers, 0-2 and
	// targets included. The engine owns them (CLOEXEC).
	Masters []int
	Targets []PlaceTarget
	// Inherited are fds without FD_CLOEXEC the program would inherit. A
	// target replaces one; -C closes those >= 3 that are not targets.
	Inherited []int
	// Reserved are fds the engine must neither close nor overwrite: the Go
	// runtime's and other CLOEXEC fds of the census (6.3 rule 2). One at a
	// target means this process cannot place in place (re-exec, 6.3 rule 4).
	Reserved    []int
	CloseOthers bool
}

// Placement is the result of [Place]. The stage runs Lift, then the escaped
// epoll registrations (with masters at Lifted), Place, the epoll
// registrations on final numbers, then Release.
type Placement struct {
	Lift    []Op
	Place   []Op
	Release []Op
	Lifted  []int // where each master is after Lift
	Max     int   // the highest target, -1 without targets
}

// Ops returns every operation in order.
func (pl *Placement) Ops() []Op {
	return slices.Concat(pl.Lift, pl.Place, pl.Release)
}

// Place computes how a stage process moves its masters to their targets
// without clobbering one it still needs (6.5). Every master at or below the
// highest target M is first lifted above M, so swaps (3<->4), cycles
// (3->4->5->3), 0-2 and the two ends of one pipe need no special case; then
// each target, ascending, gets dup3(master, target, 0), and close targets are
// closed. Release closes the masters (they are CLOEXEC anyway) and, with -C,
// the inherited fds >= 3 that are not targets.
func Place(in PlaceInput) (*Placement, error) {
	open := map[int]string{} // fd -> what holds it, for the checks
	claim := func(fd int, what string) error {
		if fd < 0 || fd > MaxFD {
			return exitcode.Errorf(exitcode.Internal, "place: %s: fd %d is out of range", what, fd)
		}
		if prev, ok := open[fd]; ok {
			return exitcode.Errorf(exitcode.Internal, "place: fd %d is both %s and %s", fd, prev, what)
		}
		open[fd] = what
		return nil
	}
	for i, fd := range in.Masters {
		if err := claim(fd, fmt.Sprintf("master %d", i)); err != nil {
			return nil, err
		}
	}
	for _, fd := range in.Inherited {
		if err := claim(fd, "inherited"); err != nil {
			return nil, err
		}
	}
	for _, fd := range in.Reserved {
		if err := claim(fd, "reserved"); err != nil {
			return nil, err
		}
	}
	pl := &Placement{Max: -1, Lifted: slices.Clone(in.Masters)}
	isTarget := map[int]bool{}
	for _, t := range in.Targets {
		switch {
		case t.FD < 0 || t.FD > MaxFD:
			return nil, exitcode.Errorf(exitcode.Internal, "place: target %d is out of range", t.FD)
		case isTarget[t.FD]:
			return nil, exitcode.Errorf(exitcode.Internal, "place: target %d is given twice", t.FD)
		case t.Master < -1 || t.Master >= len(in.Masters):
			return nil, exitcode.Errorf(exitcode.Internal, "place: target %d: no master %d", t.FD, t.Master)
		case open[t.FD] == "reserved":
			return nil, exitcode.Errorf(exitcode.Internal, "place: target %d holds a runtime fd", t.FD)
		}
		isTarget[t.FD] = true
		pl.Max = max(pl.Max, t.FD)
	}

	// Lift: scratch numbers are the lowest free ones above M.
	scratch := pl.Max + 1
	for i, fd := range in.Masters {
		if fd > pl.Max {
			continue
		}
		for open[scratch] != "" {
			scratch++
		}
		open[scratch] = "lifted"
		pl.Lifted[i] = scratch
		pl.Lift = append(pl.Lift, Op{Kind: OpLift, From: fd, To: scratch}, Op{Kind: OpClose, From: fd})
		delete(open, fd)
	}

	// Place, ascending.
	targets := slices.Clone(in.Targets)
	slices.SortFunc(targets, func(a, b PlaceTarget) int { return a.FD - b.FD })
	for _, t := range targets {
		if t.Master >= 0 {
			pl.Place = append(pl.Place, Op{Kind: OpPlace, From: pl.Lifted[t.Master], To: t.FD})
		} else if open[t.FD] != "" {
			pl.Place = append(pl.Place, Op{Kind: OpClose, From: t.FD})
		}
	}

	// Release.
	for _, fd := range pl.Lifted {
		pl.Release = append(pl.Release, Op{Kind: OpClose, From: fd})
	}
	if in.CloseOthers {
		inh := slices.Clone(in.Inherited)
		slices.Sort(inh)
		for _, fd := range inh {
			if fd >= 3 && fd <= pl.Max && !isTarget[fd] {
				pl.Release = append(pl.Release, Op{Kind: OpClose, From: fd})
			}
		}
		pl.Release = append(pl.Release, Op{Kind: OpCloseRangeCloexec, From: max(pl.Max+1, 3)})
	}
	return pl, nil
}
