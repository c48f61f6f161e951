package archive

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// ErrFormatTooNew means the backup was written by a newer program.
var ErrFormatTooNew = errors.New("archive: backup format is newer than this program understands")

// VerifyError lists every problem Walk found.
type VerifyError struct{ Problems []string }

func (e *VerifyError) Error() string {
	if len(e.Problems) == 1 {
		return "archive: verification failed: " + e.Problems[0]
	}
	return fmt.Sprintf("archive: verification failed with %d problems: %s",
		len(e.Problems), strings.Join(e.Problems, "; "))
}

// errStreamForm: the archive is in the stream form, whose manifest is its trailer.
var errStreamForm = errors.New("archive: the stream form")

// ReadManifest returns the manifest of the backup at path, decoding only the
// first member. It does not verify the archive; Walk does.
func ReadManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("archive: reading manifest: %w", err)
	}
	defer f.Close()
	// One synchronous decoder: no read-ahead past the first frame.
	dec, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow))
	if err != nil {
		return nil, fmt.Errorf("archive: reading manifest of %s: %w", path, err)
	}
	defer dec.Close()
	m, _, err := readManifestMember(tar.NewReader(dec))
	if errors.Is(err, errStreamForm) {
		m, err = readStreamManifest(f)
	}
	if err != nil {
		return nil, fmt.Errorf("archive: reading manifest of %s: %w", path, err)
	}
	return m, nil
}

// readManifestMember reads the first tar member, which must be manifest.json.
func readManifestMember(tr *tar.Reader) (*Manifest, *tar.Header, error) {
	hdr, err := tr.Next()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading the first member: %w", ErrNotBackup, err)
	}
	if hdr.Name == headerName {
		return nil, nil, errStreamForm
	}
	if hdr.Name != manifestName || hdr.Typeflag != tar.TypeReg {
		return nil, nil, fmt.Errorf("%w: the first member is %q, not %s", ErrNotBackup, hdr.Name, manifestName)
	}
	if hdr.Size > maxManifest {
		return nil, nil, fmt.Errorf("%w: %s is %d bytes", ErrNotBackup, manifestName, hdr.Size)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", manifestName, err)
	}
	m := &Manifest{}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, nil, fmt.Errorf("%w: decoding %s: %w", ErrNotBackup, manifestName, err)
	}
	switch {
	case m.Format < 1:
		return nil, nil, fmt.Errorf("%w: %s has no format version", ErrNotBackup, manifestName)
	case m.Format > FormatVersion:
		return nil, nil, fmt.Errorf("%w: format %d, this program reads up to %d", ErrFormatTooNew, m.Format, FormatVersion)
	}
	return m, hdr, nil
}

// Walk reads the whole archive once and checks it: the region and index,
// every compressed byte against the index, manifest first, members in
// manifest order with no missing, extra or duplicate ones, sizes, sha256s,
// the end-of-archive marker, no truncation and nothing after the end.
//
// For each member listed in the manifest it calls fn (if not nil) with the
// header and a reader of the content; fn may read all, part or none of it.
// fn sees content before it is verified: treat what it wrote as suspect
// until Walk returns nil. Members that are not in the manifest, or have
// unsafe names, are checked but never passed to fn.
//
// Walk keeps going after a bad member so every problem is listed, and stops
// at the first decoding error. Problems come back as a *VerifyError, along
// with the manifest when it could be read. An error from fn stops Walk and
// is returned as is (wrapped).
func Walk(path string, fn func(hdr *tar.Header, r io.Reader) error) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("archive: verifying: %w", err)
	}
	defer f.Close()
	if stream, _ := IsStreamFile(path); stream {
		m, err := walkStreamFile(f, fn)
		var verr *VerifyError
		if err != nil && !errors.As(err, &verr) {
			err = fmt.Errorf("archive: verifying %s: %w", path, err)
		}
		return m, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("archive: verifying: %w", err)
	}
	reg, problems := readRegion(f, st.Size())
	body := newBodyCheck(reg, st.Size())
	w := &walker{fn: fn}
	err = w.run(&rawReader{r: f, body: body})
	// Believe "format too new" only from an intact region: a damaged one
	// can say anything.
	if errors.Is(err, ErrFormatTooNew) && len(problems) > 0 {
		problems, err = append(problems, err.Error()), nil
	}
	if err != nil {
		return w.m, fmt.Errorf("archive: verifying %s: %w", path, err)
	}
	problems = append(problems, w.problems...)
	problems = append(problems, body.result()...)
	if len(problems) > 0 {
		return w.m, &VerifyError{Problems: problems}
	}
	return w.m, nil
}

