package plugin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/store"
)

type pinOptions struct {
	*projectOptions
	output string
	reason string
}

func pinCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := pinOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "pin FILE|NAME|latest",
		Short: "Keep a backup whatever prune's policy says",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return userError(runPin(cmd.Context(), dockerCli, opts, args[0], true))
		},
	}
	cmd.Flags().StringVarP(&opts.output, "output", "o", "", "Backup folder")
	cmd.Flags().StringVar(&opts.reason, "reason", "", `Why it is kept, shown by prune (default "`+store.PinnedByHand+`")`)
	return cmd
}

func unpinCommand(dockerCli command.Cli, p *projectOptions) *cobra.Command {
	opts := pinOptions{projectOptions: p}
	cmd := &cobra.Command{
		Use:   "unpin FILE|NAME|latest",
		Short: "Let prune's policy decide about a pinned backup again (safety backups included)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return userError(runPin(cmd.Context(), dockerCli, opts, args[0], false))
		},
	}
	cmd.Flags().StringVarP(&opts.output, "output", "o", "", "Backup folder")
	return cmd
}

func runPin(ctx context.Context, dockerCli command.Cli, opts pinOptions, arg string, pin bool) error {
	if done, err := pinInRepo(ctx, dockerCli, opts, arg, pin); done || err != nil {
		return err
	}
	path, err := resolveBackupArg(ctx, dockerCli, opts.projectOptions, opts.output, arg)
	if err != nil {
		return err
	}
	e, err := store.SetPin(ctx, path, opts.reason, pin, waitingFor(dockerCli, filepath.Dir(path)))
	if errors.Is(err, os.ErrNotExist) {
		return &compose.UserError{Err: fmt.Errorf("no backup %s", path)}
	}
	if err != nil {
		return err
	}
	state := "not pinned"
	if e.Pinned != "" {
		state = "pinned (" + e.Pinned + ")"
	}
	_, err = fmt.Fprintf(dockerCli.Out(), "%s: %s\n", e.Name, state)
	return err
}

// resolveBackupArg turns a path, a name from list or prune, or "latest" into an archive's path. A
// path that exists is taken as it is, without loading the project.
func resolveBackupArg(ctx context.Context, dockerCli command.Cli, p *projectOptions, dir, arg string) (string, error) {
	if _, err := os.Stat(arg); err == nil && arg != "latest" {
		return arg, nil
	}
	project, err := compose.Load(ctx, dockerCli, p.ProjectOptions)
	if err != nil {
		return "", err
	}
	dir = store.Dir(dir, project.WorkingDir)
	if arg != "latest" && !strings.ContainsRune(arg, os.PathSeparator) {
		return filepath.Join(dir, arg), nil
	}
	path, err := store.Resolve(arg, dir, project.Name, false)
	if err != nil {
		return "", &compose.UserError{Err: err}
	}
	return path, nil
}

// pinInRepo pins a snapshot when a repository is set and arg is not a file; done is false
// when the folder is meant.
func pinInRepo(ctx context.Context, dockerCli command.Cli, opts pinOptions, arg string, pin bool) (done bool, err error) {
	if _, err := os.Stat(arg); err == nil || opts.output != "" {
		return false, nil
	}
	project, err := compose.Load(ctx, dockerCli, opts.ProjectOptions)
	if err != nil {
		return false, nil // resolveBackupArg says what is wrong
	}
	repo, err := openRepo(ctx, opts.repo, project)
	if err != nil || repo == nil {
		return err != nil, err
	}
	defer repo.Close(context.WithoutCancel(ctx))
	snap, err := findSnapshot(ctx, repo, project.Name, arg)
	if err != nil {
		return true, &compose.UserError{Err: err}
	}
	state := "not pinned"
	if pin {
		reason := cmp.Or(opts.reason, store.PinnedByHand)
		err, state = repo.Pin(ctx, snap.ID, reason), "pinned ("+reason+")"
	} else {
		err = repo.Unpin(ctx, snap.ID)
	}
	if err != nil {
		return true, fmt.Errorf("pinning %s in %s: %w", shortID(snap.ID), repo.Address(), err)
	}
	_, err = fmt.Fprintf(dockerCli.Out(), "%s: %s\n", shortID(snap.ID), state)
	return true, err
}
