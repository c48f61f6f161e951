package checkpoint

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/compose"
)

// fakeServices plays compose.Services on a plan: Start and Stop change the containers'
// states, Refresh is what a real one reads back.
type fakeServices struct {
	plan     *compose.Plan
	calls    []string
	startErr error
	// create: Start makes a container for a service that has none, as `up` does after down -v.
	create bool
}

func (f *fakeServices) RunningApps() []string {
	var apps []string
	for _, s := range f.plan.Services {
		if s.Role != compose.RoleDatabase && s.Running() {
			apps = append(apps, s.Name)
		}
	}
	return apps
}

func (f *fakeServices) set(names []string, state string) {
	for i, s := range f.plan.Services {
		if !slices.Contains(names, s.Name) {
			continue
		}
		if len(s.Containers) == 0 && f.create {
			f.plan.Services[i].Containers = []compose.Container{{ID: s.Name + "-id", Name: s.Name + "-1"}}
		}
		for j := range f.plan.Services[i].Containers {
			f.plan.Services[i].Containers[j].State = state
		}
	}
}

func (f *fakeServices) Stop(_ context.Context, names []string) error {
	f.calls = append(f.calls, "stop "+strings.Join(names, ","))
	f.set(names, "exited")
	return nil
}

func (f *fakeServices) Start(_ context.Context, names []string) error {
	f.calls = append(f.calls, "start "+strings.Join(names, ","))
	if f.startErr != nil {
		return f.startErr
	}
	f.set(names, "running")
	return nil
}

func (f *fakeServices) EnsureDatabase(ctx context.Context) (bool, error) {
	db, _ := f.plan.Service(f.plan.Database.Service)
	if db.Running() {
		return false, nil
	}
	return true, f.Start(ctx, []string{db.Name})
}

func (f *fakeServices) Refresh(context.Context, compose.Engine) error { return nil }

// fakeEngine has the project's networks and records removals.
type fakeEngine struct {
	networks []string
	removed  []string
}

func (e *fakeEngine) NetworkList(context.Context, client.NetworkListOptions) (client.NetworkListResult, error) {
	var res client.NetworkListResult
	for _, id := range e.networks {
		res.Items = append(res.Items, network.Summary{Network: network.Network{ID: id}})
	}
	return res, nil
}

func (e *fakeEngine) NetworkRemove(_ context.Context, id string, _ client.NetworkRemoveOptions) (client.NetworkRemoveResult, error) {
	e.removed = append(e.removed, "network "+id)
	return client.NetworkRemoveResult{}, nil
}

func (e *fakeEngine) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	return client.ContainerListResult{}, nil
}

func (e *fakeEngine) ContainerRemove(_ context.Context, id string, _ client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	e.removed = append(e.removed, "container "+id)
	return client.ContainerRemoveResult{}, nil
}

func testPlan(dbState, appState string) *compose.Plan {
	plan := &compose.Plan{Name: "echo", Database: &compose.Database{Service: "db"},
		Services: []compose.Service{{Name: "db", Role: compose.RoleDatabase}, {Name: "echo", Role: compose.RoleApp}}}
	if dbState != "" {
		plan.Services[0].Containers = []compose.Container{{ID: "db-id", Name: "echo-db-1", State: dbState}}
	}
	if appState != "" {
		plan.Services[1].Containers = []compose.Container{{ID: "app-id", Name: "echo-echo-1", State: appState}}
	}
	return plan
}

// stubTake replaces the save and verify; it records the database's state at the save.
func stubTake(t *testing.T, err error, dbRunning *bool) {
	t.Helper()
	take = func(_ context.Context, o Options) (*backup.Result, error) {
		db, _ := o.Plan.Service("db")
		*dbRunning = db.Running()
		if err != nil {
			return nil, err
		}
		return &backup.Result{Path: "/b/echo.tar.zst"}, nil
	}
	t.Cleanup(func() { take = Take })
}

