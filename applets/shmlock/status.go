package shmlock

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/shm"
)

// summary prints the "key value" lines of open and inspect.
func summary(env *cli.Env, s *shm.Segment) error {
	info := s.Info()
	var b strings.Builder
	kv := func(k string, v any) { fmt.Fprintf(&b, "%s %v\n", k, v) }
	kv("path", info.Path)
	kv("version", info.Version)
	kv("num_locks", info.NumLocks)
	kv("max_locks", info.MaxLocks)
	kv("free", info.Free)
	kv("held", info.Held)
	kv("size", info.Size)
	kv("created", info.Created.UTC().Format(time.RFC3339Nano))
	kv("creator_pid", info.CreatorPID)
	kv("recoveries", info.Recoveries)
	kv("forced_unlocks", info.Forced)
	return write(env.Stdout, b.String())
}

// write writes s to w; a failure is a system failure.
func write(w io.Writer, s string) error {
	if _, err := io.WriteString(w, s); err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to write to stdout: %w", reason(err))
	}
	return nil
}

type statusCmd struct {
	JSON bool     `name:"json" help:"Print one JSON object per index."`
	All  bool     `name:"all" help:"Every allocated index too, not only held ones."`
	Name string   `arg:"" name:"name" help:"The segment's name."`
	Idx  []string `arg:"" optional:"" name:"idx" help:"Only these indexes."`
}

func (c *statusCmd) Run(env *cli.Env, top *command) (err error) {
	defer usageOf(env, "status", &err)
	if c.All && len(c.Idx) > 0 {
		return usagef("give either --all or IDX...")
	}
	idx, err := parseIndexes(c.Idx)
	if err != nil {
		return err
	}
	// Read-only: status must work on any segment, from any PID
	// namespace, and never changes a byte of it.
	return top.withSegment(c.Name, shm.OpenReadOnly, func(s *shm.Segment) error {
		var l []shm.SlotStatus
		var err error
		switch {
		case len(idx) > 0:
			for _, i := range idx {
				st, err := s.Owner(i)
				if err != nil {
					return fail("read", slot(c.Name, i), err)
				}
				l = append(l, st)
			}
		default:
			if l, err = s.Status(); err != nil {
				return fail("read", c.Name, err)
			}
			if c.All {
				if l, err = withAllocated(s, l); err != nil {
					return fail("read", c.Name, err)
				}
			}
		}
		var b strings.Builder
		for _, st := range l {
			if c.JSON {
				j, err := jsonLine(st)
				if err != nil {
					return exitcode.New(exitcode.Internal, err)
				}
				b.WriteString(j)
				continue
			}
			b.WriteString(line(st))
		}
		return write(env.Stdout, b.String())
	})
}

// withAllocated adds every allocated index of s to l (held or marked
// indexes from Status), in index order.
func withAllocated(s *shm.Segment, l []shm.SlotStatus) ([]shm.SlotStatus, error) {
	seen := make(map[uint32]bool, len(l))
	for _, st := range l {
		seen[st.Index] = true
	}
	for i := range s.MaxLocks() {
		if seen[i] {
			continue
		}
		st, err := s.Owner(i)
		if err != nil {
			return nil, err
		}
		if st.Allocated {
			l = append(l, st)
		}
	}
	slices.SortFunc(l, func(a, b shm.SlotStatus) int { return int(a.Index) - int(b.Index) })
	return l, nil
}

// state is the status line's state word.
func state(st shm.SlotStatus) string {
	switch {
	case st.Locked && st.Owner == shm.Dead:
		return "held-dead"
	case st.Locked && st.Owner == shm.Reused:
		return "held-reused"
	case st.Locked && st.Owner == shm.Unknown:
		return "held-unknown"
	case st.Locked:
		return "held"
	case st.OwnerDiedMark:
		return "owner-died"
	}
	return "free"
}

// liveness names st.Owner for JSON: "alive", "dead", "reused",
// "unknown", or "" when the lock is not held.
func liveness(st shm.SlotStatus) string {
	if !st.Locked {
		return ""
	}
	return st.Owner.String()
}

