package plugin

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
)

// saveVerified takes a backup of the loaded project and checks it before anything relies on
// it: down, unprotect, the shell guard, the schedule and migrate all go on only after this.
// Progress goes to stderr; labels mark why it was taken (backup.LabelPinned and friends).
func saveVerified(ctx context.Context, dockerCli command.Cli, plan *compose.Plan, api compose.Engine,
	dir string, labels map[string]string) (*backup.Result, error) {
	rep := reporter(ctx, false)
	rep.Start(ctx, "save")
	res, err := backup.Save(ctx, backup.SaveOptions{
		Plan: plan, API: api, LocalEngine: compose.IsLocalEngine(dockerCli),
		Dir: dir, Labels: labels, ToolVersion: Version,
		Progress: rep, Warn: warner(dockerCli, rep),
	})
	if err != nil {
		rep.Done(false)
		return nil, fmt.Errorf("saving project %q: %w", plan.Name, err)
	}
	vo := backup.VerifyOptions{Path: res.Path, API: api}
	if db, err := plan.DatabaseContainer(); err == nil {
		vo.DBContainer = db.ID
	}
	task := rep.Task("verify "+filepath.Base(res.Path), "Verifying", 0)
	_, err = backup.Verify(ctx, vo)
	task.End("Verified", err)
	rep.Done(err == nil)
	if err != nil {
		return nil, fmt.Errorf("verifying the backup just taken (%s): %w", res.Path, err)
	}
	say(ctx, dockerCli, "Saved and verified "+res.Path)
	return res, nil
}

// savedVolumesAtRisk are the project's data volumes (compose.Plan.DataVolumes) among volumes
// (nil: all of them).
func savedVolumesAtRisk(plan *compose.Plan, volumes []string) []string {
	return slices.DeleteFunc(plan.DataVolumes(), func(v string) bool {
		return volumes != nil && !slices.Contains(volumes, v)
	})
}

// preDelete says how the backup before a deletion is taken.
type preDelete struct {
	output string // the --output flag: "" is $ECHOBACKUP_DIR, else ./backups in the project folder
	pin    string // why it was taken (backup.LabelPinned): backup.PinnedPreDown, pinnedPreUnprotect
	// stopApps: the whole project goes (down -v), so the app stops writing before the save,
	// or what it writes in between is lost.
	stopApps bool
}

// saveStartingDatabase takes a verified backup, starting the database for it if it is stopped,
// and puts the database back as it was: stopped, or without a container when it had none.
// With stopApps the running app services are stopped first and, if the backup fails, started
// again: nothing else has changed then. After a good backup they stay stopped for the down.
func saveStartingDatabase(ctx context.Context, dockerCli command.Cli, plan *compose.Plan, api compose.Engine, o preDelete) (res *backup.Result, err error) {
	svc, err := compose.NewServices(dockerCli, plan)
	if err != nil {
		return nil, err
	}
	if o.stopApps {
		apps := svc.RunningApps()
		defer func() {
			if err != nil && len(apps) > 0 {
				err = startAppsAgain(context.WithoutCancel(ctx), dockerCli, svc, apps, err)
			}
		}()
		if err := stopAppsForSave(ctx, dockerCli, svc, api, apps); err != nil {
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
		say(ctx, dockerCli, fmt.Sprintf("echobackup: started %s for the backup; it is put back as it was afterwards.", db.Name))
		defer func() {
			if rerr := putDatabaseBack(context.WithoutCancel(ctx), svc, plan, api, hadContainer, networks); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}
	if err != nil {
		return nil, fmt.Errorf("starting the database of project %q for the backup: %w", plan.Name, err)
	}
	if started {
		if err := svc.Refresh(ctx, api); err != nil {
			return nil, err
		}
	}
	return saveVerified(ctx, dockerCli, plan, api, backup.Dir(o.output, plan.WorkingDir), map[string]string{backup.LabelPinned: o.pin})
}

// stopAppsForSave stops the running app services, so that the backup holds their last writes.
func stopAppsForSave(ctx context.Context, dockerCli command.Cli, svc *compose.Services, api compose.Engine, apps []string) error {
	if len(apps) == 0 {
		return nil
	}
	say(ctx, dockerCli, fmt.Sprintf("echobackup: stopping %s, so that the backup holds their last writes.", strings.Join(apps, ", ")))
	if err := svc.Stop(ctx, apps); err != nil {
		return fmt.Errorf("stopping the app before the backup: %w", err)
	}
	// The manifest and the save read the services' state: they are stopped now.
	return svc.Refresh(ctx, api)
}

func startAppsAgain(ctx context.Context, dockerCli command.Cli, svc *compose.Services, apps []string, saveErr error) error {
	if err := svc.Start(ctx, apps); err != nil {
		return fmt.Errorf("%w (and %s, stopped for the backup, did not start again: %v)", saveErr, strings.Join(apps, ", "), err)
	}
	say(ctx, dockerCli, fmt.Sprintf("echobackup: started %s again.", strings.Join(apps, ", ")))
	return saveErr
}

// putDatabaseBack stops the database started for the backup, and removes its container and the
// networks started with it if it had no container: a container left behind would hold the
// volume the user meant to delete, and a network the project they meant to remove.
func putDatabaseBack(ctx context.Context, svc *compose.Services, plan *compose.Plan, api compose.Engine, hadContainer bool, networksBefore []string) error {
	name := plan.Database.Service
	if err := svc.Stop(ctx, []string{name}); err != nil {
		return fmt.Errorf("stopping %s again after the backup: %w", name, err)
	}
	if hadContainer {
		return nil
	}
	if err := svc.Refresh(ctx, api); err != nil {
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
