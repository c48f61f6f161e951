package plugin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/prune"
	"github.com/echo-backup/echo-backup/repository"
	"github.com/echo-backup/echo-backup/retention"
	"github.com/echo-backup/echo-backup/store"
)

type pruneOptions struct {
	*projectOptions
	output   string
	policy   retention.Policy
	dryRun   bool
	noSafety bool
	format   string
}

func pruneCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := pruneOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove the backups a keep-last/daily/weekly/monthly policy no longer needs",
		Long: "Keeps the newest backup of each of the last N days, ISO weeks and months that hold one\n" +
			"(as restic and borgmatic count them), plus the last N backups. Pinned backups and the newest\n" +
			"one that verified are always kept; files that are not complete backups of this project are\n" +
			"never touched.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return userError(runPrune(cmd.Context(), dockerCli, opts))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "", "Backup folder")
	f.BoolVar(&opts.noSafety, "gc-now", false, "With a repository: free the deleted backups' space now, not after kopia's 24 h safety delay "+
		"(only when no other save or copy into the repository is running)")
	addPolicyFlags(f, &opts.policy)
	f.BoolVar(&opts.dryRun, "dry-run", false, "Show what would be removed and why each kept backup stays; remove nothing")
	f.StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	return cmd
}

func addPolicyFlags(f *pflag.FlagSet, p *retention.Policy) {
	d := retention.Default
	f.IntVar(&p.Last, "keep-last", d.Last, "Keep the last N backups")
	f.IntVar(&p.Daily, "keep-daily", d.Daily, "Keep the newest backup of each of the last N days")
	f.IntVar(&p.Weekly, "keep-weekly", d.Weekly, "Keep the newest backup of each of the last N weeks")
	f.IntVar(&p.Monthly, "keep-monthly", d.Monthly, "Keep the newest backup of each of the last N months")
}

func checkPolicy(p retention.Policy) error {
	if err := p.Check(); err != nil {
		return cli.StatusError{StatusCode: exitUsage, Status: err.Error()}
	}
	return nil
}

func runPrune(ctx context.Context, dockerCli command.Cli, opts pruneOptions) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	if err := checkPolicy(opts.policy); err != nil {
		return err
	}
	// Like list, prune needs the project's name and folder, not the engine.
	project, err := compose.Load(ctx, dockerCli, opts.ProjectOptions)
	if err != nil {
		return err
	}
	res, err := pruneWhere(ctx, dockerCli, opts, project)
	if res == nil {
		// Nothing was decided (the lock or the folder failed): no table, no JSON null.
		return err
	}
	if opts.format == formatJSON {
		if jerr := writeJSON(dockerCli.Out(), res); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		printPruned(dockerCli.Out(), res)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(dockerCli.Err(), res.Summary())
	return nil
}

// pruneWhere prunes the repository when one is set and no folder is named, else the folder.
func pruneWhere(ctx context.Context, dockerCli command.Cli, opts pruneOptions, project *types.Project) (*prune.Result, error) {
	var repo *repository.Repository
	var err error
	if opts.output == "" {
		if repo, err = openRepo(ctx, opts.repo, project); err != nil {
			return nil, err
		}
	}
	if repo == nil {
		return pruneBackups(ctx, dockerCli, nil, store.Dir(opts.output, project.WorkingDir), project.Name, project.WorkingDir, opts.policy, opts.dryRun)
	}
	defer repo.Close(context.WithoutCancel(ctx))
	return pruneRepo(ctx, dockerCli, repo, project.Name, opts.policy, repoPruneOptions{dryRun: opts.dryRun, noSafety: opts.noSafety})
}

// pruneBackups applies the policy to the deployment's complete backups in dir (package
// prune). A real prune holds the folder's lock from the listing to the last removal; taking
// it removed the leftovers of killed commands.
// held is the command's lock when it has one already (save --prune, the nightly run).
func pruneBackups(ctx context.Context, dockerCli command.Cli, held *store.Lock, dir, project, workingDir string, p retention.Policy, dryRun bool) (*prune.Result, error) {
	if !dryRun && !held.Holds(dir) {
		lock, err := lockBackups(ctx, dockerCli, dir)
		if err != nil {
			return nil, err
		}
		defer lock.Unlock()
	}
	plan, err := prune.PlanPrune(prune.Options{Dir: dir, Project: project, WorkingDir: workingDir, Policy: p,
		Warn: func(msg string) { fmt.Fprintln(dockerCli.Err(), "WARNING: "+msg) }})
	if err != nil {
		return nil, err
	}
	if dryRun {
		return plan.DryRun(), nil
	}
	return plan.Execute()
}

func printPruned(out io.Writer, res *prune.Result) {
	if res == nil {
		return
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tCREATED\tKEEP/REMOVE\tWHY")
	for _, b := range res.Backups {
		action := strings.ToUpper(string(b.Action))
		if action == "WOULD-REMOVE" {
			action = "REMOVE (dry run)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", b.Name, b.Created.Local().Format(time.DateTime), action, strings.Join(b.Why, ", "))
	}
	w.Flush()
}
