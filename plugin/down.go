package plugin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/guard"
	"github.com/echo-backup/echo-backup/restore"
)

type downOptions struct {
	*projectOptions
	volumes       bool
	removeOrphans bool
	images        string
	timeout       int
	timeChanged   bool
	output        string
}

func downCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := downOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "down [OPTIONS] [SERVICES]",
		Short: "`docker compose down`, with a verified backup first when volumes would go",
		Long: "Runs `docker compose down` with the same flags. With -v/--volumes it first stops the app,\n" +
			"saves and verifies a backup (pinned, marked pre-down; a stopped database is started for it)\n" +
			"and releases the protection; if the backup fails, nothing is removed and the app is started again.",
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			opts.timeChanged = cmd.Flags().Changed("timeout")
			if opts.images != "" && opts.images != "all" && opts.images != "local" {
				return &compose.UserError{Err: fmt.Errorf(`--rmi must be "local" or "all", not %q`, opts.images)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := commandContext(cmd)
			defer stop()
			return userError(runDown(ctx, dockerCli, opts, args))
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.volumes, "volumes", "v", false, `Remove named volumes declared in the "volumes" section and anonymous volumes (after a verified backup)`)
	f.BoolVar(&opts.removeOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	f.StringVar(&opts.images, "rmi", "", `Remove images used by services: "local" or "all"`)
	f.IntVarP(&opts.timeout, "timeout", "t", 0, "Specify a shutdown timeout in seconds")
	f.StringVarP(&opts.output, "output", "o", "", "Backup folder (default: $"+backup.DirEnv+", else ./backups in the project folder)")
	return cmd
}

func runDown(ctx context.Context, dockerCli command.Cli, opts downOptions, services []string) (err error) {
	rep := reporter(ctx, false)
	rep.Start(ctx, "down")
	defer func() { rep.Done(err == nil) }()
	plan, api, err := loadPlanAPI(ctx, dockerCli, opts.projectOptions)
	if err != nil {
		return err
	}
	if j, _ := restore.ReadJournal(backup.Dir(opts.output, plan.WorkingDir), plan.Name); j != nil {
		// Waits for a restore that still runs (it holds the lock), so that what is read next is
		// an interrupted one's journal; the backup below takes the lock again.
		unlock, err := lockBackups(ctx, dockerCli, backup.Dir(opts.output, plan.WorkingDir))
		if err != nil {
			return err
		}
		defer unlock()
	}
	if err := noteInterruptedRestore(dockerCli, plan, backup.Dir(opts.output, plan.WorkingDir), "down"); err != nil {
		return err
	}
	do := compose.DownOptions{Volumes: opts.volumes, RemoveOrphans: opts.removeOrphans, Images: opts.images, Services: services}
	if opts.timeChanged {
		t := time.Duration(opts.timeout) * time.Second
		do.Timeout = &t
	}
	if !opts.volumes {
		return compose.Down(ctx, dockerCli, plan, do, composeEvents(ctx, dockerCli))
	}
	// The app stops before the save, so that nothing it writes afterwards is lost; a stopped
	// database is started for the save and put back.
	res, err := saveStartingDatabase(ctx, dockerCli, plan, api, preDelete{output: opts.output, pin: backup.PinnedPreDown, stopApps: true})
	if err != nil {
		return fmt.Errorf("nothing was removed: the backup before `down -v` failed: %w", err)
	}
	released, err := guard.Release(ctx, api, plan.Name)
	if err != nil {
		return fmt.Errorf("nothing was removed: %w", err)
	}
	if err := compose.Down(ctx, dockerCli, plan, do, composeEvents(ctx, dockerCli)); err != nil {
		return reprotect(ctx, dockerCli, api, plan, released, err)
	}
	fmt.Fprintf(dockerCli.Out(), "Removed project %s with its volumes. Its state just before is saved and verified in %s\n"+
		"Restore it with: docker echobackup restore %s\n", plan.Name, res.Path, res.Path)
	warnKept(ctx, dockerCli, api, plan)
	return nil
}

// reprotect puts the protection back after a failed down, for the volumes still there.
func reprotect(ctx context.Context, dockerCli command.Cli, api compose.Engine, plan *compose.Plan, released []guard.Sentinel, downErr error) error {
	if len(released) == 0 {
		return downErr
	}
	if err := reinspect(context.WithoutCancel(ctx), dockerCli, api, plan); err == nil {
		if _, err := guard.Protect(context.WithoutCancel(ctx), api, plan); err == nil {
			return fmt.Errorf("%w (the project's volumes are protected again)", downErr)
		}
	}
	return fmt.Errorf("%w (the protection is off: run `docker echobackup protect`)", downErr)
}

// warnKept names the data volumes compose kept because another container still uses them:
// compose only warns and exits 0.
func warnKept(ctx context.Context, dockerCli command.Cli, api compose.Engine, plan *compose.Plan) {
	if err := reinspect(ctx, dockerCli, api, plan); err != nil {
		return
	}
	// External volumes are never down's to remove.
	if kept := slices.DeleteFunc(plan.DataVolumes(), plan.External); len(kept) > 0 {
		fmt.Fprintf(dockerCli.Err(), "WARNING: volume(s) %s were kept: another container still uses them (`docker ps -a --filter volume=NAME`)\n",
			strings.Join(kept, ", "))
	}
}

// reinspect asks the engine again what exists; Inspect only ever marks items as found.
func reinspect(ctx context.Context, dockerCli command.Cli, api compose.Engine, plan *compose.Plan) error {
	for i := range plan.Items {
		plan.Items[i].Exists = false
	}
	return plan.Inspect(ctx, api, compose.IsLocalEngine(dockerCli))
}
