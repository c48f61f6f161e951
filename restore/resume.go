package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/mount"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/engine"
	"github.com/echo-backup/echo-backup/postgres"
	"github.com/echo-backup/echo-backup/store"
)

// Resumed says how an interrupted restore ended.
type Resumed struct {
	Project      string `json:"project"`
	Archive      string `json:"archive"`
	Phase        string `json:"phase"`   // where it was interrupted
	Outcome      string `json:"outcome"` // "rolled back", "finished" or "nothing to resume"
	SafetyBackup string `json:"safetyBackup,omitempty"`
}

// Outcomes of a resume.
const (
	OutcomeRolledBack = "rolled back"
	OutcomeFinished   = "finished"
	// OutcomeNone: no journal, no interrupted restore (only printed: Resume returns nil).
	OutcomeNone = "nothing to resume"
)

// Resume finishes or rolls back the restore of the project that the journal in o.Dir says was
// interrupted: rolled back to the exact state before it if not every swap was done, finished
// (the app started, the safety backup taken, the set-aside copies dropped) if they were. It
// returns nil when there is nothing to resume. The caller holds the backup folder's lock.
func Resume(ctx context.Context, o Options) (*Resumed, error) {
	o.setDefaults()
	j, err := ReadJournal(o.Dir, o.Plan.Name)
	if err != nil || j == nil {
		return nil, err
	}
	if !j.Of(o.Plan.WorkingDir) {
		return nil, &compose.UserError{Err: j.Elsewhere(o.Dir)}
	}
	o.Warn(j.Warning())
	return resumeJournal(ctx, o, j)
}

func resumeJournal(ctx context.Context, o Options, j *Journal) (*Resumed, error) {
	// Like the swap itself, a resume is not cut off halfway by Ctrl-C.
	ctx = context.WithoutCancel(ctx)
	r, err := fromJournal(o, j)
	if err != nil {
		return nil, err
	}
	defer r.closeHelpers()
	out := &Resumed{Project: j.Project, Archive: j.Archive, Phase: j.Phase, Outcome: OutcomeFinished}
	if j.Rollback() {
		out.Outcome = OutcomeRolledBack
		o.Log(fmt.Sprintf("rolling back the restore interrupted at %q", j.Phase))
		if err := r.rollBackJournal(ctx); err != nil {
			return nil, fmt.Errorf("rolling back the restore of %s interrupted at %q: %w (run restore --resume again)", j.Archive, j.Phase, err)
		}
		return out, nil
	}
	o.Log(fmt.Sprintf("finishing the restore interrupted at %q", j.Phase))
	if err := r.finishJournal(ctx); err != nil {
		return nil, fmt.Errorf("finishing the restore of %s interrupted at %q: %w", j.Archive, j.Phase, err)
	}
	out.SafetyBackup = r.res.SafetyBackup
	return out, nil
}

// fromJournal rebuilds a restore's stages from its journal, for the current project.
func fromJournal(o Options, j *Journal) (*run, error) {
	r := &run{o: o, res: &Result{Archive: j.Archive}, id: j.ID, apps: j.Apps, j: j, safety: j.Safety}
	db := o.Plan.Database
	r.pg = postgres.Target{API: o.API, User: db.User, Database: db.Name, Password: db.Password}
	if d := j.Database; d != nil {
		if d.Live != db.Name {
			return nil, &compose.UserError{Err: fmt.Errorf("the interrupted restore was of database %q, but the project's database is %q now: "+
				"put the compose files back as they were, then run restore --resume", d.Live, db.Name)}
		}
		r.db = &dbStage{pg: r.pg, id: j.ID, dir: d.DumpDir, newName: d.New, oldName: d.Old}
	}
	for _, f := range j.Folders {
		r.folders = append(r.folders, &folderStage{name: f.Name, kind: f.Kind, source: f.Source, live: f.Live, staged: f.Staged, old: f.Old})
	}
	return r, nil
}

