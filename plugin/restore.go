package plugin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/repository"
	"github.com/echo-backup/echo-backup/restore"
	"github.com/echo-backup/echo-backup/store"
)

type restoreOptions struct {
	*projectOptions
	dir          string
	files        string
	only         string
	yes          bool
	dryRun       bool
	noSafety     bool
	forceProject bool
	jobs         int
	format       string
	resume       bool
}

func restoreCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := restoreOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "restore [FILE|latest|-|backup.sql] [--files data-backup.tar.gz] | restore --resume",
		Short: "Restore the deployment from a backup, or change nothing",
		Long: "Restores the database and the data folders from an echo-backup archive (or from the\n" +
			"backup.sql and data-backup.tar.gz of the manual procedure). Everything is staged and checked\n" +
			"beside the live data; the app is stopped only for the swap; any failure rolls back.\n" +
			"A restore keeps a journal in the backup folder: --resume finishes one that was interrupted\n" +
			"(killed, power cut) if all its swaps were done, and otherwise rolls it back.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := commandContext(cmd)
			defer stop()
			if opts.resume {
				if len(args) > 0 || opts.files != "" {
					return userError(&compose.UserError{Err: fmt.Errorf("--resume takes no backup: it goes on with the interrupted one")})
				}
				return userError(runResume(ctx, dockerCli, opts))
			}
			return userError(runRestore(ctx, dockerCli, opts, firstArg(args)))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.dir, "output", "o", "", "Backup folder, for latest and the safety backup")
	f.StringVar(&opts.files, "files", "", "A tar.gz of the data folder made by the manual procedure")
	f.StringVar(&opts.only, "only", "", `Restore one part only: "db" or "files"`)
	f.BoolVarP(&opts.yes, "yes", "y", false, "Do not ask for confirmation")
	f.BoolVar(&opts.dryRun, "dry-run", false, "Print the plan and change nothing")
	f.BoolVar(&opts.noSafety, "no-safety-backup", false, "Do not save the current state first")
	f.BoolVar(&opts.forceProject, "force-project", false, "Restore a backup of another compose project")
	f.IntVarP(&opts.jobs, "jobs", "j", 0, "pg_restore jobs (default: the number of CPUs, at least 2)")
	f.StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	f.BoolVar(&opts.resume, "resume", false, "Finish or roll back a restore that was interrupted (see its journal in the backup folder)")
	return cmd
}

// runResume goes on with an interrupted restore: finished if every swap was done, rolled back
// to the exact state before it otherwise.
func runResume(ctx context.Context, dockerCli command.Cli, opts restoreOptions) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	d, err := openDeployment(ctx, dockerCli, opts.projectOptions, opts.dir)
	if err != nil {
		return err
	}
	plan := d.Plan
	lock, err := lockBackups(ctx, dockerCli, d.Dir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	log, warn := logger(dockerCli, opts.format)
	res, err := restore.Resume(ctx, restore.Options{Plan: plan, API: d.API, Services: d.Services, Dir: d.Dir, Lock: lock,
		LocalEngine: d.Local, Log: log, Warn: warn})
	if err != nil {
		return err
	}
	out := dockerCli.Out()
	if opts.format == formatJSON {
		if res == nil { // scripts read an outcome, not null
			res = &restore.Resumed{Project: plan.Name, Outcome: restore.OutcomeNone}
		}
		return writeJSON(out, res)
	}
	if res == nil {
		_, err := fmt.Fprintf(out, "No interrupted restore of %s: nothing to resume\n", plan.Name)
		return err
	}
	if res.Outcome == restore.OutcomeRolledBack {
		fmt.Fprintf(out, "Rolled back the restore of %s from %s interrupted at %q: the deployment is as it was before it\n", res.Project, res.Archive, res.Phase)
		return nil
	}
	fmt.Fprintf(out, "Finished the restore of %s from %s interrupted at %q\n", res.Project, res.Archive, res.Phase)
	if res.SafetyBackup != "" {
		fmt.Fprintf(out, "The state before the restore is saved in %s\n", res.SafetyBackup)
	}
	return nil
}

