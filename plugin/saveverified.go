package plugin

import (
	"context"
	"fmt"

	"github.com/docker/cli/cli/command"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
)

// saveVerified takes a backup of the loaded project and checks it before anything relies on
// it: down, unprotect, the shell guard, the schedule and migrate all go on only after this.
// Progress goes to stderr; labels mark why it was taken (backup.LabelPinned and friends).
func saveVerified(ctx context.Context, dockerCli command.Cli, plan *compose.Plan, api compose.Engine,
	dir string, labels map[string]string) (*backup.Result, error) {
	res, err := backup.Save(ctx, backup.SaveOptions{
		Plan: plan, API: api, LocalEngine: compose.IsLocalEngine(dockerCli),
		Dir: dir, Labels: labels, ToolVersion: Version,
		Progress: progressOut(dockerCli, false), Warn: warner(dockerCli),
	})
	if err != nil {
		return nil, fmt.Errorf("saving project %q: %w", plan.Name, err)
	}
	vo := backup.VerifyOptions{Path: res.Path, API: api}
	if db, err := plan.DatabaseContainer(); err == nil {
		vo.DBContainer = db.ID
	}
	if _, err := backup.Verify(ctx, vo); err != nil {
		return nil, fmt.Errorf("verifying the backup just taken (%s): %w", res.Path, err)
	}
	fmt.Fprintf(dockerCli.Err(), "Saved and verified %s\n", res.Path)
	return res, nil
}
