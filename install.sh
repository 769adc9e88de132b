#!/bin/sh
# install.sh: install the gotools binary and one relative symlink per applet
# (common.md "install.sh and the Makefile"), like busybox --install -s.
#
#   install.sh [-d DESTDIR] [-p PREFIX] [--s6-names] [--copy] [-f] [--man MANDIR] [BINARY]
#
# BINARY (default: bin/gotools next to this script) goes to
# $DESTDIR$PREFIX/bin/gotools, installed atomically (temp name, then mv).
# The applet names come from the binary itself ("gotools --list", and
# "gotools --list --aliases" with --s6-names), so this script and the binary
# never disagree. Each name becomes a symlink to "gotools" in the same
# directory; with --copy, a copy of the binary instead (for filesystems
# without symlinks).
#
# Running it twice changes nothing. A name that exists and is neither a
# symlink to gotools nor (with --copy) a copy of it is refused unless -f;
# every name is checked before anything is written, so a refusal changes
# nothing.
#
# It never builds anything: run "make build" (CGO_ENABLED=0) first. To
# install on a machine of another architecture, where this script cannot run
# BINARY to list its applets, copy the binary there and run
# "gotools --install DIR" on it instead.
#
# Exit codes: 0 done, 1 refused, 100 usage, 111 a command failed.
#
# POSIX sh only: it must run under dash and busybox ash in a minimal rootfs.

prog=install.sh
synopsis="$prog [-d DESTDIR] [-p PREFIX] [--s6-names] [--copy] [-f] [--man MANDIR] [BINARY]"
nl='
'
tab=$(printf '\t')

usage() {
	printf '%s: usage: %s\n' "$prog" "$synopsis" >&2
	exit 100
}

# die CODE MESSAGE: one s6-style line on stderr, then exit CODE.
die() {
	code=$1
	shift
	printf '%s: fatal: %s\n' "$prog" "$*" >&2
	exit "$code"
}

# try DESCRIPTION COMMAND...: run COMMAND; on failure, die 111 with
# "unable to DESCRIPTION: REASON", REASON being the last ": "-separated part
# of the command's own message (e.g. "Permission denied"), on one line.
try() {
	what=$1
	shift
	if out=$("$@" 2>&1); then
		return 0
	fi
	out=$(printf '%s' "$out" | tr '\n' ' ')
	out=${out% }
	case $out in
	'') die 111 "unable to $what" ;;
	*) die 111 "unable to $what: ${out##*: }" ;;
	esac
}

destdir=${DESTDIR-}
prefix=${PREFIX-}
s6names=0
copy=0
force=0
mandir=
bin=

while [ $# -gt 0 ]; do
	case $1 in
	-d)
		[ $# -ge 2 ] || usage
		destdir=$2
		shift
		;;
	-d*) destdir=${1#-d} ;;
	-p)
		[ $# -ge 2 ] || usage
		prefix=$2
		shift
		;;
	-p*) prefix=${1#-p} ;;
	--s6-names) s6names=1 ;;
	--man)
		[ $# -ge 2 ] || usage
		mandir=$2
		shift
		;;
	--man=*) mandir=${1#--man=} ;;
	--copy) copy=1 ;;
	-f | --force) force=1 ;;
	-h | --help)
		printf 'Usage: %s\n\n' "$synopsis"
		printf 'Install BINARY (default: bin/gotools next to this script) as\n'
		printf 'DESTDIR/PREFIX/bin/gotools and one relative symlink per applet.\n\n'
		printf '  -d DESTDIR   staging root (default: $DESTDIR, empty)\n'
		printf '  -p PREFIX    absolute prefix (default: $PREFIX, else /usr/local)\n'
		printf '  --s6-names   also link the s6 names (s6-svscan, s6lockd, ...)\n'
		printf '  --copy       install a copy of the binary per name, not symlinks\n'
		printf '  -f           replace files that are not gotools links or copies\n'
		printf '  --man MANDIR also write a man page per name to DESTDIR/MANDIR/man1\n'
		printf '               (made by "gotools help --man NAME": the text of NAME --help)\n'
		exit 0
		;;
	--)
		shift
		break
		;;
	-?*) usage ;;
	*) break ;;
	esac
	shift
done
case $# in
0) ;;
1) bin=$1 ;;
*) usage ;;
esac

# An empty PREFIX means the default; "-p /" installs into $DESTDIR/bin.
prefix=${prefix:-/usr/local}
case $prefix in
/*) ;;
*) usage ;;
esac
while :; do
	case $prefix in
	*/) prefix=${prefix%/} ;;
	*) break ;;
	esac
done
bindir=$destdir$prefix/bin

if [ -z "$bin" ]; then
	bin=$(dirname -- "$0")/bin/gotools
fi
case $bin in
*/*) ;;
*) bin=./$bin ;; # run it by path, never through $PATH
esac
[ -f "$bin" ] || die 111 "unable to find the gotools binary $bin (run make build first)"

# Ask the binary for its applets before touching anything. This fails when
# BINARY was built for another architecture.
if [ "$s6names" = 1 ]; then
	set -- --list --aliases
else
	set -- --list
fi
if list=$("$bin" "$@" 2>/dev/null); then
	:
else
	die 111 "unable to run $bin $* (exit $?): built for another system? copy it to the target and run gotools --install DIR there"
fi

# Every name must be a plain file name: a broken binary must not make us
# write outside $bindir.
set -f
saved_ifs=$IFS
IFS="$tab$nl"
names=
for name in $list; do
	case $name in
	'' | . | .. | */* | gotools | .*) die 111 "$bin --list printed an invalid applet name: $name" ;;
	esac
	case " $names " in
	*" $name "*) ;;
	*) names="$names $name" ;;
	esac
