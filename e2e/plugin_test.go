//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docker runs the docker CLI outside any stack (temporary DOCKER_CONFIG, no project).
func docker(t *testing.T, args ...string) Result {
	t.Helper()
	s := &Stack{t: t, Dir: t.TempDir()}
	return s.Run(RunOpts{}, "docker", args...)
}

func TestDockerInfoListsPlugin(t *testing.T) {
	r := docker(t, "info", "--format", "{{json .ClientInfo.Plugins}}")
	if r.Code != 0 {
		t.Fatalf("docker info: exit %d: %s", r.Code, r.Stderr)
	}
	var plugins []struct {
		Name, Path, Version, Vendor string
		Err                         any
	}
	if err := json.Unmarshal([]byte(r.Stdout), &plugins); err != nil {
		t.Fatalf("docker info plugins %q: %v", r.Stdout, err)
	}
	found := map[string]string{}
	for _, p := range plugins {
		t.Logf("plugin %s %s (%s) at %s", p.Name, p.Version, p.Vendor, p.Path)
		if p.Err != nil {
			t.Errorf("invalid plugin %s at %s: %v", p.Name, p.Path, p.Err)
		}
		found[p.Name] = p.Path
	}
	for _, name := range []string{"echobackup", "compose"} {
		want := filepath.Join(dockerConfig, "cli-plugins", "docker-"+name)
		if found[name] != want {
			t.Errorf("plugin %s: docker info shows path %q, want %q", name, found[name], want)
		}
	}
	// The human-readable form must not complain either.
	r = docker(t, "info")
	if strings.Contains(r.Stdout+r.Stderr, "is not valid") {
		t.Errorf("docker info reports an invalid plugin:\n%s\n%s", r.Stdout, r.Stderr)
	}
}

func TestEchoBackupHelp(t *testing.T) {
	r := docker(t, "echobackup", "--help")
	if r.Code != 0 {
		t.Fatalf("docker echobackup --help: exit %d\n%s", r.Code, r.Stderr)
	}
	commands := helpCommands(r.Stdout)
	if len(commands) == 0 {
		t.Fatalf("docker echobackup --help lists no commands:\n%s", r.Stdout)
	}
	t.Logf("commands: %v", commands)
	for _, c := range commands {
		t.Run(c, func(t *testing.T) {
			r := docker(t, "echobackup", c, "--help")
			if r.Code != 0 {
				t.Fatalf("docker echobackup %s --help: exit %d\n%s", c, r.Code, r.Stderr)
			}
			if !strings.Contains(r.Stdout, "docker echobackup "+c) {
				t.Errorf("help of %s has no usage line:\n%s", c, r.Stdout)
			}
		})
	}
}

// helpCommands reads the "Commands:" section of a docker CLI help text.
func helpCommands(help string) []string {
	var cmds []string
	in := false
	for _, line := range strings.Split(help, "\n") {
		switch {
		case strings.HasSuffix(strings.TrimSpace(line), "Commands:"):
			in = true
		case in && strings.TrimSpace(line) == "":
			in = false
		case in && strings.HasPrefix(line, "  "):
			if f := strings.Fields(line); len(f) > 0 {
				cmds = append(cmds, strings.TrimSuffix(f[0], "*"))
			}
		}
	}
	return cmds
}

func TestComposeVersion(t *testing.T) {
	want, err := output(context.Background(), moduleRoot, nil, "go", "list", "-m", "-f", "{{.Version}}", composeModule)
	if err != nil {
		t.Fatal(err)
	}
	r := docker(t, "compose", "version", "--short")
	if r.Code != 0 {
		t.Fatalf("docker compose version: exit %d: %s", r.Code, r.Stderr)
	}
	if got, want := strings.TrimSpace(r.Stdout), strings.TrimPrefix(strings.TrimSpace(want), "v"); strings.TrimPrefix(got, "v") != want {
		t.Errorf("docker compose version --short = %q, want %s (go.mod)", got, want)
	}
}

