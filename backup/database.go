package backup

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/postgres"
	"github.com/echo-backup/echo-backup/progress"
)

// saveDatabase streams pg_dump into the archive and, at the same time, into pg_restore --list:
// a dump counts only if pg_dump exited 0, wrote something, and its table of contents reads back.
// The dump is recorded under name, the live database's, whichever database t reads; its
// bytes count on task.
func saveDatabase(ctx context.Context, w *archive.Writer, t postgres.Target, name string, m *archive.Manifest, res *Result, task *progress.Task) error {
	member := dumpMember(name)
	dumpR, dumpW := io.Pipe()
	tocR, tocW := io.Pipe()
	g, gctx := errgroup.WithContext(ctx)
	var stored archive.Member
	g.Go(func() error {
		var err error
		stored, err = w.AddStream(member, 0o600, time.Now(), dumpR)
		dumpR.CloseWithError(err)
		return err
	})
	g.Go(func() error {
		var err error
		res.TOC, err = t.CheckTOC(gctx, tocR)
		return err
	})
	var info *postgres.DumpInfo
	g.Go(func() error {
		var err error
		info, err = t.Dump(gctx, task.Writer(io.MultiWriter(dumpW, tocW)))
		dumpW.CloseWithError(err)
		tocW.CloseWithError(err)
		return err
	})
	if err := g.Wait(); err != nil {
		return fmt.Errorf("saving database %q: %w", t.Database, err)
	}
	if stored.Size == 0 {
		return fmt.Errorf("saving database %q: pg_dump wrote nothing", t.Database)
	}
	m.Database = manifestDatabase(m, t, name, info, member)
	return nil
}

func dumpMember(name string) string { return "db/" + name + ".dump" }

func manifestDatabase(m *archive.Manifest, t postgres.Target, name string, info *postgres.DumpInfo, member string) *archive.Database {
	db := &archive.Database{Name: name, User: t.User, ServerVersion: info.ServerVersion,
		PgDumpVersion: info.PgDumpVersion, Member: member}
	for _, s := range m.Project.Services {
		if s.Role == "database" {
			db.Service = s.Name
		}
	}
	for _, tb := range info.Tables {
		db.Tables = append(db.Tables, archive.Table{Schema: tb.Schema, Name: tb.Name, Rows: tb.Rows})
	}
	return db
}