func TestBeforeDeleteStartsAndPutsBackAStoppedDatabase(t *testing.T) {
	plan := testPlan("exited", "")
	svc, eng := &fakeServices{plan: plan}, &fakeEngine{}
	var dbRunning bool
	stubTake(t, nil, &dbRunning)
	res, err := BeforeDelete(context.Background(), Options{Plan: plan}, Delete{Services: svc, Engine: eng})
	if err != nil || res.Path != "/b/echo.tar.zst" {
		t.Fatalf("BeforeDelete = %v, %v", res, err)
	}
	if !dbRunning {
		t.Error("the database did not run during the save")
	}
	if want := []string{"start db", "stop db"}; !slices.Equal(svc.calls, want) {
		t.Errorf("calls %q, want %q", svc.calls, want)
	}
	if len(eng.removed) > 0 {
		t.Errorf("removed %q: the database had a container, which must stay", eng.removed)
	}
}

func TestBeforeDeleteRemovesWhatItCreated(t *testing.T) {
	plan := testPlan("", "")
	svc := &fakeServices{plan: plan, create: true}
	eng := &fakeEngine{networks: []string{"old-network-id"}}
	var dbRunning bool
	stubTake(t, nil, &dbRunning)
	// The network the start brings appears after the list taken before it.
	svc2 := &startHook{fakeServices: svc, onStart: func() { eng.networks = append(eng.networks, "new-network-id") }}
	if _, err := BeforeDelete(context.Background(), Options{Plan: plan}, Delete{Services: svc2, Engine: eng}); err != nil {
		t.Fatal(err)
	}
	want := []string{"container db-id", "network new-network-id"}
	if !slices.Equal(eng.removed, want) {
		t.Errorf("removed %q, want %q", eng.removed, want)
	}
}

type startHook struct {
	*fakeServices
	onStart func()
}

func (s *startHook) Start(ctx context.Context, names []string) error {
	s.onStart()
	return s.fakeServices.Start(ctx, names)
}

func (s *startHook) EnsureDatabase(ctx context.Context) (bool, error) {
	db, _ := s.plan.Service(s.plan.Database.Service)
	if db.Running() {
		return false, nil
	}
	return true, s.Start(ctx, []string{db.Name})
}

func TestBeforeDeleteStopsTheAppAndStartsItAgainOnFailure(t *testing.T) {
	plan := testPlan("running", "running")
	svc := &fakeServices{plan: plan}
	var dbRunning bool
	saveErr := errors.New("disk full")
	stubTake(t, saveErr, &dbRunning)
	var said []string
	o := Options{Plan: plan, Say: func(m string) { said = append(said, m) }}
	_, err := BeforeDelete(context.Background(), o, Delete{Services: svc, Engine: &fakeEngine{}, StopApps: true})
	if !errors.Is(err, saveErr) {
		t.Fatalf("err = %v, want the save's", err)
	}
	if want := []string{"stop echo", "start echo"}; !slices.Equal(svc.calls, want) {
		t.Errorf("calls %q, want %q", svc.calls, want)
	}
	if len(said) != 2 || !strings.Contains(said[1], "started echo again") {
		t.Errorf("said %q", said)
	}
}

func TestBeforeDeleteLeavesTheAppStoppedAfterAGoodBackup(t *testing.T) {
	plan := testPlan("running", "running")
	svc := &fakeServices{plan: plan}
	var dbRunning bool
	stubTake(t, nil, &dbRunning)
	if _, err := BeforeDelete(context.Background(), Options{Plan: plan}, Delete{Services: svc, Engine: &fakeEngine{}, StopApps: true}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"stop echo"}; !slices.Equal(svc.calls, want) {
		t.Errorf("calls %q, want %q", svc.calls, want)
	}
}

func TestStartAgainKeepsBothErrors(t *testing.T) {
	svc := &fakeServices{plan: testPlan("running", "exited"), startErr: errors.New("no such image")}
	saveErr := errors.New("disk full")
	err := StartAgain(context.Background(), Options{}, svc, []string{"echo"}, saveErr)
	if !errors.Is(err, saveErr) || !strings.Contains(err.Error(), "no such image") {
		t.Errorf("err = %v", err)
	}
}
