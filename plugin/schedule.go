package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/guard"
	"github.com/echo-backup/echo-backup/retention"
	"github.com/echo-backup/echo-backup/schedule"
)

// pingEnv gives a run the ping URL in place of the one install kept in the backup folder (and
// is how entries from before that carried it).
const pingEnv = "ECHOBACKUP_PING_URL"

type scheduleOptions struct {
	*projectOptions
	dir     string
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
	f.StringVarP(&opts.dir, "output", "o", "", "Backup folder")
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
	f.StringVarP(&opts.dir, "output", "o", "", "Backup folder")
	// No default from the environment: help would print the URL.
	f.StringVar(&opts.ping, "ping", "", "Dead-man's switch URL (default: $"+pingEnv+", else the one install kept in the backup folder)")
	f.BoolVar(&opts.protect, "protect", false, "Also protect the project's volumes, new ones included")
	addPolicyFlags(f, &opts.policy)
	return cmd
}

func runScheduleInstall(ctx context.Context, dockerCli command.Cli, opts scheduleOptions) error {
	expr, err := schedule.ParseAt(opts.at)
	if err != nil {
		return cli.StatusError{StatusCode: exitUsage, Status: "--at: " + err.Error()}
	}
	if _, err := schedule.OnCalendar(expr); opts.systemd && err != nil {
		return cli.StatusError{StatusCode: exitUsage, Status: "--at: " + err.Error()}
	}
	if err := checkPolicy(opts.policy); err != nil {
		return err
	}
	if opts.ping != "" && !strings.HasPrefix(opts.ping, "http://") && !strings.HasPrefix(opts.ping, "https://") {
		return cli.StatusError{StatusCode: exitUsage, Status: "--ping must be an http:// or https:// URL"}
	}
	project, err := compose.Load(ctx, dockerCli, opts.ProjectOptions)
	if err != nil {
		return err
	}
	// A project without a database to save fails now, not at three in the morning.
	if _, err := compose.NewPlan(project, opts.dbService); err != nil {
		return err
	}
	dir, err := filepath.Abs(backup.Dir(opts.dir, project.WorkingDir))
	if err != nil {
		return err
	}
	if err := backup.PrepareDir(dir); err != nil {
		return fmt.Errorf("scheduling project %q: %w", project.Name, err)
	}
	job, err := scheduledJob(dockerCli, opts, project, dir)
	if err == nil {
		err = schedule.Prepare(dir, opts.ping)
	}
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
	if opts.systemd {
		return installTimer(ctx, dockerCli.Out(), expr, job)
	}
	// One schedule per project: a timer from an earlier install --systemd goes.
	if _, err := schedule.RemoveTimer(ctx, project.Name, project.WorkingDir); err != nil {
		return fmt.Errorf("scheduling project %q: %w", project.Name, err)
	}
	line, err := schedule.Line(expr, job)
	if err != nil {
		return err
	}
	text, _, err := schedule.ReadCrontab(ctx)
	if errors.Is(err, schedule.ErrNoCrontab) {
		return &compose.UserError{Err: err}
	}
	if err != nil {
		return fmt.Errorf("scheduling project %q: %w", project.Name, err)
	}
	old, replaced := schedule.Find(text, project.Name, project.WorkingDir)
	if updated := schedule.Put(text, project.Name, project.WorkingDir, line); updated != text {
		if err := schedule.WriteCrontab(ctx, updated); err != nil {
			return fmt.Errorf("scheduling project %q: %w", project.Name, err)
		}
	}
	if replaced && old.Dir != "" && old.Dir != dir {
		forgetPing(dockerCli.Err(), old.Dir)
	}
	fmt.Fprintf(dockerCli.Out(), "Scheduled project %s in your crontab: %s (next run %s)\nLog: %s\n",
		project.Name, expr, nextText(expr), job.Log)
	printOthers(dockerCli.Out(), schedule.Others(text, project.Name, project.WorkingDir))
	if !cronRunning() {
		fmt.Fprintln(dockerCli.Err(), "WARNING: no cron daemon runs on this machine: the entry will not run until one does")
	}
	return nil
}

