package fdholder

import (
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/exitcode"
	"github.com/gotools-dev/gotools/lib/fdrestore"
)

// fullDaemon is s6-fdholder-daemon: s6-ipcserver-socketbinder, then
// s6-applyuidgid, then s6-fdholderd, in one process (no exec chain).
var fullDaemon = command{
	Name: "fdholder-daemon", Alias: "s6-fdholder-daemon",
	Usage: "[ -v verbosity ] [ -d | -D ] [ -1 ] [ -c maxconn ] [ -n maxfds ] [ -b backlog ] " +
		"[ -G gid,gid,... ] [ -g gid ] [ -u uid ] [ -U ] [ -t timeout ] [ -T lameducktimeout ] [ -i rulesdir | -x rulesfile ] path",
	Summary: "bind path and run the fd holder daemon on it, with s6's access rules directory (s6's argv for fdrestore hold daemon)",
	Help: `-i rulesdir: s6's access rules directory (uid/UID, gid/GID, uid/default,
with allow or deny and env/S6_FDHOLDER_STORE_REGEX, _RETRIEVE_REGEX,
_LIST, _GETDUMP, _SETDUMP), read at each connection; no rule, no access,
root included. -x rulesfile: the same rules in a cdb
(s6-accessrules-cdb-from-fs), read at each connection. One is required.
-1: write a newline on fd 1 once listening. -c maxconn, -n maxfds,
-t timeout, -T lameducktimeout: as fdholderd. -b backlog: the listen
backlog. -d: replace a stale socket at path (default); -D: refuse any
existing file at path. -u uid, -g gid, -G gid,gid,...: drop to these ids
once bound; -U: the same from $UID, $GID and $GIDLIST. -v is ignored.
The socket is made with the umask's mode, as s6's is: clients need
write permission on it.

Exit codes: after SIGTERM, 1 if fds were held, | 2 if clients were left;
100 usage (neither -i nor -x); 111 system failure (bind, dropping
privileges).`,
	spec: "Dd1Uv:c:n:b:u:g:G:t:T:i:x:",
	hold: func(opt map[byte]string, ops []string) ([]string, error) {
		if len(ops) < 1 {
			return nil, errUsage
		}
		for _, o := range []byte("bug") {
			if v, ok := opt[o]; ok {
				if _, err := uint0(v); err != nil {
					return nil, err
				}
			}
		}
		if _, err := gidList(opt['G']); err != nil {
			return nil, err
		}
		if opt[lastRules] == "" {
			return nil, exitcode.Errorf(exitcode.Usage, "no access rights specified!")
		}
		return daemonArgs(opt, "-")
	},
	setup: func(opt map[byte]string, ops []string) error {
		if err := bindAtZero(opt, ops[0]); err != nil {
			return err
		}
		return applyUIDGID(opt)
	},
	before: daemon.before,
}

// bindAtZero binds path (s6-ipcserver-socketbinder) and puts the listening
// socket at fd 0, where hold daemon - serves it.
func bindAtZero(opt map[byte]string, path string) error {
	if _, noReuse := opt['D']; noReuse {
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err == nil {
			return exitcode.Errorf(exitcode.Sys, "unable to bind to %s: %w", path, unix.EADDRINUSE)
		}
	}
	fd, _, err := fdrestore.ListenUnix(path)
	if err != nil {
		return err
	}
	if v, ok := opt['b']; ok {
		n, _ := uint0(v)
		if err := unix.Listen(fd, int(min(n, 1<<30))); err != nil {
			unix.Close(fd)
			return exitcode.Errorf(exitcode.Sys, "unable to listen on %s: %w", path, err)
		}
	}
	if fd != 0 {
		if err := unix.Dup3(fd, 0, 0); err != nil {
			unix.Close(fd)
			return exitcode.Errorf(exitcode.Sys, "unable to move the socket to fd 0: %w", err)
		}
		unix.Close(fd)
	}
	return nil
}

// gidList reads -G's comma-separated gids ("" is an empty list).
func gidList(s string) ([]int, error) {
	var gids []int
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		n, err := uint0(f)
		if err != nil {
			return nil, err
		}
		gids = append(gids, int(n))
	}
	return gids, nil
}

// applyUIDGID drops privileges as s6-applyuidgid does for
// s6-fdholder-daemon: supplementary groups (-G), then the gid (-g), then
// the uid (-u); -U takes them from $UID, $GID and $GIDLIST. Go's syscall
// package changes the ids of every thread.
func applyUIDGID(opt map[byte]string) error {
	uidS, gidS, groupsS := opt['u'], opt['g'], opt['G']
	_, hasGroups := opt['G']
	if _, ok := opt['U']; ok {
		var okU, okG bool
		uidS, okU = os.LookupEnv("UID")
		gidS, okG = os.LookupEnv("GID")
		groupsS, hasGroups = os.LookupEnv("GIDLIST")
		if !okU || !okG {
			return exitcode.Errorf(exitcode.Usage, "-U: UID and GID must be set")
		}
	}
	var uid, gid uint64
	var err error
	if uidS != "" {
		if uid, err = uint0(uidS); err != nil {
			return exitcode.Errorf(exitcode.Usage, "invalid uid %q", uidS)
		}
	}
	if gidS != "" {
		if gid, err = uint0(gidS); err != nil {
			return exitcode.Errorf(exitcode.Usage, "invalid gid %q", gidS)
		}
	}
	if hasGroups {
		gids, err := gidList(groupsS)
		if err != nil {
			return exitcode.Errorf(exitcode.Usage, "invalid gid list %q", groupsS)
		}
		if err := syscall.Setgroups(gids); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to set supplementary groups: %w", err)
		}
	}
	if gid != 0 {
		if err := syscall.Setgid(int(gid)); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to setgid %d: %w", gid, err)
		}
	}
	if uid != 0 {
		if err := syscall.Setuid(int(uid)); err != nil {
			return exitcode.Errorf(exitcode.Sys, "unable to setuid %d: %w", uid, err)
		}
	}
	return nil
}
