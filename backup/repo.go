package backup

import (
	"context"
	"fmt"

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
	b.bw = nil
	res.Snapshot = snap.ID
	res.Path = b.o.Repo.Address() + " " + snap.ID
	return nil
}

// abort drops an unfinished snapshot; its contents are left for the repository's maintenance.
func (b *repoBackup) abort() {
	if b != nil && b.bw != nil {
		b.bw.Abort()
	}
}
