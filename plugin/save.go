package plugin

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/prune"
	"github.com/echo-backup/echo-backup/repository"
	"github.com/echo-backup/echo-backup/retention"
	"github.com/echo-backup/echo-backup/store"
)

type saveOptions struct {
	*projectOptions
	output string
	pause  bool
	format string
	quiet  bool
	prune  bool
	policy retention.Policy
	// protect and protectSet: --protect as given; unset, the compose file's x-echobackup decides.
	protect, protectSet bool
}

func saveCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := saveOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "save [OPTIONS]",
		Short: "Save the database, the data folders and the compose files into one verified archive",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := commandContext(cmd)
			defer stop()
			opts.protectSet = cmd.Flags().Changed("protect")
			return userError(runSave(ctx, dockerCli, opts))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "", "Backup folder (default: $"+store.DirEnv+", else ./backups in the project folder); \"-\" writes the archive to stdout")
	f.BoolVar(&opts.pause, "pause", false, "Pause the app services while their files are read, for a consistent pair")
	f.StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "Print only the archive's path")
	f.BoolVar(&opts.prune, "prune", false, "After a successful save, remove the backups the --keep-* policy no longer needs (see prune)")
	addPolicyFlags(f, &opts.policy)
	f.BoolVar(&opts.protect, "protect", false, "Then keep docker from removing the data volumes (see protect; default: x-echobackup.protect in the compose file)")
	return cmd
}

func runSave(ctx context.Context, dockerCli command.Cli, opts saveOptions) (err error) {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	if opts.prune && opts.output == stdStream {
		// The archive leaves through stdout: nothing lands in a folder
		// that a prune could bound, and pruning the default folder would surprise.
		return cli.StatusError{StatusCode: exitUsage, Status: "--prune cannot be used with --output -: " +
			"the archive goes to stdout, not into the backup folder; run prune where the archives are kept"}
	}
	if err := checkPolicy(opts.policy); opts.prune && err != nil {
		return err
	}
	plan, api, err := loadPlanAPI(ctx, dockerCli, opts.projectOptions)
	if err != nil {
		return err
	}
	protect, err := saveProtects(plan, opts.protect, opts.protectSet)
	if err != nil {
		return err
	}
	repo, err := saveRepo(ctx, opts, plan)
	if err != nil {
		return err
	}
	if repo != nil {
		defer repo.Close(context.WithoutCancel(ctx))
	}
	dir := store.Dir(opts.output, plan.WorkingDir)
	journalDir := dir
	if opts.output == stdStream {
		journalDir = store.Dir("", plan.WorkingDir)
	}
	// Held before the journal is read (the save takes it again): a running restore holds it.
	lock, err := lockBackups(ctx, dockerCli, journalDir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := noteInterruptedRestore(dockerCli, plan, journalDir, "save"); err != nil {
		return err
	}
	var out *pipeOut
	if opts.output == stdStream {
		if out, err = streamOut(dockerCli); err != nil {
			return err
		}
		// A stream writes nothing into the folder: the lock has done its job once the journal
		// is read, and a `restore -` on this machine at the other end of the pipe needs it.
		lock.Unlock()
		dir = journalDir
	}
	rep := reporter(ctx, opts.quiet || opts.format == formatJSON)
	rep.Start(ctx, "save")
	res, err := backup.Save(ctx, backup.SaveOptions{
		Plan: plan, API: api, LocalEngine: compose.IsLocalEngine(dockerCli),
		Dir: dir, Pause: opts.pause,
		ToolVersion: Version, Progress: rep, Warn: warner(dockerCli, rep), Lock: lock,
		Stream: streamWriter(out), Repo: repo,
	})
	rep.Done(err == nil)
	if err != nil {
		return out.explain(err)
	}
	if err := protectAfterSave(ctx, dockerCli, api, plan, protect, res.Path); err != nil {
		return err
	}
	if opts.output == stdStream {
		// stdout is taken by the archive: the summary goes to stderr.
		if opts.quiet {
			return nil
		}
		return printSaved(dockerCli.Err(), res, opts)
	}
	if err := printSaved(dockerCli.Out(), res, opts); err != nil || !opts.prune {
		return err
	}
	var pruned *prune.Result
	if repo != nil {
		pruned, err = pruneRepo(ctx, dockerCli, repo, plan.Name, opts.policy, repoPruneOptions{})
	} else {
		pruned, err = pruneBackups(ctx, dockerCli, lock, filepath.Dir(res.Path), plan.Name, plan.WorkingDir, opts.policy, false)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(dockerCli.Err(), pruned.Summary())
	return nil
}

// saveRepo is the repository the save goes into, nil for the backup folder. -o names a folder
// or stdout, so it wins over a repository the environment or the compose file sets.
func saveRepo(ctx context.Context, opts saveOptions, plan *compose.Plan) (*repository.Repository, error) {
	if opts.output != "" && opts.repo != "" {
		return nil, cli.StatusError{StatusCode: exitUsage, Status: "--output and --repo name two places: choose one"}
	}
	if opts.output != "" {
		return nil, nil
	}
	return openRepo(ctx, opts.repo, plan.Project)
}

// streamWriter is nil, not a nil *pipeOut, without a stream: Save tests for nil.
func streamWriter(out *pipeOut) io.Writer {
	if out == nil {
		return nil
	}
	return out
}

func printSaved(out io.Writer, res *backup.Result, opts saveOptions) error {
	switch {
	case opts.format == formatJSON:
		return writeJSON(out, res)
	case opts.quiet:
		_, err := fmt.Fprintln(out, res.Path)
		return err
	}
	_, err := fmt.Fprintf(out, "Saved %s (%s) in %s: %d tables, %d rows, %d files\n", res.Path,
		units.HumanSize(float64(res.Size)), res.Duration.Round(100*time.Millisecond), res.Tables, res.Rows, res.Files)
	return err
}
