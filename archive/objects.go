package archive

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// The repository form keeps a backup as separate objects in a deduplicating store: the Add
// members as one plain tar (the store splits, compresses and encrypts it; a compressed tar
// would defeat its deduplication), and each AddStream member (a dump) as an object of its own,
// so a restore can load the dump while it reads the files. manifest.json is the caller's to
// store; Manifest.Objects names the members kept outside the tar.

// Sink receives a backup in the repository form. Tar and the writers Stream returns are each
// used by one goroutine, at the same time.
type Sink interface {
	Tar() io.Writer
	Stream(name string) (io.WriteCloser, error)
}

// Objects reads a backup in the repository form.
type Objects interface {
	OpenTar() (io.ReadCloser, error)
	OpenStream(name string) (io.ReadCloser, error)
}

// NewSink starts a backup in the repository form. Add, AddStream, Leave, Commit and Abort work
// as for Create; Commit fills in the manifest, which the caller then stores beside the objects.
func NewSink(s Sink, opts Options) (*Writer, error) {
	if opts.Reserve == 0 {
		opts.Reserve = minReserve // unused; keeps withDefaults content
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("archive: starting a backup: %w", err)
	}
	w := &Writer{path: "the repository", opts: opts, sink: s, buf: make([]byte, 256<<10), names: newTree()}
	w.body = newHashCounter(s.Tar(), &w.written)
	w.main = w.body
	w.tw = tar.NewWriter(w.main)
	return w, nil
}

func (w *Writer) isSink() bool { return w.sink != nil }

// addObject copies r into an object of its own, hashing it for the manifest.
func (w *Writer) addObject(name string, r io.Reader) (Member, error) {
	clean, err := cleanName(name, false)
	if err != nil {
		return Member{}, err
	}
	w.mu.Lock()
	if w.state != stateOpen {
		w.mu.Unlock()
		return Member{}, errors.New("archive is already committed or aborted")
	}
	if err := w.names.check(clean, TypeFile, ""); err != nil {
		w.mu.Unlock()
		return Member{}, err
	}
	w.names.add(clean, kindStream)
	w.inflight++
	w.mu.Unlock()
	mem, err := w.copyObject(clean, r)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inflight--
	if err != nil {
		w.names.forget(clean)
		return Member{}, err
	}
	w.objects = append(w.objects, mem)
	return mem, nil
}

func (w *Writer) copyObject(name string, r io.Reader) (Member, error) {
	out, err := w.sink.Stream(name)
	if err != nil {
		return Member{}, err
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, sum, counter{&w.written}), r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Member{}, fmt.Errorf("storing %s: %w", name, err)
	}
	return Member{Name: name, Type: TypeFile, Size: n, SHA256: hexSum(sum)}, nil
}

type counter struct{ n interface{ Add(int64) int64 } }

