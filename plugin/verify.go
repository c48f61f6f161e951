package plugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/repository"
	"github.com/echo-backup/echo-backup/store"
)

type verifyOptions struct {
	*projectOptions
	output string
	deep   bool
	format string
}

func verifyCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := verifyOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "verify [FILE|latest]",
		Short: "Check a backup end to end: checksums, the dump's table of contents, and with --deep a test restore",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := commandContext(cmd)
			defer stop()
			return userError(runVerify(ctx, dockerCli, opts, firstArg(args)))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "", "Backup folder, for latest")
	f.BoolVar(&opts.deep, "deep", false, "Also restore the dump into a throwaway container and the files into a scratch folder, and compare them with the backup")
	f.StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	return cmd
}

func runVerify(ctx context.Context, dockerCli command.Cli, opts verifyOptions, arg string) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	api, err := compose.Connect(ctx, dockerCli)
	if err != nil {
		return err
	}
	vo := backup.VerifyOptions{Deep: opts.deep, API: api}
	repo, err := verifyRepoSubject(ctx, dockerCli, opts, arg, &vo)
	if err != nil {
		return err
	}
	if repo != nil {
		defer repo.Close(context.WithoutCancel(ctx))
	} else if vo.Path, vo.DBContainer, err = verifySubject(ctx, dockerCli, opts, arg); err != nil {
		return err
	}
	rep := reporter(ctx, opts.format == formatJSON)
	rep.Start(ctx, "verify")
	text := "Checking checksums and the table of contents"
	if opts.deep {
		text = "Checking, then restoring into a throwaway container"
	}
	task := rep.Task(filepath.Base(vo.Path), text, 0)
	res, err := backup.Verify(ctx, vo)
	task.End("Verified", err)
	rep.Done(err == nil)
	if err != nil {
		return err
	}
	if opts.format == formatJSON {
		return writeJSON(dockerCli.Out(), res)
	}
	kind := "checksums and table of contents"
	if res.Deep {
		kind = fmt.Sprintf("checksums, table of contents, and a test restore of %d tables and %d files and folders",
			len(res.Tables), res.FilesRestored)
	}
	_, err = fmt.Fprintf(dockerCli.Out(), "OK %s: %d members, %d dump entries (%s)\n", res.Path, res.Members, res.TOCEntries, kind)
	return err
}

// verifyRepoSubject finds the snapshot when a repository is set and the argument is not a
// file; nil: verify a file.
func verifyRepoSubject(ctx context.Context, dockerCli command.Cli, opts verifyOptions, arg string, vo *backup.VerifyOptions) (*repository.Repository, error) {
	if opts.output != "" {
		return nil, nil
	}
	if _, err := os.Stat(arg); err == nil {
		return nil, nil
	}
	plan, err := loadPlan(ctx, dockerCli, opts.projectOptions)
	if err != nil {
		return nil, nil // verifySubject says what is missing
	}
	repo, err := openRepo(ctx, opts.repo, plan.Project)
	if err != nil || repo == nil {
		return nil, err
	}
	snap, err := findSnapshot(ctx, repo, plan.Name, arg)
	if err != nil {
		repo.Close(context.WithoutCancel(ctx))
		return nil, &compose.UserError{Err: err}
	}
	vo.Repo, vo.Snapshot, vo.Path = repo, snap.ID, repo.Address()+" "+shortID(snap.ID)
	if db, err := plan.DatabaseContainer(); err == nil {
		vo.DBContainer = db.ID
	}
	return repo, nil
}

// verifySubject finds the archive, and the project's running database container where there
// is one. A named file can be verified without a compose project.
func verifySubject(ctx context.Context, dockerCli command.Cli, opts verifyOptions, arg string) (string, string, error) {
	plan, err := loadPlan(ctx, dockerCli, opts.projectOptions)
	if err != nil {
		if arg == "" || arg == "latest" {
			return "", "", err
		}
		return arg, "", nil
	}
	path, err := store.Resolve(arg, store.Dir(opts.output, plan.WorkingDir), plan.Name, false)
	if err != nil {
		return "", "", &compose.UserError{Err: err}
	}
	db, err := plan.DatabaseContainer()
	if err != nil {
		return path, "", nil
	}
	return path, db.ID, nil
}
