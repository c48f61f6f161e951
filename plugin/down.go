package plugin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/checkpoint"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/restore"
	"github.com/echo-backup/echo-backup/store"
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
	f.StringVarP(&opts.output, "output", "o", "", "Backup folder (default: $"+store.DirEnv+", else ./backups in the project folder)")
	return cmd
}

func runDown(ctx context.Context, dockerCli command.Cli, opts downOptions, services []string) (err error) {
	rep := reporter(ctx, false)
	rep.Start(ctx, "down")
	defer func() { rep.Done(err == nil) }()
	d, err := openDeployment(ctx, dockerCli, opts.projectOptions, opts.output)
	if err != nil {
		return err
	}
	plan, dir := d.Plan, d.Dir
	var lock *store.Lock
	if j, _ := restore.ReadJournal(dir, plan.Name); j != nil {
		// Waits for a restore that still runs (it holds the lock), so that what is read next is
		// an interrupted one's journal; the backup below gets the lock passed down.
		if lock, err = lockBackups(ctx, dockerCli, dir); err != nil {
			return err
		}
		defer lock.Unlock()
	}
	if err := noteInterruptedRestore(dockerCli, plan, dir, "down"); err != nil {
		return err
	}
	do := compose.DownOptions{Volumes: opts.volumes, RemoveOrphans: opts.removeOrphans, Images: opts.images, Services: services}
	if opts.timeChanged {
		t := time.Duration(opts.timeout) * time.Second
		do.Timeout = &t
	}
	composeDown := func(ctx context.Context) error {
		return compose.Down(ctx, dockerCli, plan, do, composeEvents(ctx, dockerCli))
	}
	if !opts.volumes {
		return composeDown(ctx)
	}
	co := checkpointOptions(ctx, dockerCli, d, map[string]string{store.LabelPinned: store.PinnedPreDown})
	co.Lock = lock
	res, err := checkpoint.DownVolumes(ctx, co, checkpoint.Down{Services: d.Services, Compose: composeDown})
	if err != nil {
		return err
	}
	fmt.Fprintf(dockerCli.Out(), "Removed project %s with its volumes. Its state just before is saved and verified in %s\n"+
		"Restore it with: docker echobackup restore %s\n", plan.Name, res.Backup.Path, res.Backup.Path)
	if len(res.Kept) > 0 {
		fmt.Fprintf(dockerCli.Err(), "WARNING: volume(s) %s were kept: another container still uses them (`docker ps -a --filter volume=NAME`)\n",
			strings.Join(res.Kept, ", "))
	}
	return nil
}
