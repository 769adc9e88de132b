package fdrestore

import (
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCensus: an fd without FD_CLOEXEC counts as inherited, one with it as
// the runtime's, and the engine's own fds are left out.
func TestCensus(t *testing.T) {
	inh, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(inh)
	rt, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rt)
	mine, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(mine)
	tb, err := Census([]int{mine})
	if err != nil {
		t.Fatalf("Census = %v", err)
	}
	if !slices.Contains(tb.Inherited, inh) || slices.Contains(tb.Reserved, inh) {
		t.Errorf("fd %d without FD_CLOEXEC: census %+v; want it inherited", inh, tb)
	}
	if !slices.Contains(tb.Reserved, rt) || slices.Contains(tb.Inherited, rt) {
		t.Errorf("fd %d with FD_CLOEXEC: census %+v; want it reserved", rt, tb)
	}
	if slices.Contains(tb.Reserved, mine) || slices.Contains(tb.Inherited, mine) {
		t.Errorf("the engine's fd %d is in the census %+v", mine, tb)
	}
}

// TestRunOps: a lift, a place and a close run as raw calls, with the
// close-on-exec flag each op promises.
func TestRunOps(t *testing.T) {
	src, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	lifted, placed := 900, 901
	defer unix.Close(lifted)
	defer unix.Close(placed)
	err = RunOps([]Op{{Kind: OpLift, From: src, To: lifted}, {Kind: OpPlace, From: lifted, To: placed}, {Kind: OpClose, From: src}})
	if err != nil {
		t.Fatalf("RunOps = %v", err)
	}
	if fl, err := unix.FcntlInt(uintptr(lifted), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("lifted fd flags %#x, %v; want FD_CLOEXEC", fl, err)
	}
	if fl, err := unix.FcntlInt(uintptr(placed), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC != 0 {
		t.Errorf("placed fd flags %#x, %v; want no FD_CLOEXEC", fl, err)
	}
	if _, err := unix.FcntlInt(uintptr(src), unix.F_GETFD, 0); err == nil {
		t.Errorf("fd %d still open after its close op", src)
	}
}
