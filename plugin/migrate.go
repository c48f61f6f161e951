package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/migrate"
	"github.com/echo-backup/echo-backup/postgres"
	"github.com/echo-backup/echo-backup/progress"
	"github.com/echo-backup/echo-backup/restore"
	"github.com/echo-backup/echo-backup/store"
)

type migrateOptions struct {
	*projectOptions
	toContext string
	force     bool
	dir       string
	format    string
	// stopSource: a cutover, the app here stops before the save so that its last writes move.
	stopSource bool
}

func migrateCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := migrateOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "migrate --to-context NAME [OPTIONS]",
		Short: "Move the deployment to the engine of another docker context",
		Long: "Saves and verifies a backup here (kept, pinned: it is the way back), then restores it on the\n" +
			"engine of another docker context (`docker context create NAME --docker host=ssh://…`), with the\n" +
			"same compose files. The target's images and PostgreSQL version are checked first; a target that\n" +
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
	return cmd
}

// migrateResult is what a migration did, for --format json.
type migrateResult struct {
	Context  string          `json:"context"`
	Backup   string          `json:"backup"`
	Save     time.Duration   `json:"saveDuration"`
	Restore  *restore.Result `json:"restore"`
	Duration time.Duration   `json:"duration"`
	// StoppedHere are the app services --stop-source stopped here and left stopped.
	StoppedHere []string `json:"stoppedHere,omitempty"`
	project     string
}

func runMigrate(ctx context.Context, dockerCli command.Cli, opts migrateOptions) (err error) {
	start := time.Now()
	// A failed or cut ssh:// connection to the target, told in ssh's words.
	defer func() { err = migrate.ExplainSSH(err) }()
	if err := checkMigrate(dockerCli, opts); err != nil {
		return err
	}
	rep := reporter(ctx, opts.format == formatJSON)
	rep.Start(ctx, "migrate")
	defer func() { rep.Done(err == nil) }()
	log := logTo(rep, dockerCli, opts.format)
	plan, api, err := loadPlanAPI(ctx, dockerCli, opts.projectOptions)
	if err != nil {
		return err
	}
	target, err := migrate.Open(ctx, opts.toContext, opts.ProjectOptions, opts.dbService)
	if err != nil {
		return err
	}
	log(fmt.Sprintf("checking project %q on context %q", target.Plan.Name, opts.toContext))
	occupied, err := checkTarget(ctx, plan, api, target, opts.force)
	if err != nil {
		return err
	}
	res := &migrateResult{Context: opts.toContext, project: plan.Name}
	if err := move(ctx, dockerCli, plan, api, target, opts, len(occupied) > 0, res); err != nil {
		return err
	}
	res.Duration = time.Since(start)
	return printMigrated(dockerCli, res, opts.format)
}

// move saves and verifies here, then restores on the target. With --stop-source the app here
// stops first and, if anything fails, starts again: the target is rolled back by the restore.
func move(ctx context.Context, dockerCli command.Cli, plan *compose.Plan, api compose.Engine,
	target *migrate.Target, opts migrateOptions, occupied bool, res *migrateResult) (err error) {
	start := time.Now()
	if opts.stopSource {
		apps, restart, serr := stopSourceApps(ctx, dockerCli, plan, api)
		if serr != nil {
			return serr
		}
		res.StoppedHere = apps
		defer func() {
			if err != nil {
				err = restart(err)
			}
		}()
	}
	dir := backup.Dir(opts.dir, plan.WorkingDir)
	rep := reporter(ctx, opts.format == formatJSON)
	rep.ExplainErrors(migrate.ExplainSSHText)
	log := logTo(rep, dockerCli, opts.format)
	log(fmt.Sprintf("saving here and restoring on context %q at the same time", opts.toContext))
	kept, restored, err := streamTo(ctx, dockerCli, plan, api, target, dir, opts, occupied, rep, log)
	res.Backup, res.Save, res.Restore = kept, time.Since(start), restored
	if err != nil {
		if kept != "" {
			return fmt.Errorf("migrating project %q to context %q: %w; the backup taken here is %s", plan.Name, opts.toContext, migrate.ExplainSSH(err), kept)
		}
		return fmt.Errorf("migrating project %q to context %q: %w", plan.Name, opts.toContext, migrate.ExplainSSH(err))
	}
	say(ctx, dockerCli, "Saved and verified "+kept)
	return nil
}