// scheduledJob is the command line cron runs, for the project as install loaded it.
func scheduledJob(dockerCli command.Cli, opts scheduleOptions, project *types.Project, dir string) (schedule.Job, error) {
	docker, err := dockerPath()
	if err != nil {
		return schedule.Job{}, err
	}
	job, err := schedule.BuildJob(schedule.Spec{Docker: docker, Project: project.Name, Folder: project.WorkingDir,
		ComposeFiles: project.ComposeFiles, EnvFiles: opts.EnvFiles, Profiles: opts.Profiles, DBService: opts.dbService,
		Dir: dir, Policy: opts.policy, Protect: !opts.noProtect, Context: dockerCli.CurrentContext(), Getenv: os.Getenv})
	if err != nil {
		return schedule.Job{}, err
	}
	if opts.ping != "" {
		job.Ping = schedule.Redact(opts.ping)
	}
	return job, nil
}

// nextText is when the entry runs next, for install's output.
func nextText(expr schedule.Expr) string {
	next := expr.Next(time.Now())
	if next.IsZero() {
		return "never: no such date within five years"
	}
	return next.Format("2006-01-02 15:04 MST")
}

// printOthers says which projects of the same name in other folders keep their own entries.
func printOthers(out io.Writer, others []schedule.Entry) {
	for _, o := range others {
		fmt.Fprintf(out, "Project %s in %s has its own entry, which stays: %s\n", o.Project, o.Folder, o.Expr)
	}
}

// forgetPing removes the ping URL that install kept in a backup folder no entry uses now.
func forgetPing(errOut io.Writer, dir string) {
	if err := schedule.SavePing(dir, ""); err != nil {
		fmt.Fprintf(errOut, "WARNING: %v\n", err)
	}
}

// dockerPath is the docker CLI by absolute path: the one in PATH, else the one running us.
func dockerPath() (string, error) {
	if p, err := exec.LookPath("docker"); err == nil {
		return filepath.Abs(p)
	}
	if p, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", os.Getppid())); err == nil && filepath.Base(p) == "docker" {
		return p, nil
	}
	return "", errors.New("cannot find the docker CLI in PATH")
}

// cronRunning looks for a cron daemon among the processes; false where /proc cannot tell.
func cronRunning() bool {
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if name := strings.TrimSpace(string(b)); err == nil && (name == "cron" || name == "crond") {
			return true
		}
	}
	return false
}

// scheduleStatus is what status shows.
type scheduleStatus struct {
	Project    string        `json:"project"`
	Installed  bool          `json:"installed"`
	Kind       string        `json:"kind,omitempty"` // crontab or systemd
	Schedule   string        `json:"schedule,omitempty"`
	Command    string        `json:"command,omitempty"`
	Ping       string        `json:"ping,omitempty"`
	NextRun    *time.Time    `json:"nextRun,omitempty"`
	CronDaemon bool          `json:"cronDaemon"`
	Dir        string        `json:"dir"`
	Log        string        `json:"log"`
	LastRun    *schedule.Run `json:"lastRun,omitempty"`
	LastBackup *backup.Entry `json:"lastBackup,omitempty"`
}

var pingInCommand = regexp.MustCompile(pingEnv + `=('[^']*'|\S+)`)

