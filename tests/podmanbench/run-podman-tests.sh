#!/bin/sh
# Runs podman v5's own libpod/lock/shm test file (shm_lock_test.go, taken
# from the Go module cache at run time, never committed) against lib/shm,
# through podmanshm/adapter.go, in a temporary module. Two edits to the
# copy, both said on stdout: TestLockSemaphoreActuallyLocks leaves lock 0
# held (podman relies on its thread's death; lib/shm's locks belong to the
# process), so it is given the missing unlock; and TestMain's removal of
# /dev/shm/libpod_lock, podman's real segment, is dropped (the adapter
# keeps every segment in a directory of its own).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
src=$(cd "$here" && go list -m -f '{{.Dir}}' github.com/containers/podman/v5)/libpod/lock/shm/shm_lock_test.go
[ -f "$src" ] || { echo "run-podman-tests: $src missing (go mod download in tests/podmanbench)" >&2; exit 1; }
work=$(mktemp -d)
segs=$(mktemp -d /dev/shm/gotools-podmanshm-XXXXXX)
trap 'rm -rf "$work" "$segs"' EXIT
cp "$here/podmanshm/adapter.go" "$work/"
old='		assert.True(t, duration.Seconds() > 1.0)'
grep -qF "$old" "$src" || { echo "run-podman-tests: $src changed: the lock 0 edit does not apply" >&2; exit 1; }
grep -qF 'os.RemoveAll("/dev/shm/libpod_lock")' "$src" || { echo "run-podman-tests: $src changed: the cleanup edit does not apply" >&2; exit 1; }
awk -v old="$old" '
	$0 == old { print; print "\t\tassert.NoError(t, locks.UnlockSemaphore(0)) // added by run-podman-tests.sh"; next }
	/os\.RemoveAll\("\/dev\/shm\/libpod_lock"\)/ { print "\t// removal of /dev/shm/libpod_lock dropped by run-podman-tests.sh"; next }
	{ print }' "$src" > "$work/shm_lock_test.go"
echo "run-podman-tests: $src"
echo "run-podman-tests: edits: TestLockSemaphoreActuallyLocks unlocks lock 0 at its end; TestMain does not remove /dev/shm/libpod_lock"
cat > "$work/go.mod" <<MOD
module podmanshmtest

go 1.26

require github.com/gotools-dev/gotools v0.0.0

replace github.com/gotools-dev/gotools => $repo
MOD
cd "$work"
GOFLAGS=-mod=mod go get github.com/stretchr/testify@v1.11.1 >/dev/null 2>&1 || GOFLAGS=-mod=mod go get github.com/stretchr/testify@v1.11.1
GOFLAGS=-mod=mod go mod tidy >/dev/null
rc=0
PODMANSHM_DIR=$segs CGO_ENABLED=0 go test -count=1 -v . > "$work/out" 2>&1 || rc=$?
grep -E '^(--- |PASS|FAIL|ok|panic)' "$work/out" || cat "$work/out"
exit $rc
