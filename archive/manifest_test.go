package archive

import (
	"encoding/json"
	"slices"
	"testing"
	"unicode/utf8"
)

// TestManifestKeepsNameBytes: names and link targets of any bytes survive the manifest's
// JSON exactly, and the JSON itself stays valid UTF-8 that people can read.
func TestManifestKeepsNameBytes(t *testing.T) {
	m := Manifest{
		Members: []Member{
			{Name: "files/data/caf\xe9-latin1", Type: TypeFile, Size: 3, SHA256: "x"},
			{Name: "files/data/ok-ünï", Type: TypeSymlink, Linkname: "/music/\xff\xfe"},
			{Name: "files/data/\x80\x81/", Type: TypeDir},
			{Name: "files/data/plain", Type: TypeFile, Sparse: true},
		},
		Skipped: []Skipped{{Name: "files/data/s\xe9.sock", Kind: "socket"}},
	}
	js, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(js) {
		t.Fatalf("the manifest JSON is not UTF-8: %q", js)
	}
	var back Manifest
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Members, m.Members) || !slices.Equal(back.Skipped, m.Skipped) {
		t.Errorf("names changed in JSON:\n%+v\n%+v", m.Members, back.Members)
	}
	if err := readsBack(js, &m); err != nil {
		t.Errorf("readsBack refused a manifest that reads back: %v", err)
	}
	m.Members[0].Name = "files/data/other"
	if err := readsBack(js, &m); err == nil {
		t.Error("readsBack accepted a manifest that reads back differently")
	}
}
