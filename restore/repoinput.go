package restore

import (
	"archive/tar"
	"context"
	"fmt"
	"io"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/repository"
)

// repoInput reads a backup from a repository: files.tar and the dump are separate objects, so
// the dump loads while the files are staged, as from a folder archive.
type repoInput struct {
	objs *backup.RepoObjects
	m    *archive.Manifest
}

func openRepoInput(ctx context.Context, repo *repository.Repository, id string) (*repoInput, error) {
	objs := &backup.RepoObjects{Ctx: ctx, Repo: repo, ID: id}
	m, err := objs.Manifest()
	if err != nil {
		return nil, &compose.UserError{Err: fmt.Errorf("reading backup %s: %w", objs, err)}
	}
	return &repoInput{objs: objs, m: m}, nil
}

func (a *repoInput) manifest() *archive.Manifest { return a.m }
func (a *repoInput) hasDB() bool                 { return a.m.Database != nil }
func (a *repoInput) hasFiles() bool              { return len(a.sources()) > 0 }
func (a *repoInput) plainSQL() bool              { return false }
func (a *repoInput) describe() string            { return a.objs.String() }
func (a *repoInput) sources() []archive.Source   { return dataSources(a.m) }

func (a *repoInput) tables(context.Context) ([]archive.Table, error) {
	if a.m.Database == nil {
		return nil, nil
	}
	return a.m.Database.Tables, nil
}

func (a *repoInput) walk(fn func(hdr *tar.Header, r io.Reader) error) error {
	if err := archive.WalkObjects(a.m, a.objs, true, fn); err != nil {
		return fmt.Errorf("reading %s: %w", a.objs, err)
	}
	return nil
}

func (a *repoInput) dump() (*tar.Header, io.ReadCloser, error) {
	r, err := archive.OpenObject(a.m, a.objs, a.m.Database.Member)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", a.objs, err)
	}
	return archive.ObjectHeader(a.m, a.m.Database.Member), r, nil
}
