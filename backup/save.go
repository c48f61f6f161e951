// Package backup runs the steps of save and verify: it reads the project's parts through the
// compose, postgres and files packages and writes them into one archive in a backup folder
// (package store), and reads an archive back with the code a restore uses.
package backup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker/go-units"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/postgres"
	"github.com/echo-backup/echo-backup/progress"
	"github.com/echo-backup/echo-backup/repository"
	"github.com/echo-backup/echo-backup/store"
	"github.com/echo-backup/echo-backup/version"
)

// SaveOptions say what to save and where.
type SaveOptions struct {
	Plan        *compose.Plan
	API         compose.Engine
	LocalEngine bool // bind mounts can be read from this machine's disk
	Dir         string
	Pause       bool
	Labels      map[string]string
	ToolVersion string             // "": version.Version, which is what every caller passes
	Progress    *progress.Reporter // nil: no progress
	Warn        func(string)
	// Lock is Dir's lock when the caller holds it (a restore's safety backup, the nightly
	// run); without it Save takes the lock for the time of the save.
	Lock *store.Lock
	// From, when set, saves what a restore has just set aside instead of the live data.
	From *SetAside
	// Stream, when set, receives the archive in the stream form, front to back, and nothing is
	// written into Dir, whose lock Save then does not take.
	Stream io.Writer
	// Repo, when set, receives the backup as a snapshot in a repository, and nothing is
	// written into Dir.
	Repo *repository.Repository
}

// outside says the backup goes somewhere other than Dir.
func (o SaveOptions) outside() bool { return o.Stream != nil || o.Repo != nil }

// SetAside is the state a restore moved out of the way: the live database renamed, folders
// moved beside (bind) or inside (volume) the live ones. The manifest still names the live
// database and folders, so that restoring the backup puts that state back where it was.
type SetAside struct {
	Database string // the set-aside database; "" saves the live one
	// Folders maps a source's path (host folder or volume name) to its set-aside copy: a host
	// folder for a bind mount, a folder inside the volume for a volume.
	Folders map[string]string
}

// dumpTarget is the database pg_dump reads: the live one, or the one a restore set aside.
func (o SaveOptions) dumpTarget(live postgres.Target) postgres.Target {
	if o.From != nil && o.From.Database != "" {
		live.Database = o.From.Database
	}
	return live
}

// readFrom is where a source's files are read: its live path, or for a set-aside volume the
// folder inside it (sub).
func (o SaveOptions) readFrom(src archive.Source) (path, sub string) {
	aside, ok := "", false
	if o.From != nil {
		aside, ok = o.From.Folders[src.Path]
	}
	switch {
	case !ok:
		return src.Path, ""
	case src.Kind == "volume":
		return src.Path, aside
	default:
		return aside, ""
	}
}

// Result is the summary of a finished save.
type Result struct {
	Path     string        `json:"path"`
	Size     int64         `json:"size"`
	Duration time.Duration `json:"duration"`
	Tables   int           `json:"tables"`
	Rows     int64         `json:"rows"`
	Files    int           `json:"files"`
	Skipped  int           `json:"skipped,omitempty"`
	// Snapshot is the backup's ID in a repository (save --repo).
	Snapshot string `json:"snapshot,omitempty"`
	TOC      int    `json:"tocEntries"`
}

