package checkpoint

import (
	"context"
	"errors"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/guard"
)

// sentinelEngine has one running sentinel until it is removed.
type sentinelEngine struct {
	client.APIClient // nil: any other call panics
	fakeEngine
	sentinel bool
}

func (e *sentinelEngine) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	if !e.sentinel {
		return client.ContainerListResult{}, nil
	}
	return client.ContainerListResult{Items: []container.Summary{{ID: "sentinel-id", Names: []string{"/echobackup-sentinel-echo"},
		State: container.StateRunning, Labels: map[string]string{guard.LabelVolumes: "echo_db"}}}}, nil
}

func (e *sentinelEngine) ContainerRemove(ctx context.Context, id string, o client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	e.sentinel = false
	return e.fakeEngine.ContainerRemove(ctx, id, o)
}

func (e *sentinelEngine) NetworkList(ctx context.Context, o client.NetworkListOptions) (client.NetworkListResult, error) {
	return e.fakeEngine.NetworkList(ctx, o)
}

func (e *sentinelEngine) NetworkRemove(ctx context.Context, id string, o client.NetworkRemoveOptions) (client.NetworkRemoveResult, error) {
	return e.fakeEngine.NetworkRemove(ctx, id, o)
}

func TestUnprotectSavesThenReleases(t *testing.T) {
	plan := testPlan("running", "running")
	eng := &sentinelEngine{sentinel: true}
	var dbRunning bool
	stubTake(t, nil, &dbRunning)
	res, err := Unprotect(context.Background(), Options{Plan: plan, API: eng}, &fakeServices{plan: plan}, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Was == nil || res.Backup == "" || len(res.Removed) != 1 || eng.sentinel {
		t.Errorf("unprotect %+v, sentinel still there: %v", res, eng.sentinel)
	}
}

func TestUnprotectKeepsTheProtectionWhenTheBackupFails(t *testing.T) {
	plan := testPlan("running", "running")
	eng := &sentinelEngine{sentinel: true}
	var dbRunning bool
	stubTake(t, errors.New("disk full"), &dbRunning)
	if _, err := Unprotect(context.Background(), Options{Plan: plan, API: eng}, &fakeServices{plan: plan}, false); err == nil {
		t.Fatal("no error")
	}
	if !eng.sentinel {
		t.Error("the sentinel was removed although the backup failed")
	}
}

func TestUnprotectWithoutProtectionDoesNothing(t *testing.T) {
	plan := testPlan("running", "running")
	take = func(context.Context, Options) (*backup.Result, error) {
		t.Fatal("a backup of an unprotected project")
		return nil, nil
	}
	t.Cleanup(func() { take = Take })
	res, err := Unprotect(context.Background(), Options{Plan: plan, API: &sentinelEngine{}}, &fakeServices{plan: plan}, false)
	if err != nil || res.Was != nil || res.Removed == nil {
		t.Errorf("unprotect %+v, %v", res, err)
	}
}
