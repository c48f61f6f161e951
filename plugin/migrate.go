package plugin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/migrate"
)

type migrateOptions struct {
	*projectOptions
	toContext string
	force     bool
	dir       string
	format    string
	// stopSource: a cutover, the app here stops before the save so that its last writes move.
	stopSource bool
	noCopy     bool
}

func migrateCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := migrateOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "migrate --to-context NAME [OPTIONS]",
		Short: "Move the deployment to the engine of another docker context",
		Long: "Streams a backup of the deployment straight into a restore on the engine of another docker\n" +
			"context (`docker context create NAME --docker host=ssh://…`), with the same compose files, and\n" +
			"keeps a copy here, pinned and verified: the way back (--no-copy keeps none; a copy the disk\n" +
			"here has no room for is dropped with a warning, the migration goes on). The target's images and PostgreSQL version are checked first; a target that\n" +
			"already holds data is refused unless --force, and then saved first. With --stop-source (a\n" +
			"cutover) the app services here stop before the save, so the backup holds their last writes, and\n" +
			"stay stopped after a good migration; if it fails they start again.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := commandContext(cmd)
			defer stop()
			return userError(runMigrate(ctx, dockerCli, opts))
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.toContext, "to-context", "", "The docker context to move the deployment to (required)")
	f.BoolVar(&opts.force, "force", false, "Replace what the target already holds, after a safety backup of it")
	f.StringVarP(&opts.dir, "output", "o", "", "Backup folder here, for the migration's backup and the target's safety backup")
	f.StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	f.BoolVar(&opts.stopSource, "stop-source", false, "Stop the app services here (not the database) before the save, and leave them stopped")
	f.BoolVar(&opts.noCopy, "no-copy", false, "Keep no copy of the backup here: the stream goes to the target only, using no disk here")
	return cmd
}

// migrateResult is what a migration did, for --format json.
type migrateResult struct {
	*migrate.Result
	project string
}

func runMigrate(ctx context.Context, dockerCli command.Cli, opts migrateOptions) (err error) {
	// A failed or cut ssh:// connection to the target, told in ssh's words.
	defer func() { err = migrate.ExplainSSH(err) }()
	if err := checkMigrate(dockerCli, opts); err != nil {
		return err
	}
	rep := reporter(ctx, opts.format == formatJSON)
	rep.Start(ctx, "migrate")
	defer func() { rep.Done(err == nil) }()
	rep.ExplainErrors(migrate.ExplainSSHText)
	d, err := openDeployment(ctx, dockerCli, opts.projectOptions, opts.dir)
	if err != nil {
		return err
	}
	target, err := migrate.Open(ctx, opts.toContext, opts.ProjectOptions, opts.dbService)
	if err != nil {
		return err
	}
	res, err := migrate.Run(ctx, migrate.Options{Source: d, Target: target, Force: opts.force,
		StopSource: opts.stopSource, NoCopy: opts.noCopy, Progress: rep,
		Log: logTo(rep, dockerCli, opts.format), Say: func(msg string) { say(ctx, dockerCli, msg) }, Warn: warner(dockerCli, rep)})
	if err != nil {
		return err
	}
	return printMigrated(dockerCli, &migrateResult{Result: res, project: d.Plan.Name}, opts.format)
}

func checkMigrate(dockerCli command.Cli, opts migrateOptions) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	if opts.toContext == "" {
		return &compose.UserError{Err: fmt.Errorf("--to-context is required: the docker context of the target engine (see `docker context ls`)")}
	}
	if opts.toContext == dockerCli.CurrentContext() {
		return &compose.UserError{Err: fmt.Errorf("context %q is the one the deployment runs on: "+
			"run migrate from the source's context, or name another with --to-context", opts.toContext)}
	}
	return nil
}

func printMigrated(dockerCli command.Cli, res *migrateResult, format string) error {
	out := dockerCli.Out()
	if format == formatJSON {
		return writeJSON(out, res)
	}
	fmt.Fprintf(out, "Migrated to context %q in %s (save and verify %s, restore %s)\n", res.Context,
		res.Duration.Round(100*time.Millisecond), res.Save.Round(100*time.Millisecond), res.Restore.Duration.Round(100*time.Millisecond))
	if res.Backup != "" {
		fmt.Fprintf(out, "The backup taken here is %s\n", res.Backup)
	}
	if res.Restore.SafetyBackup != "" {
		fmt.Fprintf(out, "What the target held before is saved in %s\n", res.Restore.SafetyBackup)
	}
	if len(res.StoppedHere) > 0 {
		fmt.Fprintf(out, "Left stopped here: %s; to start them again: docker compose -p %s start %s\n",
			strings.Join(res.StoppedHere, ", "), res.project, strings.Join(res.StoppedHere, " "))
	}
	return nil
}
