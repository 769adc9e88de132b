package fdrestore

import "golang.org/x/sys/unix"

// fdWriter writes to a raw fd: the stderr copy kept for messages once fd
// 2 may hold a placed file.
type fdWriter int

func (w fdWriter) Write(b []byte) (int, error) { return unix.Write(int(w), b) }
