package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli-plugins/metadata"
	cliplugin "github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/guard"
	"github.com/echo-backup/echo-backup/shellguard"
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
	parsed := parseProgram(opts.program, argv)
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

// reexecShellGuard runs the guard again under docker's global flags (-H, --context, --config,
// --tls…), so it reaches the engine the command itself will, with the CLI's own parsing.
func reexecShellGuard(ctx context.Context, opts shellGuardOptions, globals, argv []string) error {
	docker := dockerProgram()
	args := append(append([]string(nil), globals...), "echobackup", shellguard.GuardCommand,
		"--shell", opts.shell, "--program", opts.program, "--global-flags-applied", "--")
	c := exec.CommandContext(ctx, docker, append(args, argv...)...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := c.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return cli.StatusError{StatusCode: exitErr.ExitCode()}
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

// backupBeforeDelete takes a verified backup of every Echo project whose volumes the command would
// delete. It fails when it cannot tell, so that nothing is deleted unseen.
func backupBeforeDelete(ctx context.Context, dockerCli command.Cli, parsed shellguard.Command) error {
	if parsed.Kind == shellguard.ComposeDown {
		return backupBeforeDown(ctx, dockerCli, parsed.Project)
	}
	api, err := compose.Connect(ctx, dockerCli)
	if err != nil {
		return err
	}
	// The CLI adds the config file's pruneFilters; an "all" among them prunes named volumes.
	parsed.Filters = command.PruneFilters(dockerCli, parsed.Filters)
	parsed.ClientAPI = shellguard.ClientAPIVersion(ctx, dockerProgram())
	atRisk, err := shellguard.AtRisk(ctx, api, parsed)
	if err != nil {
		return fmt.Errorf("finding the volumes `%s` would delete: %w", parsed.Kind, err)
	}
	for _, name := range sortedProjects(atRisk) {
		loc, err := shellguard.Locate(ctx, api, name)
		if err != nil {
			return fmt.Errorf("%s would delete volumes %s of compose project %q, and %w: save it first "+
				"with `docker echobackup -p %s -f COMPOSE-FILE save` (or `docker compose up -d` it and retry)",
				parsed.Kind, strings.Join(atRisk[name], ", "), name, err, name)
		}
		opts := compose.ProjectOptions{ProjectName: loc.Name, ConfigPaths: loc.Files, ProjectDir: loc.Dir, EnvFiles: loc.EnvFiles}
		if err := backupProjectVolumes(ctx, dockerCli, opts, atRisk[name]); err != nil {
			return err
		}
	}
	return nil
}

// backupBeforeDown finds what `docker compose down -v` will remove as compose does
// (projectOrName in compose's cmd/compose/compose.go): with -p and no -f it reads no compose
// file at all, whatever the folder holds, and removes every volume labelled with the
// project; otherwise it loads the files, and if that fails goes by COMPOSE_PROJECT_NAME.
func backupBeforeDown(ctx context.Context, dockerCli command.Cli, p shellguard.Project) error {
	if p.Name != "" && len(p.Files) == 0 {
		return backupByName(ctx, dockerCli, p.Name, p.Profiles)
	}
	opts := compose.ProjectOptions{ProjectName: p.Name, ConfigPaths: p.Files, ProjectDir: p.Dir, EnvFiles: p.EnvFiles, Profiles: p.Profiles}
	project, err := compose.Load(ctx, dockerCli, opts)
	if err == nil {
		return backupLoaded(ctx, dockerCli, project, nil)
	}
	if name := os.Getenv("COMPOSE_PROJECT_NAME"); name != "" {
		return backupByName(ctx, dockerCli, name, p.Profiles)
	}
	if len(p.Files) == 0 && compose.IsUserError(err) {
		return nil // no compose file found: compose down fails the same way, deleting nothing
	}
	return err
}

// backupByName guards a down by project name alone. The project's containers say where its
// compose files are; with none left, nothing tells whether its volumes hold an Echo
// database, so the guard stops rather than let them go unseen.
func backupByName(ctx context.Context, dockerCli command.Cli, name string, profiles []string) error {
	api, err := compose.Connect(ctx, dockerCli)
	if err != nil {
		return err
	}
	loc, err := shellguard.Locate(ctx, api, name)
	if err == nil {
		opts := compose.ProjectOptions{ProjectName: loc.Name, ConfigPaths: loc.Files, ProjectDir: loc.Dir, EnvFiles: loc.EnvFiles, Profiles: profiles}
		return backupProjectVolumes(ctx, dockerCli, opts, nil)
	}
	volumes, verr := shellguard.ProjectVolumes(ctx, api, name)
	if verr != nil {
		return verr
	}
	free, serr := notHeld(ctx, api, name, volumes)
	if serr != nil || len(free) == 0 {
		return serr // nothing to delete, or the guard's sentinel holds it all: the engine keeps it
	}
	return fmt.Errorf("compose down -v would delete volumes %s of compose project %q, and %w: save it first "+
		"with `docker echobackup -p %s -f COMPOSE-FILE save` (or `docker compose -p %s -f COMPOSE-FILE up -d` and retry)",
		strings.Join(free, ", "), name, err, name, name)
}

// notHeld are the volumes that no running sentinel of project holds.
func notHeld(ctx context.Context, api compose.Engine, project string, volumes []string) ([]string, error) {
	s, err := guard.Current(ctx, api, project)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(slices.Clone(volumes), func(v string) bool { return s.Running() && slices.Contains(s.Volumes, v) }), nil
}

// backupProjectVolumes loads the project and saves it if any of volumes (nil: all of its
// volumes) holds what a backup keeps.
func backupProjectVolumes(ctx context.Context, dockerCli command.Cli, opts compose.ProjectOptions, volumes []string) error {
	project, err := compose.Load(ctx, dockerCli, opts)
	if err != nil {
		return err
	}
	return backupLoaded(ctx, dockerCli, project, volumes)
}

// backupLoaded saves the project if any of volumes (nil: all) holds what a backup keeps. A
// project without PostgreSQL is not Echo's and passes.
func backupLoaded(ctx context.Context, dockerCli command.Cli, project *types.Project, volumes []string) error {
	plan, err := compose.NewPlan(project, "")
	if err != nil {
		if errors.Is(err, compose.ErrNoDatabase) {
			return nil
		}
		return fmt.Errorf("project %q: %w", project.Name, err)
	}
	api, err := compose.Connect(ctx, dockerCli)
	if err != nil {
		return err
	}
	if err := plan.Inspect(ctx, api, compose.IsLocalEngine(dockerCli)); err != nil {
		return err
	}
	kept := savedVolumesAtRisk(plan, volumes)
	if len(kept) == 0 {
		return nil
	}
	free, err := notHeld(ctx, api, plan.Name, kept)
	if err != nil {
		return err
	}
	if len(free) == 0 {
		fmt.Fprintf(dockerCli.Err(), "echobackup: the guard's sentinel holds volumes %s of project %q: the engine will keep them.\n"+
			"To really delete them, release them first with `docker echobackup -p %s unprotect` in %s.\n",
			strings.Join(kept, ", "), plan.Name, plan.Name, plan.WorkingDir)
		return nil
	}
	fmt.Fprintf(dockerCli.Err(), "echobackup: volumes %s of project %q would be deleted: taking a verified backup first.\n",
		strings.Join(kept, ", "), plan.Name)
	// volumes is nil only for compose down -v: the whole project goes, so the app stops first.
	_, err = saveStartingDatabase(ctx, dockerCli, plan, api, preDelete{pin: backup.PinnedPreDown, stopApps: volumes == nil})
	return err
}

func sortedProjects(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// parseProgram reads the line of the wrapped program: docker's, or the standalone compose's.
func parseProgram(program string, argv []string) shellguard.Command {
	if program == shellguard.ProgramCompose {
		return shellguard.ParseStandalone(argv)
	}
	return shellguard.Parse(argv)
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
	parsed := parseProgram(s.Program, s.Args)
	if parsed.Kind == shellguard.Pass {
		return printShellArgs(dockerCli, opts.shell, argv)
	}
	run := append(append(slices.Clone(s.Prefix), s.Program), parsed.Args...)
	var err error
	if parsed.Kind == shellguard.Unreadable {
		err = fmt.Errorf("%w, so the guard cannot tell what the command would delete", parsed.Err)
	} else {
		err = guardUnderSudo(ctx, opts, s)
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

// guardUnderSudo runs `sudo PREFIX docker echobackup shell-guard … -- ARGS`. Its stdout (the
// words to run) is not needed: the line is the same. Its stderr goes to the user's, and is
// read for the one failure the user has to fix outside the guard.
func guardUnderSudo(ctx context.Context, opts shellGuardOptions, s shellguard.Sudo) error {
	sudo, err := exec.LookPath("sudo")
	if err != nil {
		return fmt.Errorf("running the guard under sudo: %w", err)
	}
	args := append(slices.Clone(s.Prefix), shellguard.ProgramDocker, "echobackup", shellguard.GuardCommand,
		"--shell", opts.shell, "--program", s.Program, "--")
	c := exec.CommandContext(ctx, sudo, append(args, s.Args...)...)
	var stderr strings.Builder
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, io.Discard, io.MultiWriter(os.Stderr, &stderr)
	err = c.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &exitErr):
		return fmt.Errorf("running the guard under sudo: %w", err)
	// Without the plugin, docker reads the guard's flags as its own and fails on the first.
	case strings.Contains(stderr.String(), "'echobackup' is not a docker command"),
		strings.Contains(stderr.String(), "unknown flag: --shell"):
		return errors.New("the guard cannot run under sudo: sudo's docker does not find the echobackup plugin " +
			"(install it for root too: ~root/.docker/cli-plugins or /usr/local/lib/docker/cli-plugins; " +
			"or keep your DOCKER_CONFIG with sudo -E)")
	}
	return fmt.Errorf("the guard under sudo stopped it (exit %d, see above)", exitErr.ExitCode())
}
