//go:build linux

package fdrestore

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

var testLimits = Limits{HardNOFILE: 20000, NrOpen: 1 << 20}

func targets(p *Plan) []int {
	var ts []int
	for _, e := range p.Entries {
		ts = append(ts, e.Target)
	}
	return ts
}

func TestFlagsPlanTargets(t *testing.T) {
	for _, tt := range []struct {
		name  string
		flags []string
		want  []int // targets in -f order
	}{
		{"auto from 3", []string{"null", "null", "null"}, []int{3, 4, 5}},
		{"auto skips explicit", []string{"null", "4=null", "null", "3=null"}, []int{5, 4, 6, 3}},
		{"explicit stdio", []string{"0=null", "1=null", "null"}, []int{0, 1, 3}},
		{"explicit later reserves", []string{"null", "null", "3=close"}, []int{4, 5, 3}},
		{"hole kept", []string{"7=null", "null"}, []int{7, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewFlagsPlan(FlagsConfig{Flags: tt.flags, Limits: testLimits})
			if err != nil {
				t.Fatalf("NewFlagsPlan(%q) = %v", tt.flags, err)
			}
			got := make([]int, len(tt.flags))
			for _, e := range p.Entries {
				got[e.Flag] = e.Target
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("NewFlagsPlan(%q) targets = %v; want %v", tt.flags, got, tt.want)
			}
			if !slices.IsSorted(targets(p)) {
				t.Errorf("entries not ascending: %v", targets(p))
			}
		})
	}
}

func TestFlagsPlanErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  FlagsConfig
		msg  string
	}{
		{"bad source", FlagsConfig{Flags: []string{"3=pipe:a:x"}}, "invalid source for fd 3: pipe:a:x: pipe end must be r or w"},
		{"duplicate target", FlagsConfig{Flags: []string{"3=null", "3=null"}}, "fd 3 is given twice"},
		{"out of range hard", FlagsConfig{Flags: []string{"70000=null"}, Limits: Limits{HardNOFILE: 20000, NrOpen: 1 << 20}},
			"fd 70000 is out of range: the hard open-file limit is 20000"},
		{"hard minus one", FlagsConfig{Flags: []string{"19999=null"}, Limits: Limits{HardNOFILE: 20000}},
			"fd 19999 is out of range: the hard open-file limit is 20000"},
		{"out of range nr_open", FlagsConfig{Flags: []string{"2000=null"}, Limits: Limits{HardNOFILE: ^uint64(0), NrOpen: 1024}},
			"fd 2000 is out of range: fs.nr_open is 1024"},
		{"no room", FlagsConfig{Flags: []string{"19980=null", "pipe:a:r", "pipe:b:r", "pipe:c:r", "pipe:d:r", "pipe:e:r", "pipe:f:r"}, Limits: Limits{HardNOFILE: 20000}},
			"not enough fd numbers above fd 19980: raise the hard open-file limit or lower the targets"},
		{"pipe end twice", FlagsConfig{Flags: []string{"3=pipe:p:r", "5=pipe:p:r"}},
			"invalid source for fd 5: pipe:p:r: pipe p end r is already fd 3: use dup:3"},
		{"pty end twice", FlagsConfig{Flags: []string{"pty:t:slave", "pty:t:master", "pty:t:slave"}},
			"invalid source for fd 5: pty:t:slave: pty t slave is already fd 3: use dup:3"},
		{"socketpair end twice", FlagsConfig{Flags: []string{"0=socketpair:s:1", "1=socketpair:s:1"}},
			"invalid source for fd 1: socketpair:s:1: socketpair s end 1 is already fd 0: use dup:0"},
		{"socketpair types differ", FlagsConfig{Flags: []string{"socketpair:s:0", "socketpair:s:1:dgram"}},
			"invalid source for fd 4: socketpair:s:1:dgram: socketpair s has another type at fd 3"},
		{"dup unknown", FlagsConfig{Flags: []string{"3=null", "4=dup:9"}}, "invalid source for fd 4: dup:9: fd 9 is not a target of this plan"},
		{"dup self", FlagsConfig{Flags: []string{"4=dup:4"}}, "invalid source for fd 4: dup:4: dup: loop through fd 4"},
		{"dup cycle", FlagsConfig{Flags: []string{"3=dup:4", "4=dup:5", "5=dup:3"}}, "invalid source for fd 3: dup:4: dup: loop through fd 3"},
		{"dup closed", FlagsConfig{Flags: []string{"3=close", "4=dup:3"}}, "invalid source for fd 4: dup:3: fd 3 is closed"},
		{"epoll unknown", FlagsConfig{Flags: []string{"3=null", "epoll:3,9"}}, "invalid source for fd 4: epoll:3,9: fd 9 is not a target of this plan"},
		{"epoll closed", FlagsConfig{Flags: []string{"3=close", "epoll:3"}}, "invalid source for fd 4: epoll:3: fd 3 is closed"},
		{"epoll self", FlagsConfig{Flags: []string{"3=epoll:3"}}, "invalid source for fd 3: epoll:3: an epoll cannot watch itself (fd 3)"},
		{"epoll self through dup", FlagsConfig{Flags: []string{"3=epoll:4", "4=dup:3"}}, "an epoll cannot watch itself (fd 4)"},
		{"epoll loop", FlagsConfig{Flags: []string{"3=epoll:4", "4=epoll:3"}}, "epolls watch each other in a loop"},
		{"listen-fds hole", FlagsConfig{Flags: []string{"3=null", "5=null"}, ListenFDs: true},
			"--listen-fds needs the targets from 3 on without holes: fd 4 is missing"},
		{"listen-fds not from 3", FlagsConfig{Flags: []string{"4=null"}, ListenFDs: true},
			"--listen-fds needs the targets from 3 on without holes: fd 3 is missing"},
		{"name syntax", FlagsConfig{Flags: []string{"null"}, Names: []string{"x"}}, `invalid --name "x": it must be N=NAME`},
		{"name not digits", FlagsConfig{Flags: []string{"null"}, Names: []string{"a=b"}}, `invalid --name "a=b": it must be N=NAME`},
		{"name not a target", FlagsConfig{Flags: []string{"null"}, Names: []string{"4=x"}}, `invalid --name "4=x": fd 4 is not a target`},
		{"name twice", FlagsConfig{Flags: []string{"null"}, Names: []string{"3=x", "3=y"}}, "--name for fd 3 is given twice"},
		{"name empty", FlagsConfig{Flags: []string{"null"}, Names: []string{"3="}}, `invalid --name "3=": a name must be 1 to 255 printable ASCII bytes without ':'`},
		{"name colon", FlagsConfig{Flags: []string{"null"}, Names: []string{"3=a:b"}}, "without ':'"},
		{"name space ok, tab not", FlagsConfig{Flags: []string{"null"}, Names: []string{"3=a\tb"}}, "printable ASCII"},
		{"name long", FlagsConfig{Flags: []string{"null"}, Names: []string{"3=" + strings.Repeat("n", 256)}}, "1 to 255"},
		{"name utf8", FlagsConfig{Flags: []string{"null"}, Names: []string{"3=é"}}, "printable ASCII"},
		{"ctty not a target", FlagsConfig{Flags: []string{"3=pty:t:slave"}, Ctty: 4, HasCtty: true}, "--ctty 4: fd 4 is not a target of this plan"},
		{"ctty closed", FlagsConfig{Flags: []string{"3=close"}, Ctty: 3, HasCtty: true}, "--ctty 3: fd 3 is closed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewFlagsPlan(tt.cfg)
			if err == nil {
				t.Fatalf("NewFlagsPlan(%q) = %+v; want error %q", tt.cfg.Flags, p, tt.msg)
			}
			if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("NewFlagsPlan(%q) = %q (code %d); want one line with %q, code 100", tt.cfg.Flags, err, exitcode.Of(err), tt.msg)
			}
		})
	}
}

