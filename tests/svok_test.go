package tests

import "testing"

// svok's behaviour is checked with svstat's, on the same directories, in
// svstat_test.go (TestSvstatSvokFailures, TestSvstatSvokInteropS6).

// BenchmarkSvok times "svok DIR" through its symlink on a supervised
// directory (spec/supervise.md §11: median ≤ 2 ms).
func BenchmarkSvok(b *testing.B) { benchSpawn(b, "svok", benchDir(b)) }

// BenchmarkS6Svok is BenchmarkSvok for the real s6-svok.
func BenchmarkS6Svok(b *testing.B) {
	benchSpawn(b, requireS6(b, "s6-svok")[0], benchDir(b))
}
