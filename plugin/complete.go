package plugin

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	cliplugin "github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/store"
)

// addCompletions gives the shell what the docker CLI asks the plugin for (`__complete`): backup
// names for the commands that take one, context names for migrate, services for --db-service.
// None of them reaches the engine: the project's files and the backup folder say it all.
func addCompletions(root *cobra.Command, dockerCli command.Cli, p *projectOptions) {
	for _, c := range root.Commands() {
		switch c.Name() {
		case "restore", "verify", "pin", "unpin":
			c.ValidArgsFunction = completeBackups(dockerCli, p)
		case "migrate":
			_ = c.RegisterFlagCompletionFunc("to-context", completeContexts(dockerCli))
		}
	}
	_ = root.RegisterFlagCompletionFunc("db-service", completeServices(dockerCli, p))
}

const noFiles = cobra.ShellCompDirectiveNoFileComp

// completionSetUp does what the plugin's pre-run would (cobra skips it for `__complete`): the
// docker CLI's context store and config are needed to load the project as compose does.
func completionSetUp(cmd *cobra.Command) error {
	return cliplugin.PersistentPreRunE(cmd, nil)
}

func completeBackups(dockerCli command.Cli, p *projectOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 || completionSetUp(cmd) != nil {
			return nil, noFiles
		}
		project, err := compose.Load(cmd.Context(), dockerCli, p.ProjectOptions)
		if err != nil {
			return nil, noFiles
		}
		dir, _ := cmd.Flags().GetString("output")
		entries, err := store.List(store.Dir(dir, project.WorkingDir), project.Name)
		if err != nil {
			return nil, noFiles
		}
		return backupCandidates(entries, toComplete), noFiles | cobra.ShellCompDirectiveKeepOrder
	}
}

// backupCandidates are "latest" and the backups' names, newest first, each with what a user
// picks by: when, how big, pinned or verified.
func backupCandidates(entries []store.Entry, toComplete string) []string {
	var out []string
	if len(entries) > 0 && strings.HasPrefix("latest", toComplete) {
		out = append(out, "latest\tthe newest: "+entries[0].Name)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name, toComplete) {
			continue
		}
		desc := []string{e.Created.UTC().Format(time.DateTime) + " UTC", units.HumanSizeWithPrecision(float64(e.Size), 3)}
		if e.Verified != nil {
			desc = append(desc, "verified")
		}
		if e.Pinned != "" {
			desc = append(desc, "pinned: "+e.Pinned)
		}
		out = append(out, e.Name+"\t"+strings.Join(desc, ", "))
	}
	return out
}

func completeContexts(dockerCli command.Cli) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if completionSetUp(cmd) != nil {
			return nil, noFiles
		}
		list, err := dockerCli.ContextStore().List()
		if err != nil {
			return nil, noFiles
		}
		names := make([]string, 0, len(list))
		for _, c := range list {
			names = append(names, c.Name)
		}
		return contextCandidates(names, dockerCli.CurrentContext(), toComplete), noFiles
	}
}

// contextCandidates are the contexts migrate can move to: every one but the current (the
// source), and "default" too when it is not the current one.
func contextCandidates(names []string, current, toComplete string) []string {
	if !slices.Contains(names, "default") {
		names = append(names, "default")
	}
	var out []string
	for _, n := range names {
		if n != current && strings.HasPrefix(n, toComplete) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func completeServices(dockerCli command.Cli, p *projectOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if completionSetUp(cmd) != nil {
			return nil, noFiles
		}
		project, err := compose.Load(cmd.Context(), dockerCli, p.ProjectOptions)
		if err != nil {
			return nil, noFiles
		}
		return serviceCandidates(project, toComplete), noFiles
	}
}

// serviceCandidates are the project's services, sorted, each with its image.
func serviceCandidates(project *types.Project, toComplete string) []string {
	var out []string
	for _, name := range project.ServiceNames() {
		if !strings.HasPrefix(name, toComplete) {
			continue
		}
		img := project.Services[name].Image
		if img == "" {
			img = "built here"
		}
		out = append(out, fmt.Sprintf("%s\t%s", name, img))
	}
	slices.Sort(out)
	return out
}
