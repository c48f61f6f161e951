package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/checkpoint"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/postgres"
	"github.com/echo-backup/echo-backup/progress"
	"github.com/echo-backup/echo-backup/restore"
	"github.com/echo-backup/echo-backup/store"
)

// Options say what Run moves where.
type Options struct {
	Source *compose.Deployment // the project here; Services is needed for StopSource
	Target *Target
	// Force replaces what the target holds, after a safety backup of it.
	Force bool
	// StopSource is a cutover: the app here stops before the save so that its last writes
	// move, and stays stopped after a good migration.
	StopSource bool
	// NoCopy keeps no copy of the stream here: the migration then uses no disk on this side.
	NoCopy   bool
	Progress *progress.Reporter
	Log      func(string) // what a step does, for the progress block
	Say      func(string) // a line on stderr
	Warn     func(string)
}

// Result is what a migration did.
type Result struct {
	Context string `json:"context"`
	// Backup is the copy kept here (pinned migrate), "" with NoCopy or when it could not be kept.
	Backup   string          `json:"backup"`
	Save     time.Duration   `json:"saveDuration"`
	Restore  *restore.Result `json:"restore"`
	Duration time.Duration   `json:"duration"`
	// StoppedHere are the app services StopSource stopped here and left stopped.
	StoppedHere []string `json:"stoppedHere,omitempty"`
}

// Run checks the target, then saves here in the stream form straight into the restore on the
// target. Nothing changes here or there before the checks pass; the target is rolled back by
// its restore when anything fails, and a stopped app here starts again.
func Run(ctx context.Context, o Options) (_ *Result, err error) {
	start := time.Now()
	plan, target := o.Source.Plan, o.Target
	o.Log(fmt.Sprintf("checking project %q on context %q", target.Plan.Name, target.Context))
	occupied, err := checkTarget(ctx, o)
	if err != nil {
		return nil, err
	}
	res := &Result{Context: target.Context}
	if o.StopSource {
		apps, restart, serr := stopSourceApps(ctx, o)
		if serr != nil {
			return nil, serr
		}
		res.StoppedHere = apps
		defer func() {
			if err != nil {
				err = restart(err)
			}
		}()
	}
	o.Log(fmt.Sprintf("saving here and restoring on context %q at the same time", target.Context))
	res.Backup, res.Restore, err = streamTo(ctx, o, len(occupied) > 0)
	res.Save, res.Duration = time.Since(start), time.Since(start)
	if err != nil {
		if res.Backup != "" {
			return nil, fmt.Errorf("migrating project %q to context %q: %w; the backup taken here is %s", plan.Name, target.Context, ExplainSSH(err), res.Backup)
		}
		return nil, fmt.Errorf("migrating project %q to context %q: %w", plan.Name, target.Context, ExplainSSH(err))
	}
	if res.Backup != "" {
		o.Say("Saved and verified " + res.Backup)
	}
	return res, nil
}

// checkTarget refuses, before anything changes here or there, a target that cannot take the
// deployment, and one that holds data unless Force. It returns what the target holds.
func checkTarget(ctx context.Context, o Options) ([]string, error) {
	plan, target := o.Source.Plan, o.Target
	db, err := plan.DatabaseContainer()
	if err != nil {
		return nil, err
	}
	pg := postgres.Target{API: o.Source.API, Container: db.ID, User: plan.Database.User, Database: plan.Database.Name, Password: plan.Database.Password}
	version, err := pg.ServerVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the source's PostgreSQL version: %w", err)
	}
	occupied, err := target.Check(ctx, db.ID, version)
	if err != nil {
		return nil, err
	}
	if len(occupied) > 0 && !o.Force {
		return nil, &compose.UserError{Err: fmt.Errorf("project %q on context %q already holds data (%s): "+
			"use --force to replace it (a safety backup of it is taken first); nothing was changed",
			target.Plan.Name, target.Context, strings.Join(occupied, ", "))}
	}
	return occupied, nil
}

// stopSourceApps stops the running app services here for StopSource; restart starts them
// again after a failure (a failed stop included: some may have stopped).
func stopSourceApps(ctx context.Context, o Options) ([]string, func(error) error, error) {
	svc := o.Source.Services
	apps := svc.RunningApps()
	co := checkpoint.Options{API: o.Source.API, Say: o.Say}
	restart := func(err error) error {
		if len(apps) == 0 {
			return err
		}
		return checkpoint.StartAgain(context.WithoutCancel(ctx), co, svc, apps, err)
	}
	if err := checkpoint.StopApps(ctx, co, svc, apps); err != nil {
		return nil, nil, restart(err)
	}
	return apps, restart, nil
}

