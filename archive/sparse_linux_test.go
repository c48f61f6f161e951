package archive

import (
	"os"
	"syscall"
	"testing"
)

// TestRegionIsSparse: the unwritten rest of the manifest region must stay a
// hole, so a small backup does not cost a whole region on disk.
func TestRegionIsSparse(t *testing.T) {
	path := tempPath(t, "tiny.tar.zst")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	addFile(t, w, "files/a", "hi\n")
	if err := w.Commit(sampleManifest()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Size() <= DefaultReserve {
		t.Fatalf("size %d, want more than the %d-byte region", fi.Size(), DefaultReserve)
	}
	if used := st.Blocks * 512; used >= fi.Size()/4 {
		t.Errorf("%d bytes on disk for a %d-byte file: the region is not sparse", used, fi.Size())
	}
	m, err := ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Host != "testhost" || len(m.Members) != 1 {
		t.Errorf("manifest: %+v", m)
	}
	if _, err := Walk(path, nil); err != nil {
		t.Fatal(err)
	}
}
