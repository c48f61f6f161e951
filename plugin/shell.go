package plugin

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli-plugins/metadata"
	cliplugin "github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/shellguard"
	"github.com/echo-backup/echo-backup/store"
)

// shellForceEnv lets volume rm and the prunes go on without a backup: their own --force only
// skips docker's confirmation, so the guard cannot take it.
const shellForceEnv = "ECHOBACKUP_FORCE"

func shellInitCommand(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "shell-init bash|zsh|fish",
		Short: "Print docker, docker-compose and sudo shell functions that take a verified backup before volumes are deleted",
		Long: "Prints `docker`, `docker-compose` and `sudo` shell functions: before `docker compose down -v`,\n" +
			"`docker-compose down -v`, `docker volume rm`, `docker volume prune` and `docker system prune\n" +
			"--volumes` (also under sudo) delete an Echo project's volumes, they take a verified backup, and\n" +
			"stop the command if the backup fails. `command docker`, `\\docker` and absolute paths are not\n" +
			"covered: `docker echobackup protect` is. Load them from the shell's rc file:\n\n" +
			"  bash, zsh: eval \"$(docker echobackup shell-init bash)\"\n" +
			"  fish:      docker echobackup shell-init fish | source",
		Args:      cobra.ExactArgs(1),
		ValidArgs: shellguard.Shells,
		RunE: func(_ *cobra.Command, args []string) error {
			script, err := shellguard.Script(args[0])
			if err != nil {
				return cli.StatusError{StatusCode: exitUsage, Status: err.Error()}
			}
			_, err = fmt.Fprint(dockerCli.Out(), script)
			return err
		},
	}
}

type shellGuardOptions struct {
	shell string
	// program is what the shell function wraps: docker, docker-compose or sudo.
	program string
	// reexeced: docker's global flags of the command line already chose the engine.
	reexeced bool
}

// shellGuardCommand is what the shell function asks. On stdout it prints only the arguments
// to run, quoted for the shell; it fails when the command must not run.
func shellGuardCommand(dockerCli command.Cli) *cobra.Command {
	var opts shellGuardOptions
	cmd := &cobra.Command{
		Use:    shellguard.GuardCommand + " --shell SHELL -- DOCKER-ARGS…",
		Short:  "Take a verified backup if a docker command line would delete an Echo project's volumes",
		Hidden: true,
		Args:   cobra.ArbitraryArgs,
		// Commands that delete nothing must pass without the engine: the connection is made
		// only once the line is known to need it.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := commandContext(cmd)
			defer stop()
			return runShellGuard(ctx, cmd, dockerCli, opts, args)
		},
	}
	cmd.Flags().StringVar(&opts.shell, "shell", "bash", "Shell to quote the arguments for")
	cmd.Flags().StringVar(&opts.program, "program", shellguard.ProgramDocker, "The wrapped program: docker, docker-compose or sudo")
	cmd.Flags().BoolVar(&opts.reexeced, "global-flags-applied", false, "")
	_ = cmd.Flags().MarkHidden("global-flags-applied")
	return cmd
}

func runShellGuard(ctx context.Context, cobraCmd *cobra.Command, dockerCli command.Cli, opts shellGuardOptions, argv []string) error {
	switch opts.program {
	case shellguard.ProgramDocker, shellguard.ProgramCompose:
	case shellguard.ProgramSudo:
		return runSudoGuard(ctx, dockerCli, opts, argv)
	default:
		return cli.StatusError{StatusCode: exitUsage, Status: fmt.Sprintf("--program %q: use docker, docker-compose or sudo", opts.program)}
	}
	parsed := shellguard.ParseProgram(opts.program, argv)
	var err error
	switch {
	case parsed.Kind == shellguard.Pass:
		return printShellArgs(dockerCli, opts.shell, parsed.Args)
	case parsed.Kind == shellguard.Unreadable:
		err = fmt.Errorf("%w, so the guard cannot tell what the command would delete", parsed.Err)
	case len(parsed.GlobalArgs) > 0 && !opts.reexeced:
		return reexecShellGuard(ctx, opts, parsed.GlobalArgs, argv)
	default:
		// The engine is reached only now: the plugin's own pre-run was skipped.
		if err := cliplugin.PersistentPreRunE(cobraCmd, nil); err != nil {
			return err
		}
		if ctx, err = withProgress(ctx, cobraCmd, dockerCli, ""); err != nil { // the backup's progress, as in save
			return err
		}
		err = backupBeforeDelete(ctx, dockerCli, parsed)
	}
	if err == nil {
		return printShellArgs(dockerCli, opts.shell, parsed.Args)
	}
	if parsed.Force || os.Getenv(shellForceEnv) == "1" {
		fmt.Fprintf(dockerCli.Err(), "WARNING: %v\nWARNING: going on without a backup, as asked.\n", err)
		return printShellArgs(dockerCli, opts.shell, parsed.Args)
	}
	return cli.StatusError{StatusCode: 1, Status: fmt.Sprintf("echobackup: %v\nStopped before `%s %s`: nothing was deleted. %s",
		err, opts.program, strings.Join(parsed.Args, " "), shellForceHint(parsed))}
}

