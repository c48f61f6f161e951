package plugin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/retention"
)

type pruneOptions struct {
	*projectOptions
	dir    string
	policy retention.Policy
	dryRun bool
	format string
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
	f.StringVarP(&opts.dir, "output", "o", "", "Backup folder")
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
	res, err := pruneBackups(ctx, dockerCli, backup.Dir(opts.dir, project.WorkingDir), project.Name, opts.policy, opts.dryRun)
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
	fmt.Fprintln(dockerCli.Err(), res.summary())
	return nil
}

// pruneResult is what prune decided and did; Removed counts files really deleted.
type pruneResult struct {
	Dir     string           `json:"dir"`
	Policy  retention.Policy `json:"policy"`
	DryRun  bool             `json:"dryRun"`
	Backups []prunedBackup   `json:"backups"`
	Kept    int              `json:"kept"`
	Removed int              `json:"removed"`
}

type prunedBackup struct {
	Name    string    `json:"name"`
	Path    string    `json:"path"`
	Created time.Time `json:"created"`
	Action  string    `json:"action"` // keep, remove, or would-remove on a dry run
	Why     []string  `json:"why"`
}

func (r *pruneResult) summary() string {
	if r.DryRun {
		return fmt.Sprintf("Dry run: would remove %d of %d backups in %s, keep %d", len(r.Backups)-r.Kept, len(r.Backups), r.Dir, r.Kept)
	}
	return fmt.Sprintf("Removed %d of %d backups in %s, kept %d", r.Removed, len(r.Backups), r.Dir, r.Kept)
}

// pruneBackups applies the policy to the project's complete backups in dir. backup.List returns only
// archives whose manifest reads and names this project, so partial, damaged and foreign files
// never reach the policy. It stops at the first file it cannot remove.
func pruneBackups(ctx context.Context, dockerCli command.Cli, dir, project string, p retention.Policy, dryRun bool) (*pruneResult, error) {
	if !dryRun {
		// A restore may be reading the newest backup, a save committing the next one.
		unlock, err := lockBackups(ctx, dockerCli, dir)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	entries, err := backup.List(dir, project)
	if err != nil {
		return nil, fmt.Errorf("pruning the backups of project %q: %w", project, err)
	}
	items := make([]retention.Item, len(entries))
	paths := map[string]string{}
	for i, e := range entries {
		items[i] = retention.Item{Name: e.Name, Created: e.Created, Pinned: e.Pinned,
			Verified: e.Verified != nil && e.Verified.OK}
		paths[e.Name] = e.Path
	}
	res := &pruneResult{Dir: dir, Policy: p, DryRun: dryRun, Backups: []prunedBackup{}}
	for _, d := range retention.Apply(items, p, time.Local) {
		b := prunedBackup{Name: d.Name, Path: paths[d.Name], Created: d.Created, Action: "keep", Why: d.Reasons}
		switch {
		case d.Keep:
			res.Kept++
		case dryRun:
			b.Action = "would-remove"
		default:
			if err := backup.Remove(b.Path); err != nil {
				res.Backups = append(res.Backups, b)
				return res, fmt.Errorf("pruning the backups of project %q: %w", project, err)
			}
			b.Action = "remove"
			res.Removed++
		}
		res.Backups = append(res.Backups, b)
	}
	return res, nil
}

func printPruned(out io.Writer, res *pruneResult) {
	if res == nil {
		return
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tCREATED\tKEEP/REMOVE\tWHY")
	for _, b := range res.Backups {
		action := strings.ToUpper(b.Action)
		if action == "WOULD-REMOVE" {
			action = "REMOVE (dry run)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", b.Name, b.Created.Local().Format(time.DateTime), action, strings.Join(b.Why, ", "))
	}
	w.Flush()
}
