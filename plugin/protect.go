package plugin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/checkpoint"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/guard"
	"github.com/echo-backup/echo-backup/store"
)

// pinnedPreUnprotect marks the backup unprotect takes: the volumes can be removed from then on.
const pinnedPreUnprotect = "pre-unprotect"

type protectOptions struct {
	*projectOptions
	format string
}

func protectCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := protectOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "protect",
		Short: "Keep docker from removing the project's data volumes",
		Long: "Starts a small sentinel container that mounts the project's database and data volumes\n" +
			"read-only. While it runs, `docker compose down -v` keeps them, `docker volume rm` refuses\n" +
			"them, and `docker volume prune` and `docker system prune --volumes` skip them.\n" +
			"Running it again changes nothing, or adds the project's new volumes.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := commandContext(cmd)
			defer stop()
			return userError(runProtect(ctx, dockerCli, opts))
		},
	}
	cmd.Flags().StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	return cmd
}

func runProtect(ctx context.Context, dockerCli command.Cli, opts protectOptions) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	plan, api, err := loadPlanAPI(ctx, dockerCli, opts.projectOptions)
	if err != nil {
		return err
	}
	res, err := protectPlan(ctx, api, plan)
	if err != nil {
		return err
	}
	if opts.format == formatJSON {
		return writeJSON(dockerCli.Out(), protectJSON{Project: plan.Name, Result: res})
	}
	printProtected(dockerCli.Out(), plan.Name, res)
	return nil
}

type protectJSON struct {
	Project string `json:"project"`
	*guard.Result
}

func protectPlan(ctx context.Context, api compose.Engine, plan *compose.Plan) (*guard.Result, error) {
	res, err := guard.Protect(ctx, api, plan)
	if err != nil {
		return nil, fmt.Errorf("protecting project %q: %w", plan.Name, err)
	}
	return res, nil
}

func printProtected(out io.Writer, project string, res *guard.Result) {
	s := res.Sentinel
	vols := strings.Join(s.Volumes, ", ")
	switch {
	case !res.Changed:
		fmt.Fprintf(out, "Project %s is already protected (since %s): container %s holds %s\n", project, localTime(s.Since), s.Name, vols)
	case len(res.Added) > 0 && len(res.Added) < len(s.Volumes):
		fmt.Fprintf(out, "Protected the new volume(s) %s of project %s: container %s now holds %s\n", strings.Join(res.Added, ", "), project, s.Name, vols)
	case len(res.Added) == 0 && res.NewImage:
		fmt.Fprintf(out, "Moved container %s to the database's new image, so the old one can be pruned: it holds %s\n", s.Name, vols)
	case len(res.Added) == 0:
		fmt.Fprintf(out, "Restarted container %s: project %s is protected again (%s)\n", s.Name, project, vols)
	default:
		fmt.Fprintf(out, "Protected project %s: container %s holds %s\n", project, s.Name, vols)
	}
}

type unprotectOptions struct {
	*projectOptions
	output   string
	noBackup bool
	format   string
}

func unprotectCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := unprotectOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "unprotect",
		Short: "Take a verified backup, then let docker remove the project's volumes again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := commandContext(cmd)
			defer stop()
			return userError(runUnprotect(ctx, dockerCli, opts))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "", "Backup folder (default: $"+store.DirEnv+", else ./backups in the project folder)")
	f.BoolVar(&opts.noBackup, "no-backup", false, "Do not take a backup first")
	f.StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	return cmd
}

type unprotectJSON struct {
	Project string           `json:"project"`
	Removed []guard.Sentinel `json:"removed"`
	Backup  string           `json:"backup,omitempty"`
}

func runUnprotect(ctx context.Context, dockerCli command.Cli, opts unprotectOptions) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	d, err := openDeployment(ctx, dockerCli, opts.projectOptions, opts.output)
	if err != nil {
		return err
	}
	plan := d.Plan
	co := checkpointOptions(ctx, dockerCli, d, map[string]string{store.LabelPinned: pinnedPreUnprotect})
	res, err := checkpoint.Unprotect(ctx, co, d.Services, opts.noBackup)
	if err != nil {
		return err
	}
	if opts.format == formatJSON {
		return writeJSON(dockerCli.Out(), unprotectJSON{Project: plan.Name, Removed: res.Removed, Backup: res.Backup})
	}
	if res.Was == nil {
		_, err := fmt.Fprintf(dockerCli.Out(), "Project %s is not protected: nothing to do\n", plan.Name)
		return err
	}
	fmt.Fprintf(dockerCli.Out(), "Project %s is no longer protected: docker can remove %s again\n", plan.Name, strings.Join(res.Was.Volumes, ", "))
	if res.Backup != "" {
		fmt.Fprintf(dockerCli.Out(), "Its state just before is saved and verified in %s\n", res.Backup)
	}
	return nil
}

func localTime(t time.Time) string {
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func printProtection(out io.Writer, plan *compose.Plan, p *guard.Protection, last *store.LastVerified) {
	switch {
	case p.Protected:
		fmt.Fprintf(out, "\nProtected: yes, since %s (container %s holds %s)\n", localTime(*p.Since), p.Sentinel, strings.Join(p.Volumes, ", "))
	case p.Sentinel != "":
		fmt.Fprintf(out, "\nProtected: no: container %s is %s (`docker echobackup protect` starts it)\n", p.Sentinel, p.State)
	default:
		fmt.Fprintf(out, "\nProtected: no (`docker echobackup protect` keeps docker from removing the volumes)\n")
	}
	if p.Protected && len(p.Unprotected) > 0 {
		fmt.Fprintf(out, "WARNING: not protected yet: %s (run `docker echobackup protect` again)\n", strings.Join(p.Unprotected, ", "))
	}
	if last == nil {
		fmt.Fprintf(out, "Last verified backup: none in %s\n", store.Dir("", plan.WorkingDir))
		return
	}
	fmt.Fprintf(out, "Last verified backup: %s (taken %s, verified %s)\n", last.Path, localTime(last.Created), localTime(last.VerifiedAt))
}

// saveProtects decides whether a save protects the project: --protect when given, else the
// compose file's `x-echobackup: {protect: true}`.
func saveProtects(plan *compose.Plan, flag, flagSet bool) (bool, error) {
	if flagSet {
		return flag, nil
	}
	return guard.ProtectByDefault(plan)
}

// protectAfterSave reports on stderr: stdout carries the save's own result.
func protectAfterSave(ctx context.Context, dockerCli command.Cli, api compose.Engine, plan *compose.Plan, protect bool, saved string) error {
	if !protect {
		return nil
	}
	// The plan was inspected before the save; the volumes it found still exist.
	res, err := protectPlan(ctx, api, plan)
	if err != nil {
		return fmt.Errorf("saved %s, but: %w", saved, err)
	}
	printProtected(dockerCli.Err(), plan.Name, res)
	return nil
}
