package cli

import (
	"errors"
	"strings"
	"testing"
)

func TestOptionsOrder(t *testing.T) {
	valued := func(n string) bool { return n == "t" || n == "o" || n == "timeout" }
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"bundle keeps order", []string{"-du", "dir"}, "d u"},
		{"reversed", []string{"-ud", "dir"}, "u d"},
		{"value attached", []string{"-t100", "-x"}, "t=100 x"},
		{"value next", []string{"-t", "100", "-x"}, "t=100 x"},
		{"value ends a bundle", []string{"-xt5y", "-z"}, "x t=5y z"},
		{"long with =", []string{"--timeout=7", "--up"}, "timeout=7 up"},
		{"long with next", []string{"--timeout", "7", "--up"}, "timeout=7 up"},
		{"stops at --", []string{"-a", "--", "-b"}, "a"},
		{"stops at -", []string{"-a", "-", "-b"}, "a"},
		{"stops at operand", []string{"-a", "dir", "-b"}, "a"},
		{"missing value", []string{"-t"}, "t="},
	} {
		var got []string
		err := Options(tt.args, valued, func(n, v string) error {
			if valued(n) {
				n += "=" + v
			}
			got = append(got, n)
			return nil
		})
		if err != nil || strings.Join(got, " ") != tt.want {
			t.Errorf("%s: Options(%q) = %q, %v; want %q", tt.name, tt.args, got, err, tt.want)
		}
	}
}

func TestOptionsStopsAtError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := Options([]string{"-abc", "-d"}, func(string) bool { return false }, func(name, _ string) error {
		n++
		if name == "b" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("Options = %v after %d calls; want stop after 2", err, n)
	}
}
