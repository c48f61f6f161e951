package backup

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/repository"
	"github.com/echo-backup/echo-backup/store"
)

// verifySource is the backup a verify reads, through the code a restore reads it with.
type verifySource interface {
	manifest() (*archive.Manifest, error)
	walk(fn func(hdr *tar.Header, r io.Reader) error) error
	record(at time.Time, deep, ok bool)
	scratch() string // where a deep check may make its scratch folder
}

func verified(ctx context.Context, o VerifyOptions) verifySource {
	if o.Repo != nil {
		return &repoSource{ctx: ctx, objs: &RepoObjects{Ctx: ctx, Repo: o.Repo, ID: o.Snapshot}}
	}
	return fileSource(o.Path)
}

type fileSource string

func (f fileSource) manifest() (*archive.Manifest, error) { return archive.ReadManifest(string(f)) }
func (f fileSource) scratch() string                      { return filepath.Dir(string(f)) }

func (f fileSource) walk(fn func(hdr *tar.Header, r io.Reader) error) error {
	_, err := archive.Walk(string(f), fn)
	return err
}

func (f fileSource) record(at time.Time, deep, ok bool) {
	_ = store.RecordVerification(string(f), store.Verification{At: at, Deep: deep, OK: ok})
}

type repoSource struct {
	ctx  context.Context
	objs *RepoObjects
	m    *archive.Manifest
}

func (r *repoSource) scratch() string { return os.TempDir() }

func (r *repoSource) manifest() (*archive.Manifest, error) {
	m, err := r.objs.Manifest()
	r.m = m
	return m, err
}

// walk first asks the repository whether every piece of the snapshot is still stored, which
// costs no download, then reads it all.
func (r *repoSource) walk(fn func(hdr *tar.Header, r io.Reader) error) error {
	if err := r.objs.Repo.CheckContents(r.ctx, r.objs.ID); err != nil {
		return err
	}
	return archive.WalkObjects(r.m, r.objs, false, fn)
}

func (r *repoSource) record(at time.Time, deep, ok bool) {
	_ = r.objs.Repo.RecordVerify(context.WithoutCancel(r.ctx), r.objs.ID, repository.Verification{At: at, Deep: deep, OK: ok})
}

// RepoObjects are one snapshot's objects, as the archive package reads them.
type RepoObjects struct {
	Ctx  context.Context
	Repo *repository.Repository
	ID   string
}

func (o *RepoObjects) OpenTar() (io.ReadCloser, error) { return o.Repo.OpenTar(o.Ctx, o.ID) }

func (o *RepoObjects) OpenStream(name string) (io.ReadCloser, error) {
	return o.Repo.OpenStream(o.Ctx, o.ID, name)
}

// Manifest reads and decodes the snapshot's manifest.json.
func (o *RepoObjects) Manifest() (*archive.Manifest, error) {
	js, err := o.Repo.Manifest(o.Ctx, o.ID)
	if err != nil {
		return nil, err
	}
	m, err := archive.DecodeManifest(js)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", o.ID, err)
	}
	return m, nil
}

func (o *RepoObjects) String() string { return o.Repo.Address() + " " + o.ID }
