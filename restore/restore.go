// Package restore brings a deployment back from a backup, or changes nothing: everything is
// staged and checked beside the live data first, the app is stopped only for the swap, and
// every step that changes something registers its undo.
package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/postgres"
	"github.com/echo-backup/echo-backup/progress"
	"github.com/echo-backup/echo-backup/repository"
	"github.com/echo-backup/echo-backup/store"
)

// Options say what to restore from and how carefully.
type Options struct {
	Plan     *compose.Plan
	API      compose.Engine
	Services *compose.Services
	Archive  string    // an echo-backup archive; empty with SQLFile/FilesTar
	Stream   io.Reader // an archive in the stream form, read once (`restore -`)
	SQLFile  string    // a plain pg_dump, as the manual procedure makes it
	FilesTar string    // a tar.gz of the data folder, as the manual procedure makes it
	Repo     *repository.Repository
	Snapshot string // the backup's ID in Repo
	Only     string // "", "db" or "files"

	ForceProject bool
	SafetyBackup bool
	Dir          string      // where the safety backup goes
	Lock         *store.Lock // Dir's lock, held by the caller for the whole restore; nil: the safety backup takes it
	ToolVersion  string      // "": version.Version
	LocalEngine  bool
	Jobs         int

	DryRun  bool
	Confirm func(plan string) (bool, error)
	Log     func(string) // what the restore does; nil: nothing
	// Warn is told what went wrong without failing the restore (the safety backup's warnings
	// included); nil: Log, with the "WARNING: " prefix that older loggers read.
	Warn func(string)
	// Progress draws the parts (staging, loading, the swap, the safety backup); nil draws nothing.
	Progress *progress.Reporter
}

// Result says what happened.
type Result struct {
	Archive      string        `json:"archive,omitempty"`
	SafetyBackup string        `json:"safetyBackup,omitempty"`
	Database     string        `json:"database,omitempty"`
	Folders      []string      `json:"folders"`
	Stopped      []string      `json:"stopped"`
	Downtime     time.Duration `json:"downtime"`
	Duration     time.Duration `json:"duration"`
	DryRun       bool          `json:"dryRun,omitempty"`
	Plan         string        `json:"plan"`
	// Deployment are the compose and env files written from the backup first (a new
	// server), relative to the project folder; on a dry run, the ones that would be.
	Deployment []string `json:"deployment,omitempty"`
}

// ErrCancelled is returned when the user answers no.
var ErrCancelled = errors.New("restore cancelled: nothing was changed")

type run struct {
	o       Options
	src     input
	pg      postgres.Target
	db      *dbStage
	folders []*folderStage
	undo    undo
	res     *Result
	id      string
	apps    []string
	j       *Journal // nil until the user has agreed and the first change is about to happen
	safety  bool     // a safety backup is taken from what the swap sets aside
	before  existed  // what the project had on the engine before setUp
}

// setDefaults makes Log and Warn callable.
func (o *Options) setDefaults() {
	if o.Log == nil {
		o.Log = func(string) {}
	}
	if o.Warn == nil {
		log := o.Log
		o.Warn = func(msg string) { log("WARNING: " + msg) }
	}
}

// Run restores. On any failure after the first change it rolls everything back.
func Run(ctx context.Context, o Options) (*Result, error) {
	start := time.Now()
	o.setDefaults()
	r := &run{o: o, res: &Result{Archive: o.Archive}, id: time.Now().UTC().Format("20060102T150405")}
	src, err := openInput(ctx, o)
	if err != nil {
		return nil, err
	}
	r.src = src
	if o.Repo != nil {
		r.res.Archive = src.describe()
	}
	if err := r.resumeFirst(ctx); err != nil {
		return nil, err
	}
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	r.res.Plan = r.describe()
	if o.DryRun {
		r.res.DryRun = true
		return r.res, nil
	}
	if o.Confirm != nil {
		ok, err := o.Confirm(r.res.Plan)
		if err != nil || !ok {
			return nil, errors.Join(ErrCancelled, err)
		}
	}
	defer r.closeHelpers()
	if err := r.setUp(ctx); err != nil {
		return nil, err
	}
	if err := r.apply(ctx); err != nil {
		return r.res, r.rollback(err)
	}
	r.res.Stopped = r.apps
	r.finish(context.WithoutCancel(ctx))
	r.res.Duration = time.Since(start)
	return r.res, nil
}