func TestFlagsPlanLimitsEdge(t *testing.T) {
	// Targets < min(hard - 1, nr_open), and M + 1 + masters + EngineFDs <= that.
	lim := Limits{HardNOFILE: 1001}
	top := 1000 - 1 - 1 - EngineFDs
	if _, err := NewFlagsPlan(FlagsConfig{Flags: []string{fmt.Sprintf("%d=null", top)}, Limits: lim}); err != nil {
		t.Errorf("target %d with hard limit 1001: %v; want success", top, err)
	}
	if _, err := NewFlagsPlan(FlagsConfig{Flags: []string{fmt.Sprintf("%d=null", top+1)}, Limits: lim}); err == nil {
		t.Errorf("target %d with hard limit 1001: success; want no room", top+1)
	}
	// Zero limits are unknown: not checked.
	if _, err := NewFlagsPlan(FlagsConfig{Flags: []string{"5000=null"}}); err != nil {
		t.Errorf("no limits: %v", err)
	}
	// A target above the soft limit is fine: only the hard limit counts.
	if _, err := NewFlagsPlan(FlagsConfig{Flags: []string{"5000=null"}, Limits: testLimits}); err != nil {
		t.Errorf("target 5000, hard 20000: %v", err)
	}
}

func TestFlagsPlanObjects(t *testing.T) {
	p, err := NewFlagsPlan(FlagsConfig{Limits: testLimits, Flags: []string{
		"0=pipe:p:r",       // 0
		"1=pipe:p:w",       // 1
		"file:/etc/passwd", // 3
		"dup:3",            // 4
		"grab:1:0",         // 5
		"listen:tcp::0",    // 6
		"7=dup:4",          // dup chain 7 -> 4 -> 3
		"9=epoll:3/in+et,0/out",
		"pty:t:slave",    // 8
		"fd:0",           // 10
		"hold:/s:tcp:80", // 11
		"2=close",
		"socketpair:s:1", // 12
	}})
	if err != nil {
		t.Fatal(err)
	}
	obj := map[int]int{}
	end := map[int]int{}
	for _, e := range p.Entries {
		obj[e.Target], end[e.Target] = e.Object, e.End
	}
	if obj[0] != obj[1] || end[0] != PipeRead || end[1] != PipeWrite {
		t.Errorf("pipe ends: objects %d %d ends %d %d; want one object, ends r w", obj[0], obj[1], end[0], end[1])
	}
	if obj[3] != obj[4] || obj[3] != obj[7] || obj[3] == obj[0] {
		t.Errorf("dup: objects %d %d %d; want one", obj[3], obj[4], obj[7])
	}
	if obj[2] != -1 {
		t.Errorf("close: object %d; want -1", obj[2])
	}
	if got := p.Objects[obj[3]].Targets; !reflect.DeepEqual(got, []int{3, 4, 7}) {
		t.Errorf("file targets = %v; want [3 4 7]", got)
	}
	if p.Objects[obj[8]].Kind != KindPTY || end[8] != PTYSlave || p.Objects[obj[8]].MasterFDs() != 2 {
		t.Errorf("pty: %+v end %d", p.Objects[obj[8]], end[8])
	}
	// 6.2: live sources, then listeners, then the rest in -f order.
	var kinds []Kind
	for _, o := range p.Order {
		kinds = append(kinds, p.Objects[o].Kind)
	}
	want := []Kind{KindGrab, KindFD, KindHold, KindListen, KindPipe, KindFile, KindEpoll, KindPTY, KindSocketpair}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("order = %v; want %v", kinds, want)
	}
	if p.MaxTarget != 12 {
		t.Errorf("MaxTarget = %d; want 12", p.MaxTarget)
	}
	// Masters: both pipe and socketpair ends, both pty ends, one per other object.
	ms := p.Masters()
	if len(ms) != 3+1+2+1+1+2+2 {
		t.Errorf("Masters() = %v", ms)
	}
	pts := p.PlaceTargets()
	for _, pt := range pts {
		if pt.FD == 2 {
			if pt.Master != -1 {
				t.Errorf("close target has master %d", pt.Master)
			}
			continue
		}
		m := ms[pt.Master]
		if m.Object != obj[pt.FD] || m.End != end[pt.FD] {
			t.Errorf("target %d: master %+v; want object %d end %d", pt.FD, m, obj[pt.FD], end[pt.FD])
		}
	}
}

