package archive

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzWalk feeds arbitrary files to the reader verify and restore use. It must never panic
// or hang, and what it accepts must be what ReadManifest and OpenStream agree on, with
// every member passed on under the archive's rules. The corpus in testdata/fuzz/FuzzWalk
// runs as an ordinary test; fuzz further with go test ./archive -fuzz FuzzWalk.
func FuzzWalk(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f.tar.zst")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		names := newTree()
		var passed []string
		m, err := Walk(path, func(hdr *tar.Header, r io.Reader) error {
			passed = append(passed, hdr.Name)
			typ, _ := memberType(hdr.Typeflag)
			hard := ""
			if hdr.Typeflag == tar.TypeLink {
				hard = hdr.Linkname
			}
			if err := names.check(hdr.Name, typ, hard); err == nil {
				names.add(hdr.Name, typ)
			}
			_, err := io.Copy(io.Discard, r)
			return err
		})
		if err != nil {
			return
		}
		again, err := ReadManifest(path)
		if err != nil {
			t.Fatalf("Walk accepted a file whose manifest does not read: %v", err)
		}
		if len(again.Members) != len(m.Members) || len(passed) != len(m.Members) {
			t.Fatalf("Walk accepted %d members, the manifest lists %d (%d on a second read)", len(passed), len(m.Members), len(again.Members))
		}
		for i, name := range passed {
			if m.Members[i].Name != name {
				t.Fatalf("member %d is %q, the manifest says %q", i, name, m.Members[i].Name)
			}
			if _, err := cleanName(name, strings.HasSuffix(name, "/")); err != nil {
				t.Fatalf("Walk accepted an unsafe name %q: %v", name, err)
			}
		}
	})
}

// fuzzSeeds are small valid archives of every member kind, a sparse file and a name that
// is not UTF-8 among them, for the fuzzer to start from.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	dir := f.TempDir()
	for i, entries := range [][]entry{
		{dirEntry("files/d/", 0o755, 1, 2), fileEntry("files/d/a", 0o644, []byte("hello"), 0)},
		{dirEntry("files/d/", 0o755, 0, 0), linkEntry("files/d/l", "/music"), fileEntry("files/d/caf\xe9", 0o600, []byte("x"), 0),
			{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "files/d/h", Linkname: "files/d/caf\xe9"}}},
	} {
		path := filepath.Join(dir, "seed"+string(rune('a'+i))+".tar.zst")
		w, err := Create(path, Options{Reserve: minReserve})
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if err := w.Add(&e.hdr, bytes.NewReader(e.data)); err != nil {
				f.Fatal(err)
			}
		}
		if i == 1 {
			sp := &Sparse{File: bytes.NewReader([]byte("data")), Size: 1 << 16, Data: []Extent{{Offset: 0, Length: 4}}}
			if err := w.Add(&tar.Header{Typeflag: tar.TypeReg, Name: "files/d/sparse", Size: sp.Size, Mode: 0o644}, sp); err != nil {
				f.Fatal(err)
			}
		}
		if _, err := w.AddStream("db/x.dump", 0o600, baseTime, strings.NewReader("dump")); err != nil {
			f.Fatal(err)
		}
		if err := w.Commit(&Manifest{}); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}
