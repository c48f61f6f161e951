package backup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/docker/go-units"

	"github.com/klauspost/compress/zstd"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/repository"
)

// repoBackup is a save into a repository: the archive writer's repository form, whose tar and
// dump go straight into the repository's objects.
type repoBackup struct {
	o  SaveOptions
	bw *repository.BackupWriter
}

func openRepoBackup(ctx context.Context, o SaveOptions) (*repoBackup, *archive.Writer, error) {
	bw, err := o.Repo.NewBackup(ctx, o.Plan.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("starting a backup in %s: %w", o.Repo.Address(), err)
	}
	w, err := archive.NewSink(bw, archive.Options{StreamLevel: zstd.SpeedFastest})
	if err != nil {
		bw.Abort()
		return nil, nil, err
	}
	return &repoBackup{o: o, bw: bw}, w, nil
}

// commit stores the manifest the archive writer filled in and makes the snapshot.
func (b *repoBackup) commit(ctx context.Context, m *archive.Manifest, res *Result) error {
	js, err := archive.EncodeManifest(m)
	if err != nil {
		return err
	}
	snap, err := b.bw.Commit(ctx, js, m.Created, m.Labels)
	if err != nil {
		return fmt.Errorf("writing the backup into %s: %w", b.o.Repo.Address(), err)
	}
	res.Snapshot = snap.ID
	res.Path = b.o.Repo.Address() + " " + snap.ID
	return nil
}

// abort drops an unfinished snapshot (after commit, nothing): its contents are left for the
// repository's maintenance.
func (b *repoBackup) abort() {
	if b != nil {
		b.bw.Abort()
	}
}

// RepoFullError says the repository's storage filled up during a save.
type RepoFullError struct {
	Address string
	Written int64
	Err     error
}

func (e *RepoFullError) Error() string {
	return fmt.Sprintf("saving: the storage of the repository %s is full (after %s of this backup): nothing was saved, "+
		"the backups there before are untouched; what this save stored is unreferenced, and maintenance (prune) removes it",
		e.Address, units.BytesSize(float64(e.Written)))
}

func (e *RepoFullError) Unwrap() error { return e.Err }

// fullMarks are how a full disk or quota reaches us through kopia and an S3 server: as text.
var fullMarks = []string{"no space left on device", "storagefull", "storage full", "quotaexceeded", "quota exceeded", "insufficient storage", "disk quota"}

func repoFull(addr string, w *archive.Writer, err error) error {
	text := strings.ToLower(err.Error())
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || slices.ContainsFunc(fullMarks, func(m string) bool { return strings.Contains(text, m) }) {
		return &RepoFullError{Address: addr, Written: w.Written(), Err: err}
	}
	return err
}
