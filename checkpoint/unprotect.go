package checkpoint

import (
	"context"
	"fmt"

	"github.com/echo-backup/echo-backup/guard"
)

// Unprotected is what Unprotect did.
type Unprotected struct {
	Was     *guard.Sentinel  // nil: the project was not protected, and nothing was done
	Removed []guard.Sentinel // the sentinels removed
	Backup  string           // the backup taken first
}

// Unprotect lifts the protection, after a verified backup (BeforeDelete; the app keeps
// running: unprotect removes nothing itself) unless noBackup. If the backup fails the project
// stays protected.
func Unprotect(ctx context.Context, o Options, svc Lifecycle, noBackup bool) (*Unprotected, error) {
	res := &Unprotected{Removed: []guard.Sentinel{}}
	cur, err := guard.Current(ctx, o.API, o.Plan.Name)
	if err != nil || cur == nil {
		return res, err
	}
	res.Was = cur
	if !noBackup {
		saved, err := BeforeDelete(ctx, o, Delete{Services: svc})
		if err != nil {
			return nil, fmt.Errorf("unprotecting project %q: still protected, as the backup before failed "+
				"(--no-backup goes on without one): %w", o.Plan.Name, err)
		}
		res.Backup = saved.Path
	}
	if res.Removed, err = guard.Release(ctx, o.API, o.Plan.Name); err != nil {
		return nil, fmt.Errorf("unprotecting project %q: %w", o.Plan.Name, err)
	}
	return res, nil
}
