package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/zstd"
)

// sideStream is an AddStream member waiting in its side file for Commit.
type sideStream struct {
	name    string
	mode    int64
	modTime time.Time
	path    string
	file    *os.File
	size    int64  // content bytes
	sha     string // content sha256
	packed  extent // the side file's compressed bytes
}

func (s *sideStream) member() Member {
	return Member{Name: s.name, Type: TypeFile, Size: s.size, SHA256: s.sha}
}

// AddStream stores a member whose size is not known in advance, such as a
// pg_dump stream. It may run in its own goroutine while Add is called: it
// compresses into a hidden side file next to the archive, and Commit appends
// that file's compressed bytes as they are. A failed AddStream leaves the
// Writer usable; its name may be used again.
func (w *Writer) AddStream(name string, mode int64, modTime time.Time, r io.Reader) (Member, error) {
	if w.isSink() {
		m, err := w.addObject(name, r)
		if err != nil {
			return Member{}, fmt.Errorf("archive: adding stream %q: %w", name, err)
		}
		return m, nil
	}
	if w.isStream() {
		m, err := w.addSplit(name, mode, modTime, r)
		if err != nil {
			return Member{}, fmt.Errorf("archive: adding stream %q: %w", name, err)
		}
		return m, nil
	}
	s, err := w.openStream(name, mode, modTime)
	if err != nil {
		return Member{}, fmt.Errorf("archive: adding stream %q: %w", name, err)
	}
	if err := w.fillStream(s, r); err != nil {
		w.dropStream(s)
		return Member{}, fmt.Errorf("archive: adding stream %q: %w", s.name, err)
	}
	if err := w.finishStream(s); err != nil {
		return Member{}, fmt.Errorf("archive: adding stream %q: %w", s.name, err)
	}
	return s.member(), nil
}

// openStream reserves the name and creates the side file.
func (w *Writer) openStream(name string, mode int64, modTime time.Time) (*sideStream, error) {
	clean, err := cleanName(name, false)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateOpen {
		return nil, errors.New("archive is already committed or aborted")
	}
	if err := w.names.check(clean, TypeFile, ""); err != nil {
		return nil, err
	}
	f, err := createPartial(w.path, ".stream")
	if err != nil {
		return nil, fmt.Errorf("creating side file: %w", err)
	}
	w.names.add(clean, kindStream)
	w.sides[f.Name()] = f
	w.inflight++
	return &sideStream{name: clean, mode: mode, modTime: modTime, path: f.Name(), file: f}, nil
}

// fillStream compresses r into the side file, hashing both sides.
func (w *Writer) fillStream(s *sideStream, r io.Reader) error {
	packed := newHashCounter(s.file, &w.written)
	enc, err := newEncoder(packed, w.opts.StreamLevel, w.opts.Concurrency)
	if err != nil {
		return err
	}
	sum := sha256.New()
	n, err := io.Copy(enc, io.TeeReader(r, sum))
	if err != nil {
		enc.Reset(io.Discard) // stops its goroutines
		return fmt.Errorf("reading stream: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("compressing stream into %s: %w", s.path, err)
	}
	s.size, s.sha, s.packed = n, hexSum(sum), packed.extent()
	return nil
}

// finishStream queues a filled side file for Commit.
func (w *Writer) finishStream(s *sideStream) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inflight--
	if w.state != stateOpen {
		s.file.Close()
		removeFile(s.path)
		delete(w.sides, s.path)
		return errors.New("archive was committed or aborted while the stream ran")
	}
	w.streams = append(w.streams, s)
	return nil
}

func (w *Writer) dropStream(s *sideStream) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inflight--
	w.names.forget(s.name)
	s.file.Close()
	removeFile(s.path)
	delete(w.sides, s.path)
}

// appendStream appends a side file as a tar member: a frame with the header
// (the size is known now), the side file's frame copied as is, and a frame
// with the tar padding.
func (w *Writer) appendStream(frames *zstd.Encoder, s *sideStream) ([]extent, error) {
	hdr, err := streamHeader(s)
	if err != nil {
		return nil, err
	}
	head, err := w.appendFrame(frames, hdr)
	if err != nil {
		return nil, fmt.Errorf("writing header: %w", err)
	}
	if err := w.appendSide(s); err != nil {
		return nil, err
	}
	exts := []extent{head, s.packed}
	if pad := padding(s.size); pad > 0 {
		tail, err := w.appendFrame(frames, make([]byte, pad))
		if err != nil {
			return nil, fmt.Errorf("writing padding: %w", err)
		}
		exts = append(exts, tail)
	}
	return exts, nil
}

// appendSide copies the side file to the end of the archive. Both are
// *os.File so Linux copies in the kernel (copy_file_range).
func (w *Writer) appendSide(s *sideStream) error {
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewinding %s: %w", s.path, err)
	}
	n, err := io.Copy(w.file, s.file)
	if err != nil {
		return fmt.Errorf("copying %s: %w", s.path, err)
	}
	if n != s.packed.Size {
		return fmt.Errorf("copied %d bytes of %s, expected %d", n, s.path, s.packed.Size)
	}
	return nil
}

func streamHeader(s *sideStream) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     s.name,
		Mode:     s.mode,
		ModTime:  s.modTime.Round(time.Second),
		Size:     s.size,
		Format:   tar.FormatUSTAR | tar.FormatPAX,
	})
	if err != nil {
		return nil, fmt.Errorf("building tar header: %w", err)
	}
	// tw is dropped without Close: only the header bytes are wanted.
	return buf.Bytes(), nil
}

func padding(size int64) int64 {
	return (blockSize - size%blockSize) % blockSize
}

// removeSides deletes side files after a successful Commit.
func (w *Writer) removeSides(streams []*sideStream) error {
	var errs []error
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range streams {
		s.file.Close()
		errs = append(errs, removeFile(s.path))
		delete(w.sides, s.path)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing side files (the backup is complete): %w", err)
	}
	return nil
}
