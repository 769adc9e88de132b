//go:build !(linux && amd64)

package sig

// RawPipe is [SelfPipe] where no raw handler is written for the
// architecture (see raw_amd64.go).
func RawPipe() (int, error) { return SelfPipe() }
