package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// dumpData is bigger than three test parts, and not a multiple of the part size.
var dumpData = randomBytes(9, 3<<20+4321)

const testPart = 1 << 20

// writeStream writes sampleEntries and a dump of dumpData in parts interleaved with them.
func writeStream(t testing.TB, parts int) ([]byte, []entry) {
	t.Helper()
	var out bytes.Buffer
	m := sampleManifest()
	w, err := NewStream(&out, m, Options{PartSize: parts})
	if err != nil {
		t.Fatal(err)
	}
	entries := sampleEntries()
	mem, serr := addWhileStreaming(t, w, entries, dumpData)
	if serr != nil || mem.Size != int64(len(dumpData)) || mem.SHA256 != sha(dumpData) {
		t.Fatalf("AddStream: %+v %v", mem, serr)
	}
	if err := w.Commit(m); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), entries
}

// readAll reads a stream as a restore does: files to one side, the dump to another.
func readAll(data []byte) (map[string][]byte, []byte, *Manifest, error) {
	s, err := ReadStream(bytes.NewReader(data))
	if err != nil {
		return nil, nil, nil, err
	}
	defer s.Close()
	got := map[string][]byte{}
	var dump bytes.Buffer
	m, err := s.Walk(func(hdr *tar.Header, r io.Reader) error {
		b, err := io.ReadAll(r)
		got[hdr.Name] = b
		return err
	}, func(name string) io.Writer {
		if name != "database/dump.sql" {
			return nil
		}
		return &dump
	})
	return got, dump.Bytes(), m, err
}