// rollBackJournal puts everything back as it was before the restore: the folders and the
// database under their own names, the staged copies dropped, the app started again.
func (r *run) rollBackJournal(ctx context.Context) error {
	if r.j.Phase == PhaseSetup {
		if err := r.removeNew(ctx, r.j.Before.existed()); err != nil {
			return err
		}
		return r.j.remove()
	}
	if err := r.connect(ctx); err != nil {
		return err
	}
	p := phaseIndex(r.j.Phase)
	if p >= phaseIndex(PhaseSwapped) {
		// A start that failed, or a rollback killed after it: the app must not run on data
		// that is being swapped back.
		if err := r.o.Services.Stop(ctx, r.apps); err != nil {
			return err
		}
	}
	if !r.j.Unswapped && p >= phaseIndex(PhaseSwapping) {
		for i := len(r.folders) - 1; i >= 0; i-- {
			if err := r.folders[i].unswap(ctx); err != nil {
				return fmt.Errorf("putting %s back: %w", r.folders[i].describe(), err)
			}
		}
		if err := r.putDatabaseBack(ctx); err != nil {
			return err
		}
		if err := r.j.update(func() { r.j.Unswapped = true }); err != nil {
			return err
		}
	}
	var errs []error
	for _, f := range r.folders {
		errs = append(errs, f.discard(ctx, f.staged))
	}
	if r.db != nil {
		errs = append(errs, r.dropNewDatabase(ctx), r.removeDump(ctx))
	}
	if p >= phaseIndex(PhaseStopping) {
		errs = append(errs, r.o.Services.Start(ctx, r.apps))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return r.j.remove()
}

// finishJournal completes a restore whose swaps were all done.
func (r *run) finishJournal(ctx context.Context) error {
	if err := r.connect(ctx); err != nil {
		return err
	}
	if d := r.j.Database; d != nil {
		name, err := r.pg.NameOf(ctx, d.NewOID)
		if err != nil {
			return err
		}
		if name != d.Live {
			return fmt.Errorf("the restored database is not in place (it is %q, not %q): nothing was dropped", name, d.Live)
		}
	}
	if r.j.Phase == PhaseSwapped {
		r.o.Log("starting " + strings.Join(r.apps, ", "))
		if err := r.o.Services.Start(ctx, r.apps); err != nil {
			return err
		}
		if err := r.j.set(PhaseStarted); err != nil {
			return err
		}
	}
	r.res.SafetyBackup = r.j.SafetyBackup
	return r.complete(ctx)
}

// connect makes the database answer (the restore may have died with it) and gives every
// folder a helper to run the swap scripts in.
func (r *run) connect(ctx context.Context) error {
	if r.db != nil || r.safety {
		if err := r.o.Services.Refresh(ctx, r.o.API); err != nil {
			return err
		}
		if err := r.attachDB(ctx); err != nil {
			return err
		}
		if r.db != nil {
			r.db.pg = r.pg
		}
	}
	for _, f := range r.folders {
		if err := f.attach(ctx, r.o.API, r.o.Plan.Name, r.o.Plan.Database.Image); err != nil {
			return err
		}
	}
	return nil
}

// putDatabaseBack renames the databases back by their object ids, which the journal recorded
// before any rename: whatever the names after a crash, the restored one goes back to the
// staged name and the old one to the live name.
func (r *run) putDatabaseBack(ctx context.Context) error {
	if r.db == nil {
		return nil
	}
	d := r.j.Database
	if d.NewOID == 0 {
		return errors.New("the journal does not say which database is the restored one: nothing was renamed")
	}
	newName, err := r.pg.NameOf(ctx, d.NewOID)
	if err != nil {
		return err
	}
	if newName == d.Live {
		if err := r.pg.Rename(ctx, d.Live, d.New); err != nil {
			return err
		}
	}
	oldName, err := r.pg.NameOf(ctx, d.LiveOID)
	if err != nil || oldName == "" || oldName == d.Live {
		return err
	}
	return r.pg.Rename(ctx, oldName, d.Live)
}

// dropNewDatabase drops the staged database, never the live one.
func (r *run) dropNewDatabase(ctx context.Context) error {
	d := r.j.Database
	name := d.New
	if d.NewOID != 0 {
		var err error
		if name, err = r.pg.NameOf(ctx, d.NewOID); err != nil || name == "" {
			return err
		}
	} else if oid, err := r.pg.OID(ctx, name); err != nil || oid == 0 || oid == d.LiveOID {
		// Recorded before the swap began: without it, no rename has happened yet.
		return err
	}
	if name == d.Live {
		return fmt.Errorf("the staged database is under the live name %q: not dropping it", name)
	}
	return r.pg.Drop(ctx, name)
}

// dropOldDatabase drops the database the swap set aside, never the live one.
func (r *run) dropOldDatabase(ctx context.Context) error {
	d := r.j.Database
	name, err := r.pg.NameOf(ctx, d.LiveOID)
	if err != nil || name == "" {
		return err
	}
	if name == d.Live {
		return fmt.Errorf("database %q is still the one from before the restore: not dropping it", name)
	}
	return r.pg.Drop(ctx, name)
}

// removeDump removes the staged dump's folder.
func (r *run) removeDump(ctx context.Context) error {
	d := r.j.Database
	if d.DumpLocal {
		return os.RemoveAll(d.DumpDir)
	}
	if r.pg.Container == "" {
		return nil
	}
	_, err := engine.Output(ctx, r.o.API, r.pg.Container, engine.ExecOptions{Cmd: []string{"rm", "-rf", d.DumpDir}})
	return err
}

// complete takes the safety backup from what the swap set aside, if it is wanted and not yet
// taken, then drops the set-aside copies and ends the journal. If the backup fails the copies
// stay, and the journal says why.
func (r *run) complete(ctx context.Context) error {
	if r.j.Phase == PhaseStarted && r.safety && r.j.SafetyBackup == "" {
		path, err := r.safetyBackup(ctx)
		if err != nil {
			_ = r.j.update(func() { r.j.SafetyError = err.Error() })
			return fmt.Errorf("the restore is done, but its safety backup failed, so the state before it is kept beside the live data (%s); "+
				"run docker echobackup restore --resume to try again: %w", r.setAside(), err)
		}
		r.res.SafetyBackup = path
		if err := r.j.update(func() { r.j.SafetyBackup, r.j.SafetyError = path, "" }); err != nil {
			return err
		}
	}
	if err := r.j.set(PhaseCleanup); err != nil {
		return err
	}
	r.o.Log("removing what the swap set aside")
	var errs []error
	if r.db != nil {
		errs = append(errs, r.dropOldDatabase(ctx), r.removeDump(ctx))
	}
	for _, f := range r.folders {
		errs = append(errs, f.discard(ctx, f.old))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing what the swap set aside: %w (run docker echobackup restore --resume to try again)", err)
	}
	return r.j.remove()
}

// setAside names the copies a restore keeps when it cannot drop them yet.
func (r *run) setAside() string {
	var parts []string
	if r.db != nil && r.j.Database.LiveOID != 0 {
		parts = append(parts, fmt.Sprintf("database %q", r.j.Database.Old))
	}
	for _, f := range r.folders {
		parts = append(parts, f.describe()+" in "+f.asidePath())
	}
	return strings.Join(parts, ", ")
}

// newJournal starts the journal of this restore; nothing is written yet.
func (r *run) newJournal(before existed) *Journal {
	b := &Before{DBContainer: before.dbContainer, Networks: before.networks}
	for v, ok := range before.volumes {
		if ok {
			b.Volumes = append(b.Volumes, v)
		}
	}
	sort.Strings(b.Volumes)
	return &Journal{Version: journalVersion, Project: r.o.Plan.Name, WorkingDir: r.o.Plan.WorkingDir,
		Archive: r.src.describe(), ID: r.id, Host: hostname(), PID: os.Getpid(), Started: time.Now().UTC(), Apps: r.apps,
		Before: b, path: JournalPath(r.o.Dir, r.o.Plan.Name)}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func (b *Before) existed() existed {
	e := existed{volumes: map[string]bool{}}
	if b == nil {
		// Without a record nothing may be removed: count everything as there before.
		e.dbContainer = true
		return e
	}
	e.dbContainer, e.networks = b.DBContainer, b.Networks
	for _, v := range b.Volumes {
		e.volumes[v] = true
	}
	return e
}

// journalStaging records what staging will create, before it does.
func (r *run) journalStaging(ctx context.Context) error {
	var db *JournalDB
	if r.db != nil {
		oid, err := r.pg.OID(ctx, r.pg.Database)
		if err != nil {
			return err
		}
		db = &JournalDB{Live: r.pg.Database, New: r.db.newName, Old: r.db.oldName, LiveOID: oid,
			DumpDir: r.db.dumpDir(), DumpLocal: r.pg.Near != nil}
	}
	var folders []JournalFolder
	for _, f := range r.folders {
		folders = append(folders, JournalFolder{Name: f.name, Kind: f.kind, Source: f.source, Live: f.live, Staged: f.staged, Old: f.old})
	}
	return r.j.update(func() {
		r.j.Phase, r.j.Safety, r.j.Database, r.j.Folders = PhaseStaging, r.safety, db, folders
	})
}

// journalStopping records the restored database's object id, before the app stops (so that
// the downtime does not wait for it) and before the first rename.
func (r *run) journalStopping(ctx context.Context) error {
	var oid int64
	if r.db != nil {
		var err error
		if oid, err = r.pg.OID(ctx, r.db.newName); err != nil {
			return err
		}
		if oid == 0 {
			return fmt.Errorf("the restored database %q is gone", r.db.newName)
		}
	}
	return r.j.update(func() {
		r.j.Phase = PhaseStopping
		if r.j.Database != nil {
			r.j.Database.NewOID = oid
		}
	})
}

// attach gives a folder rebuilt from a journal a helper that mounts it, as open does.
func (s *folderStage) attach(ctx context.Context, api compose.Engine, project, image string) error {
	if s.h != nil {
		return nil
	}
	h, err := engine.CreateHelper(ctx, api, engine.HelperOptions{Project: project, Image: image,
		Mounts: []mount.Mount{s.mount()}, Cmd: []string{"sleep", "86400"}, Purpose: "restore"})
	if err != nil {
		return err
	}
	s.h = h
	return h.Start(ctx)
}

// keepRootAside gives the folder that receives a volume's set-aside entries the volume root's
// owner and mode, and returns the root's mtime for dateAside: the safety backup taken from it
// then holds the volume as it was. A bind folder is set aside whole and keeps its own.
func (s *folderStage) keepRootAside(ctx context.Context) (string, error) {
	if s.kind != "volume" {
		return "", nil
	}
	out, err := engine.Output(ctx, s.h.API(), s.h.ID, engine.ExecOptions{Cmd: []string{"sh", "-c", `set -e
set -- "$1" "$2" $(stat -c '%u:%g %a %Y' "$1")
mkdir -p "$2"; chown "$3" "$2"; chmod "$4" "$2"; echo "$5"`, "sh", s.live, s.old}})
	if err != nil {
		return "", fmt.Errorf("setting %s aside: %w", s.describe(), err)
	}
	return strings.TrimSpace(out), nil
}

func (s *folderStage) dateAside(ctx context.Context, mtime string) error {
	if mtime == "" {
		return nil
	}
	return s.sh(ctx, `touch -d "@$2" "$1"`, s.old, mtime)
}

// asidePath is where the swap put the live folder: a host folder beside a bind's, or a folder
// inside the volume.
func (s *folderStage) asidePath() string {
	if s.kind == "volume" {
		return path.Base(s.old)
	}
	return filepath.Join(filepath.Dir(s.source), path.Base(s.old))
}

// safetyBackup saves the state from before the restore, read from the set-aside database and
// folders: the app stopped before they were set aside, so every write it made is in it. The
// manifest names the live database and folders. It counts once it has verified.
func (r *run) safetyBackup(ctx context.Context) (string, error) {
	r.o.Log("saving the state from before the restore, from the copies the swap set aside (safety backup)")
	from := &backup.SetAside{Folders: map[string]string{}}
	plan := *r.o.Plan
	plan.Items = append([]compose.Item(nil), r.o.Plan.Items...)
	if d := r.j.Database; d != nil {
		name, err := r.pg.NameOf(ctx, d.LiveOID)
		if err != nil {
			return "", err
		}
		if name == "" || name == d.Live {
			return "", fmt.Errorf("the database from before the restore is not set aside under %q", d.Old)
		}
		from.Database = name
	}
	for _, f := range r.folders {
		had, err := f.hadLive(ctx)
		if err != nil {
			return "", err
		}
		if !had {
			// There was nothing there before the restore: the backup must not hold the restored copy.
			markMissing(plan.Items, f.kind, f.source)
			continue
		}
		from.Folders[f.source] = f.asidePath()
	}
	task := r.o.Progress.Task("safety backup", "Saving", 0)
	res, err := backup.Save(ctx, backup.SaveOptions{
		Plan: &plan, API: r.o.API, LocalEngine: r.o.LocalEngine, Dir: r.o.Dir,
		Labels: map[string]string{store.LabelPinned: store.PinnedPreRestore}, ToolVersion: r.o.ToolVersion,
		Warn: r.o.Warn, From: from, Progress: r.o.Progress.Under(task), Lock: r.o.Lock,
	})
	task.End("Saved", err)
	if err != nil {
		return "", fmt.Errorf("taking the safety backup: %w", err)
	}
	if _, err := backup.Verify(ctx, backup.VerifyOptions{Path: res.Path, API: r.o.API, DBContainer: r.pg.Container}); err != nil {
		return "", fmt.Errorf("verifying the safety backup %s: %w", res.Path, err)
	}
	r.o.Log("safety backup saved and verified: " + res.Path)
	return res.Path, nil
}

// hadLive tells whether the swap set a live folder aside (a missing bind folder is not).
func (s *folderStage) hadLive(ctx context.Context) (bool, error) {
	out, err := engine.Output(ctx, s.h.API(), s.h.ID, engine.ExecOptions{Cmd: []string{"sh", "-c", `[ -e "$1" ] && echo yes || echo no`, "sh", s.old}})
	return strings.TrimSpace(out) == "yes", err
}

func markMissing(items []compose.Item, kind, source string) {
	for i := range items {
		if string(items[i].Kind) == kind && items[i].Source == source {
			items[i].Exists = false
		}
	}
}
