//go:build linux

package fdrestore

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// fdEntry is one slot of the simulated fd table.
type fdEntry struct {
	obj     string
	cloexec bool
}

// simulate applies ops to a fake fd table built from in, checking each
// operation as the kernel would (EBADF, dup3 onto itself) and that nothing
// overwrites or closes a master still needed, an inherited fd that is no
// target, or a reserved fd. It returns the table the program sees after
// execve (CLOEXEC entries dropped).
func simulate(in PlaceInput, pl *Placement) (map[int]string, error) {
	table := map[int]fdEntry{}
	for i, fd := range in.Masters {
		table[fd] = fdEntry{fmt.Sprintf("m%d", i), true}
	}
	for _, fd := range in.Inherited {
		table[fd] = fdEntry{fmt.Sprintf("i%d", fd), false}
	}
	for _, fd := range in.Reserved {
		table[fd] = fdEntry{fmt.Sprintf("r%d", fd), true}
	}
	isTarget := map[int]bool{}
	for _, tg := range in.Targets {
		isTarget[tg.FD] = true
	}
	// needed counts the target placements still to come for each master.
	needed := map[string]int{}
	for _, tg := range in.Targets {
		if tg.Master >= 0 {
			needed[fmt.Sprintf("m%d", tg.Master)]++
		}
	}
	copies := func(obj string) int {
		n := 0
		for _, e := range table {
			if e.obj == obj {
				n++
			}
		}
		return n
	}
	checkDrop := func(op Op, fd int) error {
		e, ok := table[fd]
		if !ok {
			return nil
		}
		switch e.obj[0] {
		case 'r':
			return fmt.Errorf("%v drops reserved fd %d", op, fd)
		case 'm':
			if needed[e.obj] > 0 && copies(e.obj) == 1 {
				return fmt.Errorf("%v drops the last copy of %s, still needed %d times", op, e.obj, needed[e.obj])
			}
		case 'i':
			if !isTarget[fd] && !(in.CloseOthers && fd >= 3) {
				return fmt.Errorf("%v drops inherited fd %d, which is no target", op, fd)
			}
		}
		return nil
	}
	for _, op := range pl.Ops() {
		switch op.Kind {
		case OpLift, OpPlace:
			src, ok := table[op.From]
			if !ok {
				return nil, fmt.Errorf("%v: EBADF", op)
			}
			if op.From == op.To {
				return nil, fmt.Errorf("%v: EINVAL (same fd)", op)
			}
			if op.Kind == OpLift {
				if _, busy := table[op.To]; busy || op.To <= pl.Max {
					return nil, fmt.Errorf("%v: lifts onto a used fd or not above the highest target %d", op, pl.Max)
				}
			}
			if err := checkDrop(op, op.To); err != nil {
				return nil, err
			}
			table[op.To] = fdEntry{src.obj, op.Kind == OpLift}
			if op.Kind == OpPlace {
				needed[src.obj]--
			}
		case OpClose:
			if _, ok := table[op.From]; !ok {
				return nil, fmt.Errorf("%v: EBADF", op)
			}
			if err := checkDrop(op, op.From); err != nil {
				return nil, err
			}
			delete(table, op.From)
		case OpCloseRangeCloexec:
			for fd, e := range table {
				if fd >= op.From {
					e.cloexec = true
					table[fd] = e
				}
			}
		default:
			return nil, fmt.Errorf("unknown op %v", op)
		}
	}
	for _, fd := range in.Reserved {
		if table[fd].obj != fmt.Sprintf("r%d", fd) {
			return nil, fmt.Errorf("reserved fd %d now holds %q", fd, table[fd].obj)
		}
	}
	final := map[int]string{}
	for fd, e := range table {
		if !e.cloexec {
			final[fd] = e.obj
		}
	}
	return final, nil
}

// wantTable is the program's table the placement must produce.
func wantTable(in PlaceInput) map[int]string {
	want := map[int]string{}
	for _, fd := range in.Inherited {
		if fd < 3 || !in.CloseOthers {
			want[fd] = fmt.Sprintf("i%d", fd)
		}
	}
	for _, tg := range in.Targets {
		if tg.Master >= 0 {
			want[tg.FD] = fmt.Sprintf("m%d", tg.Master)
		} else {
			delete(want, tg.FD)
		}
	}
	return want
}

