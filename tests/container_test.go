package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// End-to-end test of examples/container (issue 14 item 11, issue 18): the
// root filesystem its Dockerfile builds is built here without Docker (a
// static busybox and its links in /bin, gotools and its links in
// /usr/local/bin, the example's rootfs/ on top) and booted with init as
// PID 1 of new PID, mount and network namespaces, chrooted into it.

// staticBusybox returns Debian's busybox-static binary, or skips (fails
// under GOTOOLS_REQUIRE_S6=1, as CI runs).
func staticBusybox(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if out, err := exec.Command("file", "-L", p).Output(); err == nil && strings.Contains(string(out), "statically linked") {
			return p
		}
		if _, err := os.Stat(p); err == nil {
			if _, err := exec.Command("ldd", p).Output(); err != nil { // "not a dynamic executable"
				return p
			}
		}
	}
	if os.Getenv("GOTOOLS_REQUIRE_S6") == "1" { // CI installs it
		t.Fatal("no static busybox (apt-get install busybox-static), and GOTOOLS_REQUIRE_S6=1")
	}
	t.Skip("no static busybox (apt-get install busybox-static)")
	return ""
}

// containerRootfs builds examples/container's image as a directory.
func containerRootfs(t *testing.T) string {
	t.Helper()
	bb := staticBusybox(t)
	root := t.TempDir()
	for _, d := range []string{"bin", "usr/local/bin", "proc", "dev", "tmp", "run", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// FROM busybox: the binary and a link per applet.
	copyFile(t, bb, filepath.Join(root, "bin/busybox"), 0o755)
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, n := range strings.Fields(string(out)) {
		if n != "busybox" {
			os.Symlink("busybox", filepath.Join(root, "bin", n))
		}
	}
	// COPY gotools; RUN gotools --install /usr/local/bin (run from the
	// copy, as in the image: relative links).
	gt := filepath.Join(root, "usr/local/bin/gotools")
	copyFile(t, gotoolsBin, gt, 0o755)
	if out, err := exec.Command(gt, "--install", filepath.Join(root, "usr/local/bin")).CombinedOutput(); err != nil {
		t.Fatalf("gotools --install: %v %s", err, out)
	}
	// COPY rootfs/ /
	if out, err := exec.Command("cp", "-a", filepath.Join("..", "examples", "container", "rootfs")+"/.", root).CombinedOutput(); err != nil {
		t.Fatalf("cp -a rootfs: %v %s", err, out)
	}
	// What a container runtime provides: /dev/null, and lo up in the
	// network namespace (a test-only cont-init.d script).
	if err := unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatalf("mknod /dev/null: %v", err)
	}
	if err := writeExecutable(filepath.Join(root, "etc/cont-init.d/00-lo"), []byte("#!/bin/sh\nip link set lo up\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeExecutable(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

// bootContainer runs the image's ENTRYPOINT with cmd (none: the
// Dockerfile's CMD) as PID 1, chrooted into root.
func bootContainer(t *testing.T, root string, cmd ...string) (*Proc, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("unshare --pid --root needs root")
	}
	if len(cmd) == 0 {
		cmd = []string{"sh", "-c", "until wget -qO- http://127.0.0.1:8080/; do sleep 0.1; done; exec sleep 2147483647"}
	}
	argv := append([]string{"unshare", "--pid", "--fork", "--mount-proc", "--net", "--root=" + root, "/usr/local/bin/init"}, cmd...)
	p := startIn(t, Opts{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GOTOOLS_INIT_ROOT="}}, argv...)
	return p, forkedChild(t, p)
}

// TestContainerExample boots the example image twice: with a CMD that
// fetches the page the web service serves (so it runs only once services
// are up) and exits 3, which is the container's exit; and with the
// Dockerfile's CMD, stopped by SIGTERM as docker stop does.
func TestContainerExample(t *testing.T) {
	t.Parallel()
	root := containerRootfs(t)
	// The services are up when the CMD starts, but "up" is not
	// "listening" for httpd (it has no readiness notification): retry.
	p, _ := bootContainer(t, root, "sh", "-c", `test -n "$BOOTED_AT" || exit 90
for i in $(seq 200); do wget -qO- http://127.0.0.1:8080/ && test -s /run/heartbeat && exit 3; sleep 0.05; done; exit 91`)
	r := p.Wait(t)
	if r.Code != 3 || !strings.Contains(r.Stdout, "booted by gotools init\n") {
		t.Fatalf("container = %s, stdout %q, stderr %q; want exit 3 and the page", r.Status(), r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "cont-finish: bye\n") {
		t.Errorf("stdout %q; want cont-finish.d's line", r.Stdout)
	}

	p, initPid := bootContainer(t, root)
	p.WaitLine(t, "booted by gotools init")
	begin := time.Now()
	if err := unix.Kill(initPid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r = p.Wait(t)
	if r.Code != 128+int(unix.SIGTERM) {
		t.Errorf("container after SIGTERM = %s, stderr %q; want 143 (the CMD's status)", r.Status(), r.Stderr)
	}
	if took := time.Since(begin); took > 30*time.Second {
		t.Errorf("docker-stop-like shutdown took %v; want far less than the graces (3 s each, 10x slack)", took)
	}
	if !strings.HasSuffix(r.Stdout, "cont-finish: bye\n") {
		t.Errorf("stdout %q; want cont-finish.d last", r.Stdout)
	}
}
