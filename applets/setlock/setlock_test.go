package setlock

import (
	"testing"

	"github.com/gotools-dev/gotools/lib/lock"
)

func TestScanLastWins(t *testing.T) {
	for _, tt := range []struct {
		args        []string
		kind        lock.Kind
		wait, moved bool
	}{
		{[]string{"f", "true"}, lock.Exclusive, true, false},
		{[]string{"-r", "f", "true"}, lock.Shared, true, false},
		{[]string{"-rw", "f", "true"}, lock.Exclusive, true, false},
		{[]string{"-w", "-r", "-n", "f", "true"}, lock.Shared, false, false},
		{[]string{"-nN", "-d", "3", "f", "true"}, lock.Exclusive, true, true},
		{[]string{"-d3", "-Nn", "f", "true"}, lock.Exclusive, false, true},
		{[]string{"-t", "100", "--shared", "--nb", "f"}, lock.Shared, false, false},
		{[]string{"--", "-r", "true"}, lock.Exclusive, true, false},
		{[]string{"f", "-r", "-n"}, lock.Exclusive, true, false},
	} {
		kind, wait, moved := scan(tt.args)
		if kind != tt.kind || wait != tt.wait || moved != tt.moved {
			t.Errorf("scan(%q) = %v, %v, %v; want %v, %v, %v", tt.args, kind, wait, moved, tt.kind, tt.wait, tt.moved)
		}
	}
}
