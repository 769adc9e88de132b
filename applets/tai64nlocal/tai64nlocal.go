// Package tai64nlocal is the tai64nlocal applet (s6-tai64nlocal): it
// copies stdin to stdout, turning a leading TAI64N label of each line into
// a readable local (or, with -g, UTC) time (spec/log.md §10).
package tai64nlocal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/tai"
)

const (
	usage   = "[ -g ]"
	summary = "turn the TAI64N label at the start of each line into a readable time"
	help    = `  -g   print UTC instead of local time (TZ, else /etc/localtime)

A line is converted when it is longer than 25 bytes counting its newline and
begins with @ and 24 hex digits; the label becomes YYYY-MM-DD HH:MM:SS.nnnnnnnnn.
Exit 0 at EOF, 100 on a bad option, 111 on a read or write error.

Differences from s6-tai64nlocal: labels with nanoseconds >= 10^9 or years
after 9999 are left unchanged; right/ zones are not honoured.`
)

// Applet is tai64nlocal, alias s6-tai64nlocal.
var Applet = cli.Applet{
	Name:    "tai64nlocal",
	Aliases: []string{"s6-tai64nlocal"},
	Summary: summary,
	Usage:   usage,
	Help:    help,
	Raw:     run,
}

const bufSize = 64 << 10

func run(args []string, env *cli.Env) int {
	if len(args) > 0 && args[0] == "--help" {
		fmt.Fprintf(env.Stdout, "Usage: %s %s\n\n%s\n\n%s\n", env.Name, usage, summary, help)
		return exitcode.OK
	}
	utc := false
	for _, a := range args {
		if a == "--" || a == "-" || len(a) < 2 || a[0] != '-' {
			break
		}
		for _, c := range a[1:] {
			if c != 'g' {
				fmt.Fprintf(env.Stderr, "%s: usage: %s %s\n", env.Name, env.Name, usage)
				return exitcode.Usage
			}
			utc = true
		}
	}
	loc := time.UTC
	if !utc {
		loc = tai.LocalZone()
	}
	c := converter{loc: loc, out: make([]byte, 0, bufSize+64)}
	in := make([]byte, bufSize)
	for {
		if err := c.flush(); err != nil {
			env.Fatal(err)
			return exitcode.Sys
		}
		n, err := unix.Read(0, in)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			env.Fatal(fmt.Errorf("unable to read from stdin: %w", err))
			return exitcode.Sys
		}
		if n == 0 {
			c.endHead()
			if err := c.flush(); err != nil {
				env.Fatal(err)
				return exitcode.Sys
			}
			return exitcode.OK
		}
		if err := c.feed(in[:n]); err != nil {
			env.Fatal(err)
			return exitcode.Sys
		}
	}
}

// converter streams lines: it keeps at most the first 26 bytes of a line
// (enough to decide), then copies the rest.
type converter struct {
	loc    *time.Location
	out    []byte
	head   []byte // the start of the current line, while deciding
	inLine bool   // the head was decided: copy until the newline
}

func (c *converter) flush() error {
	if len(c.out) > 0 {
		if _, err := os.Stdout.Write(c.out); err != nil {
			var errno unix.Errno
			if errors.As(err, &errno) {
				err = errno
			}
			return fmt.Errorf("unable to write to stdout: %w", err)
		}
		c.out = c.out[:0]
	}
	return nil
}

func (c *converter) feed(b []byte) error {
	for len(b) > 0 {
		if c.inLine {
			k := bytes.IndexByte(b, '\n')
			seg := b
			if k >= 0 {
				seg = b[:k+1]
				c.inLine = false
			}
			c.out = append(c.out, seg...)
			b = b[len(seg):]
		} else {
			m := min(len(b), tai.TextSize+1-len(c.head))
			if k := bytes.IndexByte(b[:m], '\n'); k >= 0 {
				m = k + 1
			}
			c.head = append(c.head, b[:m]...)
			b = b[m:]
			if len(c.head) == tai.TextSize+1 || c.head[len(c.head)-1] == '\n' {
				nl := c.head[len(c.head)-1] == '\n'
				c.endHead()
				c.inLine = !nl
			}
		}
		if len(c.out) >= bufSize {
			if err := c.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// endHead converts or copies the head of a line.
func (c *converter) endHead() {
	h := c.head
	c.head = c.head[:0]
	if len(h) > tai.TextSize {
		if s, ok := tai.ParseText(h); ok {
			if sec, leap := s.UTC(); sec >= 0 {
				t := time.Unix(sec, int64(s.Nsec)).In(c.loc)
				if t.Year() <= 9999 {
					at := len(c.out)
					c.out = tai.AppendISO(c.out, t)
					if leap {
						c.out[at+17], c.out[at+18] = '6', '0'
					}
					c.out = append(c.out, h[tai.TextSize:]...)
					return
				}
			}
		}
	}
	c.out = append(c.out, h...)
}
