package restore

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/compose"
)

// streamInput reads an archive in the stream form once, from stdin or a file: walk
// demultiplexes it, the files to fn and the dump's parts to the reader dump returns, so the
// dump is staged while the files are; the trailer, which says what every member must be,
// comes last, and walk fails there when anything differs.
type streamInput struct {
	name   string
	sr     *archive.StreamReader
	head   *archive.Manifest
	closer io.Closer

	wantDump bool
	dumpR    *io.PipeReader
	dumpW    *io.PipeWriter

	done    chan struct{} // closed when walk has read the trailer, or failed
	mu      sync.Mutex
	trailer *archive.Manifest
	err     error
}

// openStreamInput reads the stream's header; name says where it comes from.
func openStreamInput(r io.Reader, name string, closer io.Closer) (*streamInput, error) {
	sr, err := archive.ReadStream(bufio.NewReaderSize(r, 1<<20))
	if err != nil {
		return nil, &compose.UserError{Err: fmt.Errorf("reading %s: %w", name, err)}
	}
	s := &streamInput{name: name, sr: sr, head: sr.Header(), closer: closer, done: make(chan struct{})}
	s.dumpR, s.dumpW = io.Pipe()
	return s, nil
}

func openStreamFile(path string) (*streamInput, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &compose.UserError{Err: err}
	}
	s, err := openStreamInput(f, path, f)
	if err != nil {
		f.Close()
	}
	return s, err
}

func (s *streamInput) manifest() *archive.Manifest { return s.head }
func (s *streamInput) hasDB() bool                 { return s.head.Database != nil }
func (s *streamInput) hasFiles() bool              { return len(s.sources()) > 0 }
func (s *streamInput) plainSQL() bool              { return false }
func (s *streamInput) describe() string            { return s.name }

func (s *streamInput) sources() []archive.Source { return dataSources(s.head) }

// start says whether the dump is staged (a restore of the files only drops its parts) and
// ends a dump stage that stops reading when ctx is done, so the walk never waits on it.
func (s *streamInput) start(ctx context.Context, wantDump bool) {
	s.wantDump = wantDump
	context.AfterFunc(ctx, func() { s.dumpR.CloseWithError(context.Cause(ctx)) })
}

func (s *streamInput) walk(fn func(hdr *tar.Header, r io.Reader) error) error {
	defer s.close()
	m, err := s.sr.Walk(fn, func(name string) io.Writer {
		if s.wantDump && s.head.Database != nil && name == s.head.Database.Member {
			return s.dumpW
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("reading %s: %w", s.name, err)
		s.dumpW.CloseWithError(err)
	}
	s.mu.Lock()
	s.trailer, s.err = m, err
	s.mu.Unlock()
	close(s.done)
	return err
}

func (s *streamInput) close() {
	s.sr.Close()
	if s.closer != nil {
		s.closer.Close()
	}
}

// dump is the dump as walk finds its parts; its size is not known before the last one.
func (s *streamInput) dump() (*tar.Header, io.ReadCloser, error) {
	if s.head.Database == nil {
		return nil, nil, errors.New("the archive holds no database dump")
	}
	return &tar.Header{Typeflag: tar.TypeReg, Name: s.head.Database.Member, Mode: 0o600, Size: -1}, s.dumpR, nil
}

// tables waits for the trailer: the row counts are taken in the dump's own snapshot, so
// only the end of the stream has them.
func (s *streamInput) tables(ctx context.Context) ([]archive.Table, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if s.trailer.Database == nil {
		return nil, errors.New("the trailer holds no database")
	}
	return s.trailer.Database.Tables, nil
}