// streamTo runs the save here into the restore on the target through a pipe in this process,
// keeping a copy of the stream here, pinned (the way back), verified once the target has it.
func streamTo(ctx context.Context, o Options, occupied bool) (string, *restore.Result, error) {
	plan, target := o.Source.Plan, o.Target
	if err := target.PrepareFolders(ctx); err != nil {
		return "", nil, err
	}
	keep, err := o.openCopy()
	if err != nil {
		return "", nil, err
	}
	defer keep.discard()
	saveTask := o.Progress.Task("save here", "Saving", 0)
	save := func(w io.Writer) error {
		_, err := backup.Save(ctx, backup.SaveOptions{
			Plan: plan, API: o.Source.API, LocalEngine: o.Source.Local, Dir: o.Source.Dir,
			Labels:   map[string]string{store.LabelPinned: store.PinnedMigrate, LabelTo: target.Context},
			Progress: o.Progress.Under(saveTask), Warn: o.Warn,
			Stream: keep.tee(w),
		})
		saveTask.End("Saved", err)
		return err
	}
	var restored *restore.Result
	load := func(r io.Reader) (err error) {
		restored, err = restore.Run(ctx, restore.Options{Plan: target.Plan, API: target.API, Services: target.Services,
			Stream: r, SafetyBackup: occupied, Dir: SafetyDir(o.Source.Dir, target.Context),
			LocalEngine: false, Log: func(s string) { o.Log(ExplainSSHText(s)) }, Progress: o.Progress})
		return err
	}
	saved, err := pipe(save, load)
	if !saved {
		return "", nil, err
	}
	// The save is whole even when the restore failed: its copy is a good backup of here.
	kept, keepErr := keep.finish(ctx, o)
	return kept, restored, errors.Join(err, keepErr)
}

// pipe runs save into load through an in-process pipe. Whichever side fails ends the pipe, so
// the other stops too: a load that did not get the whole stream refuses it and rolls back.
// The load's own error wins when it stopped first, as it says why. saved reports a whole save.
func pipe(save func(io.Writer) error, load func(io.Reader) error) (saved bool, err error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := save(pw)
		pw.CloseWithError(err) // nil: the load sees the end; else it refuses what it got
		done <- err
	}()
	loadErr := load(pr)
	pr.CloseWithError(errLoadStopped)
	saveErr := <-done
	switch {
	case saveErr != nil && errors.Is(saveErr, errLoadStopped):
		return false, loadErr
	case saveErr != nil:
		return false, fmt.Errorf("saving here: %w (the target was rolled back)", saveErr)
	}
	return true, loadErr
}

var errLoadStopped = errors.New("the restore on the target stopped reading")

// localCopy is the stream's copy kept here. Keeping it must not cost the migration: when the
// disk here fills up, the copy is dropped and the stream goes on to the target alone.
type localCopy struct {
	file copyFile // nil: no copy
	err  error    // why the copy was dropped
}

// copyFile is an archive.StreamFile.
type copyFile interface {
	io.Writer
	Keep() (string, error)
	Discard()
}

var _ copyFile = (*archive.StreamFile)(nil)

func (o Options) openCopy() (*localCopy, error) {
	if o.NoCopy {
		return &localCopy{}, nil
	}
	f, err := store.CreateCopy(o.Source.Dir, o.Source.Plan.Name, time.Now())
	if err != nil {
		return nil, err
	}
	return &localCopy{file: f}, nil
}

func (c *localCopy) tee(w io.Writer) io.Writer {
	if c.file == nil {
		return w
	}
	return io.MultiWriter(spare{c}, w)
}

// spare writes into the copy until it fails once, then lets the bytes go by.
type spare struct{ c *localCopy }

func (s spare) Write(p []byte) (int, error) {
	if s.c.err == nil {
		if _, err := s.c.file.Write(p); err != nil {
			s.c.err = err
		}
	}
	return len(p), nil
}

func (c *localCopy) discard() {
	if c.file != nil {
		c.file.Discard()
	}
}

// finish names and verifies the copy once the target has the deployment; a copy that could
// not be written is told, not an error: the migration itself succeeded.
func (c *localCopy) finish(ctx context.Context, o Options) (string, error) {
	switch {
	case c.file == nil:
		return "", nil
	case c.err != nil:
		o.Warn(fmt.Sprintf("no copy of the migration's backup was kept here: writing it into %s failed (%v); "+
			"the target got the whole stream all the same", o.Source.Dir, c.err))
		return "", nil
	}
	kept, err := c.file.Keep()
	if err != nil {
		return "", err
	}
	return kept, verifyCopy(ctx, o, kept)
}

// verifyCopy verifies the copy kept here with the code verify runs, and records it.
func verifyCopy(ctx context.Context, o Options, path string) error {
	vo := backup.VerifyOptions{Path: path, API: o.Source.API}
	if db, err := o.Source.Plan.DatabaseContainer(); err == nil {
		vo.DBContainer = db.ID
	}
	task := o.Progress.Task("verify "+filepath.Base(path), "Verifying", 0)
	_, err := backup.Verify(ctx, vo)
	task.End("Verified", err)
	if err != nil {
		return fmt.Errorf("verifying the backup kept here (%s): %w", path, err)
	}
	return nil
}