func checkPlace(t *testing.T, in PlaceInput) *Placement {
	t.Helper()
	pl, err := Place(in)
	if err != nil {
		t.Fatalf("Place(%+v) = %v", in, err)
	}
	got, err := simulate(in, pl)
	if err != nil {
		t.Fatalf("Place(%+v): %v\nops %v", in, err, pl.Ops())
	}
	if want := wantTable(in); !maps.Equal(got, want) {
		t.Fatalf("Place(%+v): ops %v\ngive %v\nwant %v", in, pl.Ops(), got, want)
	}
	for i, fd := range pl.Lifted {
		if fd <= pl.Max {
			t.Errorf("master %d lifted to %d, not above %d", i, fd, pl.Max)
		}
	}
	return pl
}

func TestPlaceConflicts(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   PlaceInput
	}{
		{"nothing", PlaceInput{}},
		{"in place", PlaceInput{Masters: []int{10}, Targets: []PlaceTarget{{3, 0}}}},
		{"master on its target", PlaceInput{Masters: []int{3}, Targets: []PlaceTarget{{3, 0}}}},
		{"swap", PlaceInput{Masters: []int{4, 3}, Targets: []PlaceTarget{{3, 0}, {4, 1}}}},
		{"cycle", PlaceInput{Masters: []int{4, 5, 3}, Targets: []PlaceTarget{{3, 0}, {4, 1}, {5, 2}}}},
		{"pipe on 0 and 1", PlaceInput{Masters: []int{3, 4}, Targets: []PlaceTarget{{0, 0}, {1, 1}},
			Inherited: []int{0, 1, 2}}},
		{"masters on stdio", PlaceInput{Masters: []int{0, 1, 2}, Targets: []PlaceTarget{{2, 0}, {0, 1}, {1, 2}}}},
		{"one master at many targets", PlaceInput{Masters: []int{5}, Targets: []PlaceTarget{{3, 0}, {5, 0}, {9, 0}}}},
		{"unused master", PlaceInput{Masters: []int{3, 4}, Targets: []PlaceTarget{{4, 0}}}},
		{"close inherited", PlaceInput{Masters: []int{8}, Targets: []PlaceTarget{{3, -1}, {4, 0}}, Inherited: []int{0, 1, 2, 3, 6}}},
		{"close nothing open", PlaceInput{Targets: []PlaceTarget{{3, -1}}}},
		{"inherited replaced", PlaceInput{Masters: []int{9}, Targets: []PlaceTarget{{5, 0}}, Inherited: []int{5, 6}}},
		{"scratch skips busy", PlaceInput{Masters: []int{3, 7}, Targets: []PlaceTarget{{4, 0}, {5, 1}},
			Inherited: []int{6, 8}, Reserved: []int{9, 10}}},
		{"-C", PlaceInput{Masters: []int{4, 3}, Targets: []PlaceTarget{{3, 0}, {5, 1}},
			Inherited: []int{0, 1, 2, 5, 6, 7, 100}, CloseOthers: true}},
		{"-C master above", PlaceInput{Masters: []int{50}, Targets: []PlaceTarget{{3, 0}},
			Inherited: []int{1, 40}, Reserved: []int{4, 5}, CloseOthers: true}},
	} {
		t.Run(tt.name, func(t *testing.T) { checkPlace(t, tt.in) })
	}
}

func TestPlaceErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   PlaceInput
	}{
		{"reserved at a target", PlaceInput{Masters: []int{9}, Targets: []PlaceTarget{{3, 0}}, Reserved: []int{3}}},
		{"target twice", PlaceInput{Masters: []int{9}, Targets: []PlaceTarget{{3, 0}, {3, 0}}}},
		{"master twice", PlaceInput{Masters: []int{9, 9}}},
		{"master inherited", PlaceInput{Masters: []int{9}, Inherited: []int{9}}},
		{"no such master", PlaceInput{Masters: []int{9}, Targets: []PlaceTarget{{3, 1}}}},
		{"negative target", PlaceInput{Masters: []int{9}, Targets: []PlaceTarget{{-1, 0}}}},
		{"negative master fd", PlaceInput{Masters: []int{-1}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if pl, err := Place(tt.in); err == nil {
				t.Errorf("Place(%+v) = %v; want an error", tt.in, pl.Ops())
			}
		})
	}
}

