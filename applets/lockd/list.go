package lockd

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gotools-dev/gotools/lib/cli"
	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/lockproto"
)

// list is "lockd -L SOCKET": it asks the lockd on socket for its lock
// table and prints one tab-separated line per lock, or with asJSON one
// JSON array of objects.
func list(env *cli.Env, socket string, asJSON bool) error {
	c, err := lockproto.DialUnix(socket, 5*time.Second)
	if err != nil {
		return exitcode.Errorf(exitcode.Sys, "unable to connect to %s: %w", socket, errnoOf(err))
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	talk := func(err error) error {
		return exitcode.Errorf(exitcode.Sys, "unable to talk to lockd at %s: %w", socket, errnoOf(err))
	}
	if _, err := c.Write([]byte(lockproto.ClientBanner)); err != nil {
		return talk(err)
	}
	hb := make([]byte, lockproto.HelloSize)
	if _, err := readFull(c, hb); err != nil {
		return talk(err)
	}
	h, err := lockproto.ParseHello(hb)
	if err != nil {
		return talk(err)
	}
	if h.Status == syscall.EPERM {
		return exitcode.Errorf(exitcode.Refused, "lockd at %s refused us: %w", socket, h.Status)
	}
	if h.Status != 0 {
		return talk(h.Status)
	}
	const id = 1
	if _, err := c.Write(lockproto.AppendFrame(nil, lockproto.Request{Op: lockproto.OpList, ID: id}.Marshal())); err != nil {
		return talk(err)
	}
	buf := make([]byte, lockproto.MaxPayload)
	var rows []jsonEntry
	for {
		p, err := lockproto.ReadFrame(c, buf)
		if err != nil {
			return talk(err)
		}
		m, err := lockproto.ParseServerMessage(p)
		if err != nil {
			return talk(err)
		}
		switch {
		case m.Type == lockproto.MsgEntry && m.ID == id && asJSON:
			rows = append(rows, toJSON(m.Entry))
		case m.Type == lockproto.MsgEntry && m.ID == id:
			fmt.Fprintln(env.Stdout, formatEntry(m.Entry))
		case m.Type == lockproto.MsgReply && m.ID == id:
			if m.Errno != 0 {
				return talk(m.Errno)
			}
			if asJSON {
				if rows == nil {
					rows = []jsonEntry{}
				}
				b, err := json.MarshalIndent(rows, "", "  ")
				if err != nil {
					return exitcode.New(exitcode.Sys, err)
				}
				fmt.Fprintf(env.Stdout, "%s\n", b)
			}
			return nil
		case m.Type == lockproto.MsgReply && m.ID == 0:
			return talk(m.Errno)
		}
	}
}

// formatEntry is one line of lockd -L: pid uid id mode state age_ms
// left_ms hpid name.
func formatEntry(e lockproto.Entry) string {
	state, left := "pending", "-"
	if e.Held {
		state = "held"
	} else if e.Left >= 0 {
		left = strconv.FormatInt(e.Left.Milliseconds(), 10)
	}
	return fmt.Sprintf("%d\t%d\t%d\t%s\t%s\t%d\t%s\t%d\t%s",
		e.PID, e.UID, e.ID, e.Mode, state, e.Age.Milliseconds(), left, e.HelperPID, lockproto.Quote(e.Name))
}

// jsonEntry is one lock of lockd -L --json. A name is a JSON string when
// it is valid UTF-8; name_hex always carries its exact bytes.
type jsonEntry struct {
	PID       int    `json:"pid"`
	UID       int    `json:"uid"`
	ID        uint32 `json:"id"`
	Mode      string `json:"mode"`
	State     string `json:"state"`
	AgeMS     int64  `json:"age_ms"`
	LeftMS    *int64 `json:"left_ms"` // null: no deadline (held, or forever)
	HelperPID int    `json:"helper_pid"`
	Name      string `json:"name"`
	NameHex   string `json:"name_hex"`
}

func toJSON(e lockproto.Entry) jsonEntry {
	j := jsonEntry{PID: e.PID, UID: e.UID, ID: e.ID, Mode: e.Mode.String(), State: "pending",
		AgeMS: e.Age.Milliseconds(), HelperPID: e.HelperPID, Name: lockproto.Quote(e.Name), NameHex: hex.EncodeToString([]byte(e.Name))}
	if utf8.ValidString(e.Name) {
		j.Name = e.Name
	}
	if e.Held {
		j.State = "held"
	} else if e.Left >= 0 {
		left := e.Left.Milliseconds()
		j.LeftMS = &left
	}
	return j
}

func readFull(c io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func errnoOf(err error) error {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return err
}
