package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/guard"
	"github.com/echo-backup/echo-backup/repository"
)

const repoEnv = "ECHOBACKUP_REPO"

func addRepoFlag(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "repo", "", "Repository: a folder or s3://BUCKET/PREFIX (default: $"+repoEnv+
		", from the environment or the project's .env, else x-echobackup.repository in the compose file)")
}

// repoOptions resolves where the repository is and how to open it: the flag, then the
// environment, then the project's .env, then the compose file. An empty Address: none is set.
func repoOptions(flag string, project *types.Project) (repository.Options, error) {
	lookup := func(key string) (string, bool) {
		if key == repoEnv && flag != "" {
			return flag, true
		}
		if v, ok := os.LookupEnv(key); ok {
			return v, true
		}
		if project != nil {
			v, ok := project.Environment[key]
			return v, ok
		}
		return "", false
	}
	o, err := repository.FromEnv(lookup)
	if err != nil {
		return o, &compose.UserError{Err: err}
	}
	if o.Address == "" && project != nil {
		o.Address, err = composeRepo(project)
	}
	return o, err
}

// composeRepo is x-echobackup.repository in the compose file.
func composeRepo(project *types.Project) (string, error) {
	ext, ok := project.Extensions[guard.SettingKey].(map[string]any)
	if !ok || ext["repository"] == nil {
		return "", nil
	}
	s, ok := ext["repository"].(string)
	if !ok {
		return "", &compose.UserError{Err: fmt.Errorf("%s.repository in the compose file must be a folder or an s3:// address", guard.SettingKey)}
	}
	return s, nil
}

// openRepo opens the repository the settings name, or returns nil when none is set.
func openRepo(ctx context.Context, flag string, project *types.Project) (*repository.Repository, error) {
	o, err := repoOptions(flag, project)
	if err != nil || o.Address == "" {
		return nil, err
	}
	r, err := repository.Open(ctx, o)
	if err != nil {
		return nil, explainRepo(o.Address, err)
	}
	return r, nil
}

// explainRepo says what the user can do about a repository that does not open.
func explainRepo(addr string, err error) error {
	switch {
	case errors.Is(err, repository.ErrWrongPassword):
		return &compose.UserError{Err: fmt.Errorf("opening the repository %s: the password is wrong (it comes from $ECHOBACKUP_PASSWORD_FILE or $ECHOBACKUP_PASSWORD)", addr)}
	case errors.Is(err, repository.ErrNotFound):
		return &compose.UserError{Err: fmt.Errorf("opening the repository %s: %w; create one with `docker echobackup repo init --repo %s`", addr, err, addr)}
	}
	return fmt.Errorf("opening the repository %s: %w", addr, err)
}

// loadOptional loads the compose project when there is one: the repository commands work
// without it, on settings from flags and the environment.
func loadOptional(ctx context.Context, dockerCli command.Cli, p *projectOptions) *types.Project {
	project, err := compose.Load(ctx, dockerCli, p.ProjectOptions)
	if err != nil {
		return nil
	}
	return project
}

type repoOptionsFlags struct {
	*projectOptions
	newPassword string
	format      string
}

func repoCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Set up and inspect an encrypted, deduplicated repository (a folder or S3) for the backups",
	}
	cmd.AddCommand(repoInitCommand(dockerCli, p), repoStatusCommand(dockerCli, p, "status"),
		repoStatusCommand(dockerCli, p, "connect"))
	return cmd
}

func repoInitCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := repoOptionsFlags{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the repository; with no password set, generate one into --new-password-file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := commandContext(cmd)
			defer stop()
			return userError(runRepoInit(ctx, dockerCli, opts))
		},
	}
	cmd.Flags().StringVar(&opts.newPassword, "new-password-file", "", "With no password set: write a generated one to this new file (mode 0600)")
	return cmd
}