func TestFlagsPlanEpollOrder(t *testing.T) {
	// 5 watches 4 watches 3: register 3's items, then 4's, then 5's.
	p, err := NewFlagsPlan(FlagsConfig{Flags: []string{"5=epoll:4", "4=epoll:3", "3=epoll:6", "6=null"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, o := range p.EpollOrder {
		got = append(got, p.Objects[o].Targets[0])
	}
	if !reflect.DeepEqual(got, []int{3, 4, 5}) {
		t.Errorf("EpollOrder targets = %v; want [3 4 5]", got)
	}
}

func TestFlagsPlanListenFDs(t *testing.T) {
	p, err := NewFlagsPlan(FlagsConfig{
		Flags:     []string{"0=null", "listen:tcp::80", "hold:/run/fdh:tcp:0.0.0.0:80", "dup:4", "hold:/s:x\x01y"},
		Names:     []string{"3=http"},
		ListenFDs: true,
		Limits:    testLimits,
	})
	if err != nil {
		t.Fatal(err)
	}
	// 8.5: a hold id with ':' and unprintable bytes as '_'; a dup keeps its file's default.
	want := []string{"http", "tcp_0.0.0.0_80", "tcp_0.0.0.0_80", "x_y"}
	if !reflect.DeepEqual(p.ListenNames, want) {
		t.Errorf("ListenNames = %q; want %q", p.ListenNames, want)
	}
	env, warn := p.Environ([]string{"PATH=/bin", "LISTEN_FDS=9", "LISTEN_PIDFDID=7", "LISTEN_PID=1"}, 42)
	wantEnv := []string{"PATH=/bin", "LISTEN_FDS=4", "LISTEN_FDNAMES=http:tcp_0.0.0.0_80:tcp_0.0.0.0_80:x_y", "LISTEN_PID=42"}
	if !reflect.DeepEqual(env, wantEnv) || warn != "" {
		t.Errorf("Environ = %q, %q; want %q", env, warn, wantEnv)
	}

	// Close targets and targets 0-2 do not count.
	p, err = NewFlagsPlan(FlagsConfig{Flags: []string{"1=null", "3=null", "4=null", "9=close"}, ListenFDs: true})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.ListenNames, []string{"unknown", "unknown"}) {
		t.Errorf("ListenNames = %q", p.ListenNames)
	}
	// No fd from 3: LISTEN_FDS=0.
	p, err = NewFlagsPlan(FlagsConfig{Flags: []string{"0=null"}, ListenFDs: true})
	if err != nil {
		t.Fatal(err)
	}
	if env, _ := p.Environ(nil, 7); !reflect.DeepEqual(env, []string{"LISTEN_FDS=0", "LISTEN_FDNAMES=", "LISTEN_PID=7"}) {
		t.Errorf("Environ = %q", env)
	}
}

func TestFlagsPlanEnvironWithoutListenFDs(t *testing.T) {
	inherited := []string{"A=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=a:b", "LISTEN_PID=9", "LISTEN_PIDFDID=3", "B=2"}
	for _, tt := range []struct {
		name   string
		cfg    FlagsConfig
		env    []string
		remove bool
	}{
		{"places 4", FlagsConfig{Flags: []string{"4=null"}}, inherited, true},
		{"closes 3", FlagsConfig{Flags: []string{"3=close"}}, inherited, true},
		{"above the range", FlagsConfig{Flags: []string{"5=null"}}, inherited, false},
		{"stdio only", FlagsConfig{Flags: []string{"0=null", "2=null"}}, inherited, false},
		{"-C closes them", FlagsConfig{Flags: []string{"0=null"}, CloseOthers: true}, inherited, true},
		{"no LISTEN_FDS", FlagsConfig{Flags: []string{"3=null"}}, []string{"A=1"}, false},
		{"LISTEN_FDS garbage", FlagsConfig{Flags: []string{"3=null"}}, []string{"LISTEN_FDS=x"}, false},
		{"LISTEN_FDS=0", FlagsConfig{Flags: []string{"3=null"}}, []string{"LISTEN_FDS=0"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewFlagsPlan(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			env, warn := p.Environ(tt.env, 1)
			want := tt.env
			if tt.remove {
				want = []string{"A=1", "B=2"}
			}
			if !reflect.DeepEqual(env, want) || (warn != "") != tt.remove {
				t.Errorf("Environ(%q) = %q, %q; want %q (warning %v)", tt.env, env, warn, want, tt.remove)
			}
		})
	}
}

func TestFlagsPlanCloseOthers(t *testing.T) {
	cfg := FlagsConfig{Flags: []string{"3=fd:7", "0=null", "5=null"}, CloseOthers: true, Inherited: []int{0, 1, 2, 3, 4, 7, 9, 4}}
	p, err := NewFlagsPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{4, 7, 9}; !reflect.DeepEqual(p.Close, want) {
		t.Errorf("Close = %v; want %v", p.Close, want)
	}
	cfg.CloseOthers = false
	if p, _ = NewFlagsPlan(cfg); p.Close != nil {
		t.Errorf("without -C: Close = %v; want none", p.Close)
	}
}

// TestFlagsPlanManyFDs: 300 targets with holes and one at 1000, auto-numbered
// around the explicit ones.
func TestFlagsPlanManyFDs(t *testing.T) {
	var flags []string
	for i := 0; i < 300; i++ {
		if i%7 == 0 {
			flags = append(flags, fmt.Sprintf("%d=pipe:p%d:w", 3+2*i, i))
		} else {
			flags = append(flags, "null")
		}
	}
	flags = append(flags, "1000=dup:3")
	p, err := NewFlagsPlan(FlagsConfig{Flags: flags, Limits: Limits{HardNOFILE: 4096}})
	if err != nil {
		t.Fatal(err)
	}
	ts := targets(p)
	if len(ts) != 301 || ts[len(ts)-1] != 1000 {
		t.Fatalf("targets = %v", ts)
	}
	for i := 1; i < len(ts); i++ {
		if ts[i] == ts[i-1] {
			t.Fatalf("target %d twice", ts[i])
		}
	}
	// Auto targets fill the lowest free numbers from 3, in -f order.
	explicit := map[int]bool{1000: true}
	for i := 0; i < 300; i += 7 {
		explicit[3+2*i] = true
	}
	next := 3
	for _, e := range slices.SortedFunc(slices.Values(p.Entries), func(a, b Entry) int { return a.Flag - b.Flag }) {
		if explicit[e.Target] {
			continue
		}
		for explicit[next] {
			next++
		}
		if e.Target != next {
			t.Fatalf("flag %d: target %d; want %d", e.Flag, e.Target, next)
		}
		next++
	}
}

// FuzzFlagsPlan builds plans from space-separated -f flags; an accepted plan
// must have unique targets, consistent objects, and place correctly from
// masters on the lowest numbers (where the coordinator's opens land).
func FuzzFlagsPlan(f *testing.F) {
	for _, s := range []string{
		"3=fd:4 4=fd:3", "0=pipe:p:r 1=pipe:p:w", "pipe:p:r pipe:p:r", "null dup:3 epoll:3,4/out+et",
		"3=dup:4 4=dup:5 5=dup:3", "pty:t:slave pty:t:master 9=close", "socketpair:s:0 socketpair:s:1:dgram",
		"5=epoll:4 4=epoll:3 3=epoll:6 6=null", "hold:/s:a:b listen:tcp::0 grab:1:2",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, listen bool) {
		flags := strings.Fields(s)
		if len(flags) > 64 {
			return
		}
		p, err := NewFlagsPlan(FlagsConfig{Flags: flags, ListenFDs: listen, Limits: Limits{HardNOFILE: 1 << 16}})
		if err != nil {
			if exitcode.Of(err) != exitcode.Usage || strings.Contains(err.Error(), "\n") {
				t.Fatalf("NewFlagsPlan(%q) = %q; want a one-line usage error", flags, err)
			}
			return
		}
		if len(p.Entries) != len(flags) {
			t.Fatalf("NewFlagsPlan(%q): %d entries", flags, len(p.Entries))
		}
		for i, e := range p.Entries {
			if i > 0 && p.Entries[i-1].Target >= e.Target {
				t.Fatalf("NewFlagsPlan(%q): targets %v", flags, targets(p))
			}
			if e.Object >= 0 && !slices.Contains(p.Objects[e.Object].Targets, e.Target) {
				t.Fatalf("NewFlagsPlan(%q): entry %+v not in its object", flags, e)
			}
			if (e.Object < 0) != (e.Source.Kind == KindClose) {
				t.Fatalf("NewFlagsPlan(%q): entry %+v", flags, e)
			}
		}
		if len(p.Order) != len(p.Objects) {
			t.Fatalf("NewFlagsPlan(%q): order %v", flags, p.Order)
		}
		in := PlaceInput{Targets: p.PlaceTargets(), Inherited: []int{0, 1, 2}}
		for i := range p.Masters() {
			in.Masters = append(in.Masters, 3+i)
		}
		pl, err := Place(in)
		if err != nil {
			t.Fatalf("Place(%+v) = %v", in, err)
		}
		got, err := simulate(in, pl)
		if err != nil {
			t.Fatalf("plan %q: %v", flags, err)
		}
		if want := wantTable(in); !maps.Equal(got, want) {
			t.Fatalf("plan %q: table %v; want %v", flags, got, want)
		}
	})
}

func TestPlanSetsidCttyDirFD(t *testing.T) {
	p, err := NewFlagsPlan(FlagsConfig{Flags: []string{"0=pty:t:slave", "pty:t:master"}, Ctty: 0, HasCtty: true, AllowDirFD: true})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Setsid || p.Ctty != 0 || !p.AllowDirFD {
		t.Errorf("plan with --ctty 0 --allow-dirfd: Setsid %v, Ctty %d, AllowDirFD %v; want true, 0, true", p.Setsid, p.Ctty, p.AllowDirFD)
	}
	p, err = NewFlagsPlan(FlagsConfig{Flags: []string{"null"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Setsid || p.Ctty != -1 || p.AllowDirFD {
		t.Errorf("plan without them: Setsid %v, Ctty %d, AllowDirFD %v; want false, -1, false", p.Setsid, p.Ctty, p.AllowDirFD)
	}
}

func TestOpenMastersAllowDirFD(t *testing.T) {
	dir := t.TempDir()
	p, err := NewFlagsPlan(FlagsConfig{Flags: []string{"3=file:" + dir, "4=file:" + dir + ":path"}, AllowDirFD: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := OpenMasters(p)
	if err != nil {
		t.Fatalf("OpenMasters with AllowDirFD = %v; want the directory and O_PATH fds", err)
	}
	if len(m.FDs) != 2 {
		t.Errorf("OpenMasters opened %d fds; want 2", len(m.FDs))
	}
	m.Close()
}
