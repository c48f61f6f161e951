//go:build e2e

package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiscoverySidecar: on a stack whose app, redis and pg_dump sidecar all run the
// database's image with entrypoint overrides (and carry its POSTGRES_* variables), status
// names the database without --db-service, and save, verify --deep and a restore after
// `docker compose down -v` bring every row and file back.
func TestDiscoverySidecar(t *testing.T) {
	s := NewStack(t, "sidecar")
	s.Up()
	st := s.status(t)
	if db := st.Database; db.Service != "postgres" || db.User != "echo" || db.Name != "echo" || db.Volume != s.Volume("pgdata") {
		t.Fatalf("database %+v; want service postgres, user and database echo, volume %s", db, s.Volume("pgdata"))
	}
	roles := map[string]string{}
	for _, svc := range st.Services {
		roles[svc.Name] = svc.Role
	}
	for name, want := range map[string]string{"postgres": "database", "echo": "app", "redis": "cache", "backup": "app"} {
		if roles[name] != want {
			t.Errorf("service %s: role %q, want %q", name, roles[name], want)
		}
	}
	if role, backup := st.item(t, "/data"); role != "cache" || backup {
		t.Errorf("redis /data: role %s backup %v, want cache, not saved", role, backup)
	}

	tables := make([]string, 0, len(SeedRowCounts))
	for tbl := range SeedRowCounts {
		tables = append(tables, tbl)
	}
	rows := s.RowCounts(tables...)
	for tbl, want := range SeedRowCounts {
		if rows[tbl] != want {
			t.Fatalf("seeded table %s: %d rows, want %d", tbl, rows[tbl], want)
		}
	}
	before := s.state()
	running := s.runningServices(t)

	saved := s.save(t)
	if out, code := s.verify(t, "--deep", saved.Path); code != 0 {
		t.Fatalf("verify --deep: exit %d\n%s", code, out)
	}
	s.MustCompose("down", "-v", "--timeout", "1")
	if err := os.RemoveAll(s.DataDir()); err != nil {
		t.Fatal(err)
	}
	if out, code := s.restore("latest", "--yes"); code != 0 {
		t.Fatalf("restore after down -v: exit %d\n%s", code, out)
	}
	if got := s.RowCounts(tables...); !maps.Equal(got, rows) {
		t.Errorf("row counts after restore %v, before %v", got, rows)
	}
	assertSameState(t, "after down -v and restore", before, s.state())
	if got := s.runningServices(t); got != running {
		t.Errorf("running after restore: %s, before: %s", got, running)
	}
}

// TestDiscoveryTie: two services with the same evidence of being the database still get the
// clear error naming both and --db-service (exit 2), the services that run something else
// are not among them, and --db-service settles it.
func TestDiscoveryTie(t *testing.T) {
	s := NewStack(t, "sidecar") // never started: its folder and environment only
	dir := filepath.Join(t.TempDir(), s.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	database := `
    image: ${ECHOBACKUP_PG_IMAGE}
    environment: {POSTGRES_PASSWORD: secret}
    volumes: ["%s:/var/lib/postgresql/data"]
    healthcheck: {test: "pg_isready -U postgres"}
`
	compose := "services:\n" +
		"  main:" + strings.Replace(database, "%s", "main", 1) +
		"  replica:" + strings.Replace(database, "%s", "replica", 1) +
		"  dumper:\n    image: ${ECHOBACKUP_PG_IMAGE}\n    environment: {POSTGRES_PASSWORD: secret}\n" +
		"    entrypoint: [sh, -c, 'while true; do pg_dump -h main -U postgres postgres >/dev/null; sleep 60; done']\n" +
		"volumes: {main: {}, replica: {}}\n"
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.Run(RunOpts{Dir: dir}, "docker", "echobackup", "status")
	if r.Code != 2 {
		t.Errorf("status on a tie: exit %d, want 2", r.Code)
	}
	if want := "several services look like PostgreSQL (main, replica): choose one with --db-service"; !strings.Contains(r.Stderr, want) {
		t.Errorf("status on a tie: stderr lacks %q:\n%s", want, r.Stderr)
	}
	r = s.Run(RunOpts{Dir: dir}, "docker", "echobackup", "status", "--db-service", "replica", "--format", "json")
	var st statusJSON
	if err := json.Unmarshal([]byte(r.Stdout), &st); r.Code != 0 || err != nil || st.Database.Service != "replica" {
		t.Errorf("status --db-service replica: exit %d, database %+v (%v)\n%s", r.Code, st.Database, err, r.Stderr)
	}
}