func (c counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// commitSink ends the tar and fills in the manifest.
func (w *Writer) commitSink(m *Manifest) error {
	if err := w.tw.Close(); err != nil { // the end-of-archive blocks
		return fmt.Errorf("finishing the tar: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	fillManifest(m, append(w.members, w.objects...), nil)
	m.Objects = m.Objects[:0:0]
	for _, o := range w.objects {
		m.Objects = append(m.Objects, o.Name)
	}
	m.Skipped = append(m.Skipped[:0:0], w.skipped...)
	w.state = stateCommitted
	return nil
}

// EncodeManifest is manifest.json as the repository form stores it. It refuses a manifest
// that would not decode to the same members.
func EncodeManifest(m *Manifest) ([]byte, error) {
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	if err := readsBack(js, m); err != nil {
		return nil, err
	}
	return append(js, '\n'), nil
}

// DecodeManifest reads manifest.json of the repository form.
func DecodeManifest(js []byte) (*Manifest, error) {
	m := &Manifest{}
	if err := json.Unmarshal(js, m); err != nil {
		return nil, fmt.Errorf("%w: decoding %s: %w", ErrNotBackup, manifestName, err)
	}
	switch {
	case m.Format < 1:
		return nil, fmt.Errorf("%w: %s has no format version", ErrNotBackup, manifestName)
	case m.Format > FormatVersion:
		return nil, fmt.Errorf("%w: format %d, this program reads up to %d", ErrFormatTooNew, m.Format, FormatVersion)
	}
	return m, nil
}

// WalkObjects reads a backup in the repository form and checks it as Walk checks an archive:
// the tar's members in manifest order, none missing, extra or twice, their sizes and sha256s,
// the end-of-archive marker; then each object, hashed against the manifest. With files only,
// the objects are left for OpenObject. Problems come back as a *VerifyError.
func WalkObjects(m *Manifest, src Objects, filesOnly bool, fn func(hdr *tar.Header, r io.Reader) error) error {
	tarM := tarPart(m)
	rc, err := src.OpenTar()
	if err != nil {
		return fmt.Errorf("archive: opening the files: %w", err)
	}
	defer rc.Close()
	w := &walker{fn: fn}
	w.in = &countReader{r: rc}
	w.start(tarM, &tar.Header{})
	w.end = 0
	w.prev = "the start"
	if err := w.members(tar.NewReader(w.in)); err != nil {
		return err
	}
	if len(w.problems) > 0 {
		return &VerifyError{Problems: w.problems}
	}
	if filesOnly {
		return nil
	}
	for _, name := range m.Objects {
		if err := walkObject(m, src, name, fn); err != nil {
			return err
		}
	}
	return nil
}

func walkObject(m *Manifest, src Objects, name string, fn func(hdr *tar.Header, r io.Reader) error) error {
	r, err := OpenObject(m, src, name)
	if err != nil {
		return err
	}
	defer r.Close()
	hdr := ObjectHeader(m, name)
	if fn != nil {
		if err := fn(hdr, r); err != nil {
			return fmt.Errorf("member %q: %w", name, err)
		}
	}
	// Drain what fn left, so the check at the end runs.
	_, err = io.Copy(io.Discard, r)
	return err
}

// tarPart is the manifest without the members kept as objects: what files.tar must hold.
func tarPart(m *Manifest) *Manifest {
	objects := map[string]bool{}
	for _, name := range m.Objects {
		objects[name] = true
	}
	out := *m
	out.Members = nil
	for _, mem := range m.Members {
		if !objects[mem.Name] {
			out.Members = append(out.Members, mem)
		}
	}
	return &out
}

// ObjectHeader is the header a member kept as an object is handed on with.
func ObjectHeader(m *Manifest, name string) *tar.Header {
	want, _ := manifestMember(m, name)
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: want.Size,
		ModTime: m.Created.Round(time.Second), Format: tar.FormatPAX}
}

// OpenObject opens a member kept as an object. Its content is checked against the manifest
// as it is read: the last Read returns a *VerifyError instead of io.EOF when it differs.
func OpenObject(m *Manifest, src Objects, name string) (io.ReadCloser, error) {
	want, ok := manifestMember(m, name)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoStream, name)
	}
	rc, err := src.OpenStream(name)
	if err != nil {
		return nil, fmt.Errorf("archive: opening %s: %w", name, err)
	}
	return &checkedObject{rc: rc, want: want, h: sha256.New()}, nil
}

type checkedObject struct {
	rc   io.ReadCloser
	want Member
	h    hash.Hash
	n    int64
}

func (c *checkedObject) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.n > c.want.Size {
		return n, &VerifyError{Problems: []string{fmt.Sprintf("member %s: longer than the %d bytes the manifest says", c.want.Name, c.want.Size)}}
	}
	if errors.Is(err, io.EOF) {
		if got := hexSum(c.h); c.n != c.want.Size || got != c.want.SHA256 {
			return n, &VerifyError{Problems: []string{fmt.Sprintf("member %s: %d bytes with sha256 %s, the manifest says %d bytes with %s",
				c.want.Name, c.n, got, c.want.Size, c.want.SHA256)}}
		}
	}
	return n, err
}

func (c *checkedObject) Close() error { return c.rc.Close() }
