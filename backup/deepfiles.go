package backup

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/files"
	"github.com/echo-backup/echo-backup/leftover"
)

// fileTrial is verify --deep's test restore of the data: every source is written into a
// scratch folder beside the backup with the extractor a restore uses, then read back with
// the reader a save uses, and each entry is compared with what the archive says.
type fileTrial struct {
	dir     string
	release func() // the hold that keeps another command's sweep away from dir
	sources []archive.Source
	x       map[string]*files.Extractor // by member prefix
	want    map[string]trialEntry
	owners  bool // only root can give files their owners back
}

// trialEntry is what an entry must look like after a restore.
type trialEntry struct {
	typ              byte
	mode             int64
	uid, gid         int
	mtime            int64
	size             int64
	link, sum        string
	sparse, isFolder bool
}

// The scratch folder is made in dir, beside the backup where it has one.
func newFileTrial(dir string, sources []archive.Source) (*fileTrial, error) {
	dir, release, err := leftover.MkdirTemp(dir, leftover.VerifyPrefix)
	if err != nil {
		return nil, fmt.Errorf("making a scratch folder for the test restore of the files: %w", err)
	}
	ft := &fileTrial{dir: dir, release: release, x: map[string]*files.Extractor{}, want: map[string]trialEntry{}, owners: os.Geteuid() == 0}
	for i, src := range sources {
		if src.Kind == archive.KindDeployment {
			continue
		}
		sub := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(sub, 0o700); err != nil {
			ft.remove()
			return nil, err
		}
		x, err := files.NewExtractor(sub)
		if err != nil {
			ft.remove()
			return nil, err
		}
		x.KeepOwners = ft.owners
		ft.x[src.Member] = x
		ft.sources = append(ft.sources, archive.Source{Name: sub, Member: src.Member})
	}
	return ft, nil
}

// add restores one member, if it belongs to a data source, and notes what it must look like.
func (ft *fileTrial) add(hdr *tar.Header, r io.Reader, sum string) error {
	for prefix, x := range ft.x {
		rel, ok := strings.CutPrefix(hdr.Name, prefix)
		if !ok {
			continue
		}
		if rel = strings.TrimSuffix(rel, "/"); rel == "" {
			return nil // the folder itself, whose attributes a restore sets apart
		}
		ft.want[hdr.Name] = ft.expect(hdr, sum)
		h := *hdr
		h.Linkname = strings.TrimPrefix(h.Linkname, prefix)
		return x.Add(rel, &h, r, archive.IsSparse(hdr))
	}
	return nil
}

func (ft *fileTrial) expect(hdr *tar.Header, sum string) trialEntry {
	e := trialEntry{typ: hdr.Typeflag, mode: hdr.Mode & 0o7777, uid: hdr.Uid, gid: hdr.Gid, mtime: hdr.ModTime.Unix(),
		link: hdr.Linkname, sparse: archive.IsSparse(hdr), isFolder: hdr.Typeflag == tar.TypeDir}
	if hdr.Typeflag == tar.TypeReg {
		e.size, e.sum = hdr.Size, sum
	}
	return e
}

// check closes the extractors, reads the scratch folders back and lists every difference.
func (ft *fileTrial) check(ctx context.Context) error {
	var closeErrs []error
	for _, x := range ft.x {
		closeErrs = append(closeErrs, x.Close())
	}
	if err := errors.Join(closeErrs...); err != nil {
		return err
	}
	seen := &trialReader{ft: ft, got: map[string]bool{}}
	for _, src := range ft.sources {
		if err := files.ReadDir(ctx, src.Name, src.Member, nil, seen); err != nil {
			return fmt.Errorf("reading the test restore back: %w", err)
		}
	}
	for name := range ft.want {
		if !seen.got[name] {
			seen.problems = append(seen.problems, fmt.Sprintf("%q was not restored", name))
		}
	}
	if len(seen.problems) > 0 {
		return &archive.VerifyError{Problems: seen.problems}
	}
	return nil
}

func (ft *fileTrial) remove() {
	_ = os.RemoveAll(ft.dir)
	ft.release()
}

// trialReader compares each entry read back from the scratch folders with the archive's.
type trialReader struct {
	ft       *fileTrial
	got      map[string]bool
	problems []string
}

func (t *trialReader) Leave(name, kind string) {
	t.problems = append(t.problems, fmt.Sprintf("%q came back as a %s", name, kind))
}

func (t *trialReader) Add(hdr *tar.Header, r io.Reader) error {
	want, ok := t.ft.want[hdr.Name]
	if !ok {
		return nil // the source folder itself
	}
	t.got[hdr.Name] = true
	got := t.ft.expect(hdr, "")
	if hdr.Typeflag == tar.TypeReg && r != nil {
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			return err
		}
		got.sum = hex.EncodeToString(h.Sum(nil))
	}
	if !t.ft.owners {
		got.uid, got.gid = want.uid, want.gid
	}
	// Holes are a matter of the scratch folder's file system; the content is what must match.
	got.sparse = want.sparse
	if got != want {
		t.problems = append(t.problems, fmt.Sprintf("%q differs after a test restore: backup %+v, restored %+v", hdr.Name, want, got))
	}
	return nil
}
