package compose

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/cli/cli/command"
)

func loadPlan(t *testing.T, dir, dbService string) *Plan {
	t.Helper()
	cli, err := command.NewDockerCli()
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	p, err := Load(context.Background(), cli, ProjectOptions{ProjectDir: abs})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(p, dbService)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func findItem(t *testing.T, plan *Plan, target string) Item {
	t.Helper()
	for _, it := range plan.Items {
		if it.Target == target {
			return it
		}
	}
	t.Fatalf("no item with target %s in %+v", target, plan.Items)
	return Item{}
}

func TestSeedLayout(t *testing.T) {
	plan := loadPlan(t, "testdata/seed", "")
	db := plan.Database
	if db.Service != "postgres" || db.User != "echo" || db.Name != "echo" || db.Volume != "seed_postgres_data" {
		t.Errorf("database = %+v", db)
	}
	cases := map[string]struct {
		role   Role
		backup bool
	}{
		"/app/data":                {RoleData, true},
		"/mnt":                     {RoleMedia, false},
		"/var/run/docker.sock":     {RoleOther, false},
		"/var/lib/postgresql/data": {RoleDatabase, true},
		"/data":                    {RoleCache, false},
	}
	for target, want := range cases {
		it := findItem(t, plan, target)
		if it.Role != want.role || it.Backup != want.backup {
			t.Errorf("%s: role %s backup %v, want %s %v", target, it.Role, it.Backup, want.role, want.backup)
		}
	}
	if s, _ := plan.Service("redis"); s.Role != RoleCache {
		t.Errorf("redis role = %s", s.Role)
	}
}

func TestCustomLayout(t *testing.T) {
	plan := loadPlan(t, "testdata/custom", "")
	db := plan.Database
	// env_file values are interpolated from .env; PGDATA below the mount still matches it.
	if plan.Name != "music" || db.Service != "db" || db.User != "music" || db.Name != "library" || db.Volume != "shared-pg" {
		t.Errorf("plan %s, database = %+v", plan.Name, db)
	}
	if it := findItem(t, plan, "/app/data"); it.Source != "echo-data-real" || it.Role != RoleData || !it.Backup {
		t.Errorf("app data = %+v", it)
	}
	if it := findItem(t, plan, "/var/lib/postgresql"); !it.External || it.Role != RoleDatabase {
		t.Errorf("db volume = %+v", it)
	}
	if s, _ := plan.Service("cache"); s.Role != RoleCache {
		t.Errorf("valkey role = %s", s.Role)
	}
	if len(plan.EnvFiles) != 2 {
		t.Errorf("env files = %v", plan.EnvFiles)
	}
}

func TestDatabaseOverride(t *testing.T) {
	cli, _ := command.NewDockerCli()
	p, err := Load(context.Background(), cli, ProjectOptions{ProjectDir: "testdata/seed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPlan(p, "nope"); err == nil || !IsUserError(err) || !strings.Contains(err.Error(), "echo, postgres, redis") {
		t.Errorf("unknown --db-service: %v", err)
	}
	delete(p.Services, "postgres")
	if _, err := NewPlan(p, ""); err == nil || !strings.Contains(err.Error(), "--db-service") {
		t.Errorf("no database: %v", err)
	}
}

func TestNoComposeFile(t *testing.T) {
	cli, _ := command.NewDockerCli()
	dir := t.TempDir()
	_, err := Load(context.Background(), cli, ProjectOptions{ProjectDir: dir})
	if err == nil || !IsUserError(err) || !strings.Contains(err.Error(), dir) {
		t.Errorf("err = %v", err)
	}
}

func TestImageName(t *testing.T) {
	for in, want := range map[string]string{
		"postgres:16": "postgres",
		"docker.io/library/postgres:16@sha256:abc": "postgres",
		"registry:5000/team/redis":                 "redis",
	} {
		if got := imageName(in); got != want {
			t.Errorf("imageName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDataVolumes: one definition for the guard, the shell guard and down's report: existing
// named volumes of the data and database roles, external ones too (volume rm deletes those),
// each once.
func TestDataVolumes(t *testing.T) {
	plan := &Plan{Items: []Item{
		{Kind: "volume", Source: "p_pgdata", Role: RoleDatabase, Backup: true, Exists: true},
		{Kind: "volume", Source: "p_data", Role: RoleData, Backup: true, Exists: true},
		{Kind: "volume", Source: "p_data", Role: RoleData, Backup: true, Exists: true}, // mounted by two services
		{Kind: "volume", Source: "shared", Role: RoleData, Backup: true, Exists: true, External: true},
		{Kind: "volume", Source: "p_cache", Role: RoleCache, Exists: true},
		{Kind: "volume", Source: "p_media", Role: RoleMedia, Exists: true},
		{Kind: "volume", Source: "p_gone", Role: RoleData, Backup: true},
		{Kind: "bind", Source: "/srv/echo/data", Role: RoleData, Backup: true, Exists: true},
	}}
	if got := plan.DataVolumes(); !slices.Equal(got, []string{"p_data", "p_pgdata", "shared"}) {
		t.Errorf("DataVolumes = %v, want [p_data p_pgdata shared]", got)
	}
	if !plan.External("shared") || plan.External("p_data") {
		t.Errorf("External: shared %v, p_data %v; want true, false", plan.External("shared"), plan.External("p_data"))
	}
}

// TestSidecarLayout: the e2e fixture where every service runs the database's image and only
// entrypoint and command overrides (string and list forms, sh -c scripts) tell them apart.
func TestSidecarLayout(t *testing.T) {
	t.Setenv("ECHOBACKUP_PG_IMAGE", "postgres:16")
	plan := loadPlan(t, "../e2e/testdata/sidecar", "")
	if db := plan.Database; db.Service != "postgres" || db.User != "echo" || db.Name != "echo" || db.Volume != "sidecar_pgdata" {
		t.Errorf("database = %+v", db)
	}
	for name, want := range map[string]Role{"postgres": RoleDatabase, "echo": RoleApp, "redis": RoleCache, "backup": RoleApp} {
		if s, _ := plan.Service(name); s.Role != want {
			t.Errorf("%s: role %s, want %s", name, s.Role, want)
		}
	}
	if it := findItem(t, plan, "/data"); it.Role != RoleCache || it.Backup {
		t.Errorf("redis data = %+v", it)
	}
}