// flags is the status line's flags column: "recovered", "uncovered", both
// comma-separated, or "-".
func flags(st shm.SlotStatus) string {
	var f []string
	if st.Recovered {
		f = append(f, "recovered")
	}
	if st.Locked && !st.KernelCovered {
		f = append(f, "uncovered")
	}
	if len(f) == 0 {
		return "-"
	}
	return strings.Join(f, ",")
}

// commOf is the owner's command name, "-" when unknown or none.
func commOf(st shm.SlotStatus) string {
	if st.Comm == "" || strings.ContainsAny(st.Comm, "\t\n") {
		return "-"
	}
	return st.Comm
}

// line is one tab-separated status line:
// "index state pid comm held_ms waiters tag flags".
func line(st shm.SlotStatus) string {
	var held int64
	if st.Locked {
		held = st.HeldFor.Milliseconds()
	}
	return fmt.Sprintf("%d\t%s\t%d\t%s\t%d\t%d\t%d\t%s\n",
		st.Index, state(st), st.PID, commOf(st), held, st.Waiters, st.Tag, flags(st))
}

// slotJSON is the --json form of a SlotStatus: its fields in snake case,
// plus the status line's state, and the held time in milliseconds.
type slotJSON struct {
	Index         uint32 `json:"index"`
	State         string `json:"state"`
	Allocated     bool   `json:"allocated"`
	Tag           uint64 `json:"tag"`
	Locked        bool   `json:"locked"`
	PID           int    `json:"pid"`
	Comm          string `json:"comm"`
	HeldMs        int64  `json:"held_ms"`
	Waiters       uint32 `json:"waiters"`
	Owner         string `json:"owner"`
	OwnerDiedMark bool   `json:"owner_died_mark"`
	Recovered     bool   `json:"recovered"`
	KernelCovered bool   `json:"kernel_covered"`
	PrevOwner     int    `json:"prev_owner"`
}

// jsonLine is st as one JSON object on one line. (encoding/json is in every
// gotools binary already: kong links it.)
func jsonLine(st shm.SlotStatus) (string, error) {
	j := slotJSON{
		Index: st.Index, State: state(st), Allocated: st.Allocated, Tag: st.Tag,
		Locked: st.Locked, PID: st.PID, Comm: st.Comm, Waiters: st.Waiters,
		Owner: liveness(st), OwnerDiedMark: st.OwnerDiedMark, Recovered: st.Recovered,
		KernelCovered: st.KernelCovered, PrevOwner: st.PrevOwner,
	}
	if st.Locked {
		j.HeldMs = st.HeldFor.Milliseconds()
	}
	b, err := json.Marshal(j)
	return string(b) + "\n", err
}

type gcCmd struct {
	Name string `arg:"" name:"name" help:"The segment's name."`
}

func (c *gcCmd) Run(env *cli.Env, top *command) error {
	live, err := readTags(os.Stdin)
	if err != nil {
		return err
	}
	return top.withSegment(c.Name, shm.OpenExisting, func(s *shm.Segment) error {
		freed, err := s.GC(func(tag uint64) bool { return live[tag] })
		var b strings.Builder
		for _, i := range freed {
			fmt.Fprintf(&b, "%d\n", i)
		}
		if werr := write(env.Stdout, b.String()); werr != nil {
			return werr
		}
		if err != nil {
			return fail("gc", c.Name, err)
		}
		return nil
	})
}

// readTags reads the live tags, one per line (decimal or 0x hex); blank
// lines are skipped. A bad line is a usage error (exit 100).
func readTags(r io.Reader) (map[uint64]bool, error) {
	live := map[uint64]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" {
			continue
		}
		v, ok := parseTag(t)
		if !ok {
			return nil, exitcode.Errorf(exitcode.Usage, "unable to read live tags: line %d: invalid tag %q", n, t)
		}
		live[v] = true
	}
	if err := sc.Err(); err != nil {
		return nil, exitcode.Errorf(exitcode.Sys, "unable to read live tags: %w", reason(err))
	}
	return live, nil
}
