package plugin

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	clihooks "github.com/docker/cli/cli-plugins/hooks"
	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/hooks"
)

func hooksCommand(dockerCli command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hooks install|remove",
		Short: "Show the last backup and how to restore it after docker commands that delete volumes",
		Long: "Registers the plugin's Docker CLI hooks in the docker config file: after `docker compose down`,\n" +
			"`docker volume rm`, `docker volume prune` and `docker system prune` the CLI shows, under\n" +
			"\"What's next\", when the last backup was taken and the command that restores it.",
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(
		hooksEditCommand(dockerCli, "install", "Turn the hooks on in the docker config file", hooks.Install),
		hooksEditCommand(dockerCli, "remove", "Take the plugin's hooks out of the docker config file", hooks.Remove),
	)
	return cmd
}

func hooksEditCommand(dockerCli command.Cli, name, short string, edit func(string) (bool, error)) *cobra.Command {
	return &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			path := dockerCli.ConfigFile().Filename
			changed, err := edit(path)
			if err != nil {
				return err
			}
			state := "unchanged"
			if changed {
				state = "updated"
			}
			fmt.Fprintf(dockerCli.Out(), "%s %s: hooks for %s\n", path, state, strings.Join(hooks.Commands, ", "))
			if name == "install" {
				fmt.Fprintln(dockerCli.Err(), "The CLI shows the hint only when its output is a terminal.")
			}
			return nil
		},
	}
}

// hookRunCommand answers the CLI after a hooked command. It reads backup manifests only:
// no engine, no docker config, and a failure is an empty answer rather than an error the
// CLI would hide anyway.
func hookRunCommand(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:               metadata.HookSubcommandName + " REQUEST",
		Hidden:            true,
		Args:              cobra.MaximumNArgs(1),
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(*cobra.Command, []string) error {
			cwd, err := os.Getwd()
			if err != nil {
				return err
			}
			return json.NewEncoder(dockerCli.Out()).Encode(hookAnswer(cwd, time.Now()))
		},
	}
}

// hookAnswer is the CLI's "What's next" response: the hint, as a template.
func hookAnswer(cwd string, now time.Time) clihooks.Response {
	return clihooks.Response{Type: clihooks.NextSteps, Template: hooks.Hint(cwd, now)}
}