func runRestore(ctx context.Context, dockerCli command.Cli, opts restoreOptions, arg string) (err error) {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	if opts.only != "" && opts.only != "db" && opts.only != "files" {
		return &compose.UserError{Err: fmt.Errorf(`--only must be "db" or "files", not %q`, opts.only)}
	}
	d, err := openDeployment(ctx, dockerCli, opts.projectOptions, opts.dir)
	var bare *bareRestore
	if errors.Is(err, compose.ErrNoComposeFile) {
		m, walk, done, ferr := newServerBackup(ctx, opts, arg, err)
		if ferr != nil {
			return ferr
		}
		defer done()
		d, bare, err = openFromBackup(ctx, dockerCli, opts, m, walk)
		defer func() {
			if err != nil && !opts.dryRun {
				err = bare.undo(err)
			}
		}()
		if err == nil && d == nil { // a dry run: nothing written, so nothing to open
			return printRestored(dockerCli, &restore.Result{Archive: arg, DryRun: true, Deployment: bare.written,
				Plan: restore.DescribeNewServer(bare.manifest, arg, bare.dir, bare.written)}, opts.format)
		}
	}
	if err != nil {
		return err
	}
	plan := d.Plan
	ro := restore.Options{Plan: plan, API: d.API, Services: d.Services, FilesTar: opts.files, Only: opts.only,
		ForceProject: opts.forceProject, SafetyBackup: !opts.noSafety, Dir: d.Dir,
		LocalEngine: d.Local, Jobs: opts.jobs, DryRun: opts.dryRun}
	if bare != nil && bare.named {
		// The project is the backup's own, under the name the user chose for it.
		ro.ForceProject = true
	}
	if !opts.dryRun {
		ro.Progress = reporter(ctx, opts.format == formatJSON)
	}
	ro.Log, ro.Warn = restoreLogs(ro.Progress, dockerCli, opts.format)
	fromStdin := arg == stdStream
	if fromStdin {
		if ro.Stream, err = streamIn(ctx, dockerCli, opts.yes || opts.dryRun); err != nil {
			return err
		}
	}
	if !opts.dryRun {
		// Taken before latest is resolved, so a prune cannot remove the backup on the way.
		if ro.Lock, err = lockBackups(ctx, dockerCli, ro.Dir); err != nil {
			return err
		}
		defer ro.Lock.Unlock()
	}
	if !fromStdin {
		repo, err := restoreRepo(ctx, &ro, opts, arg)
		if err != nil {
			return err
		}
		if repo != nil {
			defer repo.Close(context.WithoutCancel(ctx))
		} else if err := restoreInput(&ro, arg, plan); err != nil {
			return err
		}
	}
	// The block starts once the plan is confirmed: a terminal's redraws must not cover the question.
	started := false
	start := func() { started = true; ro.Progress.Start(ctx, "restore") }
	defer func() {
		if started {
			ro.Progress.Done(err == nil)
		}
	}()
	if !opts.yes && !opts.dryRun {
		ro.Confirm = confirmStarting(confirmer(dockerCli), start)
	} else if !opts.dryRun {
		start()
	}
	res, err := restore.Run(ctx, ro)
	if err != nil {
		return err
	}
	if fromStdin {
		res.Archive = "stdin"
	}
	if bare != nil {
		res.Deployment = bare.written
	}
	return printRestored(dockerCli, res, opts.format)
}

// restoreRepo picks the snapshot to restore when a repository is set and the argument names
// no file of the folder or the manual procedure; nil: restore from a file.
func restoreRepo(ctx context.Context, ro *restore.Options, opts restoreOptions, arg string) (*repository.Repository, error) {
	if opts.dir != "" || ro.FilesTar != "" || strings.HasSuffix(arg, ".sql") {
		return nil, nil
	}
	if _, err := os.Stat(arg); err == nil {
		return nil, nil
	}
	repo, err := openRepo(ctx, opts.repo, ro.Plan.Project)
	if err != nil || repo == nil {
		return nil, err
	}
	snap, err := findSnapshot(ctx, repo, ro.Plan.Name, arg)
	if err != nil {
		repo.Close(context.WithoutCancel(ctx))
		return nil, &compose.UserError{Err: err}
	}
	ro.Repo, ro.Snapshot = repo, snap.ID
	return repo, nil
}

// restoreInput decides whether the argument is an archive or the manual procedure's SQL file.
func restoreInput(ro *restore.Options, arg string, plan *compose.Plan) error {
	if strings.HasSuffix(arg, ".sql") {
		ro.SQLFile = arg
		return nil
	}
	if arg == "" && ro.FilesTar != "" {
		return nil
	}
	if ro.FilesTar != "" {
		return &compose.UserError{Err: fmt.Errorf("--files goes with a SQL dump or alone, not with an echo-backup archive (which holds the files)")}
	}
	path, err := store.Resolve(arg, ro.Dir, plan.Name, true)
	if err != nil {
		return &compose.UserError{Err: err}
	}
	ro.Archive = path
	return nil
}

// confirmer asks on a terminal; without one it refuses, so a script must say --yes.
func confirmer(dockerCli command.Cli) func(string) (bool, error) {
	return func(plan string) (bool, error) {
		fmt.Fprint(dockerCli.Err(), plan)
		if !dockerCli.In().IsTerminal() {
			return false, &compose.UserError{Err: fmt.Errorf("not a terminal: pass --yes to restore without confirmation")}
		}
		fmt.Fprint(dockerCli.Err(), "Proceed? [y/N] ")
		answer, _ := bufio.NewReader(dockerCli.In()).ReadString('\n')
		answer = strings.ToLower(strings.TrimSpace(answer))
		return answer == "y" || answer == "yes", nil
	}
}

// logger prints progress lines on stderr with the time since the start, so a user sees
// where a long restore spends it; with --format json only the warnings (warn, and the lines
// of older callers that carry the prefix).
func logger(dockerCli command.Cli, format string) (log, warn func(string)) {
	start := time.Now()
	line := func(msg string) { fmt.Fprintf(dockerCli.Err(), "[%5.1fs] %s\n", time.Since(start).Seconds(), msg) }
	log = func(msg string) {
		if format != formatJSON || strings.HasPrefix(msg, "WARNING") {
			line(msg)
		}
	}
	return log, func(msg string) { line("WARNING: " + strings.TrimPrefix(msg, "WARNING: ")) }
}

// confirmStarting calls start once the user said yes.
func confirmStarting(confirm func(string) (bool, error), start func()) func(string) (bool, error) {
	return func(plan string) (bool, error) {
		ok, err := confirm(plan)
		if ok && err == nil {
			start()
		}
		return ok, err
	}
}

func printRestored(dockerCli command.Cli, res *restore.Result, format string) error {
	out := dockerCli.Out()
	if format == formatJSON {
		return writeJSON(out, res)
	}
	if res.DryRun {
		_, err := fmt.Fprint(out, res.Plan+"Dry run: nothing was changed.\n")
		return err
	}
	fmt.Fprintf(out, "Restored %s in %s (services down for %s)\n", orDash(res.Archive), res.Duration.Round(100*time.Millisecond), res.Downtime.Round(100*time.Millisecond))
	if res.SafetyBackup != "" {
		fmt.Fprintf(out, "The state before the restore is saved in %s\n", res.SafetyBackup)
	}
	return nil
}