// Save writes one archive of the database and every data folder. Nothing that looks like a
// backup exists until the archive is complete and synced.
func Save(ctx context.Context, o SaveOptions) (*Result, error) {
	start := time.Now()
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	db, err := o.Plan.DatabaseContainer()
	if err != nil {
		return nil, err
	}
	target := postgres.Target{API: o.API, Container: db.ID, User: o.Plan.Database.User,
		Database: o.Plan.Database.Name, Password: o.Plan.Database.Password}
	if !o.outside() {
		if err := store.PrepareDir(o.Dir); err != nil {
			return nil, err
		}
	}
	if !o.outside() && !o.Lock.Holds(o.Dir) {
		// A stream writes nothing into Dir. Holding the lock through it would stop a
		// `restore -` on this machine at the other end of the pipe, which takes it too.
		l, err := store.Acquire(ctx, o.Dir, func(holder string) { o.Warn("waiting for another echobackup command in " + o.Dir + " " + holder) })
		if err != nil {
			return nil, err
		}
		defer l.Unlock()
	}
	if o.LocalEngine {
		target.Near = &postgres.Near{Dir: o.Dir, Image: o.Plan.Database.Image, Project: o.Plan.Name}
		if o.outside() {
			// Only a FIFO, but a stream leaves nothing at all in the backup folder.
			target.Near.Dir = os.TempDir()
		}
	}
	if !o.outside() {
		if err := checkSpace(ctx, target, o); err != nil {
			return nil, err
		}
	}
	dbSize, err := target.DumpSize(ctx)
	if err != nil {
		return nil, fmt.Errorf("measuring database %q: %w", target.Database, err)
	}
	reserve := reserveFor(o.Plan)
	res, err := saveOnce(ctx, o, target, reserve, dbSize)
	if errors.Is(err, archive.ErrManifestTooLarge) {
		// Volumes held more files than the room left for the manifest: rare, so simply redo it.
		res, err = saveOnce(ctx, o, target, min(reserve*16, 1<<30), dbSize)
	}
	if err != nil {
		return nil, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

// dbSize (postgres.Target.DumpSize) is the database's bar total.
func saveOnce(ctx context.Context, o SaveOptions, target postgres.Target, reserve, dbSize int64) (*Result, error) {
	// To the millisecond: list and restore's "latest" order by it, and two saves can start
	// in the same second.
	created := time.Now().UTC().Truncate(time.Millisecond)
	m := newManifest(o, created)
	sources := savedSources(o)
	var snap *repoBackup
	var w *archive.Writer
	var err error
	if o.Repo != nil {
		snap, w, err = openRepoBackup(ctx, o)
	} else {
		w, err = openArchive(ctx, o, target, m, sources, reserve)
	}
	if err != nil {
		return nil, err
	}
	defer w.Abort()
	defer snap.abort()
	res := &Result{}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		task := o.Progress.Task(fmt.Sprintf("database %q", target.Database), "Saving", dbSize)
		err := saveDatabase(gctx, w, o.dumpTarget(target), target.Database, m, res, task)
		task.End("Saved", err)
		return err
	})
	g.Go(func() error { return saveFiles(gctx, w, o, m, sources) })
	err = g.Wait()
	if err != nil {
		return nil, full(o, w, err)
	}
	if err := w.Commit(m); err != nil {
		return nil, full(o, w, fmt.Errorf("writing backup %s: %w", w.Path(), err))
	}
	res.Path = w.Path()
	if snap != nil {
		if err := snap.commit(ctx, m, res); err != nil {
			return nil, full(o, w, err)
		}
	}
	if len(m.Skipped) > 0 {
		o.Warn(SkippedSummary(m.Skipped))
	}
	if o.outside() {
		res.Size = w.Written()
	}
	return finish(res, m)
}

// openArchive starts the archive: a file in Dir, or the stream form on o.Stream, whose header
// says beforehand what a restore needs to plan: the sources and the database's versions.
func openArchive(ctx context.Context, o SaveOptions, target postgres.Target, m *archive.Manifest, sources []archive.Source, reserve int64) (*archive.Writer, error) {
	if o.Stream == nil {
		path := filepath.Join(o.Dir, store.FileName(o.Plan.Name, m.Created))
		w, err := archive.Create(path, archive.Options{Reserve: reserve, StreamLevel: zstd.SpeedFastest,
			NextPath: store.NextName(o.Dir, o.Plan.Name, m.Created)})
		if err != nil {
			return nil, fmt.Errorf("creating backup %s: %w", path, err)
		}
		return w, nil
	}
	head := *m
	head.Sources = append(append([]archive.Source(nil), sources...), deploymentSource(o.Plan))
	dump := o.dumpTarget(target)
	info := &postgres.DumpInfo{}
	var err error
	if info.ServerVersion, err = dump.ServerVersion(ctx); err != nil {
		return nil, fmt.Errorf("reading the version of database %q: %w", target.Database, err)
	}
	if info.PgDumpVersion, err = dump.PgDumpVersion(ctx); err != nil {
		return nil, fmt.Errorf("running pg_dump --version: %w", err)
	}
	head.Database = manifestDatabase(m, dump, target.Database, info, dumpMember(target.Database))
	w, err := archive.NewStream(o.Stream, &head, archive.Options{StreamLevel: zstd.SpeedFastest})
	if err != nil {
		return nil, fmt.Errorf("starting the stream: %w", err)
	}
	return w, nil
}

