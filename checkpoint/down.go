package checkpoint

import (
	"context"
	"fmt"
	"slices"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/guard"
)

// Down is `docker compose down -v` after a verified backup.
type Down struct {
	Services Lifecycle
	// Compose runs compose's own down with the user's flags.
	Compose func(ctx context.Context) error
}

// DownResult is what DownVolumes did.
type DownResult struct {
	Backup *backup.Result
	// Kept are the data volumes compose kept because another container still uses them:
	// compose only warns and exits 0.
	Kept []string
}

// DownVolumes stops the app, saves and verifies (BeforeDelete), lifts the protection and runs
// compose's down. If the backup fails nothing is removed and the app is started again; if the
// down fails, the volumes still there are protected again.
func DownVolumes(ctx context.Context, o Options, d Down) (*DownResult, error) {
	res, err := BeforeDelete(ctx, o, Delete{Services: d.Services, StopApps: true})
	if err != nil {
		return nil, fmt.Errorf("nothing was removed: the backup before `down -v` failed: %w", err)
	}
	released, err := guard.Release(ctx, o.API, o.Plan.Name)
	if err != nil {
		return nil, fmt.Errorf("nothing was removed: %w", err)
	}
	if err := d.Compose(ctx); err != nil {
		return nil, reprotect(ctx, o, released, err)
	}
	return &DownResult{Backup: res, Kept: keptVolumes(ctx, o)}, nil
}

// reprotect puts the protection back after a failed down, for the volumes still there.
func reprotect(ctx context.Context, o Options, released []guard.Sentinel, downErr error) error {
	if len(released) == 0 {
		return downErr
	}
	ctx = context.WithoutCancel(ctx)
	if err := reinspect(ctx, o); err == nil {
		if _, err := guard.Protect(ctx, o.API, o.Plan); err == nil {
			return fmt.Errorf("%w (the project's volumes are protected again)", downErr)
		}
	}
	return fmt.Errorf("%w (the protection is off: run `docker echobackup protect`)", downErr)
}

// keptVolumes are the data volumes still there after the down; nil when the engine cannot say.
func keptVolumes(ctx context.Context, o Options) []string {
	if err := reinspect(ctx, o); err != nil {
		return nil
	}
	// External volumes are never down's to remove.
	return slices.DeleteFunc(o.Plan.DataVolumes(), o.Plan.External)
}

// reinspect asks the engine again what exists; Inspect only ever marks items as found.
func reinspect(ctx context.Context, o Options) error {
	for i := range o.Plan.Items {
		o.Plan.Items[i].Exists = false
	}
	return o.Plan.Inspect(ctx, o.API, o.LocalEngine)
}
