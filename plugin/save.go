package plugin

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
)

type saveOptions struct {
	*projectOptions
	output string
	pause  bool
	format string
	quiet  bool
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
			return userError(runSave(ctx, dockerCli, opts))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "", "Backup folder (default: $"+backup.DirEnv+", else ./backups in the project folder)")
	f.BoolVar(&opts.pause, "pause", false, "Pause the app services while their files are read, for a consistent pair")
	f.StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "Print only the archive's path")
	return cmd
}

func runSave(ctx context.Context, dockerCli command.Cli, opts saveOptions) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	plan, api, err := loadPlanAPI(ctx, dockerCli, opts.projectOptions)
	if err != nil {
		return err
	}
	res, err := backup.Save(ctx, backup.SaveOptions{
		Plan: plan, API: api, LocalEngine: compose.IsLocalEngine(dockerCli),
		Dir: backup.Dir(opts.output, plan.WorkingDir), Pause: opts.pause,
		ToolVersion: Version, Progress: progressOut(dockerCli, opts.quiet || opts.format == formatJSON),
		Warn: warner(dockerCli),
	})
	if err != nil {
		return err
	}
	return printSaved(dockerCli.Out(), res, opts)
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

// progressOut is stderr when it is a terminal and the user wants progress, else nothing.
func progressOut(dockerCli command.Cli, silent bool) io.Writer {
	if silent || !dockerCli.Err().IsTerminal() {
		return nil
	}
	return dockerCli.Err()
}

func warner(dockerCli command.Cli) func(string) {
	return func(msg string) { fmt.Fprintln(dockerCli.Err(), "WARNING: "+msg) }
}
