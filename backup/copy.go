package backup

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/repository"
	"github.com/echo-backup/echo-backup/store"
)

// CopyToRepo copies the folder archive at path into repo as a snapshot of its own, checking
// every member on the way with the code a restore reads it with. It returns the snapshot.
func CopyToRepo(ctx context.Context, path string, repo *repository.Repository) (repository.Snapshot, error) {
	m, err := archive.ReadManifest(path)
	if err != nil {
		return repository.Snapshot{}, fmt.Errorf("copying %s: %w", path, err)
	}
	bw, err := repo.NewBackup(ctx, m.Project.Name)
	if err != nil {
		return repository.Snapshot{}, fmt.Errorf("copying %s into %s: %w", path, repo.Address(), err)
	}
	defer bw.Abort() // after Commit, a no-op
	w, err := archive.NewSink(bw, archive.Options{})
	if err != nil {
		return repository.Snapshot{}, err
	}
	defer w.Abort()
	leave(w, m)
	if _, err := archive.Walk(path, copyMember(w, m)); err != nil {
		return repository.Snapshot{}, fmt.Errorf("copying %s: %w", path, err)
	}
	out := copyManifest(m)
	if err := w.Commit(out); err != nil {
		return repository.Snapshot{}, fmt.Errorf("copying %s: %w", path, err)
	}
	js, err := archive.EncodeManifest(out)
	if err != nil {
		return repository.Snapshot{}, err
	}
	snap, err := bw.Commit(ctx, js, out.Created, out.Labels)
	if err != nil {
		return snap, fmt.Errorf("copying %s into %s: %w", path, repo.Address(), err)
	}
	return snap, nil
}

// CopyFromRepo writes the snapshot id of repo as an archive into the backup folder dir, and
// returns its path.
func CopyFromRepo(ctx context.Context, repo *repository.Repository, id, dir string) (string, error) {
	objs := &RepoObjects{Ctx: ctx, Repo: repo, ID: id}
	m, err := objs.Manifest()
	if err != nil {
		return "", fmt.Errorf("copying %s: %w", objs, err)
	}
	if err := store.PrepareDir(dir); err != nil {
		return "", err
	}
	path := filepath.Join(dir, store.FileName(m.Project.Name, m.Created))
	w, err := archive.Create(path, archive.Options{StreamLevel: zstd.SpeedFastest,
		NextPath: store.NextName(dir, m.Project.Name, m.Created), Reserve: reserveForMembers(len(m.Members))})
	if err != nil {
		return "", fmt.Errorf("copying %s: %w", objs, err)
	}
	defer w.Abort()
	leave(w, m)
	if err := archive.WalkObjects(m, objs, false, copyMember(w, m)); err != nil {
		return "", fmt.Errorf("copying %s: %w", objs, err)
	}
	out := copyManifest(m)
	out.Objects = nil
	if err := w.Commit(out); err != nil {
		return "", fmt.Errorf("copying %s: %w", objs, err)
	}
	return w.Path(), nil
}

// copyMember adds each member to w as it was saved: the dump as a stream, the rest as is.
func copyMember(w *archive.Writer, m *archive.Manifest) func(hdr *tar.Header, r io.Reader) error {
	return func(hdr *tar.Header, r io.Reader) error {
		if m.Database != nil && hdr.Name == m.Database.Member {
			_, err := w.AddStream(hdr.Name, hdr.Mode, hdr.ModTime, r)
			return err
		}
		return w.Add(dense(hdr), r)
	}
}

// dense is a sparse member's header for its content read whole: the copy holds the holes as
// zeros (the repository's compression makes them cheap).
func dense(hdr *tar.Header) *tar.Header {
	if !archive.IsSparse(hdr) {
		return hdr
	}
	h := *hdr
	h.PAXRecords = map[string]string{}
	for k, v := range hdr.PAXRecords {
		if !strings.HasPrefix(k, "GNU.sparse.") {
			h.PAXRecords[k] = v
		}
	}
	return &h
}

// leave keeps the list of what the save left out.
func leave(w *archive.Writer, m *archive.Manifest) {
	for _, s := range m.Skipped {
		w.Leave(s.Name, s.Kind)
	}
}

// copyManifest is m without what the writer fills in again.
func copyManifest(m *archive.Manifest) *archive.Manifest {
	out := *m
	out.Members, out.Split, out.Objects, out.Skipped = nil, nil, nil, nil
	return &out
}

// reserveForMembers sizes the manifest's room for n members (about 200 bytes each).
func reserveForMembers(n int) int64 { return int64(1<<20) + int64(n)*300 }