done
IFS=$saved_ifs
[ -n "$names" ] || die 111 "$bin --list printed no applets"

try "create $bindir" mkdir -p -- "$bindir"
dst=$bindir/gotools

# linkto PATH: print the target of the symlink PATH. readlink(1) is in
# busybox and coreutils; ls -ld is the POSIX fallback.
linkto() {
	if command -v readlink >/dev/null 2>&1; then
		readlink -- "$1"
	else
		l=$(ls -ld -- "$1") && printf '%s\n' "${l#* -> }"
	fi
}

# same A B: whether A and B are regular files with the same contents.
same() {
	[ -f "$1" ] && [ -f "$2" ] && cmp -s -- "$1" "$2"
}

# ours PATH: whether PATH is a symlink to gotools (any symlink whose target
# is named gotools, as "gotools --install" decides) or a regular file with
# the contents of the new binary or of the gotools it replaces.
ours() {
	if [ -L "$1" ]; then
		t=$(linkto "$1") || return 1
		[ "${t##*/}" = gotools ]
		return
	fi
	same "$1" "$bin" || same "$1" "$dst"
}

# current PATH: whether PATH is already exactly what we would install.
current() {
	if [ "$copy" = 1 ]; then
		[ ! -L "$1" ] && same "$1" "$bin"
	else
		[ -L "$1" ] && [ "$(linkto "$1")" = gotools ]
	fi
}

if [ "$copy" = 1 ]; then
	what="not a symlink to or copy of gotools"
else
	what="not a symlink to gotools"
fi

# Check every name before writing anything.
todo=
kept=0
for name in $names; do
	path=$bindir/$name
	if current "$path"; then
		kept=$((kept + 1))
		continue
	fi
	if [ -e "$path" ] || [ -L "$path" ]; then
		if [ "$force" != 1 ] && ! ours "$path"; then
			die 1 "refusing to replace $path: $what (use -f)"
		fi
	fi
	todo="$todo $name"
done
if [ -L "$dst" ] || { [ -e "$dst" ] && [ ! -f "$dst" ]; }; then
	[ "$force" = 1 ] || die 1 "refusing to replace $dst: not a regular file (use -f)"
fi

tmp=
cleanup() {
	if [ -n "$tmp" ]; then
		rm -f -- "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# put TMP PATH: rename TMP over PATH. rename(2) replaces PATH atomically,
# but mv(1) would move TMP into PATH if PATH were (a link to) a directory,
# so remove such a PATH first.
put() {
	if [ -d "$2" ] || [ -L "$2" ]; then
		try "remove $2" rm -f -- "$2"
	fi
	try "rename $1 to $2" mv -f -- "$1" "$2"
	tmp=
}

changed=0
if same "$dst" "$bin" && [ ! -L "$dst" ]; then
	:
else
	tmp=$bindir/.gotools.tmp.$$
	try "copy $bin to $tmp" cp -- "$bin" "$tmp"
	try "chmod $tmp" chmod 0755 "$tmp"
	put "$tmp" "$dst"
	changed=$((changed + 1))
fi

for name in $todo; do
	path=$bindir/$name
	tmp=$bindir/.$name.tmp.$$
	if [ "$copy" = 1 ]; then
		try "copy $dst to $tmp" cp -- "$dst" "$tmp"
		try "chmod $tmp" chmod 0755 "$tmp"
	else
		try "symlink $tmp" ln -s gotools "$tmp"
	fi
	put "$tmp" "$path"
	changed=$((changed + 1))
done

# Other programs of the same names elsewhere in PATH (Debian's daemontools
# has setlock, supervise, svc, svok, svscan and svstat): which one a shell
# runs depends on the order of PATH, so say so.
realdir() { (cd -P -- "$1" 2>/dev/null && pwd); }
here=$(realdir "$bindir")
saved_ifs=$IFS
IFS=:
set -- $PATH
IFS=$saved_ifs
for d in "$@"; do
	[ -n "$d" ] && [ -d "$d" ] || continue
	[ "$(realdir "$d")" != "$here" ] || continue
	for name in $names; do
		other=$d/$name
		if [ -f "$other" ] && [ -x "$other" ] && ! ours "$other"; then
			printf '%s: warning: %s is also %s, another program: which one runs depends on the order of PATH\n' "$prog" "$bindir/$name" "$other" >&2
		fi
	done
done

# Man pages, from the binary itself: the same text as each --help.
if [ -n "$mandir" ]; then
	case $mandir in
	/*) ;;
	*) usage ;;
	esac
	man1=$destdir$mandir/man1
	try "create $man1" mkdir -p -- "$man1"
	for name in gotools $names; do
		tmp=$man1/.$name.1.tmp.$$
		if [ "$name" = gotools ]; then
			"$bin" help --man >"$tmp" 2>/dev/null || die 111 "unable to run $bin help --man"
		else
			"$bin" help --man "$name" >"$tmp" 2>/dev/null || die 111 "unable to run $bin help --man $name"
		fi
		try "chmod $tmp" chmod 0644 "$tmp"
		put "$tmp" "$man1/$name.1"
	done
	printf '%s: wrote man pages for gotools and %d names in %s\n' "$prog" "$(set -- $names; echo $#)" "$man1"
fi

if [ "$changed" = 0 ]; then
	printf '%s: %s is up to date (gotools and %d names)\n' "$prog" "$bindir" "$kept"
else
	printf '%s: installed %d file(s) in %s (%d already up to date)\n' "$prog" "$changed" "$bindir" "$kept"
fi