// walker holds Walk's progress through the decompressed tar stream.
type walker struct {
	fn       func(*tar.Header, io.Reader) error
	m        *Manifest
	pos      map[string]int // manifest position of each member name
	seen     []bool
	last     int // highest manifest position seen so far
	names    *tree
	in       *countReader
	end      int64  // decompressed offset where the current member ends
	prev     string // name of the last member read, for messages
	problems []string
	stopped  bool // a decoding error: nothing after it can be trusted
}

func (w *walker) problem(format string, args ...any) {
	w.problems = append(w.problems, fmt.Sprintf(format, args...))
}

func (w *walker) stop(format string, args ...any) {
	w.problem(format, args...)
	w.stopped = true
}

// run returns only fn's errors and ErrFormatTooNew; all else is a problem.
func (w *walker) run(src io.Reader) error {
	dec, err := zstd.NewReader(src,
		zstd.WithDecoderConcurrency(min(4, runtime.GOMAXPROCS(0))),
		zstd.WithDecoderLowmem(false),
		zstd.WithDecoderMaxWindow(maxWindow))
	if err != nil {
		w.stop("starting the zstd decoder: %v", err)
		return nil
	}
	defer dec.Close()
	w.in = &countReader{r: dec}
	tr := tar.NewReader(w.in)
	m, hdr, err := readManifestMember(tr)
	if errors.Is(err, ErrFormatTooNew) {
		return err
	}
	if err != nil {
		w.stop("%v", err)
		return nil
	}
	w.start(m, hdr)
	return w.members(tr)
}

func (w *walker) start(m *Manifest, hdr *tar.Header) {
	w.m = m
	w.end = w.in.n + padding(hdr.Size) // the content is already read
	w.prev = manifestName
	w.names = newTree()
	w.pos = make(map[string]int, len(m.Members))
	w.seen = make([]bool, len(m.Members))
	w.last = -1
	for i, mem := range m.Members {
		if _, dup := w.pos[mem.Name]; dup {
			w.problem("the manifest lists %q twice", mem.Name)
			continue
		}
		w.pos[mem.Name] = i
	}
}

func (w *walker) members(tr *tar.Reader) error {
	for !w.stopped {
		hdr, err := tr.Next()
		if err == io.EOF {
			w.finish()
			return nil
		}
		if err != nil {
			w.stop("reading the member after %q: %v", w.prev, err)
			return nil
		}
		w.prev = hdr.Name
		if err := w.member(hdr, tr); err != nil {
			return err
		}
		// tar.Reader reads no further than a member's content, so this is where
		// its padding starts; a sparse member's size says nothing of its bytes.
		w.end = w.in.n + padding(w.in.n)
	}
	return nil
}

// member checks one member and hands it to fn.
func (w *walker) member(hdr *tar.Header, tr io.Reader) error {
	want, ok := w.expect(hdr)
	content := &contentReader{r: tr, h: sha256.New()}
	if ok {
		w.checkHeader(hdr, want)
		if w.fn != nil {
			if err := w.fn(hdr, content); err != nil && content.err == nil {
				return fmt.Errorf("member %q: %w", hdr.Name, err)
			}
		}
	}
	// Drain what fn left so the hash covers all of it.
	if _, err := io.Copy(io.Discard, content); err != nil || content.err != nil {
		w.stop("reading member %q: %v", hdr.Name, errors.Join(err, content.err))
		return nil
	}
	if ok && want.Type == TypeFile && hexSum(content.h) != want.SHA256 {
		w.problem("member %q: content sha256 is %s, the manifest says %s", hdr.Name, hexSum(content.h), want.SHA256)
	}
	return nil
}

// expect finds hdr's manifest entry; ok is false if fn must not see it.
func (w *walker) expect(hdr *tar.Header) (Member, bool) {
	name := hdr.Name
	if clean, err := cleanName(name, hdr.Typeflag == tar.TypeDir); err != nil || clean != name {
		w.problem("member %q has an unsafe or unclean name", name)
		return Member{}, false
	}
	i, listed := w.pos[name]
	switch {
	case !listed:
		w.problem("member %q is not in the manifest", name)
		return Member{}, false
	case w.seen[i]:
		w.problem("member %q appears twice", name)
		return Member{}, false
	}
	w.seen[i] = true
	if i < w.last {
		w.problem("member %q is out of order: the manifest lists it before %q", name, w.m.Members[w.last].Name)
	}
	w.last = max(w.last, i)
	return w.m.Members[i], true
}

