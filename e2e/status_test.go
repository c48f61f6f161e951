//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// statusJSON is the part of `status --format json` the tests check.
type statusJSON struct {
	Project  string `json:"project"`
	Database struct {
		Service, User, Name, Volume string
	} `json:"database"`
	Services []struct {
		Name       string `json:"name"`
		Role       string `json:"role"`
		Containers []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"containers"`
	} `json:"services"`
	Items []struct {
		Service, Kind, Source, Target, Role, Reason string
		Backup                                      bool
	} `json:"items"`
}

func (s *Stack) status(t *testing.T, args ...string) statusJSON {
	t.Helper()
	out, errOut, code := s.EchoBackup(append(append(s.ProjectArgs(), "status", "--format", "json"), args...)...)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, out)
	}
	return st
}

func (st statusJSON) item(t *testing.T, target string) (role string, backup bool) {
	t.Helper()
	for _, it := range st.Items {
		if it.Target == target {
			return it.Role, it.Backup
		}
	}
	t.Fatalf("no item for %s in %+v", target, st.Items)
	return "", false
}

func (st statusJSON) running() []string {
	var names []string
	for _, s := range st.Services {
		for _, c := range s.Containers {
			if c.State == "running" {
				names = append(names, s.Name)
			}
		}
	}
	sort.Strings(names)
	return names
}

// TestStatusFindsEchoParts: on both layouts status names the database with compose's
// defaults and .env interpolation, the data folder or volume, the cache and the media.
func TestStatusFindsEchoParts(t *testing.T) {
	for _, fixture := range []string{"seed", "custom"} {
		t.Run(fixture, func(t *testing.T) {
			s := NewStack(t, fixture)
			s.Up()
			st := s.status(t)
			db := st.Database
			wantVolume := s.Volume("postgres_data")
			if fixture == "custom" {
				wantVolume = s.Volume("pgdata")
			}
			if st.Project != s.Name || db.Service != s.DBService || db.User != s.DBUser || db.Name != s.DBName || db.Volume != wantVolume {
				t.Errorf("project %s, database %+v; want %s/%s/%s/%s on %s", st.Project, db, s.DBService, s.DBUser, s.DBName, wantVolume, s.Name)
			}
			checks := map[string]struct {
				role   string
				backup bool
			}{"/app/data": {"data", true}, "/mnt": {"media", false}, "/data": {"cache", false},
				"/var/lib/postgresql/data": {"database", true}}
			for target, want := range checks {
				if role, backup := st.item(t, target); role != want.role || backup != want.backup {
					t.Errorf("%s: role %s backup %v, want %s %v", target, role, backup, want.role, want.backup)
				}
			}
			// Status must see exactly what compose sees running.
			ps := s.MustDocker(s.composeArgs("ps", "--services", "--status", "running")...)
			want := nonEmptyLines(ps)
			sort.Strings(want)
			if got := st.running(); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("running services: status %v, compose ps %v", got, want)
			}
		})
	}
}

// TestStatusWithFileAndProjectFlags: -f and -p from another folder find the same project as
// `docker compose -f … -p … ps`.
func TestStatusWithFileAndProjectFlags(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	elsewhere := t.TempDir()
	args := []string{"echobackup", "-p", s.Name, "-f", filepath.Join(s.Dir, "compose.yaml"),
		"-f", filepath.Join(s.Dir, "compose.override.yaml"), "status", "--format", "json"}
	r := s.Run(RunOpts{Dir: elsewhere}, "docker", args...)
	if r.Code != 0 {
		t.Fatalf("status from elsewhere: %d %s", r.Code, r.Stderr)
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatal(err)
	}
	ps := s.Run(RunOpts{Dir: elsewhere}, "docker", "compose", "-p", s.Name, "-f", filepath.Join(s.Dir, "compose.yaml"),
		"-f", filepath.Join(s.Dir, "compose.override.yaml"), "ps", "--services", "--status", "running")
	want := nonEmptyLines(ps.Stdout)
	sort.Strings(want)
	if st.Project != s.Name || strings.Join(st.running(), ",") != strings.Join(want, ",") || len(want) < 3 {
		t.Errorf("status sees %s %v, compose ps sees %v", st.Project, st.running(), want)
	}
}

// TestStatusErrors: each mistake gets one clear line and a non-zero exit, never a stack trace.
func TestStatusErrors(t *testing.T) {
	s := NewStack(t, "seed")
	empty := t.TempDir()
	noDB := t.TempDir()
	if err := os.WriteFile(filepath.Join(noDB, "compose.yaml"), []byte("services:\n  cache:\n    image: redis:7\n  web:\n    image: nginx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		dir  string
		env  []string
		want []string
	}{
		{"no compose file", empty, nil, []string{"no compose file found", empty}},
		{"no database", noDB, nil, []string{"no PostgreSQL service", "cache, web", "--db-service"}},
		{"engine unreachable", s.Dir, []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}, []string{"cannot reach the Docker engine", "unix:///nonexistent/docker.sock"}},
	}
	for _, c := range cases {
		r := s.Run(RunOpts{Dir: c.dir, Env: c.env}, "docker", "echobackup", "status")
		if r.Code == 0 {
			t.Errorf("%s: exit 0", c.name)
		}
		for _, w := range c.want {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", c.name, w, r.Stderr)
			}
		}
		if strings.Contains(r.Stderr, "goroutine") || len(nonEmptyLines(r.Stderr)) > 2 {
			t.Errorf("%s: not one clear line:\n%s", c.name, r.Stderr)
		}
	}
	// Not running: status says so; save refuses and says how to start it.
	out, _, code := s.EchoBackup("status")
	if code != 0 || !strings.Contains(out, "No container of project") {
		t.Errorf("status of a stopped project: exit %d\n%s", code, out)
	}
	_, errOut, code := s.EchoBackup("save")
	if code == 0 || !strings.Contains(errOut, "is not running") {
		t.Errorf("save of a stopped project: exit %d: %s", code, errOut)
	}
}
