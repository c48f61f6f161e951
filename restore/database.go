package restore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/postgres"
)

// dbStage restores the database beside the live one: the dump is staged as a file inside the
// database container (pg_restore -j needs to seek), loaded into a new database, checked, and
// only then swapped in by renaming, so that going back is a rename too.
type dbStage struct {
	pg      postgres.Target
	dir     string
	file    string
	plain   bool
	id      string
	newName string
	oldName string
	pw      *io.PipeWriter
	tw      *tar.Writer
	copied  chan error
	local   *os.File // near mode: the dump is staged on this machine
}

func newDBStage(pg postgres.Target, id string, plain bool) *dbStage {
	return &dbStage{pg: pg, id: id, dir: "/tmp/echobackup-restore-" + id, plain: plain,
		newName: pg.Database + "_echobackup_new_" + id, oldName: pg.Database + "_echobackup_old_" + id}
}

func (d *dbStage) open(ctx context.Context) error {
	if d.pg.Near != nil {
		return d.openLocal()
	}
	if _, err := compose.Output(ctx, d.pg.API, d.pg.Container, compose.ExecOptions{
		Cmd: []string{"sh", "-c", `rm -rf "$1" && mkdir -p "$1" && chmod 0700 "$1"`, "sh", d.dir}}); err != nil {
		return fmt.Errorf("preparing %s in the database container: %w", d.dir, err)
	}
	pr, pw := io.Pipe()
	d.pw, d.tw, d.copied = pw, tar.NewWriter(pw), make(chan error, 1)
	go func() {
		err := compose.CopyTo(ctx, d.pg.API, d.pg.Container, d.dir, pr)
		pr.CloseWithError(err)
		d.copied <- err
	}()
	return nil
}

// openLocal stages the dump in a private folder beside the backups, read by pg_restore in a
// helper container: faster than the container's own disk, and no copy through the engine.
func (d *dbStage) openLocal() error {
	d.dir = d.dumpDir()
	if err := os.Mkdir(d.dir, 0o700); err != nil {
		return fmt.Errorf("creating a transfer folder: %w", err)
	}
	d.file = filepath.Join(d.dir, d.fileName())
	var err error
	d.local, err = os.OpenFile(d.file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	return err
}

// dumpDir is where the dump is staged, named in advance so that the journal can say so
// before it exists: beside the backups in near mode, else inside the database container.
func (d *dbStage) dumpDir() string {
	if d.pg.Near != nil {
		return filepath.Join(d.pg.Near.Dir, ".echobackup-xfer-restore-"+d.id)
	}
	return "/tmp/echobackup-restore-" + d.id
}

func (d *dbStage) fileName() string {
	if d.plain {
		return "db.sql"
	}
	return "db.dump"
}

// add stages the dump; size comes from the archive member.
func (d *dbStage) add(hdr *tar.Header, r io.Reader) error {
	if d.local != nil {
		if _, err := io.Copy(d.local, r); err != nil {
			return fmt.Errorf("staging the dump: %w", err)
		}
		return nil
	}
	name := d.fileName()
	d.file = d.dir + "/" + name
	h := &tar.Header{Name: name, Mode: 0o600, Size: hdr.Size, ModTime: hdr.ModTime, Typeflag: tar.TypeReg}
	if err := d.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("staging the dump: %w", err)
	}
	if _, err := io.Copy(d.tw, r); err != nil {
		return fmt.Errorf("staging the dump: %w", err)
	}
	return nil
}

func (d *dbStage) finish(failure error) error {
	if d.local != nil {
		return errors.Join(failure, d.local.Close())
	}
	if d.pw == nil {
		return failure
	}
	if failure == nil {
		failure = d.tw.Close()
	}
	d.pw.CloseWithError(failure)
	if err := <-d.copied; failure == nil && err != nil {
		return fmt.Errorf("staging the dump: %w", err)
	}
	if failure == nil && d.file == "" {
		return fmt.Errorf("the archive holds no database dump")
	}
	return failure
}

// load restores into the new database and checks its rows against the manifest.
func (d *dbStage) load(ctx context.Context, u *undo, jobs int, want []archive.Table) error {
	// Registered first and not cancelled midway: a CREATE cut off by Ctrl-C still completes in
	// the container, and must still be dropped.
	u.push("the new database", func() error { return d.pg.Drop(context.Background(), d.newName) })
	if err := d.pg.Create(context.WithoutCancel(ctx), d.newName); err != nil {
		return err
	}
	fresh := d.pg.On(d.newName)
	if err := fresh.RestoreFile(ctx, d.file, d.plain, jobs); err != nil {
		return err
	}
	if want == nil {
		return nil
	}
	_, err := backup.CheckRows(ctx, fresh, want)
	return err
}

// swap puts the restored database under the live name and keeps the old one aside. Each undo
// is registered before its step and looks at what exists, so it is right whether the step
// happened or not.
func (d *dbStage) swap(ctx context.Context, u *undo) error {
	live := d.pg.Database
	exists, err := d.pg.Exists(ctx, live)
	if err != nil {
		return err
	}
	if exists {
		u.push("setting the old database aside", func() error { return d.renameIfPresent(d.oldName, live) })
		if err := d.pg.Rename(ctx, live, d.oldName); err != nil {
			return err
		}
	}
	u.push("swapping in the new database", func() error { return d.renameIfPresent(live, d.newName) })
	return d.pg.Rename(ctx, d.newName, live)
}

// renameIfPresent renames from to to when from exists and to does not.
func (d *dbStage) renameIfPresent(from, to string) error {
	ctx := context.Background()
	hasFrom, err := d.pg.Exists(ctx, from)
	if err != nil || !hasFrom {
		return err
	}
	hasTo, err := d.pg.Exists(ctx, to)
	if err != nil || hasTo {
		return err
	}
	return d.pg.Rename(ctx, from, to)
}

func (d *dbStage) removeStaged(ctx context.Context) {
	if d.local != nil {
		_ = os.RemoveAll(d.dir)
		return
	}
	_, _ = compose.Output(ctx, d.pg.API, d.pg.Container, compose.ExecOptions{Cmd: []string{"rm", "-rf", d.dir}})
}
