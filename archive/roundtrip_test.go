package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, conc := range []int{1, minParallel} {
		t.Run(fmt.Sprint("concurrency=", conc), func(t *testing.T) {
			path := tempPath(t, "rt.tar.zst")
			entries, m := writeSample(t, path, Options{Concurrency: conc})
			checkWalk(t, path, entries, m)
		})
	}
}

// checkWalk reads the archive back and compares every member.
func checkWalk(t *testing.T, path string, entries []entry, want *Manifest) {
	t.Helper()
	var got []entry
	m, err := Walk(path, func(hdr *tar.Header, r io.Reader) error {
		data, err := io.ReadAll(r)
		got = append(got, entry{hdr: *hdr, data: data})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("Walk manifest differs from the committed one:\n got %+v\nwant %+v", m, want)
	}
	if len(got) != len(entries) {
		t.Fatalf("walked %d members, wrote %d", len(got), len(entries))
	}
	for i, e := range entries {
		compareEntry(t, got[i], e)
		if m.Members[i].Name != got[i].hdr.Name {
			t.Errorf("manifest member %d is %q, archive has %q", i, m.Members[i].Name, got[i].hdr.Name)
		}
	}
	rm, err := ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rm, want) {
		t.Errorf("ReadManifest differs from the committed manifest")
	}
}

func compareEntry(t *testing.T, got, want entry) {
	t.Helper()
	g, w := got.hdr, want.hdr
	name := w.Name
	if g.Name != name || g.Typeflag != w.Typeflag || g.Mode != w.Mode || g.Uid != w.Uid || g.Gid != w.Gid ||
		g.Uname != w.Uname || g.Gname != w.Gname || g.Linkname != w.Linkname || g.Size != w.Size {
		t.Errorf("%s: header\n got %+v\nwant %+v", name, g, w)
	}
	if !g.ModTime.Equal(w.ModTime) {
		t.Errorf("%s: mtime %v, want %v", name, g.ModTime, w.ModTime)
	}
	if !bytes.Equal(got.data, want.data) {
		t.Errorf("%s: content differs (%d bytes, want %d)", name, len(got.data), len(want.data))
	}
}

func TestManifestIsFilledIn(t *testing.T) {
	path := tempPath(t, "m.tar.zst")
	entries, m := writeSample(t, path, Options{})
	if m.Format != FormatVersion {
		t.Errorf("Format = %d", m.Format)
	}
	if len(m.Members) != len(entries) {
		t.Fatalf("%d manifest members, %d written", len(m.Members), len(entries))
	}
	for i, e := range entries {
		mem := m.Members[i]
		if mem.Type == TypeFile && (mem.SHA256 != sha(e.data) || mem.Size != int64(len(e.data))) {
			t.Errorf("%s: manifest %+v does not match content", e.hdr.Name, mem)
		}
		if mem.Type != TypeFile && mem.SHA256 != "" {
			t.Errorf("%s: sha256 on a %s", mem.Name, mem.Type)
		}
	}
	if last := m.Members[len(m.Members)-1]; last.Name != "database/dump.sql" {
		t.Errorf("stream member is not last: %+v", last)
	}
	if m.Rows() != 42 {
		t.Errorf("Rows() = %d, want 42", m.Rows())
	}
	if m.Files() != 11 {
		t.Errorf("Files() = %d, want 11", m.Files())
	}
}