// SkippedSummary is the one line that says what a backup left out and why.
func SkippedSummary(skipped []archive.Skipped) string {
	var names []string
	for i, s := range skipped {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(skipped)-i))
			break
		}
		names = append(names, fmt.Sprintf("%q (%s)", s.Name, s.Kind))
	}
	return fmt.Sprintf("WARNING: left out %d entries that a backup cannot hold, endpoints of running programs "+
		"that recreate them (sockets, device nodes, FIFOs): %s", len(skipped), strings.Join(names, ", "))
}

// FullError says the backup folder's disk filled up during a save.
type FullError struct {
	Dir     string
	Written int64 // what the archive held when it failed
	Err     error
}

func (e *FullError) Error() string {
	return fmt.Sprintf("saving: the backup folder %s is full (ENOSPC) after %s: nothing was saved, the previous backups are untouched",
		e.Dir, units.BytesSize(float64(e.Written)))
}

func (e *FullError) Unwrap() error { return e.Err }

// full turns a save that failed because the disk filled up into one line that says so, and
// what it means: the partial archive is removed (by the deferred Abort), the backups there
// before are untouched. ENOSPC may reach us wrapped, or only as pg_dump's or the engine's
// text, so a folder with (almost) no room left counts too, measured before Abort frees it.
func full(o SaveOptions, w *archive.Writer, err error) error {
	if o.Repo != nil {
		return repoFull(o.Repo.Address(), w, err)
	}
	dir := o.Dir
	if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) && !nearlyFull(dir) {
		return err
	}
	return &FullError{Dir: dir, Written: w.Written(), Err: err}
}

// nearlyFull is true when less than 1 MiB is left for us in dir.
func nearlyFull(dir string) bool {
	var fs syscall.Statfs_t
	return syscall.Statfs(dir, &fs) == nil && int64(fs.Bavail)*fs.Bsize < 1<<20
}

func finish(res *Result, m *archive.Manifest) (*Result, error) {
	if res.Size == 0 {
		st, err := os.Stat(res.Path)
		if err != nil {
			return nil, err
		}
		res.Size = st.Size()
	}
	res.Rows, res.Files, res.Skipped = m.Rows(), m.Files(), len(m.Skipped)
	res.Tables = len(m.Database.Tables)
	return res, nil
}

func newManifest(o SaveOptions, created time.Time) *archive.Manifest {
	host, _ := os.Hostname()
	m := &archive.Manifest{
		Format:  archive.FormatVersion,
		Tool:    archive.Tool{Name: "echo-backup", Version: cmp.Or(o.ToolVersion, version.Version)},
		Created: created,
		Host:    host,
		Project: archive.Project{Name: o.Plan.Name, WorkingDir: o.Plan.WorkingDir, ConfigFiles: o.Plan.ConfigFiles},
		Labels:  o.Labels,
	}
	for _, s := range o.Plan.Services {
		svc := archive.Service{Name: s.Name, Role: string(s.Role), Image: s.Image, Running: s.Running()}
		if len(s.Containers) > 0 {
			svc.ImageID = s.Containers[0].ImageID
		}
		m.Project.Services = append(m.Project.Services, svc)
	}
	return m
}

// reserveFor sizes the manifest's room at the start of the archive: about 200 bytes a member
// for the folders counted by discovery, and room for volumes, which cannot be counted cheaply.
func reserveFor(plan *compose.Plan) int64 {
	n := int64(1 << 20)
	for _, it := range plan.Items {
		switch {
		case it.Backup && it.Kind == compose.KindVolume && it.Role == compose.RoleData:
			n += 4 << 20
		case it.Backup:
			n += int64(it.Files) * 200
		}
	}
	return n
}
