package repository

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/maintenance"
	"github.com/kopia/kopia/snapshot/snapshotmaintenance"
)

// MaintenanceResult says what one Maintain did.
type MaintenanceResult struct {
	Full bool
	Took time.Duration
	// StorageBefore and StorageAfter are the repository's blob bytes around the run; what a run
	// frees is their difference (it may also add a few index and log blobs).
	StorageBefore, StorageAfter int64
}

// Maintain runs kopia maintenance (quick, or full) as the repository's fixed owner. Safety is
// kopia's SafetyFull (deleted data is collected only after 24 h and two full cycles) unless
// noSafety, which collects at once: only when no other save can be running.
func (r *Repository) Maintain(ctx context.Context, full, noSafety bool) (MaintenanceResult, error) {
	res := MaintenanceResult{Full: full}
	dr, err := r.direct()
	if err != nil {
		return res, err
	}
	mode, safety := maintenance.ModeQuick, maintenance.SafetyFull
	if full {
		mode = maintenance.ModeFull
	}
	if noSafety {
		safety = maintenance.SafetyNone
	}
	if res.StorageBefore, _, err = r.storageBytes(ctx); err != nil {
		return res, err
	}
	start := time.Now()
	err = repo.DirectWriteSession(ctx, dr, repo.WriteSessionOptions{Purpose: "echobackup maintenance"},
		func(ctx context.Context, w repo.DirectRepositoryWriter) error {
			return snapshotmaintenance.Run(ctx, w, mode, false, safety)
		})
	res.Took = time.Since(start)
	var notOwned maintenance.NotOwnedError
	if errors.As(err, &notOwned) {
		return res, fmt.Errorf("maintenance of %s: the repository's maintenance belongs to %s, not %s (it was not created by echobackup)",
			r.Address(), notOwned.Owner, clientUser+"@"+clientHost)
	}
	if err != nil {
		return res, fmt.Errorf("maintenance of %s: %w", r.Address(), err)
	}
	if err := r.rep.Refresh(ctx); err != nil {
		return res, fmt.Errorf("maintenance of %s: refreshing: %w", r.Address(), err)
	}
	res.StorageAfter, _, err = r.storageBytes(ctx)
	return res, err
}

// Status sums up the repository.
type Status struct {
	Address        string
	StorageBytes   int64   // sum of all blob sizes
	Blobs          int     // number of blobs
	LogicalBytes   int64   // sum of all snapshots' sizes
	DedupRatio     float64 // LogicalBytes / StorageBytes (0 when empty)
	Snapshots      int
	LastSnapshot   time.Time // zero: none
	LastMaintained time.Time // end of the last successful maintenance task (quick or full), zero: never
	LastFull       time.Time // end of the last successful task only a full maintenance runs
	NextQuick      time.Time
	NextFull       time.Time
}

// fullTasks are the maintenance tasks only a full run does.
var fullTasks = map[maintenance.TaskType]bool{
	maintenance.TaskSnapshotGarbageCollection: true,
	maintenance.TaskDeleteOrphanedBlobsFull:   true,
	maintenance.TaskRewriteContentsFull:       true,
	maintenance.TaskDropDeletedContentsFull:   true,
}

// Status reads storage use, snapshot totals and the maintenance history.
func (r *Repository) Status(ctx context.Context) (Status, error) {
	st := Status{Address: r.Address()}
	var err error
	if st.StorageBytes, st.Blobs, err = r.storageBytes(ctx); err != nil {
		return st, err
	}
	mans, err := r.manifests(ctx, "")
	if err != nil {
		return st, err
	}
	for _, m := range mans {
		s := toSnapshot(m)
		st.Snapshots++
		st.LogicalBytes += s.Size
		if s.Created.After(st.LastSnapshot) {
			st.LastSnapshot = s.Created
		}
	}
	if st.StorageBytes > 0 {
		st.DedupRatio = float64(st.LogicalBytes) / float64(st.StorageBytes)
	}
	dr, err := r.direct()
	if err != nil {
		return st, err
	}
	sched, err := maintenance.GetSchedule(ctx, dr)
	if err != nil {
		return st, fmt.Errorf("reading the maintenance schedule of %s: %w", r.Address(), err)
	}
	st.NextQuick, st.NextFull = sched.NextQuickMaintenanceTime, sched.NextFullMaintenanceTime
	for task, runs := range sched.Runs {
		for _, run := range runs {
			if !run.Success {
				continue
			}
			if run.End.After(st.LastMaintained) {
				st.LastMaintained = run.End
			}
			if fullTasks[task] && run.End.After(st.LastFull) {
				st.LastFull = run.End
			}
		}
	}
	return st, nil
}

func (r *Repository) storageBytes(ctx context.Context) (int64, int, error) {
	dr, err := r.direct()
	if err != nil {
		return 0, 0, err
	}
	var total int64
	var n int
	err = dr.BlobReader().ListBlobs(ctx, "", func(bm blob.Metadata) error {
		total += bm.Length
		n++
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("listing the blobs of %s: %w", r.Address(), err)
	}
	return total, n, nil
}
