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
	"github.com/echo-backup/echo-backup/compose"
)

// stageAndLoad prepares everything beside the live data at the same time: the files go into
// staging folders while the whole input is checked, and the dump is staged and loaded into a
// new database. Nothing live changes. (The safety backup is taken later, from what the swap
// sets aside, so that it holds the app's writes up to the moment it stopped.)
func (r *run) stageAndLoad(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.stageFiles(gctx) })
	if r.db != nil {
		g.Go(func() error { return r.stageAndLoadDB(gctx) })
	}
	return g.Wait()
}

func (r *run) stageFiles(ctx context.Context) (err error) {
	for _, f := range r.folders {
		if err := f.open(ctx, r.o.API, r.o.Plan.Name, r.o.Plan.Database.Image); err != nil {
			return err
		}
		defer func() { err = f.finish(err) }()
	}
	err = r.src.walk(func(hdr *tar.Header, rd io.Reader) error {
		for _, f := range r.folders {
			if strings.HasPrefix(hdr.Name, f.prefix) {
				return f.add(hdr, rd)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, f := range r.folders {
		if f.dense > 0 {
			r.o.Log(fmt.Sprintf("WARNING: %d sparse files of %s were restored whole, without their holes: "+
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
	if err := r.db.load(ctx, &r.undo, r.jobs(), r.expectedTables()); err != nil {
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
	return r.db.add(hdr, rd)
}

func (r *run) jobs() int {
	if r.o.Jobs > 0 {
		return r.o.Jobs
	}
	return max(2, runtime.NumCPU())
}

func (r *run) expectedTables() []archive.Table {
	if m := r.src.manifest(); m != nil && m.Database != nil {
		return m.Database.Tables
	}
	return nil
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
