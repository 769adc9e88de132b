//go:build linux

package fdholder

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// encodeRequest is the client side of [ParseRequest], for round trips.
func encodeRequest(r Request) []byte {
	p := []byte{r.Op}
	switch r.Op {
	case OpStore:
		p = AppendDumpEntry(p, r.Limit, r.ID)
	case OpDelete:
		p = appendID(p, r.ID)
	case OpRetrieve:
		d := byte(0)
		if r.Delete {
			d = 1
		}
		p = appendID(append(p, d), r.ID)
	case OpSetDump:
		p = binary.BigEndian.AppendUint32(p, r.N)
	case OpSetDumpData:
		for _, e := range r.Entries {
			p = AppendDumpEntry(p, e.Limit, e.ID)
		}
	}
	return p
}

// FuzzDecode runs every decoder of bytes read from a socket: the frame
// splitter and the connection reader, the daemon's request parser, and
// the client's answer parsers, on each frame of the input.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x01\x00\x00L"))
	f.Add(append(AppendHeader(nil, 17, 1), "S@\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02ab\x00"...))
	f.Add([]byte("\x00\x00\x00\x05\x00\x00R\x01\x01a\x00"))
	f.Add([]byte("\x00\x00\x00\x09\x00\x00\x00\x00\x00\x00\x03\x00\x00\x02\x58"))
	f.Add([]byte("\x00\x00\x00\x0a\x00\x00\x00\x00\x00\x00\x02a\x00bc\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReader(MaxPayload)
		r.buf = data
		for {
			p, fds, ok, err := r.next()
			if err != nil || !ok {
				break
			}
			if len(fds) != 0 {
				t.Fatalf("frame with %d fds from a reader that received none", len(fds))
			}
			_ = p
		}
		rest := data
		for len(rest) > 0 {
			p, nfds, n, err := SplitFrame(rest, MaxPayload)
			if err != nil || n == 0 {
				return
			}
			rest = rest[n:]
			if req, err := ParseRequest(p, nfds); err == nil {
				got := encodeRequest(req)
				if req.Op == OpRetrieve && p[1] != 0 {
					got[1] = p[1] // any nonzero byte asks for a delete, as in s6
				}
				if !bytes.Equal(got, p) {
					t.Fatalf("request %q decodes to %+v, which encodes to %q", p, req, got)
				}
				if req.Op == OpStore || req.Op == OpDelete || req.Op == OpRetrieve {
					if err := CheckID(req.ID); err != nil {
						t.Fatalf("request %q: accepted id: %v", p, err)
					}
				}
			}
			_, _ = ParseStatus(p, nfds)
			_, _ = ParseRetrieve(p, nfds)
			if ids, e, err := ParseList(p, nfds); err == nil && e == 0 {
				for _, id := range ids {
					if bytes.IndexByte([]byte(id), 0) >= 0 {
						t.Fatalf("list id %q holds a NUL", id)
					}
				}
			}
			if nmsg, total, e, err := ParseGetDumpHead(p, nfds); err == nil && e == 0 && nmsg != DumpMessages(total) {
				t.Fatalf("getdump head %q: %d messages for %d fds accepted", p, nmsg, total)
			}
			_, _, _ = ParseSetDumpHead(p, nfds)
			if es, err := ParseDumpEntries(p, nfds); err == nil && len(es) != nfds {
				t.Fatalf("dump entries %q: %d for %d fds", p, len(es), nfds)
			}
		}
	})
}

// cdbOf builds a cdb of one key and its data, as cdbmake lays it out: the
// 2048-byte header, the record, then the table of the key's hash bucket.
func cdbOf(key string, data []byte) []byte {
	h := uint32(5381)
	for i := 0; i < len(key); i++ {
		h = (h<<5 + h) ^ uint32(key[i])
	}
	db := make([]byte, 2048)
	rec := uint32(len(db))
	db = binary.LittleEndian.AppendUint32(db, uint32(len(key)))
	db = binary.LittleEndian.AppendUint32(db, uint32(len(data)))
	db = append(append(db, key...), data...)
	table := uint32(len(db))
	// Two slots: the record at (h>>8)%2, the other empty.
	slots := make([]byte, 16)
	at := (h >> 8) % 2
	binary.LittleEndian.PutUint32(slots[8*at:], h)
	binary.LittleEndian.PutUint32(slots[8*at+4:], rec)
	db = append(db, slots...)
	binary.LittleEndian.PutUint32(db[(h&255)*8:], table)
	binary.LittleEndian.PutUint32(db[(h&255)*8+4:], 2)
	return db
}

// FuzzCDBFind: any file and key are looked up without a panic or a read
// out of bounds; a well-formed one-key cdb gives its data back.
func FuzzCDBFind(f *testing.F) {
	f.Add(cdbOf("uid/0", []byte("A\x00\x12S6_FDHOLDER_LIST=\x00\x00\x00")), "uid/0")
	f.Add(cdbOf("uid/default", []byte("D")), "uid/1")
	f.Add([]byte{}, "uid/0")
	f.Fuzz(func(t *testing.T, db []byte, key string) {
		data, found, err := cdbFind(db, key)
		if err == nil && found && len(data) > len(db) {
			t.Fatalf("cdbFind returned %d bytes from a %d-byte file", len(data), len(db))
		}
		if len(key) > 0 && len(key) < 64 {
			want := append([]byte(nil), db...)
			got, found, err := cdbFind(cdbOf(key, want), key)
			if err != nil || !found || !bytes.Equal(got, want) {
				t.Fatalf("cdbFind(cdbOf(%q, %q)) = %q, %v, %v", key, want, got, found, err)
			}
		}
	})
}
