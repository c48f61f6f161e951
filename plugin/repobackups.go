package plugin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/prune"
	"github.com/echo-backup/echo-backup/repository"
	"github.com/echo-backup/echo-backup/retention"
	"github.com/echo-backup/echo-backup/store"
)

// repoEntries are the project's snapshots as list and prune show backups: Name is the short
// ID, Path the whole one.
func repoEntries(ctx context.Context, repo *repository.Repository, project string) ([]store.Entry, error) {
	snaps, err := repo.List(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("listing the backups in %s: %w", repo.Address(), err)
	}
	entries := make([]store.Entry, 0, len(snaps))
	for _, s := range snaps {
		objs := &backup.RepoObjects{Ctx: ctx, Repo: repo, ID: s.ID}
		m, err := objs.Manifest()
		if err != nil {
			return nil, fmt.Errorf("reading backup %s: %w", objs, err)
		}
		e := store.Entry{Path: s.ID, Name: shortID(s.ID), Size: s.Size, Created: s.Created, Project: s.Project,
			Rows: m.Rows(), Files: m.Files(), Labels: s.Labels, Pinned: strings.Join(s.Pins, ", "), Manifest: m}
		if m.Database != nil {
			e.Tables = len(m.Database.Tables)
		}
		if v := s.Verified; v != nil {
			e.Verified = &store.Verification{At: v.At, Deep: v.Deep, OK: v.OK}
		}
		entries = append(entries, e)
	}
	return entries, nil
}

type repoPruneOptions struct {
	dryRun   bool
	noSafety bool // maintenance frees space now, not after kopia's safety delay
}

// pruneRepo applies the policy to the project's snapshots, deletes what it does not keep,
// then runs the repository's maintenance, which frees the space (after its safety delay).
func pruneRepo(ctx context.Context, dockerCli command.Cli, repo *repository.Repository, project string, p retention.Policy, o repoPruneOptions) (*prune.Result, error) {
	entries, err := repoEntries(ctx, repo, project)
	if err != nil {
		return nil, err
	}
	plan := prune.Decide(entries, prune.Options{Dir: repo.Address(), Project: project, Policy: p, OneHistory: true,
		Warn: func(msg string) { fmt.Fprintln(dockerCli.Err(), "WARNING: "+msg) }})
	if o.dryRun {
		return plan.DryRun(), nil
	}
	res, err := plan.ExecuteWith(func(b prune.Backup) error { return repo.Delete(ctx, b.Path) })
	if err != nil {
		return res, err
	}
	start := time.Now()
	_, err = repo.Maintain(ctx, true, o.noSafety)
	if err != nil {
		return res, fmt.Errorf("pruned, but the maintenance of %s failed (the space is freed at the next one): %w", repo.Address(), err)
	}
	what := "deleted backups' space is freed once kopia's safety delay (24 h, two maintenance runs) has passed"
	if o.noSafety {
		what = "unreferenced data removed now"
	}
	fmt.Fprintf(dockerCli.Err(), "Maintenance of %s done in %s: %s\n", repo.Address(), time.Since(start).Round(100*time.Millisecond), what)
	return res, nil
}

// findSnapshot resolves "latest", an ID or a unique ID prefix among the project's snapshots.
func findSnapshot(ctx context.Context, repo *repository.Repository, project, ref string) (repository.Snapshot, error) {
	if ref == "" {
		ref = "latest"
	}
	s, err := repo.Find(ctx, project, ref)
	if err != nil {
		return s, fmt.Errorf("finding backup %q of project %q in %s: %w", ref, project, repo.Address(), err)
	}
	return s, nil
}
