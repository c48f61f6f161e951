package plugin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/guard"
	"github.com/echo-backup/echo-backup/repository"
	"github.com/echo-backup/echo-backup/schedule"
	"github.com/echo-backup/echo-backup/store"
)

type statusOptions struct {
	*projectOptions
	format string
}

func statusCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := statusOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what a backup of the project holds and what it leaves out",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return userError(runStatus(cmd.Context(), dockerCli, opts))
		},
	}
	cmd.Flags().StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	return cmd
}

func runStatus(ctx context.Context, dockerCli command.Cli, opts statusOptions) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	plan, api, err := loadPlanAPI(ctx, dockerCli, opts.projectOptions)
	if err != nil {
		return err
	}
	_ = noteInterruptedRestore(dockerCli, plan, store.Dir("", plan.WorkingDir), "")
	prot, err := guard.Status(ctx, api, plan)
	if err != nil {
		return err
	}
	last := store.FindLastVerified(store.Dir("", plan.WorkingDir), plan.Name)
	// A crontab that cannot be read says nothing about the project: status does not fail on it.
	entry, _, _ := schedule.Find(ctx, plan.Name, plan.WorkingDir)
	repo, err := repoState(ctx, opts.repo, plan)
	if err != nil {
		return err
	}
	if opts.format == formatJSON {
		out := statusJSON{Plan: plan, Protection: prot, LastVerifiedBackup: last, Scheduled: entry != nil}
		if repo != nil {
			st := repoStatusOf(*repo)
			out.Repo = &st
		}
		return writeJSON(dockerCli.Out(), out)
	}
	printPlan(dockerCli.Out(), plan)
	printProtection(dockerCli.Out(), plan, prot, last)
	if repo != nil {
		fmt.Fprintln(dockerCli.Out())
		printRepoStatus(dockerCli.Out(), *repo)
	}
	if entry != nil && !prot.Protected && len(plan.DataVolumes()) > 0 {
		fmt.Fprintf(dockerCli.Out(), "WARNING: project %s has a schedule but is not protected: `docker compose down -v` or a prune "+
			"can still delete its volumes (`docker echobackup protect`)\n", plan.Name)
	}
	return nil
}

type statusJSON struct {
	*compose.Plan
	Protection         *guard.Protection   `json:"protection"`
	LastVerifiedBackup *store.LastVerified `json:"lastVerifiedBackup"`
	Scheduled          bool                `json:"scheduled"`
	Repo               *repoStatusJSON     `json:"repository,omitempty"`
}

// repoState is the repository's status when one is set, nil when none is.
func repoState(ctx context.Context, flag string, plan *compose.Plan) (*repository.Status, error) {
	repo, err := openRepo(ctx, flag, plan.Project)
	if err != nil || repo == nil {
		return nil, err
	}
	defer repo.Close(context.WithoutCancel(ctx))
	st, err := repo.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the status of %s: %w", repo.Address(), err)
	}
	return &st, nil
}

// openDeployment is the command's one Deployment: the project loaded, its roles decided, the
// engine reached (after removing the helpers killed commands left) and asked what exists.
// output is the command's -o ("" for commands without one).
func openDeployment(ctx context.Context, dockerCli command.Cli, p *projectOptions, output string) (*compose.Deployment, error) {
	d, err := compose.Open(ctx, dockerCli, compose.OpenOptions{Project: p.ProjectOptions, DBService: p.dbService,
		Prepare: func(ctx context.Context, d *compose.Deployment) { reapHelpers(ctx, dockerCli, d.API, d.Plan.Name) }})
	if d != nil {
		d.Dir = store.Dir(output, d.Plan.WorkingDir)
	}
	return d, err
}

// loadPlan and loadPlanAPI are openDeployment's parts, for the commands other branches edit.
func loadPlan(ctx context.Context, dockerCli command.Cli, p *projectOptions) (*compose.Plan, error) {
	plan, _, err := loadPlanAPI(ctx, dockerCli, p)
	return plan, err
}

func loadPlanAPI(ctx context.Context, dockerCli command.Cli, p *projectOptions) (*compose.Plan, compose.Engine, error) {
	d, err := openDeployment(ctx, dockerCli, p, "")
	if d == nil {
		return nil, nil, err
	}
	return d.Plan, d.API, err
}

func printPlan(out io.Writer, plan *compose.Plan) {
	db := plan.Database
	fmt.Fprintf(out, "Project:   %s (%s)\n", plan.Name, plan.WorkingDir)
	fmt.Fprintf(out, "Database:  service %s, database %q, user %q, volume %s\n\n", db.Service, db.Name, db.User, orDash(db.Volume))
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tROLE\tIMAGE\tSTATE\tCONTAINERS")
	for _, s := range plan.Services {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Role, s.Image, serviceState(s), orDash(containerNames(s)))
	}
	w.Flush()
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "WHAT\tKIND\tSERVICE\tROLE\tSIZE\tBACKED UP\tWHY")
	for _, it := range plan.Items {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", itemLabel(it), it.Kind, orDash(it.Service), it.Role, humanSize(it.Size), yesNo(it.Backup), it.Reason)
	}
	w.Flush()
	if !anyRunning(plan) {
		fmt.Fprintf(out, "\nNo container of project %q is running.\n", plan.Name)
	}
}

func itemLabel(it compose.Item) string {
	if it.Kind == compose.KindVolume && !it.Exists {
		return it.Source + " (missing)"
	}
	if it.Target != "" {
		return it.Source + ":" + it.Target
	}
	return it.Source
}

func serviceState(s compose.Service) string {
	if len(s.Containers) == 0 {
		return "not created"
	}
	if s.Running() {
		return "running"
	}
	return s.Containers[0].State
}

func containerNames(s compose.Service) string {
	var names []string
	for _, c := range s.Containers {
		names = append(names, c.Name)
	}
	return strings.Join(names, ",")
}

func anyRunning(plan *compose.Plan) bool {
	for _, s := range plan.Services {
		if s.Running() {
			return true
		}
	}
	return false
}
