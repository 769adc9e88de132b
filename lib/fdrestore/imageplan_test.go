//go:build linux

package fdrestore

import (
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

const planImage = `{"format": "gotools-fdimage", "version": 1,
 "processes": [
  {"id": "a", "exec": ["a"], "fds": [{"fd": 0, "file": "ts"}, {"fd": 3, "file": "pw"}, {"fd": 4, "file": "ep"}, {"fd": 5, "file": "m"}], "setsid": true, "ctty": "ts"},
  {"id": "b", "exec": ["b"], "pgrp": "new", "fds": [{"fd": 3, "file": "pr"}, {"fd": 7, "file": "m"}, {"fd": 8, "file": "ep"}]}],
 "files": {
  "ts": {"type": "pty", "pty": "t1", "end": "slave"},
  "pw": {"type": "pipe", "pipe": "p1", "end": "w"},
  "pr": {"type": "pipe", "pipe": "p1", "end": "r", "flags": ["rdonly", "nonblock"]},
  "m":  {"type": "memfd", "mname": "m"},
  "ep": {"type": "epoll", "targets": [{"fd": 3, "file": "pw", "events": "0x4", "data": "0x1234"}]}},
 "pipes": {"p1": {"size": 65536}},
 "ptys": {"t1": {"index": 4, "winsize": [24, 80, 0, 0]}}}`

func TestNewImagePlanViews(t *testing.T) {
	img, err := DecodeImage([]byte(planImage))
	if err != nil {
		t.Fatal(err)
	}
	ip, err := NewImagePlan(ImageConfig{Image: img})
	if err != nil {
		t.Fatal(err)
	}
	// Objects: one pty, one pipe, one epoll, one memfd; masters: pty
	// master+slave, both pipe ends, the epoll, the memfd.
	if n := len(ip.Global.Objects); n != 4 {
		t.Errorf("global objects = %d; want 4 (shared files opened once)", n)
	}
	a, b := ip.Procs[0].Plan, ip.Procs[1].Plan
	targets := func(p *Plan) (s []int) {
		for _, e := range p.Entries {
			s = append(s, e.Target)
		}
		return s
	}
	if got := targets(a); len(got) != 4 || got[0] != 0 || got[3] != 5 {
		t.Errorf("process a targets %v; want [0 3 4 5]", got)
	}
	if got := targets(b); len(got) != 3 || got[0] != 3 || got[2] != 8 {
		t.Errorf("process b targets %v; want [3 7 8]", got)
	}
	// The epoll is registered by a (fd 3 holds pw there), not by b.
	if len(a.EpollOrder) != 1 || len(b.EpollOrder) != 0 {
		t.Errorf("epoll registrations a %v, b %v; want a only", a.EpollOrder, b.EpollOrder)
	}
	it := a.Objects[a.EpollOrder[0]].Source.Items[0]
	if it.Target != 3 || it.Data != 0x1234 || !it.HasData || it.Events != 4 {
		t.Errorf("epoll item %+v; want target 3, events 4, data 0x1234", it)
	}
	if !a.Setsid || a.Ctty != 0 || b.Setsid || ip.Procs[1].Pgrp != -2 {
		t.Errorf("a setsid %v ctty %d, b setsid %v pgrp %d; want true 0 false -2", a.Setsid, a.Ctty, b.Setsid, ip.Procs[1].Pgrp)
	}
	// Each view has only its own objects; a file shared by both is the
	// same global master.
	if len(a.Objects) != 4 || len(b.Objects) != 3 {
		t.Errorf("views have %d and %d objects; want 4 (pty, pipe, epoll, memfd) and 3 (pipe, memfd, epoll)", len(a.Objects), len(b.Objects))
	}
	globalOf := func(pp *ProcPlan, fd int) int {
		pt := pp.Plan.PlaceTargets()
		for _, x := range pt {
			if x.FD == fd {
				return pp.Masters[x.Master]
			}
		}
		return -1
	}
	if ga, gb := globalOf(ip.Procs[0], 5), globalOf(ip.Procs[1], 7); ga < 0 || ga != gb {
		t.Errorf("the memfd at a:5 and b:7 is global master %d and %d; want one", ga, gb)
	}
	if ga, gb := globalOf(ip.Procs[0], 3), globalOf(ip.Procs[1], 3); ga < 0 || gb < 0 || ga == gb {
		t.Errorf("the pipe ends at a:3 and b:3 are global masters %d and %d; want two", ga, gb)
	}
	err = ip.RenameTargets(exitcode.Errorf(exitcode.Sys, "unable to open x for fd %d: boom", ip.base(1)+7))
	if !strings.Contains(err.Error(), "for fd 7 of process b:") {
		t.Errorf("RenameTargets = %q; want fd 7 of process b", err)
	}
}

func TestNewImagePlanRefusals(t *testing.T) {
	for _, tc := range []struct{ name, files, msg string }{
		{"deleted", `"x": {"type": "file", "path": "/gone", "deleted": true}`, "it was deleted"},
		{"established tcp", `"x": {"type": "tcp", "state": "established", "addr": "127.0.0.1:80"}`, "established sockets are live only"},
		{"memfd without data", `"x": {"type": "memfd", "mname": "m", "size": 3}`, "its contents were not dumped"},
		{"missing", `"x": {"type": "file", "path": "/a", "missing": ["pos"]}`, "could not be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := DecodeImage([]byte(`{"format": "gotools-fdimage", "version": 1, "processes": [{"id": "p", "exec": ["p"], "fds": [{"fd": 3, "file": "x"}]}], "files": {` + tc.files + `}}`))
			if err != nil {
				t.Fatal(err)
			}
			_, err = NewImagePlan(ImageConfig{Image: img})
			if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("NewImagePlan = %v (code %d); want exit 1 with %q", err, exitcode.Of(err), tc.msg)
			}
			ip, err := NewImagePlan(ImageConfig{Image: img, Lossy: true})
			if err != nil || len(ip.Warnings) != 1 || ip.Procs[0].Plan.Entries[0].Object != -1 {
				t.Errorf("NewImagePlan --lossy = %v, %v; want one warning and fd 3 closed", ip, err)
			}
		})
	}
}
