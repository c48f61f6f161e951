package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// StreamFile keeps a copy of a stream on its way elsewhere (migrate sends one to another
// engine and keeps it here as its way back): written under a hidden .partial name, held so
// that only a dead writer's copy is swept, and named only by Keep, once complete.
type StreamFile struct {
	f    *os.File
	path string
	next func(string) string
}

// CreateStreamFile starts a copy whose final path is path, or the next free one (Options.NextPath).
func CreateStreamFile(path string, next func(string) string) (*StreamFile, error) {
	free, err := freePath(path, next)
	if err != nil {
		return nil, fmt.Errorf("archive: creating %s: %w", path, err)
	}
	f, err := createPartial(free, "")
	if err != nil {
		return nil, fmt.Errorf("archive: creating %s: %w", free, err)
	}
	return &StreamFile{f: f, path: free, next: next}, nil
}

func (s *StreamFile) Write(p []byte) (int, error) { return s.f.Write(p) }

// Keep syncs the copy and gives it its name, never replacing a file; it returns the name.
func (s *StreamFile) Keep() (string, error) {
	tmp := s.f.Name()
	if err := s.f.Sync(); err != nil {
		return "", fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err := s.f.Close(); err != nil {
		return "", fmt.Errorf("closing %s: %w", tmp, err)
	}
	s.f = nil
	for {
		err := renameNoReplace(tmp, s.path)
		if err == nil {
			break
		}
		next := ""
		if errors.Is(err, fs.ErrExist) && s.next != nil {
			next = s.next(s.path)
		}
		if next == "" {
			os.Remove(tmp)
			return "", fmt.Errorf("renaming %s to %s: %w", tmp, s.path, err)
		}
		s.path = next
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return s.path, fmt.Errorf("syncing folder (%s is in place but may not survive a crash): %w", s.path, err)
	}
	return s.path, nil
}

// Discard removes an unfinished copy; a no-op after Keep.
func (s *StreamFile) Discard() {
	if s.f == nil {
		return
	}
	s.f.Close()
	os.Remove(s.f.Name())
	s.f = nil
}
