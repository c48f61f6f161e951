package backup

import (
	"context"
	"fmt"
	"syscall"

	"github.com/docker/go-units"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/postgres"
)

// checkSpace refuses early, with the numbers, when the backup folder's disk clearly cannot hold
// the archive. The estimate assumes the dump compresses to half and the files not at all
// (covers and uploads are mostly JPEG and PNG already).
func checkSpace(ctx context.Context, t postgres.Target, o SaveOptions) error {
	dbSize, err := t.Size(ctx)
	if err != nil {
		return fmt.Errorf("measuring database %q: %w", t.Database, err)
	}
	need := dbSize / 2
	for _, it := range o.Plan.Items {
		if it.Backup && it.Role == compose.RoleData {
			need += it.Size
		}
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(o.Dir, &fs); err != nil {
		return fmt.Errorf("checking free space in %s: %w", o.Dir, err)
	}
	free := int64(fs.Bavail) * fs.Bsize
	if free < need {
		return &compose.UserError{Err: fmt.Errorf("not enough free space in %s: about %s needed (database %s, files %s), %s free",
			o.Dir, units.BytesSize(float64(need)), units.BytesSize(float64(dbSize)), units.BytesSize(float64(need-dbSize/2)), units.BytesSize(float64(free)))}
	}
	return nil
}
