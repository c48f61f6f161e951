package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/checkpoint"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/guard"
	"github.com/echo-backup/echo-backup/ping"
	"github.com/echo-backup/echo-backup/prune"
	"github.com/echo-backup/echo-backup/retention"
	"github.com/echo-backup/echo-backup/schedule"
	"github.com/echo-backup/echo-backup/store"
)

type scheduleOptions struct {
	*projectOptions
	output  string
	at      string
	ping    string
	systemd bool
	// protect: install turns protect on unless --no-protect, and the job protects on each run.
	noProtect bool
	protect   bool
	policy    retention.Policy
	format    string
}

func scheduleCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Save, verify and prune every night from cron (or a systemd user timer)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(scheduleInstallCommand(dockerCli, p), scheduleStatusCommand(dockerCli, p),
		scheduleRemoveCommand(dockerCli, p), scheduleRunCommand(dockerCli, p))
	return cmd
}

func scheduleInstallCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := scheduleOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "install [OPTIONS]",
		Short: "Add (or replace) the project's entry in your crontab: save, verify, prune; and protect the project",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return userError(runScheduleInstall(cmd.Context(), dockerCli, opts))
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.at, "at", "03:00", `When: "HH:MM" every day, or a cron expression such as "30 2 * * 1-5" or "@daily"`)
	f.StringVar(&opts.ping, "ping", "", "Dead-man's switch URL (healthchecks.io style): URL/start, URL on success, URL/fail on failure")
	f.BoolVar(&opts.systemd, "systemd", false, "Install a systemd user timer instead of a crontab entry")
	f.BoolVar(&opts.noProtect, "no-protect", false, "Do not protect the project's volumes (by default install and every run do: see protect)")
	f.StringVarP(&opts.output, "output", "o", "", "Backup folder")
	addPolicyFlags(f, &opts.policy)
	return cmd
}

func scheduleStatusCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := scheduleOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the project's schedule, its next run, the last run's result and the last backup's age",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return userError(runScheduleStatus(cmd.Context(), dockerCli, opts))
		},
	}
	cmd.Flags().StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	return cmd
}

func scheduleRemoveCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := scheduleOptions{projectOptions: p}
	return &cobra.Command{
		Use:   "remove",
		Short: "Remove the project's entry from your crontab (and its systemd timer); nothing else",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return userError(runScheduleRemove(cmd.Context(), dockerCli, opts))
		},
	}
}

// scheduleRunCommand is what the entry runs: it is hidden because people run save instead.
func scheduleRunCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := scheduleOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:    "run",
		Short:  "The scheduled job: lock, ping start, save and verify, prune, ping the result",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := commandContext(cmd)
			defer stop()
			return runScheduled(ctx, dockerCli, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "", "Backup folder")
	// No default from the environment: help would print the URL.
	f.StringVar(&opts.ping, "ping", "", "Dead-man's switch URL (default: $"+schedule.PingEnv+", else the one install kept in the backup folder)")
	f.BoolVar(&opts.protect, "protect", false, "Also protect the project's volumes, new ones included")
	addPolicyFlags(f, &opts.policy)
	return cmd
}