// TestFixtures brings each fixture up, checks the seeding, then checks that the stack's
// cleanup leaves nothing behind.
func TestFixtures(t *testing.T) {
	tables := make(map[string][]string)
	for _, name := range []string{"seed", "custom"} {
		t.Run(name, func(t *testing.T) {
			s := NewStack(t, name)
			s.Up()

			var names []string
			for tbl := range SeedRowCounts {
				names = append(names, tbl)
			}
			got := s.RowCounts(names...)
			for tbl, want := range SeedRowCounts {
				if got[tbl] != want {
					t.Errorf("table %s: %d rows, want %d", tbl, got[tbl], want)
				}
			}

			db := s.FingerprintDB()
			t.Logf("database fingerprint:\n%s", db)
			if again := s.FingerprintDB(); !db.Equal(again) {
				t.Errorf("database fingerprint is not stable:\n%s", db.Diff(again))
			}
			tables[name] = db.TableLines()
			if n := len(db.TableLines()); n != len(SeedRowCounts) {
				t.Errorf("fingerprint has %d tables, want %d", n, len(SeedRowCounts))
			}

			files := s.FingerprintData()
			checkSeededFiles(t, files)
			// The same data seen from inside the app container.
			inApp := s.MustCompose("exec", "-T", s.AppService, "sh", "-c",
				"id -u; stat -c '%u:%g %a' /app/data/setup.json /app/data/secrets.env; ls /mnt/music")
			t.Logf("inside %s:\n%s", s.AppService, inApp)
			if !strings.HasPrefix(inApp, "1001\n1001:1001 644\n1001:1001 600\n") {
				t.Errorf("app container sees:\n%s", inApp)
			}
			if s.DataVolume == "" {
				// The bind source read through a container matches the host walk.
				AssertSameFingerprint(t, "./data (host walk vs. container)", files.Fingerprint(),
					s.FingerprintVolume(s.DataDir()).Fingerprint())
			}

			switch name {
			case "seed":
				if out := s.MustDocker("inspect", "--format", `{{index .Config.Labels "com.docker.compose.project"}}`, "echo-postgres"); strings.TrimSpace(out) != s.Name {
					t.Errorf("echo-postgres belongs to project %q, want %s", strings.TrimSpace(out), s.Name)
				}
			case "custom":
				running := s.MustCompose("ps", "--services", "--status", "running")
				if strings.Contains(running, "tools") {
					t.Errorf("profile-only service tools is running:\n%s", running)
				}
				for _, svc := range []string{"echo", "db", "cache"} {
					if !strings.Contains(running, svc) {
						t.Errorf("service %s is not running:\n%s", svc, running)
					}
				}
				label := s.MustDocker("inspect", "--format", `{{index .Config.Labels "com.example.echo.override"}}`, s.ContainerID("db"))
				if strings.TrimSpace(label) != "loaded" {
					t.Errorf("compose.override.yaml was not applied to db (label %q)", strings.TrimSpace(label))
				}
			}

			// A change shows in the fingerprints.
			s.Psql("update users set email = 'changed@echo.example' where id = 3;")
			if d := db.Diff(s.FingerprintDB()); !strings.Contains(d, "table public.users") || strings.Contains(d, "table public.tracks") {
				t.Errorf("changing one user should change only the users line:\n%s", d)
			}

			s.Cleanup()
			assertNothingLeft(t, s)
		})
	}
	// schema.sql is deterministic: both fixtures hold the same rows.
	if a, b := strings.Join(tables["seed"], "\n"), strings.Join(tables["custom"], "\n"); a != "" && b != "" && a != b {
		t.Errorf("seed and custom hold different rows:\nseed:\n%s\ncustom:\n%s", a, b)
	}
}

func checkSeededFiles(t *testing.T, files FileSet) {
	t.Helper()
	want := map[string]string{ // path: "type mode"
		".":                         "d 0755",
		"setup.json":                "f 0644",
		"secrets.env":               "f 0600",
		"covers/large.jpg":          "f 0644",
		"covers/24.jpg":             "f 0644",
		"metadata/artists/40.jpg":   "f 0644",
		"uploads/user-2/avatar.png": "f 0640",
		"uploads/empty/nested":      "d 0755",
		"uploads/latest-cover.jpg":  "l 0777",
		"uploads/user-3/Mötley Crüe – live (2019).jpg": "f 0644",
	}
	for p, tm := range want {
		e, ok := files.Get(p)
		if !ok {
			t.Errorf("seeded data has no %s", p)
			continue
		}
		if got := fmt.Sprintf("%s %#o", e.Type, e.Mode); got != tm {
			t.Errorf("%s: %s, want %s", p, got, tm)
		}
		if e.UID != AppUID || e.GID != AppGID {
			t.Errorf("%s: owned by %d:%d, want %d:%d", p, e.UID, e.GID, AppUID, AppGID)
		}
	}
	if e, _ := files.Get("uploads/latest-cover.jpg"); e.Target != "../covers/1.jpg" {
		t.Errorf("symlink target %q", e.Target)
	}
	if e, _ := files.Get("covers/large.jpg"); e.Size != 3<<20 || len(e.SHA256) != 64 {
		t.Errorf("covers/large.jpg: size %d sha256 %q", e.Size, e.SHA256)
	}
	if len(files) < 80 {
		t.Errorf("only %d entries seeded:\n%s", len(files), files.Fingerprint())
	}
}

// assertNothingLeft checks the engine after a stack's cleanup: no container, volume or
// network with its labels or names.
func assertNothingLeft(t *testing.T, s *Stack) {
	t.Helper()
	for _, l := range []string{LabelComposeProject + "=" + s.Name, LabelEchoProject + "=" + s.Name} {
		for _, what := range [][]string{{"ps", "-a", "-q"}, {"volume", "ls", "-q"}, {"network", "ls", "-q"}} {
			out := s.MustDocker(append(what, "--filter", "label="+l)...)
			if lines := nonEmptyLines(out); len(lines) > 0 {
				t.Errorf("after cleanup, docker %s --filter label=%s lists %v", strings.Join(what, " "), l, lines)
			}
		}
	}
	for _, v := range nonEmptyLines(s.MustDocker("volume", "ls", "-q", "--filter", "name="+s.Name)) {
		t.Errorf("after cleanup, volume %s is left", v)
	}
	if s.PinnedNames {
		if _, _, code := s.Docker("container", "inspect", "echo-postgres"); code == 0 {
			t.Errorf("after cleanup, container echo-postgres is left")
		}
	}
	if _, err := os.Stat(s.Dir); err != nil {
		t.Errorf("the stack folder went away before the test's end: %v", err)
	}
}
