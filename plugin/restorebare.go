package plugin

import (
	"archive/tar"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker/cli/cli/command"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/repository"
	"github.com/echo-backup/echo-backup/restore"
)

// bareRestore is a restore onto a new server: the folder (and its parents) hold no compose
// file, so the backup's own deployment files are written first.
type bareRestore struct {
	manifest *archive.Manifest
	dir      string
	named    bool     // the user gave the project's name (-p, COMPOSE_PROJECT_NAME)
	written  []string // the deployment files written (or, on a dry run, that would be)
}

// backupFile is the archive file a restore in a folder without a compose file reads its
// deployment from: its manifest (a stream file's trailer) and its members. noCompose is why
// the folder could not be opened.
func backupFile(opts restoreOptions, arg string, noCompose error) (*archive.Manifest, restore.Walker, error) {
	switch {
	case arg == "" || arg == "latest":
		where, _ := filepath.Abs(opts.ProjectDir)
		return nil, nil, &compose.UserError{Err: fmt.Errorf("no backups here: %s and its parents hold no compose file (%w), "+
			"so there is no project to look for backups of; on a new server, name the backup file: "+
			"docker echobackup restore FILE writes its compose files here, then restores it "+
			"(or from a repository: --repo)", where, compose.ErrNoComposeFile)}
	case arg == stdStream:
		return nil, nil, &compose.UserError{Err: fmt.Errorf("%w: restore - reads the stream once and cannot write its compose files first; "+
			"save the stream into a file and run docker echobackup restore FILE", noCompose)}
	case strings.HasSuffix(arg, ".sql") || opts.files != "":
		return nil, nil, noCompose // the manual procedure's files hold no compose file
	}
	m, err := archive.ReadManifest(arg)
	if err != nil {
		return nil, nil, &compose.UserError{Err: fmt.Errorf("%w; and reading the backup's own: %w", noCompose, err)}
	}
	return m, restore.ArchiveMembers(arg), nil
}

// newServerBackup is the backup a restore on a new server reads its deployment from: a
// snapshot of the repository when one is set and arg names no file, else the file. done
// closes what it opened.
func newServerBackup(ctx context.Context, opts restoreOptions, arg string, noCompose error) (*archive.Manifest, restore.Walker, func(), error) {
	repo, err := openRepo(ctx, opts.repo, nil)
	if _, statErr := os.Stat(arg); err != nil || repo == nil || statErr == nil {
		if repo != nil {
			repo.Close(context.WithoutCancel(ctx))
		}
		if err != nil {
			return nil, nil, nil, err
		}
		m, walk, err := backupFile(opts, arg, noCompose)
		return m, walk, func() {}, err
	}
	done := func() { repo.Close(context.WithoutCancel(ctx)) }
	m, walk, err := snapshotMembers(ctx, repo, opts, arg)
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	return m, walk, done, nil
}

// snapshotMembers finds the snapshot of a bare restore: of the project -p or
// COMPOSE_PROJECT_NAME names, else of the one project the repository holds.
func snapshotMembers(ctx context.Context, repo *repository.Repository, opts restoreOptions, arg string) (*archive.Manifest, restore.Walker, error) {
	project := cmp.Or(opts.ProjectName, os.Getenv("COMPOSE_PROJECT_NAME"))
	if project == "" {
		all, err := repo.List(ctx, "")
		if err != nil {
			return nil, nil, fmt.Errorf("listing the backups in %s: %w", repo.Address(), err)
		}
		names := map[string]bool{}
		for _, s := range all {
			names[s.Project] = true
		}
		switch len(names) {
		case 0:
			return nil, nil, &compose.UserError{Err: fmt.Errorf("the repository %s holds no backups", repo.Address())}
		case 1:
			project = all[0].Project
		default:
			return nil, nil, &compose.UserError{Err: fmt.Errorf("the repository %s holds backups of %d projects (%s): name one with -p",
				repo.Address(), len(names), strings.Join(slices.Sorted(maps.Keys(names)), ", "))}
		}
	}
	snap, err := findSnapshot(ctx, repo, project, arg)
	if err != nil {
		return nil, nil, &compose.UserError{Err: err}
	}
	objs := &backup.RepoObjects{Ctx: ctx, Repo: repo, ID: snap.ID}
	m, err := objs.Manifest()
	if err != nil {
		return nil, nil, fmt.Errorf("reading backup %s: %w", objs, err)
	}
	return m, func(fn func(hdr *tar.Header, r io.Reader) error) error {
		if err := archive.WalkObjects(m, objs, true, fn); err != nil {
			return fmt.Errorf("reading %s: %w", objs, err)
		}
		return nil
	}, nil
}

// openFromBackup writes the compose and env files of the backup m (its members read by walk)
// into the project folder (restore.WriteDeployment), then opens the project from them as
// usual. On a dry run it writes nothing and opens nothing: the Deployment is nil. Any input
// with a manifest and a walk of its members (an archive file, a repository snapshot) comes
// through here.
func openFromBackup(ctx context.Context, dockerCli command.Cli, opts restoreOptions, m *archive.Manifest, walk restore.Walker) (*compose.Deployment, *bareRestore, error) {
	b := &bareRestore{manifest: m, dir: opts.ProjectDir}
	if b.dir == "" {
		b.dir = "."
	}
	project := opts.ProjectName
	if project == "" {
		project = os.Getenv("COMPOSE_PROJECT_NAME")
	}
	b.named = project != ""
	if project == "" {
		project = m.Project.Name
	}
	log, _ := logger(dockerCli, opts.format)
	var err error
	b.written, err = restore.WriteDeployment(ctx, m, walk, b.dir, restore.DeploymentOptions{
		DryRun: opts.dryRun, Log: log, Project: project,
		FolderProject: func(ctx context.Context, dir string) (string, []string, error) {
			p, err := compose.Load(ctx, dockerCli, compose.ProjectOptions{ProjectDir: dir, EnvFiles: opts.EnvFiles, Profiles: opts.Profiles})
			if err != nil {
				return "", nil, err
			}
			return p.Name, p.ComposeFiles, nil
		}})
	if err != nil || opts.dryRun {
		return nil, b, err
	}
	d, err := openDeployment(ctx, dockerCli, opts.projectOptions, opts.dir)
	return d, b, err
}

// undo removes the deployment files written for a restore that then failed (or was
// cancelled), so that a failed restore onto a new server leaves its folder as it was.
func (b *bareRestore) undo(cause error) error {
	if b == nil || len(b.written) == 0 {
		return cause
	}
	if err := restore.RemoveDeployment(b.dir, b.written); err != nil {
		return fmt.Errorf("%w (and removing the compose files it wrote failed: %v)", cause, err)
	}
	return fmt.Errorf("%w (the compose files written from the backup are removed again)", cause)
}