func runScheduleInstall(ctx context.Context, dockerCli command.Cli, opts scheduleOptions) error {
	expr, err := checkScheduleInstall(opts)
	if err != nil {
		return err
	}
	project, err := compose.Load(ctx, dockerCli, opts.ProjectOptions)
	if err != nil {
		return err
	}
	// A project without a database to save fails now, not at three in the morning.
	if _, err := compose.NewPlan(project, opts.dbService); err != nil {
		return err
	}
	job, err := scheduledJob(dockerCli, opts, project)
	if err != nil {
		return fmt.Errorf("scheduling project %q: %w", project.Name, err)
	}
	// Protect first: an engine that cannot be reached fails the install before the crontab
	// changes.
	protected, err := protectOnInstall(ctx, dockerCli, opts)
	if err != nil {
		return fmt.Errorf("scheduling project %q: %w", project.Name, err)
	}
	defer fmt.Fprintln(dockerCli.Out(), protected)
	res, err := schedule.Install(ctx, schedule.InstallOptions{Expr: expr, Job: job, Systemd: opts.systemd,
		Warn: func(msg string) { fmt.Fprintf(dockerCli.Err(), "WARNING: %s\n", msg) }})
	if errors.Is(err, schedule.ErrNoCrontab) {
		return &compose.UserError{Err: err}
	}
	if err != nil {
		return err
	}
	out := dockerCli.Out()
	if res.Kind == schedule.Systemd {
		fmt.Fprintf(out, "Scheduled project %s with the systemd user timer %s: %s (next run %s)\nLog: %s\n",
			job.Project, res.Unit, expr, schedule.NextText(expr), job.Log)
		return nil
	}
	fmt.Fprintf(out, "Scheduled project %s in your crontab: %s (next run %s)\nLog: %s\n",
		project.Name, expr, schedule.NextText(expr), job.Log)
	for _, o := range res.Others {
		fmt.Fprintf(out, "Project %s in %s has its own entry, which stays: %s\n", o.Project, o.Folder, o.Expr)
	}
	if !schedule.CronRunning() {
		fmt.Fprintln(dockerCli.Err(), "WARNING: no cron daemon runs on this machine: the entry will not run until one does")
	}
	return nil
}

// checkScheduleInstall reads --at and checks the other flags before anything is loaded.
func checkScheduleInstall(opts scheduleOptions) (schedule.Expr, error) {
	expr, err := schedule.ParseAt(opts.at)
	if err != nil {
		return expr, cli.StatusError{StatusCode: exitUsage, Status: "--at: " + err.Error()}
	}
	if _, err := schedule.OnCalendar(expr); opts.systemd && err != nil {
		return expr, cli.StatusError{StatusCode: exitUsage, Status: "--at: " + err.Error()}
	}
	if err := checkPolicy(opts.policy); err != nil {
		return expr, err
	}
	if opts.ping != "" && !strings.HasPrefix(opts.ping, "http://") && !strings.HasPrefix(opts.ping, "https://") {
		return expr, cli.StatusError{StatusCode: exitUsage, Status: "--ping must be an http:// or https:// URL"}
	}
	return expr, nil
}

// scheduledJob is the command line cron runs, for the project as install loaded it; its backup
// folder is made ready, with the ping URL kept there.
func scheduledJob(dockerCli command.Cli, opts scheduleOptions, project *types.Project) (schedule.Job, error) {
	dir, err := filepath.Abs(store.Dir(opts.output, project.WorkingDir))
	if err != nil {
		return schedule.Job{}, err
	}
	if err := store.PrepareDir(dir); err != nil {
		return schedule.Job{}, err
	}
	docker, err := schedule.DockerPath()
	if err != nil {
		return schedule.Job{}, err
	}
	repo, err := scheduledRepo(dockerCli, opts, project)
	if err != nil {
		return schedule.Job{}, err
	}
	if err := schedule.SaveRepo(dir, repo); err != nil {
		return schedule.Job{}, err
	}
	job, err := schedule.BuildJob(schedule.Spec{Docker: docker, Project: project.Name, Folder: project.WorkingDir,
		ComposeFiles: project.ComposeFiles, EnvFiles: opts.EnvFiles, Profiles: opts.Profiles, DBService: opts.dbService,
		Dir: dir, Policy: opts.policy, Protect: !opts.noProtect, Context: dockerCli.CurrentContext(), Getenv: os.Getenv})
	if err != nil {
		return schedule.Job{}, err
	}
	if opts.ping != "" {
		job.Ping = ping.Redact(opts.ping)
	}
	return job, schedule.Prepare(dir, opts.ping)
}

func runScheduleStatus(ctx context.Context, dockerCli command.Cli, opts scheduleOptions) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	project, err := compose.Load(ctx, dockerCli, opts.ProjectOptions)
	if err != nil {
		return err
	}
	st, err := schedule.ReadStatus(ctx, project.Name, project.WorkingDir, store.Dir("", project.WorkingDir))
	if err != nil {
		return err
	}
	if opts.format == formatJSON {
		return writeJSON(dockerCli.Out(), st)
	}
	printScheduleStatus(dockerCli.Out(), st)
	return nil
}

