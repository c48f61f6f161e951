// Package plugin holds the cobra commands of `docker echobackup`: each declares its flags,
// opens the command's one compose.Deployment, makes one call into a domain package
// (checkpoint, prune, schedule, shellguard, guard, backup, restore, store) and prints. It
// owns the backup folder's lock when the command takes it, and passes it down.
package plugin

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/progress"
	"github.com/echo-backup/echo-backup/store"
	"github.com/echo-backup/echo-backup/version"
)

// Version is version.Version (set at build time there), under the name the commands on other
// branches still pass as ToolVersion.
var Version = version.Version

// NewRootCommand builds `docker echobackup` and its subcommands.
func NewRootCommand(dockerCli command.Cli) *cobra.Command {
	opts := &projectOptions{}
	cmd := &cobra.Command{
		Use:   "echobackup",
		Short: "Save, verify and restore an Echo music-server deployment",
		Long: "Backs up an Echo deployment (PostgreSQL, the ./data folder, the compose files) into one\n" +
			"verified archive, and restores it. It reads the compose project as `docker compose` does.",
		SilenceUsage:  true,
		SilenceErrors: true,
		// The CLI requires plugin.PersistentPreRunE first: without it Client() has no context store.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := plugin.PersistentPreRunE(cmd, args); err != nil {
				return err
			}
			return setUpProgress(cmd, dockerCli, opts.progress)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return cli.StatusError{StatusCode: 1, Status: "unknown command: " + args[0]}
		},
	}
	opts.addFlags(cmd)
	// What the backup folder's lock sweeps away goes to stderr, whichever command took it.
	store.Swept = func(msg string) { fmt.Fprintln(dockerCli.Err(), msg) }
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return cli.StatusError{StatusCode: exitUsage, Status: err.Error()}
	})
	cmd.AddCommand(
		statusCommand(dockerCli, opts),
		saveCommand(dockerCli, opts),
		verifyCommand(dockerCli, opts),
		listCommand(dockerCli, opts),
		restoreCommand(dockerCli, opts),
		pruneCommand(dockerCli, opts), pinCommand(dockerCli, opts), unpinCommand(dockerCli, opts),
		scheduleCommand(dockerCli, opts),
		shellInitCommand(dockerCli), shellGuardCommand(dockerCli), hooksCommand(dockerCli), hookRunCommand(dockerCli),
		protectCommand(dockerCli, opts), unprotectCommand(dockerCli, opts), downCommand(dockerCli, opts),
		migrateCommand(dockerCli, opts), repoCommand(dockerCli, opts), copyCommand(dockerCli, opts),
	)
	addCompletions(cmd, dockerCli, opts)
	return cmd
}

// projectOptions are compose's project flags, shared by every command.
type projectOptions struct {
	compose.ProjectOptions
	dbService string
	progress  string
	repo      string
}

func (o *projectOptions) addFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringArrayVarP(&o.ConfigPaths, "file", "f", nil, "Compose configuration files")
	f.StringVarP(&o.ProjectName, "project-name", "p", "", "Project name")
	f.StringVar(&o.ProjectDir, "project-directory", "", "Alternate working directory (default: the folder of the first compose file)")
	f.StringArrayVar(&o.EnvFiles, "env-file", nil, "Alternate environment file")
	f.StringArrayVar(&o.Profiles, "profile", nil, "Compose profile to enable")
	addRepoFlag(f, &o.repo)
	f.StringVar(&o.dbService, "db-service", "", "The PostgreSQL service, where it is not found by image or label")
	f.StringVar(&o.progress, "progress", "", `Progress on stderr: "auto" (tty on a terminal, else plain), "tty", "plain", "json" or "quiet" (default: $`+progress.Env+`, else $COMPOSE_PROGRESS or $BUILDKIT_PROGRESS, else auto)`)
}

// commandContext is cancelled on Ctrl-C or SIGTERM, so a save stops and removes its partial file.
func commandContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
