// Package fdrestore is the engine behind the fdrestore applet
// (spec/fdrestore.md). Built so far:
//
//   - [ParseSource] and [ParseFlag] read the `-f [N=]SOURCE` grammar of
//     section 2 into a typed [Source];
//
//   - [NewFlagsPlan] turns the ordered `-f` flags, `--name`, `--listen-fds`
//     and `-C` into a [Plan] (section 6.1): final numbers, shared objects,
//     master opening order, LISTEN_* environment and the fds to close;
//
//   - [Place] computes the dup3/close sequence a stage process runs to move
//     its masters onto their targets (section 6.5), whatever numbers the
//     masters arrived on;
//
//   - [OpenMasters] creates every master of a plan once, close-on-exec,
//     with raw fds only (section 6.2), and undoes it all on failure;
//
//   - [SendFiles] and [RecvFiles] carry fds over a Unix socket in batches
//     of at most 252, with a header of file indexes (section 6.4);
//
//   - [Census], [StageInPlace], [RunOps], [Register] and [Terminal] place
//     the masters in the calling process (section 6.3 rules 2-3, 6.5 steps
//     1, 3 to 5, 7);
//
//   - [Reexec] and [Stage] are the re-exec path (6.3 rule 4): the same
//     process re-executes itself with the files in flight on a socket.
//
//   - hold:SOCKET:ID sources are retrieved through lib/fdholder;
//
//   - [DecodeImage], [EncodeImage] and [Image.Validate] read and write the
//     JSON image of section 5, strictly.
//
//   - [NewImagePlan] and [RunImage] restore an image: one global plan with
//     virtual targets, a view per process, one spawned stage per process
//     (6.3 rule 5, 6.6);
//
//   - [Dump] writes the image of running processes (section 4): sharing
//     by kcmp KCMP_FILE, unix peers by sock_diag, epoll targets by
//     KCMP_EPOLL_TFD.
//
// Not built yet: dump --freeze, escaped epoll targets, and the file
// types listed as live only in NewImagePlan.
//
// Errors of the parsers and the plan are [exitcode.Error]s with code 100
// (usage): one line naming the bad flag, fd or part, as in section 10;
// system failures are 111. [Place] only fails on inconsistent input, a
// bug (101).
package fdrestore

import "sync"

// lazyMap is a table built on first use: a package-level map literal
// would be built by every applet's init, since all are linked into one
// binary. The zero sync.Once and a static build func need no init code.
type lazyMap[K comparable, V any] struct {
	once  sync.Once
	m     map[K]V
	build func() map[K]V
}

func (l *lazyMap[K, V]) get() map[K]V {
	l.once.Do(func() { l.m = l.build() })
	return l.m
}