func shellForceHint(parsed shellguard.Command) string {
	if parsed.Kind == shellguard.ComposeDown {
		return "To go on without a backup, add --force (or run it as " + shellForceEnv + "=1 docker …)."
	}
	return "To go on without a backup, run it as " + shellForceEnv + "=1 docker …"
}

func printShellArgs(dockerCli command.Cli, shell string, args []string) error {
	_, err := fmt.Fprintln(dockerCli.Out(), shellguard.Quote(shell, args))
	return err
}

// reexecShellGuard runs the guard again under docker's global flags (shellguard.Rerun).
func reexecShellGuard(ctx context.Context, opts shellGuardOptions, globals, argv []string) error {
	code, err := shellguard.Rerun(ctx, dockerProgram(), opts.shell, opts.program, globals, argv)
	if err == nil && code != 0 {
		return cli.StatusError{StatusCode: code}
	}
	return err
}

// dockerProgram is the docker CLI that ran the plugin, the one that will run the command.
func dockerProgram() string {
	if docker := os.Getenv(metadata.ReexecEnvvar); docker != "" {
		return docker
	}
	return "docker"
}

// backupBeforeDelete takes a verified backup of every Echo project whose volumes the command
// would delete (shellguard.Endangered). It fails when it cannot tell, so that nothing is
// deleted unseen.
func backupBeforeDelete(ctx context.Context, dockerCli command.Cli, parsed shellguard.Command) error {
	if parsed.Kind != shellguard.ComposeDown {
		// The CLI adds the config file's pruneFilters; an "all" among them prunes named volumes.
		parsed.Filters = command.PruneFilters(dockerCli, parsed.Filters)
		parsed.ClientAPI = shellguard.ClientAPIVersion(ctx, dockerProgram())
	}
	risks, err := shellguard.Endangered(ctx, parsed, shellguard.Options{
		Load: func(ctx context.Context, o compose.ProjectOptions) (*types.Project, error) {
			return compose.Load(ctx, dockerCli, o)
		},
		Connect:     func(ctx context.Context) (compose.Engine, error) { return compose.Connect(ctx, dockerCli) },
		LocalEngine: compose.IsLocalEngine(dockerCli), Getenv: os.Getenv,
	})
	if err != nil {
		return err
	}
	for _, r := range risks {
		if err := backupRisk(ctx, dockerCli, r); err != nil {
			return err
		}
	}
	return nil
}

func backupRisk(ctx context.Context, dockerCli command.Cli, r shellguard.Risk) error {
	plan, vols := r.Plan, strings.Join(r.Volumes, ", ")
	if r.Held {
		fmt.Fprintf(dockerCli.Err(), "echobackup: the guard's sentinel holds volumes %s of project %q: the engine will keep them.\n"+
			"To really delete them, release them first with `docker echobackup -p %s unprotect` in %s.\n",
			vols, plan.Name, plan.Name, plan.WorkingDir)
		return nil
	}
	fmt.Fprintf(dockerCli.Err(), "echobackup: volumes %s of project %q would be deleted: taking a verified backup first.\n", vols, plan.Name)
	_, err := saveStartingDatabase(ctx, dockerCli, plan, r.API, preDelete{pin: store.PinnedPreDown, stopApps: r.StopApps})
	return err
}

// runSudoGuard guards `sudo [options] docker|docker-compose …`. The guard runs again under
// sudo with the same options, so it reaches the engine the command will (a socket only root
// may open), as the same user and with the same environment: the backup lands where
// `sudo docker echobackup save` would put it. Lines that delete nothing start no sudo.
func runSudoGuard(ctx context.Context, dockerCli command.Cli, opts shellGuardOptions, argv []string) error {
	s := shellguard.ParseSudo(argv)
	if s.Unknown != "" {
		fmt.Fprintf(dockerCli.Err(), "echobackup: not guarded: the guard does not read sudo's option %s, so the command runs as typed.\n", s.Unknown)
		return printShellArgs(dockerCli, opts.shell, argv)
	}
	if s.Program == "" {
		return printShellArgs(dockerCli, opts.shell, argv)
	}
	parsed := shellguard.ParseProgram(s.Program, s.Args)
	if parsed.Kind == shellguard.Pass {
		return printShellArgs(dockerCli, opts.shell, argv)
	}
	run := append(append(slices.Clone(s.Prefix), s.Program), parsed.Args...)
	var err error
	if parsed.Kind == shellguard.Unreadable {
		err = fmt.Errorf("%w, so the guard cannot tell what the command would delete", parsed.Err)
	} else {
		err = shellguard.UnderSudo(ctx, opts.shell, s)
	}
	if err == nil {
		return printShellArgs(dockerCli, opts.shell, run)
	}
	if parsed.Force || os.Getenv(shellForceEnv) == "1" {
		fmt.Fprintf(dockerCli.Err(), "WARNING: %v\nWARNING: going on without a backup, as asked.\n", err)
		return printShellArgs(dockerCli, opts.shell, run)
	}
	return cli.StatusError{StatusCode: 1, Status: fmt.Sprintf("echobackup: %v\nStopped before `sudo %s`: nothing was deleted. %s",
		err, strings.Join(run, " "), shellForceHint(parsed))}
}