// streamTo saves here in the stream form straight into the restore on the target, through a
// pipe in this process, and keeps a copy of the stream here, pinned: the way back. The copy is
// verified once the target has it. Whichever side fails ends the pipe, so the other stops too:
// a restore that did not get the whole stream refuses it and rolls back.
func streamTo(ctx context.Context, dockerCli command.Cli, plan *compose.Plan, api compose.Engine, target *migrate.Target,
	dir string, opts migrateOptions, occupied bool, rep *progress.Reporter, log func(string)) (string, *restore.Result, error) {
	if err := target.PrepareFolders(ctx); err != nil {
		return "", nil, err
	}
	copyHere, err := store.CreateCopy(dir, plan.Name, time.Now())
	if err != nil {
		return "", nil, err
	}
	defer copyHere.Discard()
	pr, pw := io.Pipe()
	saveTask := rep.Task("save here", "Saving", 0)
	var saveErr error
	saved := make(chan struct{})
	go func() {
		defer close(saved)
		_, saveErr = backup.Save(ctx, backup.SaveOptions{
			Plan: plan, API: api, LocalEngine: compose.IsLocalEngine(dockerCli), Dir: dir,
			Labels:      map[string]string{backup.LabelPinned: backup.PinnedMigrate, migrate.LabelTo: opts.toContext},
			ToolVersion: Version, Progress: rep.Under(saveTask), Warn: warner(dockerCli, rep),
			Stream: io.MultiWriter(copyHere, pw),
		})
		saveTask.End("Saved", saveErr)
		pw.CloseWithError(saveErr) // nil: the restore sees the end; else it refuses what it got
	}()
	restored, restoreErr := restore.Run(ctx, restore.Options{Plan: target.Plan, API: target.API, Services: target.Services,
		Stream: pr, SafetyBackup: occupied, Dir: migrate.SafetyDir(dir, target.Context),
		ToolVersion: Version, LocalEngine: false, Log: func(s string) { log(migrate.ExplainSSHText(s)) }, Progress: rep})
	pr.CloseWithError(errRestoreStopped)
	<-saved
	switch {
	case saveErr != nil && errors.Is(saveErr, errRestoreStopped):
		return "", nil, restoreErr // the restore stopped first: its error says why
	case saveErr != nil:
		return "", nil, fmt.Errorf("saving project %q: %w (the target was rolled back)", plan.Name, saveErr)
	}
	kept, err := copyHere.Keep()
	if err != nil {
		return "", nil, errors.Join(restoreErr, err)
	}
	if err := verifyCopy(ctx, plan, api, kept, rep); err != nil {
		return kept, restored, errors.Join(restoreErr, err)
	}
	return kept, restored, restoreErr
}

var errRestoreStopped = errors.New("the restore on the target stopped reading")

// verifyCopy verifies the copy kept here with the code verify runs, and records it.
func verifyCopy(ctx context.Context, plan *compose.Plan, api compose.Engine, path string, rep *progress.Reporter) error {
	vo := backup.VerifyOptions{Path: path, API: api}
	if db, err := plan.DatabaseContainer(); err == nil {
		vo.DBContainer = db.ID
	}
	task := rep.Task("verify "+filepath.Base(path), "Verifying", 0)
	_, err := backup.Verify(ctx, vo)
	task.End("Verified", err)
	if err != nil {
		return fmt.Errorf("verifying the backup kept here (%s): %w", path, err)
	}
	return nil
}

// stopSourceApps stops the running app services here for --stop-source; restart starts them
// again after a failure (a failed stop included: some may have stopped).
func stopSourceApps(ctx context.Context, dockerCli command.Cli, plan *compose.Plan, api compose.Engine) ([]string, func(error) error, error) {
	svc, err := compose.NewServices(dockerCli, plan)
	if err != nil {
		return nil, nil, err
	}
	apps := svc.RunningApps()
	restart := func(err error) error {
		if len(apps) == 0 {
			return err
		}
		return startAppsAgain(context.WithoutCancel(ctx), dockerCli, svc, apps, err)
	}
	if err := stopAppsForSave(ctx, dockerCli, svc, api, apps); err != nil {
		return nil, nil, restart(err)
	}
	return apps, restart, nil
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

// checkTarget refuses, before anything changes here or there, a target that cannot take the
// deployment, and one that holds data unless --force. It returns what the target holds.
func checkTarget(ctx context.Context, plan *compose.Plan, api compose.Engine, target *migrate.Target, force bool) ([]string, error) {
	db, err := plan.DatabaseContainer()
	if err != nil {
		return nil, err
	}
	pg := postgres.Target{API: api, Container: db.ID, User: plan.Database.User, Database: plan.Database.Name, Password: plan.Database.Password}
	version, err := pg.ServerVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the source's PostgreSQL version: %w", err)
	}
	occupied, err := target.Check(ctx, db.ID, version)
	if err != nil {
		return nil, err
	}
	if len(occupied) > 0 && !force {
		return nil, &compose.UserError{Err: fmt.Errorf("project %q on context %q already holds data (%s): "+
			"use --force to replace it (a safety backup of it is taken first); nothing was changed",
			target.Plan.Name, target.Context, strings.Join(occupied, ", "))}
	}
	return occupied, nil
}

func printMigrated(dockerCli command.Cli, res *migrateResult, format string) error {
	out := dockerCli.Out()
	if format == formatJSON {
		return writeJSON(out, res)
	}
	fmt.Fprintf(out, "Migrated to context %q in %s (save and verify %s, restore %s)\n", res.Context,
		res.Duration.Round(100*time.Millisecond), res.Save.Round(100*time.Millisecond), res.Restore.Duration.Round(100*time.Millisecond))
	fmt.Fprintf(out, "The backup taken here is %s\n", res.Backup)
	if res.Restore.SafetyBackup != "" {
		fmt.Fprintf(out, "What the target held before is saved in %s\n", res.Restore.SafetyBackup)
	}
	if len(res.StoppedHere) > 0 {
		fmt.Fprintf(out, "Left stopped here: %s; to start them again: docker compose -p %s start %s\n",
			strings.Join(res.StoppedHere, ", "), res.project, strings.Join(res.StoppedHere, " "))
	}
	return nil
}
