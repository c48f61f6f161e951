package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli-plugins/metadata"
	cliplugin "github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/shellguard"
)

// shellForceEnv lets volume rm and the prunes go on without a backup: their own --force only
// skips docker's confirmation, so the guard cannot take it.
const shellForceEnv = "ECHOBACKUP_FORCE"

func shellInitCommand(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "shell-init bash|zsh|fish",
		Short: "Print a docker shell function that takes a verified backup before volumes are deleted",
		Long: "Prints a `docker` shell function: before `docker compose down -v`, `docker volume rm`,\n" +
			"`docker volume prune` and `docker system prune --volumes` delete an Echo project's volumes,\n" +
			"it takes a verified backup, and stops the command if the backup fails. Load it from the\n" +
			"shell's rc file:\n\n" +
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
	cmd.Flags().BoolVar(&opts.reexeced, "global-flags-applied", false, "")
	_ = cmd.Flags().MarkHidden("global-flags-applied")
	return cmd
}

func runShellGuard(ctx context.Context, cobraCmd *cobra.Command, dockerCli command.Cli, opts shellGuardOptions, argv []string) error {
	parsed := shellguard.Parse(argv)
	if parsed.Kind == shellguard.Pass {
		return printShellArgs(dockerCli, opts.shell, parsed.Args)
	}
	if len(parsed.GlobalArgs) > 0 && !opts.reexeced {
		return reexecShellGuard(ctx, opts, parsed.GlobalArgs, argv)
	}
	// The engine is reached only now: the plugin's own pre-run was skipped.
	if err := cliplugin.PersistentPreRunE(cobraCmd, nil); err != nil {
		return err
	}
	err := backupBeforeDelete(ctx, dockerCli, parsed)
	if err == nil {
		return printShellArgs(dockerCli, opts.shell, parsed.Args)
	}
	if parsed.Force || os.Getenv(shellForceEnv) == "1" {
		fmt.Fprintf(dockerCli.Err(), "WARNING: %v\nWARNING: going on without a backup, as asked.\n", err)
		return printShellArgs(dockerCli, opts.shell, parsed.Args)
	}
	return cli.StatusError{StatusCode: 1, Status: fmt.Sprintf("echobackup: %v\nStopped before `docker %s`: nothing was deleted. %s",
		err, strings.Join(parsed.Args, " "), shellForceHint(parsed))}
}

