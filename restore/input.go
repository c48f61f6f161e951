package restore

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
)

// input is what a restore reads: an echo-backup archive, or the two files of the manual
// procedure (backup.sql and data-backup.tar.gz).
type input interface {
	manifest() *archive.Manifest
	hasDB() bool
	hasFiles() bool
	plainSQL() bool
	sources() []archive.Source
	// walk hands every file member to fn under its source's prefix, checking the whole input.
	walk(fn func(hdr *tar.Header, r io.Reader) error) error
	// dump opens the database dump on its own, so it can load while walk reads the files.
	dump() (*tar.Header, io.ReadCloser, error)
	// tables are the row counts the loaded dump must have; nil: not checked.
	tables(ctx context.Context) ([]archive.Table, error)
	describe() string
}

func openInput(ctx context.Context, o Options) (input, error) {
	if o.Repo != nil {
		return openRepoInput(ctx, o.Repo, o.Snapshot)
	}
	if o.Stream != nil {
		return openStreamInput(o.Stream, "stdin", nil)
	}
	if stream, _ := archive.IsStreamFile(o.Archive); o.Archive != "" && stream {
		return openStreamFile(o.Archive)
	}
	if o.Archive != "" {
		m, err := archive.ReadManifest(o.Archive)
		if err != nil {
			return nil, &compose.UserError{Err: fmt.Errorf("reading %s: %w", o.Archive, err)}
		}
		return &archiveInput{path: o.Archive, m: m}, nil
	}
	if o.SQLFile == "" && o.FilesTar == "" {
		return nil, &compose.UserError{Err: errors.New("nothing to restore: name a backup, or a SQL dump and/or --files")}
	}
	return newManualInput(o)
}

type archiveInput struct {
	path string
	m    *archive.Manifest
}

func (a *archiveInput) manifest() *archive.Manifest { return a.m }
func (a *archiveInput) hasDB() bool                 { return a.m.Database != nil }
func (a *archiveInput) hasFiles() bool              { return len(a.sources()) > 0 }
func (a *archiveInput) plainSQL() bool              { return false }
func (a *archiveInput) describe() string            { return a.path }

func (a *archiveInput) tables(context.Context) ([]archive.Table, error) {
	if a.m.Database == nil {
		return nil, nil
	}
	return a.m.Database.Tables, nil
}

func (a *archiveInput) sources() []archive.Source { return dataSources(a.m) }

// dataSources are the folders and volumes a backup holds; the deployment's files are not
// restored.
func dataSources(m *archive.Manifest) []archive.Source {
	var out []archive.Source
	for _, s := range m.Sources {
		if s.Kind != archive.KindDeployment {
			out = append(out, s)
		}
	}
	return out
}

// walk verifies every member's checksum on the way, the dump's too: a damaged archive fails
// here, while all that has been written is still only staged.
func (a *archiveInput) walk(fn func(hdr *tar.Header, r io.Reader) error) error {
	_, err := archive.Walk(a.path, func(hdr *tar.Header, r io.Reader) error {
		if a.m.Database != nil && hdr.Name == a.m.Database.Member {
			return nil
		}
		return fn(hdr, r)
	})
	if err != nil {
		return fmt.Errorf("reading %s: %w", a.path, err)
	}
	return nil
}

// dump reads the dump from its own place at the end of the archive, checked as it is read.
func (a *archiveInput) dump() (*tar.Header, io.ReadCloser, error) {
	s, err := archive.OpenStream(a.path, a.m.Database.Member)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", a.path, err)
	}
	return s.Header, s, nil
}

// manualInput reads the manual procedure's files. Their data folder tar holds "./data/…" (or
// "data/…"): the first path element names the folder, matched to the project's bind mount.
type manualInput struct {
	sql, tgz string
	folder   archive.Source
}

func newManualInput(o Options) (*manualInput, error) {
	in := &manualInput{sql: o.SQLFile, tgz: o.FilesTar}
	for _, p := range []string{o.SQLFile, o.FilesTar} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return nil, &compose.UserError{Err: err}
		}
	}
	if in.tgz != "" {
		src, err := dataFolder(o.Plan)
		if err != nil {
			return nil, err
		}
		in.folder = src
	}
	return in, nil
}

// dataFolder is the project's one data folder; a tar of ./data cannot say which of several it was.
func dataFolder(plan *compose.Plan) (archive.Source, error) {
	sources := backup.DataSources(plan)
	if len(sources) != 1 {
		return archive.Source{}, &compose.UserError{Err: fmt.Errorf("--files needs exactly one data folder or volume in the project, found %d", len(sources))}
	}
	return sources[0], nil
}

func (m *manualInput) manifest() *archive.Manifest { return nil }
func (m *manualInput) hasDB() bool                 { return m.sql != "" }
func (m *manualInput) hasFiles() bool              { return m.tgz != "" }
func (m *manualInput) plainSQL() bool              { return true }

func (m *manualInput) tables(context.Context) ([]archive.Table, error) { return nil, nil }

func (m *manualInput) sources() []archive.Source {
	if m.tgz == "" {
		return nil
	}
	return []archive.Source{m.folder}
}

func (m *manualInput) describe() string {
	return strings.Trim(m.sql+" "+m.tgz, " ")
}

func (m *manualInput) walk(fn func(hdr *tar.Header, r io.Reader) error) error {
	if m.tgz == "" {
		return nil
	}
	if err := m.walkTar(fn); err != nil {
		return fmt.Errorf("reading %s: %w", m.tgz, err)
	}
	return nil
}

func (m *manualInput) dump() (*tar.Header, io.ReadCloser, error) {
	f, err := os.Open(m.sql)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return &tar.Header{Name: "backup.sql", Size: st.Size(), Mode: 0o600, ModTime: st.ModTime(), Typeflag: tar.TypeReg}, f, nil
}

func (m *manualInput) walkTar(fn func(hdr *tar.Header, r io.Reader) error) error {
	f, err := os.Open(m.tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	top := ""
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		h, err := m.rename(hdr, &top)
		if err != nil {
			return err
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

// rename maps "./data/covers/a.jpg" to "files/data/covers/a.jpg". The tar must hold one folder,
// as `tar czf data-backup.tar.gz ./data` makes it: anything else (files at the top, several
// folders) would land in the wrong place, so it is refused.
func (m *manualInput) rename(hdr *tar.Header, top *string) (*tar.Header, error) {
	h := *hdr
	first, rest := splitTop(h.Name)
	if *top == "" {
		*top = first
	}
	if first == "" {
		return nil, fmt.Errorf("%s should hold one folder (as `tar czf data-backup.tar.gz ./data` makes), "+
			"but holds a folder's contents (as `tar czf … -C data .` makes)", m.tgz)
	}
	if first != *top || (rest == "" && h.Typeflag != tar.TypeDir) {
		return nil, fmt.Errorf("%s should hold one folder (as `tar czf data-backup.tar.gz ./data` makes), "+
			"but holds %q beside %q", m.tgz, first, *top)
	}
	h.Name = m.folder.Member + rest
	if h.Typeflag == tar.TypeDir && rest != "" {
		h.Name += "/"
	}
	if h.Typeflag == tar.TypeLink {
		_, target := splitTop(h.Linkname)
		h.Linkname = m.folder.Member + target
	}
	return &h, nil
}

func splitTop(name string) (first, rest string) {
	clean := strings.TrimPrefix(path.Clean("/"+name), "/")
	first, rest, _ = strings.Cut(clean, "/")
	return first, rest
}