func (w *walker) checkHeader(hdr *tar.Header, want Member) {
	typ, err := memberType(hdr.Typeflag)
	if err != nil {
		w.problem("member %q: %v", hdr.Name, err)
	} else if typ != want.Type {
		w.problem("member %q is a %s, the manifest says %s", hdr.Name, typ, want.Type)
	}
	if hdr.Size != want.Size {
		w.problem("member %q: size %d, the manifest says %d", hdr.Name, hdr.Size, want.Size)
	}
	if IsSparse(hdr) != want.Sparse {
		w.problem("member %q: sparse %v, the manifest says %v", hdr.Name, IsSparse(hdr), want.Sparse)
	}
	if hdr.Linkname != want.Linkname {
		w.problem("member %q: link target %q, the manifest says %q", hdr.Name, hdr.Linkname, want.Linkname)
	}
	hardlink := ""
	if hdr.Typeflag == tar.TypeLink {
		hardlink = hdr.Linkname
	}
	if err := w.names.check(hdr.Name, typ, hardlink); err != nil {
		w.problem("%v", err)
	}
	w.names.add(hdr.Name, typ)
}

// finish runs after tar reported the end of the archive.
func (w *walker) finish() {
	// tar.Reader says io.EOF both after the two zero blocks and when the
	// stream just stops between members; only the byte count tells them apart.
	if w.in.n-w.end != 2*blockSize {
		w.problem("the end-of-archive marker after %q is missing (truncated archive?)", w.prev)
	}
	n, err := io.Copy(io.Discard, w.in)
	if err != nil {
		w.stop("decoding after the end-of-archive marker: %v", err)
		return
	}
	if n > 0 {
		w.problem("%d bytes of data after the end-of-archive marker", n)
	}
	for i, mem := range w.m.Members {
		if !w.seen[i] && w.pos[mem.Name] == i {
			w.problem("member %q is missing", mem.Name)
		}
	}
}

// countReader counts decompressed bytes consumed by the tar reader.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// contentReader hashes a member's content and remembers read errors, so an
// error from fn can be told apart from damage in the archive.
type contentReader struct {
	r   io.Reader
	h   hash.Hash
	err error
}

func (c *contentReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// rawReader feeds the file to the decoder and shows every byte to body.
type rawReader struct {
	r    io.Reader
	off  int64
	body *bodyCheck
}

func (r *rawReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.body.see(r.off, p[:n])
	r.off += int64(n)
	return n, err
}

// bodyCheck compares the body's compressed bytes with the index's extents.
// It runs in the decoder's reading goroutine, hence the mutex.
type bodyCheck struct {
	mu       sync.Mutex
	start    int64
	extents  []extent
	at       int64 // file offset of the current extent
	left     int64 // bytes left in the current extent
	h        hash.Hash32
	problems []string
}

func newBodyCheck(reg region, size int64) *bodyCheck {
	b := &bodyCheck{h: newCRC()}
	if reg.index == nil {
		return b // readRegion already reported why
	}
	b.start, b.at, b.extents = reg.reserve, reg.reserve, reg.index.Body
	total := reg.reserve
	for _, e := range b.extents {
		total += e.Size
	}
	if total != size {
		b.problems = append(b.problems, fmt.Sprintf("the file is %d bytes, the index says %d (truncated or extended)", size, total))
	}
	if len(b.extents) > 0 {
		b.left = b.extents[0].Size
		b.advance()
	}
	return b
}

func (b *bodyCheck) see(off int64, p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if skip := min(max(b.start-off, 0), int64(len(p))); skip > 0 {
		p = p[skip:]
	}
	for len(p) > 0 && len(b.extents) > 0 {
		n := min(int64(len(p)), b.left)
		b.h.Write(p[:n])
		p = p[n:]
		b.left -= n
		b.advance()
	}
}

// advance closes every finished extent (zero-size ones included).
func (b *bodyCheck) advance() {
	for len(b.extents) > 0 && b.left == 0 {
		e := b.extents[0]
		if b.h.Sum32() != e.CRC32C {
			b.problems = append(b.problems, fmt.Sprintf("compressed bytes %d-%d do not match the index (corrupted)", b.at, b.at+e.Size))
		}
		b.at += e.Size
		b.h.Reset()
		b.extents = b.extents[1:]
		if len(b.extents) > 0 {
			b.left = b.extents[0].Size
		}
	}
}

func (b *bodyCheck) result() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.problems
}
