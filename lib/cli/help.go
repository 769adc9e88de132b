package cli

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/gotools-dev/gotools/lib/exitcode"
)

// helpCmd is "gotools help [--man] [APPLET]": an applet's --help text, or
// the same text as a man(7) page. The manual is generated from the text
// --help prints, so the two never disagree (issue 14 item 10); "make man"
// and "install.sh --man DIR" write it out.
func helpCmd(all []Applet, args []string, env *Env) int {
	man := false
	if len(args) > 0 && args[0] == "--man" {
		man, args = true, args[1:]
	}
	if len(args) > 1 {
		fmt.Fprintln(env.Stderr, "gotools: usage: gotools help [--man] [APPLET]")
		return exitcode.Usage
	}
	var text bytes.Buffer
	name, summary, synopsis := "gotools", "process supervision and locking, one static binary", "gotools APPLET [ARGS...]"
	if len(args) == 0 {
		printHelp(all, &Env{Stdout: &text})
	} else {
		a, ok := Find(all, args[0])
		if !ok {
			fmt.Fprintf(env.Stderr, "gotools: fatal: unknown applet %s (gotools --list shows them)\n", args[0])
			return exitcode.Usage
		}
		name, summary, synopsis = args[0], a.Summary, args[0]+" "+a.Usage
		if s := UpstreamSynopsis(name); s != "" {
			synopsis = s
		}
		if code := AppletHelp(a, name, &text); code != exitcode.OK {
			env.Stderr.Write(text.Bytes())
			return code
		}
	}
	if !man {
		env.Stdout.Write(text.Bytes())
		return exitcode.OK
	}
	fmt.Fprint(env.Stdout, manPage(name, summary, synopsis, text.String()))
	return exitcode.OK
}

// AppletHelp writes what "NAME --help" prints for a to w, and returns its
// exit code. An applet that parses its own argv (Raw: lockd-helper, whose
// "--help" would be a lock mode, and the fdholder commands) gets its
// registry text instead.
func AppletHelp(a Applet, name string, w *bytes.Buffer) int {
	if a.Raw != nil {
		fmt.Fprintf(w, "Usage: %s %s\n\n%s\n", name, a.Usage, a.Summary)
		if a.Help != "" {
			fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(a.Help))
		}
		return exitcode.OK
	}
	var errb bytes.Buffer
	code := Run(a, []string{"--help"}, &Env{Name: name, Stdout: w, Stderr: &errb})
	if code != exitcode.OK {
		w.Reset()
		w.Write(errb.Bytes())
	}
	return code
}

// manPage returns a man(7) page for section 1 holding text as it is
// (preformatted: kong's help is laid out already), under NAME and
// SYNOPSIS sections made of the registry's summary and synopsis.
func manPage(name, summary, synopsis, text string) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s 1 \"\" \"gotools %s\" \"gotools manual\"\n", strings.ToUpper(roff(name)), roff(version()))
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", roff(name), roff(summary))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.nf\n%s\n.fi\n", roffLine(synopsis))
	b.WriteString(".SH DESCRIPTION\n.nf\n")
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString(roffLine(l) + "\n")
	}
	b.WriteString(".fi\n.SH SEE ALSO\n")
	if name == "gotools" {
		b.WriteString("gotools help APPLET, APPLET --help, https://skarnet.org/software/s6/\n")
	} else {
		b.WriteString("gotools(1)\n")
	}
	return b.String()
}

// roff escapes the backslashes of s, which roff would read as escapes.
func roff(s string) string { return strings.ReplaceAll(s, `\`, `\e`) }

// roffLine is roff(s) for a whole line: a line starting with "." or "'"
// would be a request, so it starts with the zero-width \& instead.
func roffLine(s string) string {
	s = roff(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