func TestStreamRoundTrip(t *testing.T) {
	data, entries := writeStream(t, testPart)
	got, dump, m, err := readAll(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dump, dumpData) {
		t.Fatalf("dump: %d bytes back of %d", len(dump), len(dumpData))
	}
	for _, e := range entries {
		if e.hdr.Typeflag == tar.TypeReg && !bytes.Equal(got[e.hdr.Name], e.data) {
			t.Errorf("%s: content differs", e.hdr.Name)
		}
	}
	if len(m.Split) != 1 || m.Split[0].Parts != 4 || m.Split[0].SHA256 != sha(dumpData) || m.Format != StreamFormat {
		t.Errorf("trailer: format %d, split %+v", m.Format, m.Split)
	}
	if m.Database.Tables[0].Rows != 40 {
		t.Errorf("trailer lost the row counts: %+v", m.Database)
	}
	// The parts are interleaved with the files: pg_dump does not wait for them.
	first, last := -1, -1
	for i, mem := range m.Members {
		if strings.HasPrefix(mem.Name, "database/") {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first == 0 && last == len(m.Members)-1 {
		t.Logf("members: %v", m.Members)
	}

	// The same bytes as a file: ReadManifest, Walk (the dump whole) and IsStreamFile.
	path := tempPath(t, "s.tar.zst")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := IsStreamFile(path); !ok || err != nil {
		t.Fatalf("IsStreamFile: %v %v", ok, err)
	}
	fm, err := ReadManifest(path)
	if err != nil || len(fm.Members) != len(m.Members) || fm.Rows() != 42 {
		t.Fatalf("ReadManifest of a stream file: %v %+v", err, fm)
	}
	var mu sync.Mutex
	var whole []byte
	if _, err := Walk(path, func(hdr *tar.Header, r io.Reader) error {
		if hdr.Name != "database/dump.sql" {
			return nil
		}
		b, err := io.ReadAll(r)
		mu.Lock()
		whole = b
		mu.Unlock()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(whole, dumpData) {
		t.Errorf("Walk of a stream file gave a dump of %d bytes", len(whole))
	}
}

func TestStreamExactParts(t *testing.T) {
	// A dump that is a multiple of the part size ends with an empty last part.
	saved := dumpData
	dumpData = randomBytes(3, 2*testPart)
	defer func() { dumpData = saved }()
	data, _ := writeStream(t, testPart)
	_, dump, m, err := readAll(data)
	if err != nil || !bytes.Equal(dump, dumpData) || m.Split[0].Parts != 3 {
		t.Fatalf("err %v, %d bytes, %+v", err, len(dump), m.Split)
	}
}

func TestStreamTruncated(t *testing.T) {
	data, _ := writeStream(t, testPart)
	step := len(data) / 97
	for cut := 0; cut < len(data); cut += step {
		checkRefused(t, data[:cut], "cut at %d of %d", cut, len(data))
	}
	for cut := len(data) - 64; cut < len(data); cut++ {
		checkRefused(t, data[:cut], "cut at %d of %d", cut, len(data))
	}
}

func TestStreamFlippedByte(t *testing.T) {
	data, _ := writeStream(t, 64<<10)
	n := len(data)
	var offsets []int
	for i := 0; i < 64; i++ {
		offsets = append(offsets, i, n-1-i)
	}
	for off := 64; off < n-64; off += n / 301 {
		offsets = append(offsets, off)
	}
	for _, off := range offsets {
		bad := bytes.Clone(data)
		bad[off] ^= 0x10
		checkRefused(t, bad, "byte %d of %d flipped", off, n)
	}
}

func TestStreamMissingTrailer(t *testing.T) {
	var out bytes.Buffer
	w, err := NewStream(&out, sampleManifest(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := fileEntry("files/data/a", 0o644, []byte("hello"), 0)
	if err := w.Add(&e.hdr, bytes.NewReader(e.data)); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	checkRefused(t, out.Bytes(), "aborted stream")

	// A stream whose tar ends properly but without manifest.json.
	var plain bytes.Buffer
	enc, _ := newEncoder(&plain, zstd.SpeedFastest, 1)
	tw := tar.NewWriter(enc)
	js := []byte(`{"format":3,"sources":[],"members":[]}`)
	tw.WriteHeader(&tar.Header{Name: headerName, Typeflag: tar.TypeReg, Size: int64(len(js)), Mode: 0o644})
	tw.Write(js)
	tw.Close()
	enc.Close()
	checkRefused(t, plain.Bytes(), "no trailer")
}

func checkRefused(t *testing.T, data []byte, format string, args ...any) {
	t.Helper()
	_, _, _, err := readAll(data)
	if err == nil {
		t.Errorf(format+": read without an error", args...)
	}
}

func TestStreamReadManifestFooterless(t *testing.T) {
	data, _ := writeStream(t, testPart)
	path := tempPath(t, "cut.tar.zst")
	os.WriteFile(path, data[:len(data)-10], 0o600)
	if _, err := ReadManifest(path); !errors.Is(err, ErrNotBackup) {
		t.Errorf("ReadManifest of a cut stream file: %v", err)
	}
	var verr *VerifyError
	if _, err := Walk(path, nil); !errors.As(err, &verr) {
		t.Errorf("Walk of a cut stream file: %v", err)
	}
}

func TestStreamGNUTar(t *testing.T) {
	haveTools(t, "tar", "zstd", "cat")
	data, entries := writeStream(t, testPart)
	dir := t.TempDir()
	path := filepath.Join(dir, "s.tar.zst")
	os.WriteFile(path, data, 0o600)
	out := filepath.Join(dir, "x")
	os.Mkdir(out, 0o700)
	run(t, "tar", "--zstd", "-xf", path, "-C", out)
	for _, e := range entries {
		if e.hdr.Typeflag != tar.TypeReg {
			continue
		}
		b, err := os.ReadFile(filepath.Join(out, e.hdr.Name))
		if err != nil || !bytes.Equal(b, e.data) {
			t.Errorf("tar -x: %s: %v", e.hdr.Name, err)
		}
	}
	parts, _ := filepath.Glob(filepath.Join(out, "database", "dump.sql.part-*"))
	joined := run(t, "sh", "-c", `cat "$1"/database/dump.sql.part-* | sha256sum`, "sh", out)
	if len(parts) != 4 || !strings.HasPrefix(joined, sha(dumpData)) {
		t.Errorf("cat of %d parts: %s", len(parts), joined)
	}
	for _, f := range []string{headerName, manifestName} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}
