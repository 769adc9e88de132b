// Command progress turns "go test -json" on stdin into one line per test as
// each top-level test ends, and one per package, so that "make test" shows
// it is moving (issue 14 item 13). A failed test's output follows its line;
// output outside any test (build errors, panics, TestMain's messages) is
// passed through at once. It exits 1 if a test or a package failed, or if
// no package passed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// event is one line of test2json's output ("go doc test2json").
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Output     string
	Elapsed    float64
}

func main() {
	out := bufio.NewWriter(os.Stdout)
	held := map[string][]string{} // package + top-level test -> output so far
	failed, passed, done := false, 0, 0
	var npass, nfail, nskip int // top-level tests, for the closing line
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(out, sc.Text()) // not JSON: go's own message
			out.Flush()
			continue
		}
		top, _, sub := strings.Cut(e.Test, "/")
		key := e.Package + " " + top
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Action == "build-fail":
			failed = true
		case e.Action == "output" && e.Test == "":
			if !strings.HasPrefix(e.Output, "=== ") && e.Output != "PASS\n" && e.Output != "FAIL\n" &&
				!strings.HasPrefix(e.Output, "ok ") && !strings.HasPrefix(e.Output, "FAIL\t") {
				fmt.Fprint(out, e.Output)
			}
		case e.Action == "output":
			held[key] = append(held[key], e.Output)
		case e.Test != "" && !sub && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			done++
			switch e.Action {
			case "pass":
				npass++
			case "fail":
				nfail++
			default:
				nskip++
			}
			fmt.Fprintf(out, "%-4s %s %s (%.1fs)\n", strings.ToUpper(e.Action), short(e.Package), e.Test, e.Elapsed)
			if e.Action == "fail" {
				failed = true
				for _, l := range held[key] {
					if !strings.HasPrefix(l, "=== ") {
						fmt.Fprint(out, l)
					}
				}
			}
			delete(held, key)
		case e.Test == "" && e.Action == "pass":
			passed++
			fmt.Fprintf(out, "ok   %s (%.1fs, %d tests)\n", e.Package, e.Elapsed, done)
			done = 0
		case e.Test == "" && e.Action == "fail":
			failed = true
			fmt.Fprintf(out, "FAIL %s (%.1fs)\n", e.Package, e.Elapsed)
		case e.Test == "" && e.Action == "skip":
			fmt.Fprintf(out, "?    %s (no tests)\n", e.Package)
		}
		out.Flush()
	}
	// A closing line any CI log reader understands.
	fmt.Fprintf(out, "e2e: %d passed, %d failed, %d skipped\n", npass, nfail, nskip)
	out.Flush()
	if err := sc.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "progress: %v\n", err)
		os.Exit(1)
	}
	if failed || passed == 0 {
		os.Exit(1)
	}
}

// short drops the module path from a package path.
func short(pkg string) string {
	return strings.TrimPrefix(pkg, "github.com/gotools-dev/gotools/")
}
