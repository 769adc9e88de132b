//go:build linux

package fdrestore

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fd"
)

func socketpair(t *testing.T, typ int) (int, int) {
	t.Helper()
	sp, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return sp[0], sp[1]
}

// eventfds opens n eventfds, the i-th holding count i+1, so that each
// received fd can be told apart.
func eventfds(t *testing.T, n int) []int {
	t.Helper()
	fds := make([]int, n)
	for i := range fds {
		fd, err := unix.Eventfd(uint(i+1), unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			t.Fatal(err)
		}
		fds[i] = fd
	}
	return fds
}

func eventCount(fd int) (uint64, error) {
	buf := make([]byte, 8)
	if _, err := unix.Read(fd, buf); err != nil {
		return 0, err
	}
	return binary.NativeEndian.Uint64(buf), nil
}

func TestSendRecvFiles(t *testing.T) {
	for _, typ := range []struct {
		name string
		typ  int
	}{{"seqpacket", unix.SOCK_SEQPACKET}, {"stream", unix.SOCK_STREAM}} {
		for _, n := range []int{1, 252, 253, 600} {
			t.Run(fmt.Sprintf("%s/%d", typ.name, n), func(t *testing.T) {
				before := countFDs(t)
				a, b := socketpair(t, typ.typ)
				sent := eventfds(t, n)
				idx := make([]uint32, n)
				for i := range idx {
					idx[i] = uint32(3*i + 7)
				}
				done := make(chan error, 1)
				go func() { done <- SendFiles(a, idx, sent) }()
				gotIdx, got, err := RecvFiles(b, n)
				if serr := <-done; serr != nil {
					t.Errorf("SendFiles(%d fds) = %v", n, serr)
				}
				fd.CloseAll(sent)
				unix.Close(a)
				unix.Close(b)
				if err != nil {
					t.Fatalf("RecvFiles(%d) = %v", n, err)
				}
				defer fd.CloseAll(got)
				if !slices.Equal(gotIdx, idx) || len(got) != n {
					t.Fatalf("RecvFiles(%d) = %d indexes %v..., %d fds; want %v...", n, len(gotIdx), gotIdx[:min(3, len(gotIdx))], len(got), idx[:min(3, n)])
				}
				for i, fd := range got {
					if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
						t.Errorf("received fd %d: F_GETFD = %#x, %v; want FD_CLOEXEC", i, fl, err)
					}
					if v, err := eventCount(fd); v != uint64(i+1) || err != nil {
						t.Errorf("received fd %d holds %d, %v; want %d (sent in order)", i, v, err, i+1)
					}
				}
				fd.CloseAll(got)
				got = nil
				if after := countFDs(t); after != before {
					t.Errorf("open fds %d before, %d after; want no leak", before, after)
				}
			})
		}
	}
}

func TestSendFilesBatches(t *testing.T) {
	// 600 fds travel in 252 + 252 + 96: read the messages raw.
	a, b := socketpair(t, unix.SOCK_SEQPACKET)
	defer unix.Close(a)
	defer unix.Close(b)
	sent := eventfds(t, 600)
	defer fd.CloseAll(sent)
	idx := make([]uint32, 600)
	done := make(chan error, 1)
	go func() { done <- SendFiles(a, idx, sent) }()
	data := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*253))
	var sizes []int
	for total := 0; total < 600; {
		n, oobn, _, _, err := unix.Recvmsg(b, data, oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		fds, err := parseRights(oob[:oobn])
		fd.CloseAll(fds)
		if err != nil || n != 4+4*len(fds) || int(binary.LittleEndian.Uint32(data)) != len(fds) {
			t.Fatalf("message %d: %d bytes, %d fds, %v; want a header for its fds", len(sizes), n, len(fds), err)
		}
		sizes = append(sizes, len(fds))
		total += len(fds)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := []int{252, 252, 96}; !slices.Equal(sizes, want) {
		t.Errorf("batches = %v; want %v", sizes, want)
	}
}

// rawSend sends one message with data and fds as they are.
func rawSend(t *testing.T, sock int, data []byte, fds []int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(sock, data, oob, nil, 0); err != nil {
		t.Fatalf("Sendmsg = %v", err)
	}
}

func le32s(v ...uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

func TestRecvFilesRejectsBadMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		want int
		send func(t *testing.T, sock int, fds []int)
	}{
		{"count larger than fds", 2, func(t *testing.T, s int, fds []int) { rawSend(t, s, le32s(2, 0, 1), fds[:1]) }},
		{"count smaller than fds", 2, func(t *testing.T, s int, fds []int) { rawSend(t, s, le32s(1, 0), fds[:2]) }},
		{"short header", 1, func(t *testing.T, s int, fds []int) { rawSend(t, s, []byte{1, 0}, fds[:1]) }},
		{"header longer than count", 1, func(t *testing.T, s int, fds []int) { rawSend(t, s, le32s(1, 0, 9), fds[:1]) }},
		{"zero count", 1, func(t *testing.T, s int, fds []int) { rawSend(t, s, le32s(0), nil) }},
		{"no fds", 1, func(t *testing.T, s int, fds []int) { rawSend(t, s, le32s(1, 0), nil) }},
		{"index twice", 3, func(t *testing.T, s int, fds []int) {
			rawSend(t, s, le32s(2, 4, 5), fds[:2])
			rawSend(t, s, le32s(1, 4), fds[2:3])
		}},
		{"more than wanted", 1, func(t *testing.T, s int, fds []int) { rawSend(t, s, le32s(2, 0, 1), fds[:2]) }},
		{"eof half-way", 3, func(t *testing.T, s int, fds []int) {
			if err := SendFiles(s, []uint32{0, 1}, fds[:2]); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated control message", 253, func(t *testing.T, s int, fds []int) {
			// With SO_PASSCRED on the receiver, credentials take room in
			// its control buffer: 253 fds no longer fit (MSG_CTRUNC).
			idx := make([]uint32, 253)
			for i := range idx {
				idx[i] = uint32(i)
			}
			rawSend(t, s, header(idx), fds[:253])
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			countFDs(t)
			before := countFDs(t)
			a, b := socketpair(t, unix.SOCK_SEQPACKET)
			if tc.name == "truncated control message" {
				if err := unix.SetsockoptInt(b, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
					t.Fatal(err)
				}
			}
			fds := eventfds(t, 253)
			tc.send(t, a, fds)
			fd.CloseAll(fds)
			unix.Close(a) // EOF after what was sent
			idx, got, err := RecvFiles(b, tc.want)
			unix.Close(b)
			if err == nil {
				fd.CloseAll(got)
				t.Fatalf("RecvFiles(%d) = %v, %d fds, nil; want an error", tc.want, idx, len(got))
			}
			t.Logf("RecvFiles: %v", err)
			if got != nil || idx != nil || exitcode.Of(err) != exitcode.Sys {
				t.Errorf("RecvFiles = %v, %v, %v (code %d); want nil, nil, code 111", idx, got, err, exitcode.Of(err))
			}
			if after := countFDs(t); after != before {
				t.Errorf("open fds %d before, %d after; want every received fd closed", before, after)
			}
		})
	}
}

func TestSendFilesMismatch(t *testing.T) {
	if err := SendFiles(-1, []uint32{1}, nil); err == nil || exitcode.Of(err) != exitcode.Internal {
		t.Errorf("SendFiles(1 index, 0 fds) = %v; want an internal error", err)
	}
}
