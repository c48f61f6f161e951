package archive

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// layout finds the region's parts in a committed archive.
func layout(t testing.TB, path string) (frameEnd, indexEnd, reserve, size int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	frameEnd, err = frameLen(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	var hdr [8]byte
	f.ReadAt(hdr[:], frameEnd)
	reserve = frameEnd + 8 + int64(binary.LittleEndian.Uint32(hdr[4:]))
	_, indexEnd, err = readIndex(f, frameEnd+8, reserve)
	if err != nil {
		t.Fatal(err)
	}
	return frameEnd, indexEnd, reserve, st.Size()
}

// flipper runs Walk on a copy of an archive with one byte changed.
type flipper struct {
	t    *testing.T
	f    *os.File
	path string
	orig []byte
}

func newFlipper(t *testing.T, src string) *flipper {
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	path := tempPath(t, "flipped.tar.zst")
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &flipper{t: t, f: f, path: path, orig: orig}
}

// check flips the byte at off with mask and demands that Walk fails.
func (fl *flipper) check(off int64, mask byte) {
	fl.t.Helper()
	fl.f.WriteAt([]byte{fl.orig[off] ^ mask}, off)
	defer fl.f.WriteAt(fl.orig[off:off+1], off)
	_, err := Walk(fl.path, func(hdr *tar.Header, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err == nil {
		fl.t.Fatalf("byte %d ^ %#02x: Walk found nothing wrong", off, mask)
	}
	mustVerifyError(fl.t, err, fmt.Sprintf("byte %d ^ %#02x", off, mask))
}

// TestFlipEveryByte changes every byte of a small archive, one at a time,
// and requires Walk to notice each time. Header bytes get every single-bit
// flip, since zstd itself ignores some of those bits.
func TestFlipEveryByte(t *testing.T) {
	t.Parallel()
	path := tempPath(t, "small.tar.zst")
	writeSmall(t, path, Options{Reserve: minReserve})
	if _, err := Walk(path, nil); err != nil {
		t.Fatal(err)
	}
	frameEnd, indexEnd, reserve, size := layout(t, path)
	fl := newFlipper(t, path)
	step := int64(1)
	if testing.Short() || raceEnabled {
		step = 7 // each Walk costs ~1.5 ms; sample instead
	}
	for off := int64(0); off < size; off += step {
		fl.check(off, 0xff)
		if off < indexEnd || off >= reserve {
			fl.check(off, 0x10) // the frame header's unused bit, in header bytes
		}
	}
	headers := []int64{0, frameEnd, frameEnd + 8}
	for _, end := range extentEnds(t, path, reserve) {
		headers = append(headers, end)
	}
	headers = append([]int64{reserve}, headers[:len(headers)-1]...)
	for _, start := range headers {
		for off := start; off < min(start+16, size); off++ {
			for bit := range 8 {
				fl.check(off, 1<<bit)
			}
		}
	}
}

// TestFlipDefaultRegion does the same with the default 1 MiB region: the
// written bytes of the region, a sample of the hole, and the body.
func TestFlipDefaultRegion(t *testing.T) {
	t.Parallel()
	path := tempPath(t, "small.tar.zst")
	writeSmall(t, path, Options{})
	_, indexEnd, reserve, size := layout(t, path)
	fl := newFlipper(t, path)
	step := int64(1)
	if testing.Short() || raceEnabled {
		step = 7
	}
	for off := int64(0); off < indexEnd; off += step {
		fl.check(off, 0x01)
	}
	for off := indexEnd; off < reserve; off += 4093 {
		fl.check(off, 0x01)
	}
	fl.check(reserve-1, 0x80)
	for off := reserve; off < size; off += step {
		fl.check(off, 0x04)
	}
}

// TestIndexCatchesWhatZstdMisses flips the "unused" bit of a body frame's
// header: zstd decoders ignore it, so only the index can notice.
func TestIndexCatchesWhatZstdMisses(t *testing.T) {
	path := tempPath(t, "small.tar.zst")
	writeSmall(t, path, Options{})
	_, _, reserve, _ := layout(t, path)
	fl := newFlipper(t, path)
	fl.f.WriteAt([]byte{fl.orig[reserve+4] ^ 0x10}, reserve+4)

	f, _ := os.Open(fl.path)
	defer f.Close()
	dec, _ := zstd.NewReader(f)
	defer dec.Close()
	plain, err := io.ReadAll(dec)
	if err != nil {
		t.Fatalf("zstd noticed the flip after all (%v); the test needs another byte", err)
	}
	if !bytes.Contains(plain, []byte("hello, world")) {
		t.Fatal("decoded content changed")
	}
	_, err = Walk(fl.path, nil)
	ve := mustVerifyError(t, err, "unused bit")
	if len(ve.Problems) != 1 || !strings.Contains(ve.Problems[0], "do not match the index") {
		t.Errorf("problems: %q", ve.Problems)
	}
}

func TestTruncation(t *testing.T) {
	path := tempPath(t, "small.tar.zst")
	writeSmall(t, path, Options{})
	frameEnd, indexEnd, reserve, size := layout(t, path)
	orig, _ := os.ReadFile(path)
	cuts := []int64{0, 1, 4, frameEnd - 1, frameEnd, frameEnd + 4, frameEnd + 8, indexEnd - 1, indexEnd,
		reserve - 1, reserve, reserve + 1, (reserve + size) / 2, size - 1}
	cuts = append(cuts, extentEnds(t, path, reserve)...)
	for _, cut := range cuts {
		if cut < 0 || cut >= size {
			continue
		}
		p := tempPath(t, "cut.tar.zst")
		if err := os.WriteFile(p, orig[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Walk(p, nil)
		if err == nil {
			t.Fatalf("cut at %d of %d: Walk found nothing wrong", cut, size)
		}
		mustVerifyError(t, err, fmt.Sprintf("cut at %d", cut))
	}
}

// extentEnds returns the offsets where body pieces end: cutting there
// leaves whole zstd frames, which zstd alone does not flag.
func extentEnds(t testing.TB, path string, reserve int64) []int64 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	reg, problems := readRegion(f, st.Size())
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	var ends []int64
	off := reserve
	for _, e := range reg.index.Body {
		off += e.Size
		ends = append(ends, off)
	}
	return ends
}

func TestTrailingData(t *testing.T) {
	path := tempPath(t, "small.tar.zst")
	writeSmall(t, path, Options{})
	orig, _ := os.ReadFile(path)
	enc, _ := zstd.NewWriter(nil)
	tails := map[string][]byte{
		"garbage":          []byte("garbage"),
		"one zero byte":    {0},
		"empty frame":      enc.EncodeAll(nil, nil),
		"frame of zeros":   enc.EncodeAll(make([]byte, 1024), nil),
		"another member":   enc.EncodeAll(tarMember(t, "extra", "data"), nil),
		"skippable frame":  {0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0},
		"the whole backup": orig,
	}
	for what, tail := range tails {
		p := tempPath(t, "tail.tar.zst")
		os.WriteFile(p, append(bytes.Clone(orig), tail...), 0o600)
		_, err := Walk(p, nil)
		if err == nil {
			t.Fatalf("%s appended: Walk found nothing wrong", what)
		}
		mustVerifyError(t, err, what)
	}
}

func tarMember(t testing.TB, name, data string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644})
	tw.Write([]byte(data))
	tw.Flush()
	return buf.Bytes()
}

// commitTampered writes the small archive but lets tamper edit the member
// list before Commit, as a buggy or malicious writer would.
func commitTampered(t *testing.T, tamper func(w *Writer)) error {
	t.Helper()
	path := tempPath(t, "tampered.tar.zst")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []entry{
		fileEntry("files/a", 0o644, []byte("aaa"), 0),
		fileEntry("files/b", 0o644, []byte("bbb"), 0),
		fileEntry("files/c", 0o644, []byte("ccc"), 0),
	} {
		if err := w.Add(&e.hdr, bytes.NewReader(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	tamper(w)
	if err := w.Commit(&Manifest{}); err != nil {
		t.Fatal(err)
	}
	_, err = Walk(path, nil)
	return err
}

func TestManifestMismatch(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(w *Writer)
		want   string
	}{
		{"wrong sha", func(w *Writer) { w.members[1].SHA256 = sha([]byte("not b")) },
			`member "files/b": content sha256 is`},
		{"wrong size", func(w *Writer) { w.members[2].Size = 4 }, `member "files/c": size 3, the manifest says 4`},
		{"wrong type", func(w *Writer) { w.members[0].Type = TypeDir }, `member "files/a" is a file, the manifest says dir`},
		{"reordered", func(w *Writer) { w.members[0], w.members[1] = w.members[1], w.members[0] },
			`member "files/b" is out of order: the manifest lists it before "files/a"`},
		{"missing", func(w *Writer) { w.members = append(w.members, Member{Name: "files/d", Type: TypeFile}) },
			`member "files/d" is missing`},
		{"extra", func(w *Writer) { w.members = w.members[:2] }, `member "files/c" is not in the manifest`},
		{"listed twice", func(w *Writer) { w.members = append(w.members, w.members[0]) }, `the manifest lists "files/a" twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := commitTampered(t, c.tamper)
			ve := mustVerifyError(t, err, c.name)
			if !strings.Contains(ve.Error(), c.want) {
				t.Errorf("got %v\nwant a problem containing %q", ve, c.want)
			}
		})
	}
}

// TestWalkReportsAllProblems: Walk goes on after a bad member.
func TestWalkReportsAllProblems(t *testing.T) {
	err := commitTampered(t, func(w *Writer) {
		w.members[0].SHA256 = sha([]byte("x"))
		w.members[2].SHA256 = sha([]byte("y"))
	})
	ve := mustVerifyError(t, err, "two bad shas")
	if len(ve.Problems) != 2 || !strings.Contains(ve.Problems[0], "files/a") || !strings.Contains(ve.Problems[1], "files/c") {
		t.Errorf("problems: %q", ve.Problems)
	}
}

func TestWalkPassesFnErrors(t *testing.T) {
	path := tempPath(t, "small.tar.zst")
	writeSmall(t, path, Options{})
	boom := errors.New("disk full")
	m, err := Walk(path, func(hdr *tar.Header, r io.Reader) error {
		if hdr.Name == "files/b.bin" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || m == nil {
		t.Fatalf("Walk returned %v, %v; want the fn error and the manifest", m, err)
	}
	var ve *VerifyError
	if errors.As(err, &ve) {
		t.Errorf("fn error reported as a verification problem: %v", err)
	}
}

func TestWalkPartialReads(t *testing.T) {
	path := tempPath(t, "small.tar.zst")
	writeSmall(t, path, Options{})
	// fn reads a few bytes of each member; Walk must hash the rest itself.
	if _, err := Walk(path, func(hdr *tar.Header, r io.Reader) error {
		_, err := r.Read(make([]byte, 3))
		if err == io.EOF {
			err = nil
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// handMade writes a .tar.zst whose first member is name with content data.
func handMade(t *testing.T, name, data string) string {
	path := tempPath(t, "hand.tar.zst")
	enc, _ := zstd.NewWriter(nil)
	member := tarMember(t, name, data)
	os.WriteFile(path, enc.EncodeAll(append(member, make([]byte, 1024)...), nil), 0o600)
	return path
}

func TestReadManifestRefusals(t *testing.T) {
	cases := []struct {
		name, member, data string
		want               error
	}{
		{"newer format", manifestName, fmt.Sprintf(`{"format": %d}`, FormatVersion+1), ErrFormatTooNew},
		{"no format", manifestName, `{}`, ErrNotBackup},
		{"other first member", "etc/passwd", `root:x:0:0`, ErrNotBackup},
		{"not json", manifestName, `<xml/>`, ErrNotBackup},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := handMade(t, c.member, c.data)
			if _, err := ReadManifest(path); !errors.Is(err, c.want) {
				t.Errorf("ReadManifest: %v, want %v", err, c.want)
			}
			if _, err := Walk(path, nil); err == nil {
				t.Error("Walk accepted it")
			}
		})
	}
	plain := tempPath(t, "plain.txt")
	os.WriteFile(plain, []byte("just text"), 0o600)
	if _, err := ReadManifest(plain); err == nil {
		t.Error("ReadManifest accepted a text file")
	}
}
