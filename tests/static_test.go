package tests

import (
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dynamicDeps returns what makes the ELF file at path depend on a dynamic
// loader: a PT_INTERP program header (the loader's path), a PT_DYNAMIC one
// (what "make check-static" also rejects), and the libraries of its
// DT_NEEDED entries. A static binary has none of them.
func dynamicDeps(t *testing.T, path string) []string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("elf.Open(%q): %v", path, err)
	}
	defer f.Close()
	var deps []string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp := make([]byte, p.Filesz)
			p.ReadAt(interp, 0)
			deps = append(deps, "PT_INTERP "+strings.TrimRight(string(interp), "\x00"))
		}
		if p.Type == elf.PT_DYNAMIC {
			deps = append(deps, "PT_DYNAMIC")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatalf("ImportedLibraries(%q): %v", path, err)
	}
	for _, l := range libs {
		deps = append(deps, "imported library "+l)
	}
	needed, err := f.DynString(elf.DT_NEEDED)
	if err != nil {
		t.Fatalf("DynString(%q, DT_NEEDED): %v", path, err)
	}
	for _, n := range needed {
		deps = append(deps, "DT_NEEDED "+n)
	}
	return deps
}

func TestStaticBinary(t *testing.T) {
	t.Parallel()
	if os.Getenv("GOTOOLS_RACE") == "1" {
		t.Skip("GOTOOLS_RACE=1: race builds need cgo and are dynamic")
	}
	if deps := dynamicDeps(t, gotoolsBin); len(deps) != 0 {
		t.Errorf("dynamicDeps(%q) = %q; want none (CGO_ENABLED=0)", gotoolsBin, deps)
	}
	st, err := os.Stat(gotoolsBin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d bytes (%.2f MiB)", gotoolsBin, st.Size(), float64(st.Size())/(1<<20))
}

// TestStaticDetectorFlagsDynamic is the negative control: a dynamically
// linked system binary must be flagged.
func TestStaticDetectorFlagsDynamic(t *testing.T) {
	t.Parallel()
	sh, ok := realLookPath("sh")
	if !ok {
		t.Fatalf("sh not found in %s", realPath)
	}
	sh, err := filepath.EvalSymlinks(sh)
	if err != nil {
		t.Fatal(err)
	}
	deps := dynamicDeps(t, sh)
	if len(deps) == 0 {
		t.Skipf("%s is static itself: no dynamic binary to check the detector with", sh)
	}
	var interp, needed bool
	for _, d := range deps {
		interp = interp || strings.HasPrefix(d, "PT_INTERP ")
		needed = needed || strings.HasPrefix(d, "DT_NEEDED ")
	}
	if !interp || !needed {
		t.Errorf("dynamicDeps(%q) = %q; want a PT_INTERP and a DT_NEEDED entry", sh, deps)
	}
	t.Logf("%s: %q", sh, deps)
}
