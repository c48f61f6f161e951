// Package checkpoint takes the verified backup that goes before something is deleted or moved:
// `down -v`, `unprotect`, the shell guard, the nightly run and migrate all go on only after
// Take (save, then verify with the code a restore uses) has succeeded. BeforeDelete also starts
// a stopped database for the save and puts it back, and can stop the app first so that the
// backup holds its last writes.
package checkpoint

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/progress"
	"github.com/echo-backup/echo-backup/repository"
	"github.com/echo-backup/echo-backup/store"
)

// Options say what to save, where, and how to tell the user.
type Options struct {
	Plan        *compose.Plan
	API         compose.Engine
	LocalEngine bool
	Dir         string
	Labels      map[string]string  // why it was taken: store.LabelPinned and friends
	Progress    *progress.Reporter // nil: none
	Say         func(string)       // what a step does; nil: nothing
	Warn        func(string)       // nil: nothing
	Lock        *store.Lock        // Dir's lock when the caller holds it; nil: the save takes it
	// Repo, when set, takes the backup instead of Dir (the nightly run of a deployment that
	// keeps its backups in a repository).
	Repo *repository.Repository
}

func (o Options) say(msg string) {
	if o.Say != nil {
		o.Say(msg)
	}
}

// Take saves the loaded project and verifies the archive before anything relies on it.
func Take(ctx context.Context, o Options) (*backup.Result, error) {
	rep := o.Progress
	rep.Start(ctx, "save")
	res, err := backup.Save(ctx, backup.SaveOptions{
		Plan: o.Plan, API: o.API, LocalEngine: o.LocalEngine,
		Dir: o.Dir, Labels: o.Labels,
		Progress: rep, Warn: o.Warn, Lock: o.Lock, Repo: o.Repo,
	})
	if err != nil {
		rep.Done(false)
		return nil, fmt.Errorf("saving project %q: %w", o.Plan.Name, err)
	}
	vo := backup.VerifyOptions{Path: res.Path, API: o.API, Repo: o.Repo, Snapshot: res.Snapshot}
	if db, err := o.Plan.DatabaseContainer(); err == nil {
		vo.DBContainer = db.ID
	}
	task := rep.Task("verify "+filepath.Base(res.Path), "Verifying", 0)
	_, err = backup.Verify(ctx, vo)
	task.End("Verified", err)
	rep.Done(err == nil)
	if err != nil {
		return nil, fmt.Errorf("verifying the backup just taken (%s): %w", res.Path, err)
	}
	o.say("Saved and verified " + res.Path)
	return res, nil
}

// take is Take, and a test's stand-in for it.
var take = Take

// Lifecycle stops and starts the project's services (compose.Services).
type Lifecycle interface {
	RunningApps() []string
	Stop(ctx context.Context, names []string) error
	Start(ctx context.Context, names []string) error
	EnsureDatabase(ctx context.Context) (started bool, err error)
	Refresh(ctx context.Context, api compose.Engine) error
}

// Engine is what BeforeDelete asks the engine itself: the networks a started database brought,
// and the container it removes again.
type Engine interface {
	compose.NetworkAPI
	ContainerRemove(ctx context.Context, container string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
}

// Delete says how the backup before a deletion is taken.
type Delete struct {
	Services Lifecycle
	Engine   Engine // nil: Options.API
	// StopApps: the whole project goes (down -v), so the app stops writing before the save,
	// or what it writes in between is lost.
	StopApps bool
}

// BeforeDelete takes a verified backup, starting the database for it if it is stopped, and
// puts the database back as it was: stopped, or without a container when it had none. With
// StopApps the running app services are stopped first and, if the backup fails, started
// again: nothing else has changed then. After a good backup they stay stopped for the deletion.
func BeforeDelete(ctx context.Context, o Options, d Delete) (res *backup.Result, err error) {
	svc, plan := d.Services, o.Plan
	api := d.Engine
	if api == nil {
		api = o.API
	}
	if d.StopApps {
		apps := svc.RunningApps()
		defer func() {
			if err != nil && len(apps) > 0 {
				err = StartAgain(context.WithoutCancel(ctx), o, svc, apps, err)
			}
		}()
		if err := StopApps(ctx, o, svc, apps); err != nil {
			return nil, err
		}
	}
	db, _ := plan.Service(plan.Database.Service)
	hadContainer := len(db.Containers) > 0
	networks, err := compose.ProjectNetworks(ctx, api, plan.Name)
	if err != nil {
		return nil, err
	}
	started, err := svc.EnsureDatabase(ctx)
	if started {
		o.say(fmt.Sprintf("echobackup: started %s for the backup; it is put back as it was afterwards.", db.Name))
		defer func() {
			if rerr := putDatabaseBack(context.WithoutCancel(ctx), o, svc, api, hadContainer, networks); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}
	if err != nil {
		return nil, fmt.Errorf("starting the database of project %q for the backup: %w", plan.Name, err)
	}
	if started {
		if err := svc.Refresh(ctx, o.API); err != nil {
			return nil, err
		}
	}
	return take(ctx, o)
}

// StopApps stops the running app services apps, so that the backup holds their last writes.
func StopApps(ctx context.Context, o Options, svc Lifecycle, apps []string) error {
	if len(apps) == 0 {
		return nil
	}
	o.say(fmt.Sprintf("echobackup: stopping %s, so that the backup holds their last writes.", strings.Join(apps, ", ")))
	if err := svc.Stop(ctx, apps); err != nil {
		return fmt.Errorf("stopping the app before the backup: %w", err)
	}
	// The manifest and the save read the services' state: they are stopped now.
	return svc.Refresh(ctx, o.API)
}

// StartAgain starts the apps StopApps stopped, after saveErr; it returns saveErr, with the
// start's failure added.
func StartAgain(ctx context.Context, o Options, svc Lifecycle, apps []string, saveErr error) error {
	if err := svc.Start(ctx, apps); err != nil {
		return fmt.Errorf("%w (and %s, stopped for the backup, did not start again: %v)", saveErr, strings.Join(apps, ", "), err)
	}
	o.say(fmt.Sprintf("echobackup: started %s again.", strings.Join(apps, ", ")))
	return saveErr
}

// putDatabaseBack stops the database started for the backup, and removes its container and the
// networks started with it if it had no container: a container left behind would hold the
// volume the user meant to delete, and a network the project they meant to remove.
func putDatabaseBack(ctx context.Context, o Options, svc Lifecycle, api Engine, hadContainer bool, networksBefore []string) error {
	plan := o.Plan
	name := plan.Database.Service
	if err := svc.Stop(ctx, []string{name}); err != nil {
		return fmt.Errorf("stopping %s again after the backup: %w", name, err)
	}
	if hadContainer {
		return nil
	}
	if err := svc.Refresh(ctx, o.API); err != nil {
		return err
	}
	db, _ := plan.Service(name)
	for _, c := range db.Containers {
		if _, err := api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{}); err != nil {
			return fmt.Errorf("removing %s, created for the backup: %w", c.Name, err)
		}
	}
	return compose.RemoveNewNetworks(ctx, api, plan.Name, networksBefore)
}
