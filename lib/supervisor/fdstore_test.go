package supervisor

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseNotify(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want notifyMsg
	}{
		{name: "empty", in: "", want: notifyMsg{}},
		{name: "ready", in: "READY=1", want: notifyMsg{Ready: true}},
		{name: "ready with newline", in: "READY=1\n", want: notifyMsg{Ready: true}},
		{name: "ready 0 is not ready", in: "READY=0\n", want: notifyMsg{}},
		{name: "store default name", in: "FDSTORE=1\n", want: notifyMsg{Store: true}},
		{name: "store named", in: "FDSTORE=1\nFDNAME=web\n", want: notifyMsg{Store: true, Name: "web", HasName: true}},
		{name: "store no poll", in: "FDNAME=x\nFDPOLL=0\nFDSTORE=1", want: notifyMsg{Store: true, NoPoll: true, Name: "x", HasName: true}},
		{name: "remove", in: "FDSTOREREMOVE=1\nFDNAME=web", want: notifyMsg{Remove: true, Name: "web", HasName: true}},
		{name: "first FDNAME wins", in: "FDNAME=a\nFDNAME=b\n", want: notifyMsg{Name: "a", HasName: true}},
		{name: "empty FDNAME", in: "FDNAME=\nFDSTORE=1", want: notifyMsg{Store: true, HasName: true}},
		{name: "unknown and empty lines", in: "\n\nSTATUS=hi\nMAINPID=3\nREADY=1\n\n", want: notifyMsg{Ready: true}},
		{name: "no trimming", in: " READY=1\nFDSTORE=1 \nFDPOLL=00", want: notifyMsg{}},
		{name: "CRLF is not a separator", in: "READY=1\r\n", want: notifyMsg{}},
		{name: "value keeps everything after the first =", in: "FDNAME=a=b", want: notifyMsg{Name: "a=b", HasName: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseNotify([]byte(tt.in)); got != tt.want {
				t.Errorf("parseNotify(%q) = %+v; want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidFDName(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want bool
	}{
		{name: "simple", in: "web", want: true},
		{name: "space and punctuation", in: "a b-c_d.e/f", want: true},
		{name: "255 bytes", in: strings.Repeat("x", 255), want: true},
		{name: "empty", in: "", want: false},
		{name: "256 bytes", in: strings.Repeat("x", 256), want: false},
		{name: "colon", in: "a:b", want: false},
		{name: "tab", in: "a\tb", want: false},
		{name: "DEL", in: "a\x7f", want: false},
		{name: "non-ASCII", in: "caf\xc3\xa9", want: false},
		{name: "NUL", in: "a\x00", want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := validFDName(tt.in); got != tt.want {
				t.Errorf("validFDName(%q) = %v; want %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestSameFile checks the kcmp(2) comparison against real descriptions:
// a dup is the same open file; a second open of the same file is not.
func TestSameFile(t *testing.T) {
	name := t.TempDir() + "/f"
	if err := os.WriteFile(name, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(a)
	b, err := unix.FcntlInt(uintptr(a), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(b)
	c, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c)
	pid := uintptr(unix.Getpid())
	if _, _, errno := unix.Syscall6(unix.SYS_KCMP, pid, pid, kcmpFile, uintptr(a), uintptr(a), 0); errno != 0 {
		t.Skipf("kcmp(2) is not available: %v", errno)
	}
	if !sameFile(a, b) {
		t.Errorf("sameFile(fd, its dup) = false; want true")
	}
	if sameFile(a, c) {
		t.Errorf("sameFile(fd, another open of the file) = true; want false")
	}
}

func TestWithEnv(t *testing.T) {
	got := withEnv([]string{"A=1", "NOTIFY_SOCKET=/old", "NOTIFY_SOCKETX=2", "B=3"}, "NOTIFY_SOCKET", "/new")
	want := []string{"A=1", "NOTIFY_SOCKETX=2", "B=3", "NOTIFY_SOCKET=/new"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("withEnv = %q; want %q", got, want)
	}
}

// FuzzParseNotify checks that any datagram parses without panicking and
// that a name it reports is a part of the input.
func FuzzParseNotify(f *testing.F) {
	for _, s := range []string{"", "READY=1", "FDSTORE=1\nFDNAME=web\n", "FDSTOREREMOVE=1\nFDNAME=web",
		"FDPOLL=0\nFDSTORE=1\n", "\n\n\n", "FDNAME=a:b\nFDSTORE=1", "FDNAME=\xff\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := parseNotify(b)
		if m.HasName && !strings.Contains(string(b), "FDNAME="+m.Name) {
			t.Errorf("parseNotify(%q) = name %q, not in the input", b, m.Name)
		}
		if !m.HasName && m.Name != "" {
			t.Errorf("parseNotify(%q) = name %q without HasName", b, m.Name)
		}
	})
}
