package archive

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// ErrNoStream means the archive has no appended stream member of that name.
var ErrNoStream = errors.New("archive: no such stream member")

// Stream is one member written by AddStream, read straight from its place at the end of the
// body: a restore can load the dump while Walk is still reading the files before it.
type Stream struct {
	Header *tar.Header
	r      io.Reader
	f      *os.File
	dec    *zstd.Decoder
	want   Member
	h      hash.Hash
	n      int64
}

// OpenStream finds the stream member name through the index. Its content is checked against
// the manifest's size and sha256 as it is read: the last Read returns an error instead of
// io.EOF when they differ.
func OpenStream(path, name string) (*Stream, error) {
	m, err := ReadManifest(path)
	if err != nil {
		return nil, err
	}
	want, ok := manifestMember(m, name)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoStream, name)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	s, err := openStreamAt(f, name, want)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("archive: opening %s in %s: %w", name, path, err)
	}
	return s, nil
}

func manifestMember(m *Manifest, name string) (Member, bool) {
	for _, mem := range m.Members {
		if mem.Name == name {
			return mem, true
		}
	}
	return Member{}, false
}

// openStreamAt walks the index's extents after the main body: each stream is a header frame,
// its data, and a padding frame when its size is not a multiple of the tar block.
func openStreamAt(f *os.File, name string, want Member) (*Stream, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	reg, problems := readRegion(f, st.Size())
	if reg.index == nil || len(problems) > 0 {
		return nil, fmt.Errorf("reading the index: %v", problems)
	}
	off := reg.reserve + reg.index.Body[0].Size
	for i := 1; i < len(reg.index.Body)-1; {
		hdr, err := streamHeaderAt(f, off)
		if err != nil {
			return nil, err
		}
		if hdr.Name == name {
			return newStream(f, off, hdr, want)
		}
		step := 2
		if padding(hdr.Size) > 0 {
			step = 3
		}
		for _, e := range reg.index.Body[i : i+step] {
			off += e.Size
		}
		i += step
	}
	return nil, ErrNoStream
}

func streamHeaderAt(f *os.File, off int64) (*tar.Header, error) {
	dec, err := zstd.NewReader(io.NewSectionReader(f, off, 1<<20), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return tar.NewReader(dec).Next()
}

func newStream(f *os.File, off int64, hdr *tar.Header, want Member) (*Stream, error) {
	if hdr.Size != want.Size {
		return nil, fmt.Errorf("member %s: %d bytes in its header, %d in the manifest", hdr.Name, hdr.Size, want.Size)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(f, zstd.WithDecoderMaxWindow(maxWindow))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(dec)
	if _, err := tr.Next(); err != nil {
		dec.Close()
		return nil, err
	}
	return &Stream{Header: hdr, r: tr, f: f, dec: dec, want: want, h: sha256.New()}, nil
}

func (s *Stream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	if errors.Is(err, io.EOF) {
		if got := hexSum(s.h); s.n != s.want.Size || got != s.want.SHA256 {
			return n, &VerifyError{Problems: []string{fmt.Sprintf("member %s: %d bytes with sha256 %s, the manifest says %d bytes with %s",
				s.want.Name, s.n, got, s.want.Size, s.want.SHA256)}}
		}
	}
	return n, err
}

// Close releases the file.
func (s *Stream) Close() error {
	s.dec.Close()
	return s.f.Close()
}
