package restore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/engine"
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
	ctx     context.Context // remote mode: open's, for add
	local   *os.File        // near mode: the dump is staged on this machine
}

func newDBStage(pg postgres.Target, id string, plain bool) *dbStage {
	return &dbStage{pg: pg, id: id, dir: "/tmp/echobackup-restore-" + id, plain: plain,
		newName: pg.Database + "_echobackup_new_" + id, oldName: pg.Database + "_echobackup_old_" + id}
}

func (d *dbStage) open(ctx context.Context) error {
	if d.pg.Near != nil {
		return d.openLocal()
	}
	if _, err := engine.Output(ctx, d.pg.API, d.pg.Container, engine.ExecOptions{
		Cmd: []string{"sh", "-c", `rm -rf "$1" && mkdir -p "$1" && chmod 0700 "$1"`, "sh", d.dir}}); err != nil {
		return fmt.Errorf("preparing %s in the database container: %w", d.dir, err)
	}
	d.ctx = ctx
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

// add stages the dump. A size below 0 (a stream's dump, whose size comes at its end) is
// written by a shell in the container from stdin; a known size goes as a tar to the engine.
func (d *dbStage) add(hdr *tar.Header, r io.Reader) error {
	if d.local != nil {
		if _, err := io.Copy(d.local, r); err != nil {
			return fmt.Errorf("staging the dump: %w", err)
		}
		return nil
	}
	d.file = d.dir + "/" + d.fileName()
	if hdr.Size < 0 {
		return d.addStdin(r)
	}
	h := &tar.Header{Name: d.fileName(), Mode: 0o600, Size: hdr.Size, ModTime: hdr.ModTime, Typeflag: tar.TypeReg}
	pr, pw := io.Pipe()
	fed := make(chan error, 1)
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(h)
		if err == nil {
			_, err = io.Copy(tw, r)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
		fed <- err
	}()
	err := engine.CopyTo(d.ctx, d.pg.API, d.pg.Container, d.dir, pr)
	pr.CloseWithError(errEngineStopped)
	switch ferr := <-fed; {
	case ferr != nil && !errors.Is(ferr, errEngineStopped): // reading the archive failed
		return fmt.Errorf("staging the dump: %w", ferr)
	case err != nil:
		return fmt.Errorf("staging the dump: %w", err)
	}
	return nil
}

var errEngineStopped = errors.New("the engine stopped reading the dump")

// addStdin writes the dump into the container through a shell's stdin. A read error must not
// pass for the end of the dump, which the shell would take it for.
func (d *dbStage) addStdin(r io.Reader) error {
	er := &errReader{r: r}
	err := engine.Exec(d.ctx, d.pg.API, d.pg.Container, engine.ExecOptions{
		Cmd: []string{"sh", "-c", `umask 077 && cat > "$1"`, "sh", d.file}, Stdin: er})
	if rerr := er.failure(); rerr != nil {
		return fmt.Errorf("staging the dump: %w", rerr)
	}
	if err != nil {
		return fmt.Errorf("staging the dump: %w", err)
	}
	return nil
}

// errReader remembers a read error other than io.EOF.
type errReader struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.mu.Lock()
		e.err = err
		e.mu.Unlock()
	}
	return n, err
}

func (e *errReader) failure() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

func (d *dbStage) finish(failure error) error {
	if d.local != nil {
		return errors.Join(failure, d.local.Close())
	}
	if failure == nil && d.file == "" {
		return fmt.Errorf("the archive holds no database dump")
	}
	return failure
}

// load restores into the new database and checks its rows against the manifest.
func (d *dbStage) load(ctx context.Context, u *undo, jobs int, tables func(context.Context) ([]archive.Table, error)) error {
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
	want, err := tables(ctx)
	if err != nil {
		return err
	}
	if want == nil {
		return nil
	}
	_, err = backup.CheckRows(ctx, fresh, want)
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
	_, _ = engine.Output(ctx, d.pg.API, d.pg.Container, engine.ExecOptions{Cmd: []string{"rm", "-rf", d.dir}})
}