// TestPlaceRandom checks random tables: hundreds of fds, masters landing on
// each other's targets (swaps and cycles), 0-2, inherited and reserved fds.
func TestPlaceRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for iter := range 300 {
		n := 1 + r.IntN(400)
		span := n + 3 + r.IntN(2*n)
		perm := r.Perm(span)
		// Targets: n distinct numbers in [0, span); one in ten closes.
		var in PlaceInput
		nMasters := 1 + r.IntN(n)
		for _, fd := range perm[:n] {
			m := r.IntN(nMasters)
			if r.IntN(10) == 0 {
				m = -1
			}
			in.Targets = append(in.Targets, PlaceTarget{FD: fd, Master: m})
		}
		// Masters mostly on numbers in the same span (colliding with
		// targets), some far above; inherited and reserved on the rest.
		free := r.Perm(span + 50)
		used := map[int]bool{}
		take := func(ok func(int) bool) int {
			for len(free) > 0 {
				fd := free[0]
				free = free[1:]
				if !used[fd] && ok(fd) {
					used[fd] = true
					return fd
				}
			}
			fd := span + 1000 + len(used)
			used[fd] = true
			return fd
		}
		isTarget := map[int]bool{}
		for _, tg := range in.Targets {
			isTarget[tg.FD] = true
		}
		for range nMasters {
			in.Masters = append(in.Masters, take(func(int) bool { return true }))
		}
		for range r.IntN(20) {
			in.Inherited = append(in.Inherited, take(func(int) bool { return true }))
		}
		for range r.IntN(10) {
			in.Reserved = append(in.Reserved, take(func(fd int) bool { return !isTarget[fd] }))
		}
		in.CloseOthers = r.IntN(2) == 0
		t.Run(fmt.Sprint(iter), func(t *testing.T) { checkPlace(t, in) })
	}
}

// TestPlacePlan runs a plan through Place: targets where pipe2 and socket
// would land in the coordinator, a swap of inherited fds, and 0-2.
func TestPlacePlan(t *testing.T) {
	p, err := NewFlagsPlan(FlagsConfig{Flags: []string{
		"0=pipe:p:r", "1=pipe:p:w", "3=fd:4", "4=fd:3", "socketpair:s:0", "dup:5", "7=close",
	}, Limits: testLimits})
	if err != nil {
		t.Fatal(err)
	}
	ms := p.Masters()
	in := PlaceInput{Targets: p.PlaceTargets(), Inherited: []int{0, 1, 2, 7}}
	// The masters arrive on the lowest free numbers, as the kernel gives them.
	next := 3
	for range ms {
		for slices.Contains(in.Inherited, next) {
			next++
		}
		in.Masters = append(in.Masters, next)
		next++
	}
	checkPlace(t, in)
}

// TestPlaceSimulatorCatchesClobbers is the negative control: placing a swap
// or a cycle without the lift overwrites a master still needed, and the
// simulator must say so; a wrong final table must differ from wantTable.
func TestPlaceSimulatorCatchesClobbers(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   PlaceInput
	}{
		{"swap", PlaceInput{Masters: []int{4, 3}, Targets: []PlaceTarget{{3, 0}, {4, 1}}}},
		{"cycle", PlaceInput{Masters: []int{4, 5, 3}, Targets: []PlaceTarget{{3, 0}, {4, 1}, {5, 2}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			naive := &Placement{Max: -1}
			for _, tg := range tt.in.Targets {
				naive.Place = append(naive.Place, Op{Kind: OpPlace, From: tt.in.Masters[tg.Master], To: tg.FD})
			}
			if _, err := simulate(tt.in, naive); err == nil {
				t.Errorf("simulate(naive %v) = nil error; want a clobber", naive.Ops())
			}
		})
	}
	in := PlaceInput{Masters: []int{4, 3}, Targets: []PlaceTarget{{3, 0}, {4, 1}}, Inherited: []int{9}, CloseOthers: true}
	pl, err := Place(in)
	if err != nil {
		t.Fatal(err)
	}
	pl.Release = pl.Release[:len(pl.Release)-1] // drop the -C sweep
	if got, err := simulate(in, pl); err != nil || maps.Equal(got, wantTable(in)) {
		t.Errorf("without the sweep: %v, %v; want a table with fd 9 left open", got, err)
	}
}
