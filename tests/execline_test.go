package tests

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gotools-dev/gotools/lib/execline"
)

// execlinebArgv lexes in with real execlineb -P: the script's first line
// runs printf, which prints a sentinel and then each word of in followed
// by a NUL. ok is false when execlineb reports a syntax error (exit 100).
func execlinebArgv(t testing.TB, execlineb, printf string, in []byte) (words []string, ok bool) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "script")
	body := append([]byte(printf+` "%s\\0" X`+"\n"), in...)
	if err := os.WriteFile(script, body, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(execlineb, "-P", script)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 100 {
		return nil, false
	}
	if err != nil {
		t.Fatalf("execlineb -P on %q: %v (%s)", in, err, errb.String())
	}
	parts := strings.Split(out.String(), "\x00")
	if len(parts) < 2 || parts[0] != "X" || parts[len(parts)-1] != "" {
		t.Fatalf("execlineb -P on %q printed %q", in, out.String())
	}
	return parts[1 : len(parts)-1], true
}

// compareExeclineb checks one input against execlineb.
func compareExeclineb(t testing.TB, execlineb, printf string, in []byte) {
	t.Helper()
	// execlineb reads the script as a C string: what follows a NUL is
	// never seen. Our lexer must ignore it likewise, so feed both.
	want, ok := execlinebArgv(t, execlineb, printf, in)
	got, err := execline.Lex(in)
	if ok != (err == nil) || (ok && !slices.Equal(got, want)) {
		t.Errorf("Lex(%q) = %q, %v; execlineb gives %q (ok %v)", in, got, err, want, ok)
	}
}

func execlineTools(t testing.TB) (execlineb, printf string) {
	t.Helper()
	execlineb = requireS6(t, "execlineb")[0]
	printf, err := exec.LookPath("printf")
	if err != nil || !filepath.IsAbs(printf) {
		t.Skip("no printf program")
	}
	return execlineb, printf
}

// lexSeeds are inputs of every row of spec/rc.md §2 and of the up/down
// files of the testdata trees.
func lexSeeds(t testing.TB) [][]byte {
	seeds := []string{
		"if { a b } c", "if { if { a } b } c", `"x\0x41y" "\101" "\0101"`, "a#b # c",
		"a\x00b", "a \\\nb", "a\\\nb", "\"a\\\nb\"", `"\a\b\t\n\v\f\r\q\"\\"`,
		`"\0x4A\0x4"`, `"\0X41"`, `"\101`, `"\10`, `a"b c"d`, "{a }b", "\\{ x", "{\\\na",
		"a {\\", "}\\\na", "{\\ b }", `"\00"`, `"\256"`, `"\0400"`, `"\09"`, `"abc`, `a\`,
		"{", "}", "a { b", "{ a }", `"\65x"`, `"\1001"`, "\x01a\x1fb\x7f", "{\"a\"", "}\"a\"",
		"{ {\n} }", "{ \\}\n}", "# c\n{ x } # y\n", "\"\\0x\"", "\"\\0xg\"", "\"\\0x41\"\\",
	}
	var out [][]byte
	for _, s := range seeds {
		out = append(out, []byte(s))
	}
	files, _ := filepath.Glob("testdata/rc/*/*/*/up")
	more, _ := filepath.Glob("testdata/rc/*/*/*/down")
	for _, f := range append(files, more...) {
		if b, err := os.ReadFile(f); err == nil {
			out = append(out, b)
		}
	}
	return out
}

func TestExeclineLexMatchesExeclineb(t *testing.T) {
	execlineb, printf := execlineTools(t)
	for _, in := range lexSeeds(t) {
		compareExeclineb(t, execlineb, printf, in)
	}
	// Random inputs over the bytes that matter to the lexer.
	const alphabet = "ab {}\"\\#\n\t\x01x0123456789"
	r := rand.New(rand.NewPCG(17, 42))
	for range 300 {
		b := make([]byte, 1+r.IntN(14))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		compareExeclineb(t, execlineb, printf, b)
	}
}

// FuzzExeclineLex compares the lexer with real execlineb on each input
// (go test -fuzz FuzzExeclineLex ./tests/).
func FuzzExeclineLex(f *testing.F) {
	for _, s := range lexSeeds(f) {
		f.Add(s)
	}
	execlineb, printf := execlineTools(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 4096 {
			return
		}
		compareExeclineb(t, execlineb, printf, in)
	})
}
