// Command demo is what "make demo" runs: gotools' svscan on a copy of
// examples/services, with the status of every service printed every
// second and its events and log lines as they happen. Ctrl-C (or -for
// running out) brings everything down through svscan and removes the copy.
//
// It is a development tool, not part of the gotools binary: it drives the
// binary named by -bin exactly as a user would, through the symlinks
// "gotools --install" makes.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gotools-dev/gotools/lib/ftrig"
	"github.com/gotools-dev/gotools/lib/tai"
)

func main() {
	bin := flag.String("bin", "bin/gotools", "the gotools binary")
	src := flag.String("services", "examples/services", "the service tree to copy and run")
	run := flag.Duration("for", 0, "stop after this long (0: at Ctrl-C)")
	flag.Parse()
	if err := demo(*bin, *src, *run); err != nil {
		fmt.Fprintf(os.Stderr, "demo: fatal: %v\n", err)
		os.Exit(111)
	}
}

// out serialises the demo's lines, which come from several goroutines.
var out struct {
	sync.Mutex
	w io.Writer
}

func say(format string, args ...any) {
	out.Lock()
	defer out.Unlock()
	fmt.Fprintf(out.w, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func demo(bin, src string, limit time.Duration) error {
	out.w = os.Stdout
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "gotools-demo-")
	if err != nil {
		return err
	}
	defer func() {
		if err := os.RemoveAll(tmp); err != nil {
			fmt.Fprintf(os.Stderr, "demo: warning: unable to remove %s: %v\n", tmp, err)
			return
		}
		say("removed %s", tmp)
	}()

	// The applets as a user has them: symlinks to the binary, on PATH.
	bindir := filepath.Join(tmp, "bin")
	if err := os.Mkdir(bindir, 0o755); err != nil {
		return err
	}
	if b, err := exec.Command(bin, "--install", bindir).CombinedOutput(); err != nil {
		return fmt.Errorf("gotools --install %s: %v: %s", bindir, err, bytes.TrimSpace(b))
	}
	scandir := filepath.Join(tmp, "scan")
	if err := os.CopyFS(scandir, os.DirFS(src)); err != nil {
		return fmt.Errorf("unable to copy %s: %w", src, err)
	}
	services, err := serviceDirs(scandir)
	if err != nil {
		return err
	}
	say("scan directory %s: %s", scandir, strings.Join(services, " "))

	// Listen to every service's events before svscan starts them.
	stop := make(chan struct{})
	var listeners sync.WaitGroup
	for _, name := range services {
		l, err := subscribe(filepath.Join(scandir, name))
		if err != nil {
			return err
		}
		listeners.Add(1)
		go func() {
			defer listeners.Done()
			events(name, l, stop)
		}()
	}

	path := bindir + ":" + os.Getenv("PATH")
	svscan := exec.Command(filepath.Join(bindir, "svscan"), scandir)
	svscan.Env = append(os.Environ(), "PATH="+path)
	svscan.Stdout, svscan.Stderr = os.Stdout, os.Stderr
	// A process group of its own: Ctrl-C reaches the demo, which then
	// asks svscan to bring everything down, in order.
	svscan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := svscan.Start(); err != nil {
		close(stop)
		listeners.Wait()
		return fmt.Errorf("unable to start svscan: %w", err)
	}
	say("svscan started (pid %d); Ctrl-C stops the demo", svscan.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- svscan.Wait() }()

	intr := make(chan os.Signal, 1)
	signal.Notify(intr, os.Interrupt, syscall.SIGTERM)
	var timeUp <-chan time.Time
	if limit > 0 {
		timeUp = time.After(limit)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	tails := map[string]int64{}
	ticks := 0
	var svscanErr error
	running := true
	for running {
		select {
		case <-tick.C:
			status(bindir, scandir, services)
			logs(scandir, services, tails)
			if ticks++; ticks%4 == 3 {
				rotate(bindir, scandir, services, tails)
			}
		case <-timeUp:
			say("time is up: stopping")
			running = false
		case <-intr:
			say("interrupted: stopping")
			running = false
		case svscanErr = <-exited:
			say("svscan ended by itself: %v", svscanErr)
			exited = nil
			running = false
		}
	}
	if exited != nil {
		// SIGTERM is svscan's t: every service down, loggers drain
		// their pipes and exit, then svscan exits 0.
		status(bindir, scandir, services)
		_ = svscan.Process.Signal(syscall.SIGTERM)
		select {
		case svscanErr = <-exited:
		case <-time.After(30 * time.Second):
			say("svscan did not finish in 30 s: killing its process group")
			_ = syscall.Kill(-svscan.Process.Pid, syscall.SIGKILL)
			svscanErr = <-exited
		}
	}
	logs(scandir, services, tails)
	close(stop)
	listeners.Wait()
	if svscanErr != nil {
		return fmt.Errorf("svscan: %w", svscanErr)
	}
	say("svscan exited 0: every service and logger is down")
	return nil
}

// serviceDirs lists the services and loggers of scandir as svscan sees
// them: non-dot directories, and their log/ directories.
func serviceDirs(scandir string) ([]string, error) {
	entries, err := os.ReadDir(scandir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		names = append(names, e.Name())
		if fi, err := os.Stat(filepath.Join(scandir, e.Name(), "log")); err == nil && fi.IsDir() {
			names = append(names, e.Name()+"/log")
		}
	}
	slices.Sort(names)
	return names, nil
}

func subscribe(dir string) (*ftrig.Listener, error) {
	if _, err := ftrig.MkFifodir(filepath.Join(dir, "event")); err != nil {
		return nil, err
	}
	return ftrig.Subscribe(filepath.Join(dir, "event"))
}

var meaning = map[byte]string{
	's': "supervisor started", 'u': "up", 'U': "up and ready", 'd': "down",
	'D': "down and finished", 'O': "will not be restarted", 'x': "supervisor exiting",
}

// events prints each event of one service until stop is closed.
func events(name string, l *ftrig.Listener, stop <-chan struct{}) {
	defer l.Close()
	buf := make([]byte, 16)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, err := l.Read(buf, time.Now().Add(200*time.Millisecond))
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		for _, c := range buf[:n] {
			what := meaning[c]
			if what == "" {
				what = "event " + string(c)
			}
			say("event   %-12s %c  %s", name, c, what)
		}
	}
}

// status prints svstat's line for every service.
func status(bindir, scandir string, services []string) {
	for _, name := range services {
		b, err := exec.Command(filepath.Join(bindir, "svstat"), filepath.Join(scandir, name)).CombinedOutput()
		line := strings.TrimSpace(string(b))
		if err != nil && line == "" {
			line = err.Error()
		}
		say("svstat  %-12s %s", name, line)
	}
}

// rotate asks every logger to rotate (svc -a: SIGALRM), then lists its
// logdir: the archives it made and current.
func rotate(bindir, scandir string, services []string, seen map[string]int64) {
	for _, name := range services {
		if !strings.HasSuffix(name, "/log") {
			continue
		}
		logs(scandir, []string{name}, seen)
		if b, err := exec.Command(filepath.Join(bindir, "svc"), "-a", filepath.Join(scandir, name)).CombinedOutput(); err != nil {
			say("svc -a  %-12s %v %s", name, err, bytes.TrimSpace(b))
			continue
		}
		seen[name] = 0 // the next lines start a new current
	}
	time.Sleep(100 * time.Millisecond)
	for _, name := range services {
		if !strings.HasSuffix(name, "/log") {
			continue
		}
		ents, _ := os.ReadDir(filepath.Join(scandir, name, "main"))
		var files []string
		for _, e := range ents {
			if info, err := e.Info(); err == nil && (strings.HasPrefix(e.Name(), "@") || e.Name() == "current") {
				files = append(files, fmt.Sprintf("%s (%d bytes)", e.Name(), info.Size()))
			}
		}
		say("logdir  %-12s svc -a rotated: %s", strings.TrimSuffix(name, "/log")+"/log/main", strings.Join(files, ", "))
	}
}

// readable turns a line's leading TAI64N label into local HH:MM:SS.
func readable(line string) string {
	if s, ok := tai.ParseText([]byte(line)); ok && len(line) > tai.TextSize {
		sec, _ := s.UTC()
		return time.Unix(sec, 0).Format("15:04:05") + line[tai.TextSize:]
	}
	return line
}

// logs prints the lines the loggers appended to their current files.
func logs(scandir string, services []string, seen map[string]int64) {
	for _, name := range services {
		if !strings.HasSuffix(name, "/log") {
			continue
		}
		f, err := os.Open(filepath.Join(scandir, name, "main", "current"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			say("log     %-12s %v", name, err)
			continue
		}
		if _, err := f.Seek(seen[name], io.SeekStart); err == nil {
			b, _ := io.ReadAll(f)
			if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
				for _, line := range strings.Split(string(b[:i]), "\n") {
					say("log     %-12s %s", strings.TrimSuffix(name, "/log"), readable(line))
				}
				seen[name] += int64(i + 1)
			}
		}
		f.Close()
	}
}