func runScheduleStatus(ctx context.Context, dockerCli command.Cli, opts scheduleOptions) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	project, err := compose.Load(ctx, dockerCli, opts.ProjectOptions)
	if err != nil {
		return err
	}
	st := scheduleStatus{Project: project.Name, Dir: backup.Dir("", project.WorkingDir), CronDaemon: cronRunning()}
	entry, kind, err := findSchedule(ctx, project.Name, project.WorkingDir)
	if err != nil {
		return err
	}
	if entry != nil {
		st.Installed, st.Kind, st.Dir, st.Schedule = true, kind, entry.Dir, entry.Expr.String()
		st.Command = pingInCommand.ReplaceAllString(entry.Command, pingEnv+"=(hidden)")
		if next := entry.Expr.Next(time.Now()); !next.IsZero() {
			st.NextRun = &next
		}
	}
	st.Log = schedule.LogPath(st.Dir)
	if st.LastRun, err = schedule.ReadLast(st.Dir); err != nil {
		return err
	}
	if entries, err := backup.List(st.Dir, project.Name); err == nil && len(entries) > 0 {
		st.LastBackup = &entries[0]
	}
	if opts.format == formatJSON {
		return writeJSON(dockerCli.Out(), st)
	}
	printScheduleStatus(dockerCli.Out(), st)
	return nil
}

// findSchedule looks in the crontab, then among the systemd user units.
func findSchedule(ctx context.Context, project, folder string) (*schedule.Entry, string, error) {
	text, _, err := schedule.ReadCrontab(ctx)
	if err != nil && !errors.Is(err, schedule.ErrNoCrontab) {
		return nil, "", err
	}
	if e, ok := schedule.Find(text, project, folder); ok {
		return &e, "crontab", nil
	}
	if e, ok := schedule.FindTimer(project, folder); ok {
		return &e, "systemd", nil
	}
	return nil, "", nil
}

