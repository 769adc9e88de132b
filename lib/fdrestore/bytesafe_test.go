//go:build linux

package fdrestore

import (
	"encoding/json"
	"reflect"
	"testing"
)

// A stage request whose argv, paths and ids are not UTF-8 crosses its JSON
// encoding byte for byte.
func TestStageRequestKeepsBytes(t *testing.T) {
	req := StageRequest{
		Prog: []string{"prog", "\xff", "a\x00b", "\x00ff", "é", ""},
		Path: "/bin/\xfe",
		Config: FlagsConfig{Flags: []string{"3=file:/tmp/\xff:rdonly"},
			Holds: []Hold{{Target: 4, Socket: "/s\x80", ID: "id\xc3"}}},
		Plan: &Plan{Objects: []Object{{Source: Source{Path: "\xff\xfe", Data: []byte{0xff}}}}},
	}
	data, err := json.Marshal(mapStrings(reflect.ValueOf(req), escapeBytes).Interface())
	if err != nil {
		t.Fatal(err)
	}
	var coded StageRequest
	if err := json.Unmarshal(data, &coded); err != nil {
		t.Fatal(err)
	}
	got := mapStrings(reflect.ValueOf(coded), unescapeBytes).Interface().(StageRequest)
	if !reflect.DeepEqual(got, req) {
		t.Errorf("round trip = %+v; want %+v", got, req)
	}
	if req.Plan.Objects[0].Source.Path != "\xff\xfe" {
		t.Error("escaping changed the caller's plan")
	}
}
