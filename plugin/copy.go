package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/store"
)

type copyOptions struct {
	*projectOptions
	output   string
	toRepo   bool
	toFolder string
}

func copyCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := copyOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "copy [FILE|NAME|ID|latest] --to-repo | --to-folder DIR",
		Short: "Copy a backup from the backup folder into the repository, or from the repository into a folder",
		Long: "With --to-repo, copies an archive of the backup folder (default: the latest) into the repository\n" +
			"(--repo, $" + repoEnv + " or the compose file's x-echobackup.repository): a fast local save and an\n" +
			"offsite copy make the 3-2-1 habit. With --to-folder, copies a snapshot of the repository (default:\n" +
			"the latest) into an archive in that folder. Every member is checked on the way.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := commandContext(cmd)
			defer stop()
			return userError(runCopy(ctx, dockerCli, opts, firstArg(args)))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "", "Backup folder to copy from, with --to-repo")
	f.BoolVar(&opts.toRepo, "to-repo", false, "Copy from the backup folder into the repository")
	f.StringVar(&opts.toFolder, "to-folder", "", "Copy from the repository into this folder")
	return cmd
}

func runCopy(ctx context.Context, dockerCli command.Cli, opts copyOptions, arg string) error {
	if opts.toRepo == (opts.toFolder != "") {
		return cli.StatusError{StatusCode: exitUsage, Status: "copy needs one of --to-repo and --to-folder DIR"}
	}
	project, err := compose.Load(ctx, dockerCli, opts.ProjectOptions)
	if err != nil {
		return err
	}
	repo, err := openRepo(ctx, opts.repo, project)
	if err != nil {
		return err
	}
	if repo == nil {
		return &compose.UserError{Err: errors.New("no repository set: pass --repo FOLDER|s3://BUCKET/PREFIX or set " + repoEnv)}
	}
	defer repo.Close(context.WithoutCancel(ctx))
	// The folder's lock: a prune must not remove the archive being read, nor see a half copy.
	dir := opts.toFolder
	if dir == "" {
		dir = store.Dir(opts.output, project.WorkingDir)
	}
	lock, err := lockBackups(ctx, dockerCli, dir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if opts.toFolder != "" {
		snap, err := findSnapshot(ctx, repo, project.Name, arg)
		if err != nil {
			return &compose.UserError{Err: err}
		}
		path, err := backup.CopyFromRepo(ctx, repo, snap.ID, opts.toFolder)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(dockerCli.Out(), "Copied %s %s to %s\n", repo.Address(), shortID(snap.ID), path)
		return err
	}
	path, err := store.Resolve(arg, dir, project.Name, false)
	if err != nil {
		return &compose.UserError{Err: err}
	}
	snap, err := backup.CopyToRepo(ctx, path, repo)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(dockerCli.Out(), "Copied %s to %s %s\n", path, repo.Address(), shortID(snap.ID))
	return err
}