func printScheduleStatus(out io.Writer, st *schedule.Status) {
	fmt.Fprintf(out, "Project:      %s\n", st.Project)
	if !st.Installed {
		fmt.Fprintf(out, "Schedule:     none (docker echobackup schedule install --at 03:00)\n")
	} else {
		fmt.Fprintf(out, "Schedule:     %s (%s)\n", st.Schedule, st.Kind)
		if st.NextRun != nil {
			fmt.Fprintf(out, "Next run:     %s (in %s)\n", st.NextRun.Format("2006-01-02 15:04 MST"), units.HumanDuration(time.Until(*st.NextRun)))
		}
		if st.Kind == schedule.Crontab && !st.CronDaemon {
			fmt.Fprintf(out, "Cron daemon:  NOT RUNNING: the entry does not run\n")
		}
		fmt.Fprintf(out, "Command:      %s\n", st.Command)
	}
	fmt.Fprintf(out, "Log:          %s\n", st.Log)
	switch r := st.LastRun; {
	case r == nil:
		fmt.Fprintf(out, "Last run:     never\n")
	case r.OK:
		fmt.Fprintf(out, "Last run:     OK at %s (%s ago): %s\n", r.Started.Local().Format(time.DateTime), units.HumanDuration(time.Since(r.Started)), r.Summary)
	default:
		fmt.Fprintf(out, "Last run:     FAILED at %s (%s ago): %s\n", r.Started.Local().Format(time.DateTime), units.HumanDuration(time.Since(r.Started)), r.Error)
	}
	if b := st.LastBackup; b == nil {
		fmt.Fprintf(out, "Last backup:  none in %s\n", st.Dir)
	} else {
		fmt.Fprintf(out, "Last backup:  %s, %s old, verified: %s\n", b.Name, units.HumanDuration(time.Since(b.Created)), verifiedText(b.Verified))
	}
}

func runScheduleRemove(ctx context.Context, dockerCli command.Cli, opts scheduleOptions) error {
	project, err := compose.Load(ctx, dockerCli, opts.ProjectOptions)
	if err != nil {
		return err
	}
	removed, err := schedule.Remove(ctx, project.Name, project.WorkingDir,
		func(msg string) { fmt.Fprintf(dockerCli.Err(), "WARNING: %s\n", msg) })
	if err != nil {
		return err
	}
	if len(removed) == 0 {
		fmt.Fprintf(dockerCli.Out(), "No schedule for project %s\n", project.Name)
		return nil
	}
	fmt.Fprintf(dockerCli.Out(), "Removed the schedule of project %s (its backups and log stay)\n", project.Name)
	return nil
}

// runScheduled is the job itself. Its stdout and stderr are the log (the entry appends them
// there).
func runScheduled(ctx context.Context, dockerCli command.Cli, opts scheduleOptions) error {
	if opts.output == "" || !filepath.IsAbs(opts.output) {
		return cli.StatusError{StatusCode: exitUsage, Status: "schedule run needs -o with the backup folder's absolute path"}
	}
	url := opts.ping
	if url == "" {
		url = os.Getenv(schedule.PingEnv)
	}
	if url == "" {
		var err error
		if url, err = schedule.ReadPing(opts.output); err != nil {
			fmt.Fprintf(dockerCli.Err(), "%s WARNING: %v\n", time.Now().Format(time.RFC3339), err)
		}
	}
	err := schedule.RunJob(ctx, opts.output, ping.Ping{URL: url}, dockerCli.Err(), func(ctx context.Context, lock *store.Lock) (string, string, error) {
		return scheduledWork(ctx, dockerCli, opts, lock)
	})
	switch {
	case errors.Is(err, schedule.ErrSkipped):
		return cli.StatusError{StatusCode: 1, Status: "scheduled run skipped"}
	case err != nil:
		return cli.StatusError{StatusCode: 1, Status: "scheduled run failed"}
	}
	return nil
}

