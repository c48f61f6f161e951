package restore

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/progress"
)

// stageAndLoad prepares everything beside the live data at the same time: the files go into
// staging folders while the whole input is checked, and the dump is staged and loaded into a
// new database. Nothing live changes. (The safety backup is taken later, from what the swap
// sets aside, so that it holds the app's writes up to the moment it stopped.)
func (r *run) stageAndLoad(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	if s, ok := r.src.(*streamInput); ok {
		s.start(gctx, r.db != nil)
	}
	g.Go(func() error { return r.stageFiles(gctx) })
	if r.db != nil {
		g.Go(func() error { return r.stageAndLoadDB(gctx) })
	}
	return g.Wait()
}

func (r *run) stageFiles(ctx context.Context) (err error) {
	tasks := map[*folderStage]*progress.Task{}
	for _, f := range r.folders {
		label := backup.SourceLabel(r.o.Plan.WorkingDir, archive.Source{Kind: f.kind, Path: f.source}) // as save names it
		tasks[f] = r.o.Progress.Task(label, "Staging", sizeUnder(r.src.manifest(), f.prefix))
		defer func() { tasks[f].End("Staged", err) }()
	}
	for _, f := range r.folders {
		if err := f.open(ctx, r.o.API, r.o.Plan.Name, r.o.Plan.Database.Image); err != nil {
			return err
		}
		defer func() { err = f.finish(err) }()
	}
	err = r.src.walk(func(hdr *tar.Header, rd io.Reader) error {
		for _, f := range r.folders {
			if strings.HasPrefix(hdr.Name, f.prefix) {
				return f.add(hdr, tasks[f].Reader(rd))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, f := range r.folders {
		if f.dense > 0 {
			r.o.Warn(fmt.Sprintf("%d sparse files of %s were restored whole, without their holes: "+
				"the engine's extraction cannot make holes (a restore run as root on the engine's host keeps them)", f.dense, f.describe()))
		}
	}
	r.o.Log("files staged and the backup checked")
	return nil
}

func (r *run) stageAndLoadDB(ctx context.Context) error {
	if err := r.stageDB(ctx); err != nil {
		return err
	}
	r.o.Log("loading the dump into a new database beside the live one")
	task := r.o.Progress.Task(fmt.Sprintf("database %q", r.pg.Database), "Loading", 0)
	err := r.db.load(ctx, &r.undo, r.jobs(), r.src.tables)
	task.End("Loaded and checked", err)
	if err != nil {
		return err
	}
	r.o.Log("the new database is loaded and its rows checked")
	return nil
}

func (r *run) stageDB(ctx context.Context) (err error) {
	if err := r.db.open(ctx); err != nil {
		return err
	}
	defer func() { err = r.db.finish(err) }()
	hdr, rd, err := r.src.dump()
	if err != nil {
		return err
	}
	defer rd.Close()
	task := r.o.Progress.Task(fmt.Sprintf("dump of database %q", r.pg.Database), "Staging", hdr.Size)
	err = r.db.add(hdr, task.Reader(rd))
	task.End("Staged", err)
	return err
}

func (r *run) jobs() int {
	if r.o.Jobs > 0 {
		return r.o.Jobs
	}
	return max(2, runtime.NumCPU())
}

// somethingToSave is false on a wrecked deployment, where only a fresh, empty database runs.
func (r *run) somethingToSave() bool {
	for _, it := range r.o.Plan.Items {
		if it.Backup && it.Exists && it.Role == compose.RoleData {
			return true
		}
	}
	return r.db != nil && r.hasUserTables()
}

func (r *run) hasUserTables() bool {
	tables, err := r.pg.CountRows(context.Background())
	return err != nil || len(tables) > 0
}

// sizeUnder is the bytes of the files below prefix, a folder's bar total; 0 (a spinner) for the
// manual procedure's tar, which has no manifest.
func sizeUnder(m *archive.Manifest, prefix string) int64 {
	if m == nil {
		return 0
	}
	var n int64
	for _, mem := range m.Members {
		if strings.HasPrefix(mem.Name, prefix) {
			n += mem.Size
		}
	}
	return n
}