// resumeFirst finishes or rolls back a restore of the project that was interrupted, so that
// this one starts from a whole state; a dry run only says so.
func (r *run) resumeFirst(ctx context.Context) error {
	j, err := ReadJournal(r.o.Dir, r.o.Plan.Name)
	if err != nil || j == nil {
		return err
	}
	if !j.Of(r.o.Plan.WorkingDir) {
		// Its journal has the same name as ours would: this restore cannot keep one.
		return &compose.UserError{Err: j.Elsewhere(r.o.Dir)}
	}
	r.o.Warn(j.Warning())
	if r.o.DryRun {
		return nil
	}
	if _, err := resumeJournal(ctx, r.o, j); err != nil {
		return fmt.Errorf("resuming the interrupted restore first: %w", err)
	}
	// The app may have been started again: decide what to stop from what runs now.
	return r.o.Services.Refresh(ctx, r.o.API)
}

// prepare checks everything that can be checked without changing anything: a dry run or a
// "no" must leave the deployment exactly as it was.
func (r *run) prepare(ctx context.Context) error {
	m := r.src.manifest()
	if m != nil && m.Project.Name != r.o.Plan.Name && !r.o.ForceProject {
		return &compose.UserError{Err: fmt.Errorf("%s is a backup of project %q, not of %q: use --force-project to restore it here anyway",
			r.src.describe(), m.Project.Name, r.o.Plan.Name)}
	}
	r.apps = r.o.Services.RunningApps()
	if len(r.apps) == 0 && !anyContainer(r.o.Plan) {
		r.apps = r.o.Services.DefaultApps()
	}
	if r.wantDB() {
		if err := r.prepareDB(ctx); err != nil {
			return err
		}
	}
	if r.wantFiles() {
		r.prepareFolders()
	}
	return nil
}

// setUp makes what the restore needs exist, once the user has agreed: the database service
// running (created after `docker compose down -v`), missing volumes, no stale staging. If it
// fails, what it created goes again: a failed restore onto an empty server leaves it empty,
// so that the next attempt (or migrate) does not find "data" there.
func (r *run) setUp(ctx context.Context) (err error) {
	before, err := r.existing(ctx)
	if err != nil {
		return err
	}
	r.before = before
	r.j = r.newJournal(before)
	if err := store.PrepareDir(r.o.Dir); err != nil {
		return err
	}
	if err := r.j.set(PhaseSetup); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = r.removeCreated(context.WithoutCancel(ctx), before, err)
		}
	}()
	if r.db != nil {
		if err := r.startDB(ctx); err != nil {
			return err
		}
	}
	for _, f := range r.folders {
		if f.kind == "volume" {
			if err := compose.EnsureVolume(ctx, r.o.API, r.o.Plan, f.source); err != nil {
				return err
			}
		}
	}
	return nil
}

// existed is what the project had on the engine before setUp.
type existed struct {
	dbContainer bool
	volumes     map[string]bool
	networks    []string
}

func (r *run) existing(ctx context.Context) (existed, error) {
	db, _ := r.o.Plan.Service(r.o.Plan.Database.Service)
	e := existed{dbContainer: len(db.Containers) > 0, volumes: map[string]bool{}}
	// Asked now, not taken from the plan: only a volume seen missing here may be removed later.
	for _, it := range r.o.Plan.Items {
		if it.Kind != compose.KindVolume || e.volumes[it.Source] {
			continue
		}
		_, err := r.o.API.VolumeInspect(ctx, it.Source, client.VolumeInspectOptions{})
		switch {
		case err == nil:
			e.volumes[it.Source] = true
		case !cerrdefs.IsNotFound(err):
			return e, fmt.Errorf("inspecting volume %s: %w", it.Source, err)
		}
	}
	var err error
	e.networks, err = compose.ProjectNetworks(ctx, r.o.API, r.o.Plan.Name)
	return e, err
}

