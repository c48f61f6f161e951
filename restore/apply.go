package restore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
)

func dataSources(plan *compose.Plan) []archive.Source { return backup.DataSources(plan) }

// stage reads the input once: files go into the staging folders, the dump into the database
// container. The archive's checksums are checked on the way, so a damaged archive stops here.
func (r *run) stage(ctx context.Context) (err error) {
	opened, err := r.openStages(ctx)
	defer func() {
		for _, finish := range opened {
			err = errors.Join(err, finish(err))
		}
	}()
	if err != nil {
		return err
	}
	return r.src.walk(func(hdr *tar.Header, rd io.Reader) error {
		if hdr.Name == dbMember {
			if r.db == nil {
				return nil
			}
			return r.db.add(hdr, rd)
		}
		for _, f := range r.folders {
			if strings.HasPrefix(hdr.Name, f.prefix) {
				return f.add(hdr, rd)
			}
		}
		return nil
	})
}

// openStages starts every staging stream and returns the functions that end them.
func (r *run) openStages(ctx context.Context) ([]func(error) error, error) {
	var finishers []func(error) error
	if r.db != nil {
		if err := r.db.open(ctx); err != nil {
			return finishers, err
		}
		finishers = append(finishers, r.db.finish)
	}
	for _, f := range r.folders {
		if err := f.open(ctx, r.o.API, r.o.Plan.Name, r.o.Plan.Database.Image); err != nil {
			return finishers, err
		}
		finishers = append(finishers, f.finish)
	}
	return finishers, nil
}

// loadAndSave loads the dump into the new database while the safety backup of the current
// state is written: both run before anything is stopped.
func (r *run) loadAndSave(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	if r.db != nil {
		g.Go(func() error {
			r.o.Log("loading the dump into a new database beside the live one")
			return r.db.load(gctx, &r.undo, r.jobs(), r.expectedTables())
		})
	}
	if r.o.SafetyBackup && r.somethingToSave() {
		g.Go(func() error { return r.safetyBackup(gctx) })
	}
	return g.Wait()
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

func (r *run) safetyBackup(ctx context.Context) error {
	r.o.Log("saving the current state first (safety backup)")
	res, err := backup.Save(ctx, backup.SaveOptions{
		Plan: r.o.Plan, API: r.o.API, LocalEngine: r.o.LocalEngine, Dir: r.o.Dir,
		Labels: map[string]string{"pinned": "pre-restore"}, ToolVersion: r.o.ToolVersion,
		Warn: r.o.Log,
	})
	if err != nil {
		return fmt.Errorf("taking the safety backup: %w", err)
	}
	r.res.SafetyBackup = res.Path
	return nil
}
