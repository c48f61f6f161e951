package plugin

import (
	"context"

	"github.com/docker/cli/cli/command"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/checkpoint"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/store"
)

// checkpointOptions are the deployment's checkpoint with the command's settings: its progress
// block and its stderr.
func checkpointOptions(ctx context.Context, dockerCli command.Cli, d *compose.Deployment, labels map[string]string) checkpoint.Options {
	rep := reporter(ctx, false)
	return checkpoint.Options{Plan: d.Plan, API: d.API, LocalEngine: d.Local,
		Dir: d.Dir, Labels: labels, Progress: rep,
		Say: func(msg string) { say(ctx, dockerCli, msg) }, Warn: warner(dockerCli, rep)}
}

// preDelete says how the backup before a deletion is taken.
type preDelete struct {
	output   string // the --output flag: "" is $ECHOBACKUP_DIR, else ./backups in the project folder
	pin      string // why it was taken (store.LabelPinned): store.PinnedPreDown, pinnedPreUnprotect
	stopApps bool   // see checkpoint.Delete
}

// saveStartingDatabase is checkpoint.BeforeDelete with the command's settings.
func saveStartingDatabase(ctx context.Context, dockerCli command.Cli, plan *compose.Plan, api compose.Engine, o preDelete) (*backup.Result, error) {
	svc, err := compose.NewServices(dockerCli, plan)
	if err != nil {
		return nil, err
	}
	d := &compose.Deployment{Plan: plan, API: api, Local: compose.IsLocalEngine(dockerCli), Dir: store.Dir(o.output, plan.WorkingDir)}
	co := checkpointOptions(ctx, dockerCli, d, map[string]string{store.LabelPinned: o.pin})
	return checkpoint.BeforeDelete(ctx, co, checkpoint.Delete{Services: svc, StopApps: o.stopApps})
}