// removeCreated takes away the database container, volumes and networks that setUp created
// before it failed with cause, and ends the journal once it has. Nothing that existed before
// is touched.
func (r *run) removeCreated(ctx context.Context, before existed, cause error) error {
	err := r.removeNew(ctx, before)
	if err == nil {
		err = r.j.remove()
	}
	if err != nil {
		return fmt.Errorf("restore failed: %w (and removing what it created failed: %v)", cause, err)
	}
	return fmt.Errorf("restore failed: %w (nothing was changed: what it created is removed)", cause)
}

func (r *run) removeNew(ctx context.Context, before existed) error {
	var errs []error
	if !before.dbContainer {
		errs = append(errs, r.removeDBContainers(ctx))
	}
	for _, it := range r.o.Plan.Items {
		if it.Kind != compose.KindVolume || before.volumes[it.Source] {
			continue
		}
		if _, err := r.o.API.VolumeRemove(ctx, it.Source, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing volume %s: %w", it.Source, err))
		}
		before.volumes[it.Source] = true // a volume mounted twice is removed once
	}
	errs = append(errs, compose.RemoveNewNetworks(ctx, r.o.API, r.o.Plan.Name, before.networks))
	return errors.Join(errs...)
}

func (r *run) removeDBContainers(ctx context.Context) error {
	if err := r.o.Services.Refresh(ctx, r.o.API); err != nil {
		return err
	}
	db, _ := r.o.Plan.Service(r.o.Plan.Database.Service)
	for _, c := range db.Containers {
		if _, err := r.o.API.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing container %s: %w", c.Name, err)
		}
	}
	return nil
}

func anyContainer(plan *compose.Plan) bool {
	for _, s := range plan.Services {
		if len(s.Containers) > 0 {
			return true
		}
	}
	return false
}

func (r *run) wantDB() bool    { return r.o.Only != "files" && r.src.hasDB() }
func (r *run) wantFiles() bool { return r.o.Only != "db" && r.src.hasFiles() }

// prepareDB checks the dump against a running server now; a server that must first be
// started is checked in startDB.
func (r *run) prepareDB(ctx context.Context) error {
	db := r.o.Plan.Database
	r.pg = postgres.Target{API: r.o.API, User: db.User, Database: db.Name, Password: db.Password}
	r.db = newDBStage(r.pg, r.id, r.src.plainSQL())
	r.res.Database = db.Name
	c, err := r.o.Plan.DatabaseContainer()
	if err != nil {
		return nil
	}
	r.pg.Container = c.ID
	return r.checkMajor(ctx)
}

func (r *run) startDB(ctx context.Context) error {
	if err := r.attachDB(ctx); err != nil {
		return err
	}
	if err := r.checkMajor(ctx); err != nil {
		return err
	}
	r.db.pg = r.pg // the stage planned in prepareDB, now with its container
	return r.dropStaleStaging(ctx)
}

// attachDB starts the database service if it does not run (creating its container after
// `docker compose down -v`), points r.pg at its container and waits until it answers.
func (r *run) attachDB(ctx context.Context) error {
	if _, err := r.o.Services.EnsureDatabase(ctx); err != nil {
		return err
	}
	if err := r.o.Services.Refresh(ctx, r.o.API); err != nil {
		return err
	}
	c, err := r.o.Plan.DatabaseContainer()
	if err != nil {
		return err
	}
	r.pg.Container = c.ID
	if r.o.LocalEngine {
		if err := os.MkdirAll(r.o.Dir, 0o700); err != nil {
			return err
		}
		r.pg.Near = &postgres.Near{Dir: r.o.Dir, Image: r.o.Plan.Database.Image, Project: r.o.Plan.Name}
	}
	return r.pg.WaitReady(ctx, 2*time.Minute)
}

