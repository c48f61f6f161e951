package plugin

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/echo-backup/echo-backup/archive"
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
	res, err := pruneBackups(ctx, dockerCli, backup.Dir(opts.dir, project.WorkingDir), project.Name, project.WorkingDir, opts.policy, opts.dryRun)
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

// pruneBackups applies the policy to the deployment's complete backups in dir. backup.List returns
// only archives whose manifest reads and names this project, so partial, damaged and foreign files
// never reach the policy; those another deployment of the same name took (a shared
// $ECHOBACKUP_DIR or NFS folder) are listed as kept and never counted. It stops at the first file
// it cannot remove.
func pruneBackups(ctx context.Context, dockerCli command.Cli, dir, project, workingDir string, p retention.Policy, dryRun bool) (*pruneResult, error) {
	if !dryRun {
		// A restore may be reading the newest backup, a save committing the next one.
		unlock, err := lockBackups(ctx, dockerCli, dir)
		if err != nil {
			return nil, err
		}
		defer unlock() // taking it removed the leftovers of killed commands
	}
	entries, err := backup.List(dir, project)
	if err != nil {
		return nil, fmt.Errorf("pruning the backups of project %q: %w", project, err)
	}
	here := thisDeployment(workingDir)
	var items []retention.Item
	byName := map[string]backup.Entry{}
	res := &pruneResult{Dir: dir, Policy: p, DryRun: dryRun, Backups: []prunedBackup{}}
	for _, e := range entries {
		if other := here.other(e.Manifest); other != "" {
			res.Backups = append(res.Backups, prunedBackup{Name: e.Name, Path: e.Path, Created: e.Created,
				Action: "keep", Why: []string{"another deployment (" + other + ")"}})
			res.Kept++
			continue
		}
		items = append(items, retention.Item{Name: e.Name, Created: e.Created, Pinned: e.Pinned,
			Verified: e.Verified != nil && e.Verified.OK})
		byName[e.Name] = e
	}
	for _, d := range retention.Apply(items, p, time.Now()) {
		e := byName[d.Name]
		if d.Future {
			fmt.Fprintf(dockerCli.Err(), "WARNING: %s is dated %s, in the future: it is kept and counted in no period; "+
				"check the clock of host %q, which took it\n", d.Name, d.Created.Local().Format(time.DateTime), e.Manifest.Host)
		}
		b := prunedBackup{Name: d.Name, Path: e.Path, Created: d.Created, Action: "keep", Why: d.Reasons}
		switch {
		case d.Keep:
			res.Kept++
		case dryRun:
			b.Action = "would-remove"
		default:
			if err := backup.Remove(b.Path); err != nil {
				res.Backups = append(res.Backups, b)
				res.sort()
				return res, fmt.Errorf("pruning the backups of project %q: %w", project, err)
			}
			b.Action = "remove"
			res.Removed++
		}
		res.Backups = append(res.Backups, b)
	}
	res.sort()
	return res, nil
}

// sort puts another deployment's backups among ours, newest first.
func (r *pruneResult) sort() {
	sort.SliceStable(r.Backups, func(i, j int) bool { return r.Backups[i].Created.After(r.Backups[j].Created) })
}

// deployment is where prune runs: this host, and the project's folder.
type deployment struct {
	host, workingDir string
}

func thisDeployment(workingDir string) deployment {
	host, _ := os.Hostname()
	return deployment{host: host, workingDir: workingDir}
}

// other is "host:folder" of a backup another deployment took, "" for one of ours. Backups
// copied from another host (the source's, after a migration) are another deployment too: they
// stay until the user removes them, which is the safe side.
func (d deployment) other(m *archive.Manifest) string {
	if m.Host == d.host && m.Host != "" && sameDir(m.Project.WorkingDir, d.workingDir) {
		return ""
	}
	return m.Host + ":" + m.Project.WorkingDir
}

// sameDir compares folders as written, then as resolved: a project reached through a symlink
// is the same deployment.
func sameDir(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ra, errA := filepath.EvalSymlinks(a)
	rb, errB := filepath.EvalSymlinks(b)
	return errA == nil && errB == nil && ra == rb
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
