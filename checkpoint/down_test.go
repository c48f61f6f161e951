package checkpoint

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestDownVolumesBacksUpReleasesThenDowns(t *testing.T) {
	plan := testPlan("running", "running")
	eng := &sentinelEngine{sentinel: true}
	svc := &fakeServices{plan: plan}
	var dbRunning bool
	stubTake(t, nil, &dbRunning)
	var sentinelAtDown bool
	res, err := DownVolumes(context.Background(), Options{Plan: plan, API: eng}, Down{Services: svc,
		Compose: func(context.Context) error { sentinelAtDown = eng.sentinel; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Backup == nil || sentinelAtDown || len(res.Kept) != 0 {
		t.Errorf("result %+v; sentinel still there at the down: %v", res, sentinelAtDown)
	}
	if want := []string{"stop echo"}; !slices.Equal(svc.calls, want) {
		t.Errorf("calls %q, want the app stopped before the save and left stopped", svc.calls)
	}
}

func TestDownVolumesRemovesNothingWhenTheBackupFails(t *testing.T) {
	plan := testPlan("running", "running")
	eng := &sentinelEngine{sentinel: true}
	svc := &fakeServices{plan: plan}
	var dbRunning bool
	stubTake(t, errors.New("disk full"), &dbRunning)
	downs := 0
	_, err := DownVolumes(context.Background(), Options{Plan: plan, API: eng}, Down{Services: svc,
		Compose: func(context.Context) error { downs++; return nil }})
	if err == nil || downs != 0 || !eng.sentinel {
		t.Errorf("err %v, %d downs, sentinel kept: %v", err, downs, eng.sentinel)
	}
	if want := []string{"stop echo", "start echo"}; !slices.Equal(svc.calls, want) {
		t.Errorf("calls %q, want the app started again", svc.calls)
	}
}

func TestDownVolumesFailingDownWithoutProtection(t *testing.T) {
	plan := testPlan("running", "")
	var dbRunning bool
	stubTake(t, nil, &dbRunning)
	downErr := errors.New("compose down failed")
	_, err := DownVolumes(context.Background(), Options{Plan: plan, API: &sentinelEngine{}}, Down{Services: &fakeServices{plan: plan},
		Compose: func(context.Context) error { return downErr }})
	if !errors.Is(err, downErr) || err.Error() != downErr.Error() {
		t.Errorf("err = %v, want the down's error as it is (nothing was protected)", err)
	}
}
