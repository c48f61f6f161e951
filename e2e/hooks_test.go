//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// linkContexts gives a docker config folder of a test's own the docker context the suite
// reaches its engine by (DOCKER_CONTEXT), when it is not the default one.
func linkContexts(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dockerConfig, "contexts")); err == nil {
		if err := os.Symlink(filepath.Join(dockerConfig, "contexts"), filepath.Join(dir, "contexts")); err != nil {
			t.Fatal(err)
		}
	}
}

// hooksConfig is a docker config folder of its own for the test: the harness's plugins and
// contexts, and a config.json that already holds settings of the user's and of another plugin.
func hooksConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(dockerConfig, "cli-plugins"), filepath.Join(dir, "cli-plugins")); err != nil {
		t.Fatal(err)
	}
	linkContexts(t, dir)
	user := `{"psFormat": "table {{.Names}}", "plugins": {"other": {"hooks": "image ls"}}, "features": {"other": "x"}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(user), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readDockerConfig(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("config.json: %v\n%s", err, b)
	}
	return cfg
}

// underTTY runs a shell line under a pseudo-terminal (util-linux script): the CLI runs hooks
// only when its output is a terminal.
func (s *Stack) underTTY(t *testing.T, line string, env ...string) Result {
	t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatal("the hooks test needs `script` (util-linux) for a pseudo-terminal")
	}
	return s.Run(RunOpts{Env: env}, "script", "-qec", line, "/dev/null")
}

// TestHooks: hooks install adds the hooks idempotently and keeps the rest of config.json;
// after `docker compose down -v` under a terminal the real CLI shows the last backup and the
// exact restore command, and where there is none a warning; the hook answers from manifests
// alone, fast, with no engine; hooks remove takes it all back.
func TestHooks(t *testing.T) {
	s := NewStack(t, "custom")
	cfgDir := hooksConfig(t)
	withCfg := "DOCKER_CONFIG=" + cfgDir

	r := s.Run(RunOpts{Env: []string{withCfg}}, "docker", "echobackup", "hooks", "install")
	if r.Code != 0 || !strings.Contains(r.Stdout, "updated") {
		t.Fatalf("hooks install: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r = s.Run(RunOpts{Env: []string{withCfg}}, "docker", "echobackup", "hooks", "install"); r.Code != 0 || !strings.Contains(r.Stdout, "unchanged") {
		t.Errorf("second hooks install: exit %d, want unchanged\n%s", r.Code, r.Stdout)
	}
	cfg := readDockerConfig(t, cfgDir)
	plugins, _ := cfg["plugins"].(map[string]any)
	features, _ := cfg["features"].(map[string]any)
	own, _ := plugins["echobackup"].(map[string]any)
	other, _ := plugins["other"].(map[string]any)
	if cfg["psFormat"] != "table {{.Names}}" || other["hooks"] != "image ls" || features["other"] != "x" ||
		features["hooks"] != "true" || own["hooks"] != "compose down,volume rm,volume prune,system prune" {
		t.Fatalf("config.json after install: %v", cfg)
	}

	// No backup yet: a warning. The command fails (no such volume): hooks run all the same.
	r = s.underTTY(t, "docker volume rm "+s.Name+"_no_such_volume", withCfg)
	t.Logf("under a terminal:\n%s", r.Stdout)
	if !strings.Contains(r.Stdout, "What's next") || !strings.Contains(r.Stdout, "no echobackup backup in ./backups") {
		t.Errorf("hint without a backup:\n%s%s", r.Stdout, r.Stderr)
	}

	s.Up()
	saved := s.save(t)
	if out, code := s.verify(t, saved.Path); code != 0 {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	rel := "./backups/" + filepath.Base(saved.Path)
	// The hook matches `compose down` only without flags before down: the project comes from
	// the environment, as a user's .env would give it.
	env := []string{withCfg, "COMPOSE_PROJECT_NAME=" + s.Name, "COMPOSE_FILE=" + strings.Join(s.ComposeFiles, ":")}
	r = s.underTTY(t, "docker compose down -v", env...)
	want := "To restore: docker echobackup -p " + s.Name + " restore " + rel
	if r.Code != 0 || !strings.Contains(r.Stdout, "What's next") || !strings.Contains(r.Stdout, "Last backup of "+s.Name+": ") ||
		!strings.Contains(r.Stdout, want) || !strings.Contains(r.Stdout, ", verified ") {
		t.Errorf("hint after down -v: exit %d, want %q\n%s%s", r.Code, want, r.Stdout, r.Stderr)
	}
	t.Logf("under a terminal:\n%s", r.Stdout)
	if _, _, code := s.Docker("volume", "inspect", s.Volume("pgdata")); code == 0 {
		t.Errorf("down -v under the terminal kept the volume")
	}
	// The command shown brings the data back as it stands.
	restoreArgs := strings.Fields(strings.TrimPrefix(want, "To restore: docker "))
	if r := s.Run(RunOpts{}, "docker", append(restoreArgs, "--yes")...); r.Code != 0 {
		t.Fatalf("the restore command of the hint: exit %d\n%s", r.Code, r.Stderr)
	}
	s.WaitDB(3 * time.Minute)
	if got := s.RowCounts("tracks", "play_history"); got["tracks"] != SeedRowCounts["tracks"] || got["play_history"] != SeedRowCounts["play_history"] {
		t.Errorf("rows after the hint's restore: %v", got)
	}
	// Without a terminal the CLI asks no hook: nothing to show.
	if stdout, stderr, _ := s.Docker("--config", cfgDir, "volume", "ls", "-q", "--filter", "name="+s.Name+"_none"); strings.Contains(stdout+stderr, "What's next") {
		t.Errorf("a hint without a terminal")
	}

	// The hook itself: manifests only, no engine (an unreachable host), well under 100 ms.
	plugin := filepath.Join(dockerConfig, "cli-plugins", "docker-echobackup")
	req := `{"RootCmd":"compose down","Flags":{"v":""}}`
	var best time.Duration
	for i := 0; i < 5; i++ {
		cmd := exec.Command(plugin, "echobackup", "docker-cli-plugin-hooks", req)
		cmd.Dir = s.Dir
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix:///nonexistent/docker.sock")
		t0 := time.Now()
		out, err := cmd.Output()
		d := time.Since(t0)
		if err != nil || !strings.Contains(string(out), `"Template":"Last backup of `+s.Name) {
			t.Fatalf("hook answer: %v\n%s", err, out)
		}
		if i == 0 || d < best {
			best = d
		}
	}
	t.Logf("the hook answers in %s (best of 5)", best)
	if best > 100*time.Millisecond {
		t.Errorf("the hook took %s, want under 100 ms", best)
	}

	if r = s.Run(RunOpts{Env: []string{withCfg}}, "docker", "echobackup", "hooks", "remove"); r.Code != 0 {
		t.Fatalf("hooks remove: exit %d\n%s", r.Code, r.Stderr)
	}
	cfg = readDockerConfig(t, cfgDir)
	plugins, _ = cfg["plugins"].(map[string]any)
	features, _ = cfg["features"].(map[string]any)
	if _, ok := plugins["echobackup"]; ok || plugins["other"] == nil || features["hooks"] != "true" || cfg["psFormat"] == nil {
		t.Errorf("config.json after remove (hooks stay on for the other plugin): %v", cfg)
	}
}