func printScheduleStatus(out io.Writer, st scheduleStatus) {
	fmt.Fprintf(out, "Project:      %s\n", st.Project)
	if !st.Installed {
		fmt.Fprintf(out, "Schedule:     none (docker echobackup schedule install --at 03:00)\n")
	} else {
		fmt.Fprintf(out, "Schedule:     %s (%s)\n", st.Schedule, st.Kind)
		if st.NextRun != nil {
			fmt.Fprintf(out, "Next run:     %s (in %s)\n", st.NextRun.Format("2006-01-02 15:04 MST"), units.HumanDuration(time.Until(*st.NextRun)))
		}
		if st.Kind == "crontab" && !st.CronDaemon {
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
	name, folder := project.Name, project.WorkingDir
	var removed []schedule.Entry
	text, _, err := schedule.ReadCrontab(ctx)
	switch {
	case errors.Is(err, schedule.ErrNoCrontab):
	case err != nil:
		return fmt.Errorf("removing the schedule of project %q: %w", name, err)
	default:
		if e, found := schedule.Find(text, name, folder); found {
			updated, _ := schedule.Delete(text, name, folder)
			if err := schedule.WriteCrontab(ctx, updated); err != nil {
				return fmt.Errorf("removing the schedule of project %q: %w", name, err)
			}
			removed = append(removed, e)
		}
	}
	if e, found := schedule.FindTimer(name, folder); found {
		if _, err := schedule.RemoveTimer(ctx, name, folder); err != nil {
			return fmt.Errorf("removing the schedule of project %q: %w", name, err)
		}
		removed = append(removed, e)
	}
	for _, e := range removed {
		forgetPing(dockerCli.Err(), e.Dir)
	}
	if len(removed) == 0 {
		fmt.Fprintf(dockerCli.Out(), "No schedule for project %s\n", project.Name)
		return nil
	}
	fmt.Fprintf(dockerCli.Out(), "Removed the schedule of project %s (its backups and log stay)\n", project.Name)
	return nil
}

func installTimer(ctx context.Context, out io.Writer, expr schedule.Expr, job schedule.Job) error {
	unit, err := schedule.InstallTimer(ctx, expr, job)
	if err != nil {
		return fmt.Errorf("scheduling project %q: %w", job.Project, err)
	}
	// One schedule per project: a crontab entry from an earlier install goes.
	if text, _, err := schedule.ReadCrontab(ctx); err == nil {
		if updated, found := schedule.Delete(text, job.Project, job.Folder); found {
			if err := schedule.WriteCrontab(ctx, updated); err != nil {
				return fmt.Errorf("scheduling project %q: %w", job.Project, err)
			}
		}
	}
	fmt.Fprintf(out, "Scheduled project %s with the systemd user timer %s: %s (next run %s)\nLog: %s\n",
		job.Project, unit, expr, nextText(expr), job.Log)
	return nil
}

// runScheduled is the job itself. Its stdout and stderr are the log (the entry appends them
// there).
func runScheduled(ctx context.Context, dockerCli command.Cli, opts scheduleOptions) error {
	if opts.dir == "" || !filepath.IsAbs(opts.dir) {
		return cli.StatusError{StatusCode: exitUsage, Status: "schedule run needs -o with the backup folder's absolute path"}
	}
	url := opts.ping
	if url == "" {
		url = os.Getenv(pingEnv)
	}
	if url == "" {
		var err error
		if url, err = schedule.ReadPing(opts.dir); err != nil {
			fmt.Fprintf(dockerCli.Err(), "%s WARNING: %v\n", time.Now().Format(time.RFC3339), err)
		}
	}
	err := schedule.RunJob(ctx, opts.dir, schedule.Ping{URL: url}, dockerCli.Err(), func(ctx context.Context) (string, string, error) {
		return scheduledWork(ctx, dockerCli, opts)
	})
	switch {
	case errors.Is(err, schedule.ErrSkipped):
		return cli.StatusError{StatusCode: 1, Status: "scheduled run skipped"}
	case err != nil:
		return cli.StatusError{StatusCode: 1, Status: "scheduled run failed"}
	}
	return nil
}

func scheduledWork(ctx context.Context, dockerCli command.Cli, opts scheduleOptions) (summary, path string, err error) {
	if err := checkPolicy(opts.policy); err != nil {
		return "", "", err
	}
	plan, api, err := loadPlanAPI(ctx, dockerCli, opts.projectOptions)
	if err != nil {
		return "", "", err
	}
	res, err := saveVerified(ctx, dockerCli, plan, api, opts.dir, nil)
	// The protection does not wait on the backup: volumes added since the last run are held
	// from now on, whether this save worked or not.
	protected, perr := scheduledProtect(ctx, api, plan, opts.protect)
	if err != nil {
		return "", "", errors.Join(err, perr)
	}
	if perr != nil {
		return "", res.Path, fmt.Errorf("saved and verified %s, then %w", res.Path, perr)
	}
	pruned, err := pruneBackups(ctx, dockerCli, opts.dir, plan.Name, plan.WorkingDir, opts.policy, false)
	if err != nil {
		return "", res.Path, fmt.Errorf("saved and verified %s, then %w", res.Path, err)
	}
	return fmt.Sprintf("saved and verified %s (%s, %d tables, %d rows, %d files) in %s; %s%s", filepath.Base(res.Path),
		humanSize(res.Size), res.Tables, res.Rows, res.Files, res.Duration.Round(100*time.Millisecond), pruned.Summary(), protected), res.Path, nil
}

// scheduledProtect protects the project on a run installed with protection: Protect keeps
// what the sentinel holds and adds the project's new volumes (a service added to the compose
// file and brought up since). A project with no data volume (data in folders, which docker
// never deletes) needs none.
func scheduledProtect(ctx context.Context, api compose.Engine, plan *compose.Plan, protect bool) (string, error) {
	if !protect {
		return "", nil
	}
	res, err := guard.Protect(ctx, api, plan)
	var userErr *compose.UserError
	switch {
	case errors.As(err, &userErr):
		return "; nothing to protect: " + userErr.Error(), nil
	case err != nil:
		return "", fmt.Errorf("protecting project %q: %w", plan.Name, err)
	case len(res.Added) > 0:
		return fmt.Sprintf("; protected %s (new: %s)", strings.Join(res.Sentinel.Volumes, ", "), strings.Join(res.Added, ", ")), nil
	}
	return "; protected " + strings.Join(res.Sentinel.Volumes, ", "), nil
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
