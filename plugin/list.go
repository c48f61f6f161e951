package plugin

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/store"
)

type listOptions struct {
	*projectOptions
	output string
	format string
}

func listCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := listOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the project's complete backups, newest first",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return userError(runList(cmd.Context(), dockerCli, opts))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "", "Backup folder")
	f.StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	return cmd
}

func runList(ctx context.Context, dockerCli command.Cli, opts listOptions) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	// Listing needs the project's name and folder, not the engine.
	project, err := compose.Load(ctx, dockerCli, opts.ProjectOptions)
	if err != nil {
		return err
	}
	entries, err := listWhere(ctx, opts, project)
	if err != nil {
		return err
	}
	if opts.format == formatJSON {
		if entries == nil {
			entries = []store.Entry{}
		}
		return writeJSON(dockerCli.Out(), entries)
	}
	printEntries(dockerCli.Out(), entries)
	return nil
}

// listWhere lists the repository when one is set and no folder is named, else the folder.
func listWhere(ctx context.Context, opts listOptions, project *types.Project) ([]store.Entry, error) {
	if opts.output == "" {
		repo, err := openRepo(ctx, opts.repo, project)
		if err != nil {
			return nil, err
		}
		if repo != nil {
			defer repo.Close(context.WithoutCancel(ctx))
			return repoEntries(ctx, repo, project.Name)
		}
	}
	return store.List(store.Dir(opts.output, project.WorkingDir), project.Name)
}

func printEntries(out io.Writer, entries []store.Entry) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tCREATED\tAGE\tSIZE\tTABLES\tROWS\tFILES\tVERIFIED\tPINNED\tLABELS")
	for _, e := range entries {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", e.Name, e.Created.Local().Format(time.DateTime),
			units.HumanDuration(time.Since(e.Created))+" ago", humanSize(e.Size), e.Tables, e.Rows, e.Files,
			verifiedText(e.Verified), orDash(e.Pinned), orDash(labelsText(e.Labels)))
	}
	w.Flush()
}

func verifiedText(v *store.Verification) string {
	switch {
	case v == nil || !v.OK:
		return "no"
	case v.Deep:
		return "deep"
	}
	return "yes"
}

// labelsText leaves out the pin label: PINNED says whether the backup is still pinned, which
// unpin can change while the label stays in the archive.
func labelsText(labels map[string]string) string {
	var out []string
	for k, v := range labels {
		if k != store.LabelPinned {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