func shellForceHint(parsed shellguard.Command) string {
	if parsed.Kind == shellguard.ComposeDown {
		return "To go on without a backup, add --force."
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
	docker := os.Getenv(metadata.ReexecEnvvar)
	if docker == "" {
		docker = "docker"
	}
	args := append(append([]string(nil), globals...), "echobackup", shellguard.GuardCommand,
		"--shell", opts.shell, "--global-flags-applied", "--")
	c := exec.CommandContext(ctx, docker, append(args, argv...)...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := c.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return cli.StatusError{StatusCode: exitErr.ExitCode()}
	}
	return err
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

// backupBeforeDown loads the project as `docker compose` will. With -p and no compose file
// at hand (compose can down a project by its name alone) the project's containers tell
// where its files are.
func backupBeforeDown(ctx context.Context, dockerCli command.Cli, p shellguard.Project) error {
	opts := compose.ProjectOptions{ProjectName: p.Name, ConfigPaths: p.Files, ProjectDir: p.Dir, EnvFiles: p.EnvFiles, Profiles: p.Profiles}
	project, err := compose.Load(ctx, dockerCli, opts)
	if err == nil {
		return backupLoaded(ctx, dockerCli, project, nil)
	}
	name := p.Name
	if name == "" {
		name = os.Getenv("COMPOSE_PROJECT_NAME")
	}
	switch {
	case len(p.Files) == 0 && name == "" && compose.IsUserError(err):
		return nil // no compose file and no name: compose down fails the same way, deleting nothing
	case len(p.Files) > 0 || name == "":
		return err
	}
	api, err := compose.Connect(ctx, dockerCli)
	if err != nil {
		return err
	}
	loc, err := shellguard.Locate(ctx, api, name)
	if err != nil {
		return fmt.Errorf("no compose file found here, and %w", err)
	}
	opts = compose.ProjectOptions{ProjectName: loc.Name, ConfigPaths: loc.Files, ProjectDir: loc.Dir, EnvFiles: loc.EnvFiles, Profiles: p.Profiles}
	return backupProjectVolumes(ctx, dockerCli, opts, nil)
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
	sentinels, err := shellguard.Sentinels(ctx, api, plan.Name)
	if err != nil {
		return err
	}
	if len(shellguard.Unprotected(kept, sentinels)) == 0 {
		fmt.Fprintf(dockerCli.Err(), "echobackup: the guard's sentinel %s holds volumes %s of project %q: the engine will keep them.\n"+
			"To really delete them, release them first with `docker echobackup -p %s unprotect` in %s.\n",
			sentinels[0].Name, strings.Join(kept, ", "), plan.Name, plan.Name, plan.WorkingDir)
		return nil
	}
	fmt.Fprintf(dockerCli.Err(), "echobackup: volumes %s of project %q would be deleted: taking a verified backup first.\n",
		strings.Join(kept, ", "), plan.Name)
	return saveStartingDatabase(ctx, dockerCli, plan, api)
}

// savedVolumesAtRisk are the existing volumes among volumes (nil: all) that a backup saves.
func savedVolumesAtRisk(plan *compose.Plan, volumes []string) []string {
	var out []string
	for _, it := range plan.Items {
		if it.Kind != "volume" || !it.Exists || it.External || !(it.Backup || it.Role == compose.RoleDatabase) {
			continue
		}
		if volumes == nil || slices.Contains(volumes, it.Source) {
			if !slices.Contains(out, it.Source) {
				out = append(out, it.Source)
			}
		}
	}
	return out
}

// saveStartingDatabase takes the backup, starting the database for it if it is stopped, and
// puts the database back as it was: stopped, or without a container when it had none.
func saveStartingDatabase(ctx context.Context, dockerCli command.Cli, plan *compose.Plan, api compose.Engine) (err error) {
	svc, err := compose.NewServices(dockerCli, plan)
	if err != nil {
		return err
	}
	db, _ := plan.Service(plan.Database.Service)
	hadContainer := len(db.Containers) > 0
	started, err := svc.EnsureDatabase(ctx)
	if started {
		fmt.Fprintf(dockerCli.Err(), "echobackup: started %s for the backup; it is put back as it was afterwards.\n", db.Name)
		defer func() {
			if rerr := putDatabaseBack(context.WithoutCancel(ctx), svc, plan, api, hadContainer); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}
	if err != nil {
		return fmt.Errorf("starting the database of project %q for the backup: %w", plan.Name, err)
	}
	if started {
		if err := svc.Refresh(ctx, api); err != nil {
			return err
		}
	}
	dir := backup.Dir("", plan.WorkingDir)
	_, err = saveVerified(ctx, dockerCli, plan, api, dir, map[string]string{backup.LabelPinned: backup.PinnedPreDown})
	return err
}

// putDatabaseBack stops the database started for the backup, and removes its container if it had
// to be created: a container left behind would hold the volume the user meant to delete.
func putDatabaseBack(ctx context.Context, svc *compose.Services, plan *compose.Plan, api compose.Engine, hadContainer bool) error {
	name := plan.Database.Service
	if err := svc.Stop(ctx, []string{name}); err != nil {
		return fmt.Errorf("stopping %s again after the backup: %w", name, err)
	}
	if hadContainer {
		return nil
	}
	if err := svc.Refresh(ctx, api); err != nil {
		return err
	}
	db, _ := plan.Service(name)
	for _, c := range db.Containers {
		if _, err := api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{}); err != nil {
			return fmt.Errorf("removing %s, created for the backup: %w", c.Name, err)
		}
	}
	return nil
}

func sortedProjects(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