// dropStaleStaging removes new databases left by a restore that was killed before it could
// roll back. A restore with a journal has been resumed by now (resumeFirst), so what is left
// was set aside by one without a record (an older version): only reported, for one may be the
// last copy of the data.
func (r *run) dropStaleStaging(ctx context.Context) error {
	stale, err := r.pg.Databases(ctx, r.pg.Database+"_echobackup_")
	if err != nil {
		return err
	}
	for _, name := range stale {
		if strings.Contains(name, "_echobackup_new_") {
			if err := r.pg.Drop(ctx, name); err != nil {
				return err
			}
			continue
		}
		r.o.Warn(fmt.Sprintf("database %q was set aside by an earlier restore that left no journal; "+
			"drop it once you are sure you do not need it", name))
	}
	return nil
}

// checkMajor refuses a dump made by a newer PostgreSQL than the server: pg_restore cannot read it.
func (r *run) checkMajor(ctx context.Context) error {
	m := r.src.manifest()
	if m == nil || m.Database == nil {
		return nil
	}
	server, err := r.pg.ServerVersion(ctx)
	if err != nil {
		return err
	}
	if dump := postgres.Major(m.Database.PgDumpVersion); dump > postgres.Major(server) {
		return &compose.UserError{Err: fmt.Errorf("the backup was made with PostgreSQL %d (%s) and the server runs %s: "+
			"upgrade the database image first", dump, m.Database.PgDumpVersion, server)}
	}
	return nil
}

func (r *run) prepareFolders() {
	current := map[string]archive.Source{}
	for _, s := range backup.DataSources(r.o.Plan) {
		current[s.Name] = s
	}
	for _, saved := range r.src.sources() {
		live, ok := current[saved.Name]
		if !ok {
			r.o.Warn(fmt.Sprintf("the backup holds %s %s, which the project no longer has: not restored", saved.Kind, saved.Path))
			continue
		}
		r.folders = append(r.folders, newFolderStage(saved, live.Kind, live.Path, r.id))
		r.res.Folders = append(r.res.Folders, live.Path)
	}
}

func (r *run) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Restore into project %q from %s:\n", r.o.Plan.Name, r.src.describe())
	if r.db != nil {
		fmt.Fprintf(&b, "  - database %q is replaced (the current one is kept until the restore has succeeded)\n", r.pg.Database)
	}
	for _, f := range r.folders {
		fmt.Fprintf(&b, "  - %s is replaced\n", f.describe())
	}
	if len(r.apps) > 0 {
		fmt.Fprintf(&b, "  - services stopped for the swap, then started: %s\n", strings.Join(r.apps, ", "))
	}
	if r.o.SafetyBackup {
		fmt.Fprintf(&b, "  - a safety backup of the state at the moment the app stops is saved in %s (from the copies the swap sets aside)\n", r.o.Dir)
	}
	return b.String()
}

// apply stages and checks everything beside the live data, then stops the app only for the
// swap. The journal records each phase before it begins.
func (r *run) apply(ctx context.Context) (err error) {
	r.safety = r.o.SafetyBackup && r.somethingToSave()
	if err := r.journalStaging(ctx); err != nil {
		return err
	}
	r.o.Log("staging and checking the backup beside the live data")
	if err := r.stageAndLoad(ctx); err != nil {
		return err
	}
	// From here on a Ctrl-C must not cut a step in half: the swap is short, and each step
	// either completes or is undone.
	ctx = context.WithoutCancel(ctx)
	if err := r.journalStopping(ctx); err != nil {
		return err
	}
	// The swap's row (or line) says what stops and starts.
	task := r.o.Progress.Task("swap", "Stopping "+strings.Join(r.apps, ", "), 0)
	defer func() { task.End("Swapped", err) }()
	down := time.Now()
	r.o.Log("stopping " + strings.Join(r.apps, ", "))
	r.undo.push("stopping the services", func() error { return r.o.Services.Start(context.Background(), r.apps) })
	if err := r.o.Services.Stop(ctx, r.apps); err != nil {
		return err
	}
	if err := r.j.set(PhaseSwapping); err != nil {
		return err
	}
	task.Step("Swapping")
	if err := r.swap(ctx); err != nil {
		return err
	}
	if err := r.j.set(PhaseSwapped); err != nil {
		return err
	}
	task.Step("Starting " + strings.Join(r.apps, ", "))
	r.o.Log("starting " + strings.Join(r.apps, ", "))
	// Services started on the restored data must stop before the data is swapped back.
	r.undo.push("starting the services", func() error { return r.o.Services.Stop(context.Background(), r.apps) })
	if err := r.o.Services.Start(ctx, r.apps); err != nil {
		return err
	}
	r.res.Downtime = time.Since(down)
	r.o.Log("services are back")
	return r.j.set(PhaseStarted)
}

