package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/go-units"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/guard"
	"github.com/echo-backup/echo-backup/prune"
	"github.com/echo-backup/echo-backup/retention"
)

// Nightly says what the scheduled run does besides the save.
type Nightly struct {
	Policy  retention.Policy
	Protect bool // protect the project on each run, its new volumes included
	// Prune, when set, prunes where the backups are instead of Options.Dir (a repository).
	Prune func(ctx context.Context) (*prune.Result, error)
}

// RunNightly is the scheduled job's work, under the lock o.Lock that schedule.RunJob took:
// save and verify, protect, prune. It returns the one-line summary for the log and the ping,
// and the new backup's path (also when a later step failed).
func RunNightly(ctx context.Context, o Options, n Nightly) (summary, path string, err error) {
	res, err := take(ctx, o)
	// The protection does not wait on the backup: volumes added since the last run are held
	// from now on, whether this save worked or not.
	protected, perr := nightlyProtect(ctx, o, n.Protect)
	if err != nil {
		return "", "", errors.Join(err, perr)
	}
	if perr != nil {
		return "", res.Path, fmt.Errorf("saved and verified %s, then %w", res.Path, perr)
	}
	pruned, err := nightlyPrune(ctx, o, n)
	if err != nil {
		return "", res.Path, fmt.Errorf("saved and verified %s, then %w", res.Path, err)
	}
	return fmt.Sprintf("saved and verified %s (%s, %d tables, %d rows, %d files) in %s; %s%s", filepath.Base(res.Path),
		humanSize(res.Size), res.Tables, res.Rows, res.Files, res.Duration.Round(100*time.Millisecond), pruned.Summary(), protected), res.Path, nil
}

func nightlyPrune(ctx context.Context, o Options, n Nightly) (*prune.Result, error) {
	if n.Prune != nil {
		return n.Prune(ctx)
	}
	plan, err := prune.PlanPrune(prune.Options{Dir: o.Dir, Project: o.Plan.Name, WorkingDir: o.Plan.WorkingDir,
		Policy: n.Policy, Warn: o.Warn})
	if err != nil {
		return nil, err
	}
	return plan.Execute()
}

// nightlyProtect protects the project on a run installed with protection: Protect keeps what
// the sentinel holds and adds the project's new volumes (a service added to the compose file
// and brought up since). A project with no data volume (data in folders, which docker never
// deletes) needs none.
func nightlyProtect(ctx context.Context, o Options, protect bool) (string, error) {
	if !protect {
		return "", nil
	}
	res, err := guard.Protect(ctx, o.API, o.Plan)
	var userErr *compose.UserError
	switch {
	case errors.As(err, &userErr):
		return "; nothing to protect: " + userErr.Error(), nil
	case err != nil:
		return "", fmt.Errorf("protecting project %q: %w", o.Plan.Name, err)
	case len(res.Added) > 0:
		return fmt.Sprintf("; protected %s (new: %s)", strings.Join(res.Sentinel.Volumes, ", "), strings.Join(res.Added, ", ")), nil
	}
	return "; protected " + strings.Join(res.Sentinel.Volumes, ", "), nil
}

func humanSize(n int64) string {
	if n <= 0 {
		return "-"
	}
	return units.HumanSizeWithPrecision(float64(n), 3)
}