func TestWrittenMatchesBody(t *testing.T) {
	path := tempPath(t, "w.tar.zst")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddStream("db.sql", 0o600, baseTime, bytes.NewReader(textBytes(2<<20))); err != nil {
		t.Fatal(err)
	}
	e := fileEntry("f", 0o644, randomBytes(5, 1<<20), 0)
	if err := w.Add(&e.hdr, bytes.NewReader(e.data)); err != nil {
		t.Fatal(err)
	}
	if w.Written() == 0 {
		t.Error("Written() is 0 after adding data")
	}
	if err := w.Commit(&Manifest{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Side-file bytes count once, when compressed, not again when copied.
	if got, want := w.Written(), st.Size()-DefaultReserve; got != want {
		t.Errorf("Written() = %d, body is %d bytes", got, want)
	}
}

func TestEmptyArchive(t *testing.T) {
	path := tempPath(t, "empty.tar.zst")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(&Manifest{}); err != nil {
		t.Fatal(err)
	}
	m, err := Walk(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Members) != 0 {
		t.Errorf("members: %+v", m.Members)
	}
}

// TestLargeMembers crosses the parallel encoder's section size (16 MiB at
// the fastest level) and zstd's block size.
func TestLargeMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 40 MB")
	}
	path := tempPath(t, "large.tar.zst")
	w, err := Create(path, Options{Concurrency: minParallel})
	if err != nil {
		t.Fatal(err)
	}
	big := append(textBytes(20<<20), randomBytes(7, 20<<20+3)...)
	e := fileEntry("files/big", 0o644, big, 0)
	if err := w.Add(&e.hdr, bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	mem, err := w.AddStream("database/big.sql", 0o600, baseTime, bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(&Manifest{}); err != nil {
		t.Fatal(err)
	}
	if mem.SHA256 != sha(big) {
		t.Error("stream sha256 differs")
	}
	var n int
	if _, err := Walk(path, func(hdr *tar.Header, r io.Reader) error {
		n++
		data, err := io.ReadAll(r)
		if !bytes.Equal(data, big) {
			t.Errorf("%s differs", hdr.Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("walked %d members", n)
	}
}

// TestExternalTools checks the archive with the system's zstd and GNU tar.
func TestExternalTools(t *testing.T) {
	haveTools(t, "tar", "zstd")
	for _, conc := range []int{1, minParallel} {
		t.Run(fmt.Sprint("concurrency=", conc), func(t *testing.T) {
			checkExternalTools(t, Options{Concurrency: conc})
		})
	}
}

func checkExternalTools(t *testing.T, opts Options) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ext.tar.zst")
	entries, _ := writeSample(t, path, opts)

	run(t, "zstd", "-q", "-t", path)
	listing := run(t, "tar", "--zstd", "-tvf", path)
	first := strings.SplitN(listing, "\n", 2)[0]
	if !strings.HasSuffix(first, " manifest.json") {
		t.Errorf("first member per tar is not manifest.json:\n%s", listing)
	}
	names := run(t, "tar", "--zstd", "-tf", path)
	want := manifestName + "\n"
	for _, e := range entries {
		want += e.hdr.Name + "\n"
	}
	if names != want {
		t.Errorf("tar -t lists\n%s\nwant\n%s", names, want)
	}

	// zstd -d alone must give a plain tar too.
	plain := filepath.Join(dir, "plain.tar")
	run(t, "zstd", "-q", "-d", path, "-o", plain)
	if got := run(t, "tar", "-tf", plain); got != want {
		t.Errorf("tar -tf of zstd -d output differs:\n%s", got)
	}

	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "tar", "--zstd", "-xpf", path, "-C", out)
	for _, e := range entries {
		checkExtracted(t, out, e)
	}
}

func checkExtracted(t *testing.T, root string, e entry) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(e.hdr.Name))
	fi, err := os.Lstat(p)
	if err != nil {
		t.Error(err)
		return
	}
	switch e.hdr.Typeflag {
	case tar.TypeSymlink:
		if target, err := os.Readlink(p); err != nil || target != e.hdr.Linkname {
			t.Errorf("%s: link target %q (%v), want %q", e.hdr.Name, target, err, e.hdr.Linkname)
		}
		return
	case tar.TypeReg:
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(data, e.data) {
			t.Errorf("%s: extracted content differs (%v)", e.hdr.Name, err)
		}
	}
	if got := int64(fi.Mode().Perm()) | modeBits(fi.Mode()); got != e.hdr.Mode {
		t.Errorf("%s: extracted mode %o, want %o", e.hdr.Name, got, e.hdr.Mode)
	}
	if !fi.ModTime().Equal(e.hdr.ModTime) {
		t.Errorf("%s: extracted mtime %v, want %v", e.hdr.Name, fi.ModTime(), e.hdr.ModTime)
	}
	if uid, gid, ok := fileOwner(fi); ok && os.Getuid() == 0 {
		if uid != e.hdr.Uid || gid != e.hdr.Gid {
			t.Errorf("%s: extracted owner %d:%d, want %d:%d", e.hdr.Name, uid, gid, e.hdr.Uid, e.hdr.Gid)
		}
	}
}

func modeBits(m os.FileMode) int64 {
	var b int64
	if m&os.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}