func (r *run) swap(ctx context.Context) error {
	if r.db != nil {
		if err := r.db.swap(ctx, &r.undo); err != nil {
			return err
		}
		if err := r.j.update(func() { r.j.Swapped = append(r.j.Swapped, "database") }); err != nil {
			return err
		}
	}
	for _, f := range r.folders {
		r.undo.push("swapping "+f.describe(), func() error { return f.unswap(context.Background()) })
		mtime, err := f.keepRootAside(ctx)
		if err != nil {
			return err
		}
		if err := f.swap(ctx); err != nil {
			return err
		}
		if err := f.applyVolumeRoot(ctx); err != nil {
			return err
		}
		if err := f.dateAside(ctx, mtime); err != nil {
			return err
		}
		if err := r.j.update(func() { r.j.Swapped = append(r.j.Swapped, f.source) }); err != nil {
			return err
		}
	}
	return nil
}

// rollback undoes every change, newest first, and says where things stand.
func (r *run) rollback(cause error) error {
	r.o.Log("restore failed, rolling back: " + cause.Error())
	// Said first: killed during the rollback, the next command must go on rolling back, even
	// from after the swap.
	journalErr := r.j.update(func() { r.j.RollingBack = true })
	var reviveErr error
	if r.db != nil {
		reviveErr = r.reviveDB()
	}
	undoErr := errors.Join(reviveErr, r.undo.run())
	if undoErr == nil {
		// Everything is under its own name again: what is left to drop is only staged.
		undoErr = r.j.update(func() { r.j.Unswapped = true })
	}
	if undoErr == nil {
		// Only now: a staged copy dropped while the swap is not wholly undone could be the
		// only one a resume would put back.
		r.discardStaged()
		// And what setUp created: a restore that fails onto an empty server (a migrate cut
		// in the middle) leaves it empty, as one that fails while setting up does. The
		// helpers go first: they hold the volumes.
		r.closeHelpers()
		undoErr = r.removeNew(context.Background(), r.before)
	}
	if undoErr == nil {
		undoErr = r.j.remove()
	}
	msg := "nothing was changed"
	if undoErr != nil {
		msg = "the rollback was incomplete: " + undoErr.Error() + "; run docker echobackup restore --resume to finish it"
	} else if journalErr != nil {
		msg += " (the journal could not be updated: " + journalErr.Error() + ")"
	}
	if r.res.SafetyBackup != "" {
		msg += "; the state before the restore is saved in " + r.res.SafetyBackup
	}
	return fmt.Errorf("restore failed: %w (%s)", cause, msg)
}

// reviveDB starts the database again when it died during the restore, so that the rollback
// can rename and drop databases. A container that is being killed still reads as running for
// a moment, so it checks again until the server answers.
func (r *run) reviveDB() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		if err = r.o.Services.Refresh(ctx, r.o.API); err != nil {
			return err
		}
		if _, err = r.o.Services.EnsureDatabase(ctx); err == nil {
			if err = r.pg.WaitReady(ctx, 5*time.Second); err == nil {
				return nil
			}
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("the database did not come back: %w", err)
}

func (r *run) discardStaged() {
	ctx := context.Background()
	for _, f := range r.folders {
		_ = f.discard(ctx, f.staged)
	}
	if r.db != nil {
		r.db.removeStaged(ctx)
	}
}

// finish takes the safety backup from what the swap set aside, then drops it. If the backup
// fails, the copies are kept and the journal says so: the restore itself has succeeded.
func (r *run) finish(ctx context.Context) {
	r.undo.forget()
	if err := r.complete(ctx); err != nil {
		r.o.Warn(err.Error())
	}
}

func (r *run) closeHelpers() {
	for _, f := range r.folders {
		f.close()
	}
}