func runRepoInit(ctx context.Context, dockerCli command.Cli, opts repoOptionsFlags) error {
	o, err := repoOptions(opts.repo, loadOptional(ctx, dockerCli, opts.projectOptions))
	if err != nil {
		return err
	}
	if o.Address == "" {
		return &compose.UserError{Err: errors.New("no repository named: pass --repo FOLDER|s3://BUCKET/PREFIX or set " + repoEnv)}
	}
	if o.Password == "" && opts.newPassword == "" {
		return &compose.UserError{Err: errors.New("no password: set ECHOBACKUP_PASSWORD_FILE (a 0600 file) or ECHOBACKUP_PASSWORD, " +
			"or pass --new-password-file FILE to have one generated")}
	}
	if o.Password != "" && opts.newPassword != "" {
		return &compose.UserError{Err: errors.New("--new-password-file is for a generated password, but a password is already set")}
	}
	var pwFile *os.File
	if opts.newPassword != "" {
		// Made before the repository, so that a password is never generated with nowhere to go.
		if pwFile, err = os.OpenFile(opts.newPassword, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return &compose.UserError{Err: fmt.Errorf("creating the password file: %w", err)}
		}
		defer pwFile.Close()
	}
	generated, err := repository.Init(ctx, o)
	if err != nil {
		if pwFile != nil {
			os.Remove(pwFile.Name())
		}
		return explainRepo(o.Address, err)
	}
	if pwFile != nil {
		if err := writePassword(pwFile, generated); err != nil {
			return err
		}
		fmt.Fprintf(dockerCli.Err(), "The repository's password is in %s (mode 0600): set ECHOBACKUP_PASSWORD_FILE=%s\n", pwFile.Name(), pwFile.Name())
	}
	fmt.Fprintf(dockerCli.Err(), "Keep a copy of the password away from this server: without it, nobody can read the backups in %s, not even you.\n", o.Address)
	_, err = fmt.Fprintf(dockerCli.Out(), "Created the repository %s\n", o.Address)
	return err
}

func writePassword(f *os.File, password string) error {
	if _, err := io.WriteString(f, password+"\n"); err != nil {
		return fmt.Errorf("writing the password file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing the password file: %w", err)
	}
	return nil
}

func repoStatusCommand(dockerCli command.Cli, p *projectOptions, use string) *cobra.Command {
	opts := repoOptionsFlags{projectOptions: p}
	short := "Show the repository's size, deduplication, last backup and last maintenance"
	if use == "connect" {
		short = "Check that the repository opens with the settings given (address, password, S3 credentials)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := commandContext(cmd)
			defer stop()
			return userError(runRepoStatus(ctx, dockerCli, opts))
		},
	}
	cmd.Flags().StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	return cmd
}

func runRepoStatus(ctx context.Context, dockerCli command.Cli, opts repoOptionsFlags) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	repo, err := openRepo(ctx, opts.repo, loadOptional(ctx, dockerCli, opts.projectOptions))
	if err != nil {
		return err
	}
	if repo == nil {
		return &compose.UserError{Err: errors.New("no repository set: pass --repo FOLDER|s3://BUCKET/PREFIX or set " + repoEnv)}
	}
	defer repo.Close(context.WithoutCancel(ctx))
	st, err := repo.Status(ctx)
	if err != nil {
		return fmt.Errorf("reading the status of %s: %w", repo.Address(), err)
	}
	if opts.format == formatJSON {
		return writeJSON(dockerCli.Out(), st)
	}
	printRepoStatus(dockerCli.Out(), repo.Address(), st)
	return nil
}

func printRepoStatus(out io.Writer, addr string, st repository.Status) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Repository:\t%s\n", addr)
	fmt.Fprintf(w, "Backups:\t%d\n", st.Snapshots)
	fmt.Fprintf(w, "Stored:\t%s\n", units.HumanSize(float64(st.StorageBytes)))
	fmt.Fprintf(w, "Backed-up data:\t%s (%.1fx deduplicated and compressed)\n", units.HumanSize(float64(st.LogicalBytes)), st.DedupRatio)
	fmt.Fprintf(w, "Last backup:\t%s\n", whenText(st.LastSnapshot))
	fmt.Fprintf(w, "Last maintenance:\t%s\n", whenText(st.LastMaintained))
	w.Flush()
}

func whenText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format(time.DateTime) + " (" + units.HumanDuration(time.Since(t)) + " ago)"
}

// shortID is how list shows a snapshot; any unique prefix names it.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

var _ = strings.TrimSpace
