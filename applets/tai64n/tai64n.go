// Package tai64n is the tai64n applet (s6-tai64n): it copies stdin to
// stdout, each line prefixed with a TAI64N label and a space
// (spec/log.md §10).
//
// The label is read with the line's first byte, so memory is bounded for
// any line length; output is flushed before every read.
package tai64n

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/tai"
)

const (
	summary = "prefix every line of stdin with a TAI64N label"
	help    = `Arguments are ignored, as s6-tai64n does. Exit 0 at EOF, 111 on a read or
write error; a closed stdout kills it with SIGPIPE.

Differences from s6-tai64n: the label is read at the line's first byte
(s6-tai64n reads it after the line's last); a final line without a newline
gets one.

Test hooks:
  GOTOOLS_FAKE_CLOCK=@<24 hex>  every clock reading returns that stamp`
)

// Applet is tai64n, alias s6-tai64n.
var Applet = cli.Applet{
	Name:    "tai64n",
	Aliases: []string{"s6-tai64n"},
	Summary: summary,
	Usage:   "[ ignored... ]",
	Help:    help,
	Raw:     run,
}

const bufSize = 64 << 10

func run(args []string, env *cli.Env) int {
	if len(args) > 0 && args[0] == "--help" {
		fmt.Fprintf(env.Stdout, "Usage: %s %s\n\n%s\n\n%s\n", env.Name, "[ ignored... ]", summary, help)
		return exitcode.OK
	}
	fake, ok := tai.FakeClock()
	if !ok {
		env.Fatal(errors.New("invalid GOTOOLS_FAKE_CLOCK"))
		return exitcode.Usage
	}
	in := make([]byte, bufSize)
	out := make([]byte, 0, bufSize+tai.TextSize+1)
	flush := func() error {
		if len(out) > 0 {
			if _, err := os.Stdout.Write(out); err != nil {
				return fmt.Errorf("unable to write to stdout: %w", unwrap(err))
			}
			out = out[:0]
		}
		return nil
	}
	fail := func(err error) int {
		env.Fatal(err)
		return exitcode.Sys
	}
	start := true
	for {
		if err := flush(); err != nil {
			return fail(err)
		}
		n, err := unix.Read(0, in)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fail(fmt.Errorf("unable to read from stdin: %w", err))
		}
		if n == 0 {
			if !start {
				out = append(out, '\n')
			}
			if err := flush(); err != nil {
				return fail(err)
			}
			return exitcode.OK
		}
		b := in[:n]
		for len(b) > 0 {
			if start {
				s := tai.Now()
				if fake != nil {
					s = *fake
				}
				out = append(s.AppendText(out), ' ')
				start = false
			}
			k := indexNL(b)
			seg := b
			if k >= 0 {
				seg = b[:k+1]
				start = true
			}
			for len(seg) > 0 {
				m := min(len(seg), cap(out)-len(out))
				out = append(out, seg[:m]...)
				seg = seg[m:]
				if len(out) == cap(out) {
					if err := flush(); err != nil {
						return fail(err)
					}
				}
			}
			if k < 0 {
				break
			}
			b = b[k+1:]
		}
	}
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// unwrap returns the errno under an *os.PathError, for the message.
func unwrap(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}