// scheduledWork is checkpoint.RunNightly, under the lock RunJob took.
func scheduledWork(ctx context.Context, dockerCli command.Cli, opts scheduleOptions, lock *store.Lock) (summary, path string, err error) {
	if err := checkPolicy(opts.policy); err != nil {
		return "", "", err
	}
	d, err := openDeployment(ctx, dockerCli, opts.projectOptions, opts.output)
	if err != nil {
		return "", "", err
	}
	co := checkpointOptions(ctx, dockerCli, d, nil)
	co.Lock = lock
	n := checkpoint.Nightly{Policy: opts.policy, Protect: opts.protect}
	if err := useScheduledRepo(&opts); err != nil {
		return "", "", err
	}
	if co.Repo, err = openRepo(ctx, opts.repo, d.Plan.Project); err != nil {
		return "", "", err
	}
	if co.Repo != nil {
		defer co.Repo.Close(context.WithoutCancel(ctx))
		n.Prune = func(ctx context.Context) (*prune.Result, error) {
			return pruneRepo(ctx, dockerCli, co.Repo, d.Plan.Name, opts.policy, repoPruneOptions{})
		}
	}
	return checkpoint.RunNightly(ctx, co, n)
}

// useScheduledRepo takes the repository install kept in the backup folder, unless the run
// names one itself.
func useScheduledRepo(opts *scheduleOptions) error {
	s, err := schedule.ReadRepo(opts.output)
	if err != nil || s.Address == "" || opts.repo != "" {
		return err
	}
	opts.repo = s.Address
	if _, set := os.LookupEnv("ECHOBACKUP_PASSWORD_FILE"); !set && s.PasswordFile != "" {
		return os.Setenv("ECHOBACKUP_PASSWORD_FILE", s.PasswordFile)
	}
	return nil
}

// scheduledRepo is the repository the job saves into, when the backups go to one, and the
// password file install was given. The secrets stay out of the entry: what the job cannot read
// from the project's .env or a password file, it cannot have, so install says so now rather
// than fail at night.
func scheduledRepo(dockerCli command.Cli, opts scheduleOptions, project *types.Project) (schedule.RepoSetting, error) {
	o, err := repoOptions(opts.repo, project)
	if err != nil || o.Address == "" {
		return schedule.RepoSetting{}, err
	}
	s := schedule.RepoSetting{Address: o.Address}
	if f := os.Getenv("ECHOBACKUP_PASSWORD_FILE"); f != "" {
		if s.PasswordFile, err = filepath.Abs(f); err != nil {
			return s, err
		}
	}
	files := opts.EnvFiles
	if len(files) == 0 {
		files = []string{filepath.Join(project.WorkingDir, ".env")}
	}
	dotEnv, _ := dotenv.Read(files...) // a missing .env holds nothing
	for _, k := range []string{"ECHOBACKUP_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		if _, inShell := os.LookupEnv(k); inShell {
			if _, inDotEnv := dotEnv[k]; !inDotEnv {
				fmt.Fprintf(dockerCli.Err(), "WARNING: %s is set in this shell only: the nightly job will not see it "+
					"(secrets never go into the schedule entry); put it in the project's .env, or the password in a file named by ECHOBACKUP_PASSWORD_FILE\n", k)
			}
		}
	}
	return s, nil
}

// protectOnInstall protects the project unless --no-protect, and says so in one line. A
// project whose volumes do not exist yet is protected by its first run.
func protectOnInstall(ctx context.Context, dockerCli command.Cli, opts scheduleOptions) (string, error) {
	if opts.noProtect {
		return "Not protected (--no-protect): docker may delete the volumes; `docker echobackup protect` keeps them", nil
	}
	plan, api, err := loadPlanAPI(ctx, dockerCli, opts.projectOptions)
	if err != nil {
		return "", err
	}
	res, err := guard.Protect(ctx, api, plan)
	var userErr *compose.UserError
	switch {
	case errors.As(err, &userErr):
		return "Protect: nothing to hold yet (" + userErr.Error() + "); each run protects what appears", nil
	case err != nil:
		return "", fmt.Errorf("protecting project %q (--no-protect skips it): %w", plan.Name, err)
	}
	return fmt.Sprintf("Protected: container %s holds %s, and each run takes in new volumes (--no-protect: not)",
		res.Sentinel.Name, strings.Join(res.Sentinel.Volumes, ", ")), nil
}
