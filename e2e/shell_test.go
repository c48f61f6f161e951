//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shellBackup is what list says of one backup, with its labels.
type shellBackup struct {
	Path     string            `json:"path"`
	Project  string            `json:"project"`
	Rows     int64             `json:"rows"`
	Files    int               `json:"files"`
	Labels   map[string]string `json:"labels"`
	Verified *struct {
		OK bool `json:"ok"`
	} `json:"verified"`
}

// shellBackups lists the stack's backups (list reads the compose files, not the engine).
func (s *Stack) shellBackups(t *testing.T) []shellBackup {
	t.Helper()
	out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "list", "--format", "json")...)
	if code != 0 {
		t.Fatalf("list: exit %d\n%s", code, errOut)
	}
	var entries []shellBackup
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("list json: %v\n%s", err, out)
	}
	return entries
}

// shellRC writes the function `docker echobackup shell-init bash` prints into a file that
// an interactive bash loads as its rc file.
func (s *Stack) shellRC(t *testing.T) string {
	t.Helper()
	out, errOut, code := s.EchoBackup("shell-init", "bash")
	if code != 0 || !strings.Contains(out, "docker()") {
		t.Fatalf("shell-init bash: exit %d\n%s%s", code, out, errOut)
	}
	rc := filepath.Join(t.TempDir(), "bashrc")
	if err := os.WriteFile(rc, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return rc
}

// bash runs line in an interactive bash that loaded the function, in the stack's folder.
func (s *Stack) bash(rc, line string, o RunOpts) Result {
	s.t.Helper()
	return s.Run(o, "bash", "--rcfile", rc, "-ic", line)
}

func (s *Stack) shellVolumeExists(name string) bool {
	_, _, code := s.Docker("volume", "inspect", name)
	return code == 0
}

func seedRows() int64 {
	var n int64
	for _, c := range SeedRowCounts {
		n += int64(c)
	}
	return n
}

// TestShellGuardComposeDown: with the function loaded in a real bash, `docker compose down -v`
// takes a verified backup, pinned pre-down, with all the rows, before the volumes go; a
// failing backup stops the command with the volumes and containers untouched; --force goes
// on. Other commands pass through with their exit code and stdin, and `docker echo-backup`
// runs the plugin.
func TestShellGuardComposeDown(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	rc := s.shellRC(t)
	down := "docker compose " + strings.Join(s.ProjectArgs(), " ") + " down -v"
	pgdata, data := s.Volume("pgdata"), s.Volume("echo_data")

	// Passing through: exit codes, stdin, the old name.
	if r := s.bash(rc, "docker inspect --type volume "+s.Name+"_no_such_volume", RunOpts{}); r.Code != 1 {
		t.Errorf("a failing docker command through the function: exit %d, want 1", r.Code)
	}
	r := s.bash(rc, "docker run --rm -i --network none --label "+LabelTest+"=1 "+pgImage+" cat", RunOpts{Stdin: strings.NewReader("through the function\n")})
	if r.Code != 0 || r.Stdout != "through the function\n" {
		t.Errorf("stdin through the function: exit %d, stdout %q", r.Code, r.Stdout)
	}
	if r := s.bash(rc, "docker echo-backup "+strings.Join(s.ProjectArgs(), " ")+" status", RunOpts{}); r.Code != 0 || !strings.Contains(r.Stdout, "Project:   "+s.Name) {
		t.Errorf("docker echo-backup status: exit %d\n%s", r.Code, r.Stdout)
	}

	// A line that deletes no volume passes without the engine (an unreachable host here).
	r = s.Run(RunOpts{Env: []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}}, "docker", "echobackup", "shell-guard", "--shell", "bash", "--", "rm", "-f", "it's")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != `'rm' '-f' 'it'\''s'` {
		t.Errorf("guard on a line that deletes no volume: exit %d, stdout %q\n%s", r.Code, r.Stdout, r.Stderr)
	}

	// A backup that cannot be written stops down -v, also with docker's global flags first
	// (the guard then runs again under them).
	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r = s.bash(rc, "docker --log-level warn "+strings.TrimPrefix(down, "docker "), RunOpts{Env: []string{"ECHOBACKUP_DIR=" + filepath.Join(blocker, "backups")}})
	if r.Code == 0 || !strings.Contains(r.Stderr, "Stopped before `docker --log-level warn compose") || !strings.Contains(r.Stderr, "--force") {
		t.Fatalf("down -v with a failing backup: exit %d, want a stop\n%s", r.Code, r.Stderr)
	}
	if !s.shellVolumeExists(pgdata) || !s.shellVolumeExists(data) || s.ContainerID(s.DBService) == "" {
		t.Fatalf("the stopped down -v removed something")
	}
	if got := s.RowCounts("tracks")["tracks"]; got != SeedRowCounts["tracks"] {
		t.Fatalf("tracks after the stopped down: %d", got)
	}

	// The real thing.
	t0 := time.Now()
	r = s.bash(rc, down, RunOpts{})
	if r.Code != 0 || !strings.Contains(r.Stderr, "Saved and verified") {
		t.Fatalf("down -v through the function: exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("guarded down -v took %s", time.Since(t0).Round(time.Millisecond))
	if s.shellVolumeExists(pgdata) || s.shellVolumeExists(data) {
		t.Errorf("down -v kept the volumes")
	}
	backups := s.shellBackups(t)
	if len(backups) != 1 {
		t.Fatalf("backups after down -v: %+v", backups)
	}
	b := backups[0]
	if b.Project != s.Name || b.Labels["pinned"] != "pre-down" || b.Verified == nil || !b.Verified.OK || b.Rows != seedRows() || b.Files < 5 {
		t.Errorf("the pre-down backup: %+v (want %d rows, verified, pinned pre-down)", b, seedRows())
	}

	// --force goes on when the backup fails; the guard takes --force away from compose.
	s.Up()
	r = s.bash(rc, "docker --config "+dockerConfig+" "+strings.TrimPrefix(down, "docker ")+" --force", RunOpts{Env: []string{"ECHOBACKUP_DIR=" + filepath.Join(blocker, "backups")}})
	if r.Code != 0 || !strings.Contains(r.Stderr, "going on without a backup") {
		t.Fatalf("down -v --force with a failing backup: exit %d\n%s", r.Code, r.Stderr)
	}
	if s.shellVolumeExists(pgdata) {
		t.Errorf("down -v --force kept the volume")
	}
}

// TestShellGuardVolumes: `docker volume rm` of the database volume whose container is gone
// starts the database for a verified backup and puts it back (no container left to hold the
// volume), so the rm goes through; a volume of a project that cannot be located stops
// `docker volume prune` (scoped to the stack by label: other tests share the engine) with
// the hint, until ECHOBACKUP_FORCE=1.
func TestShellGuardVolumes(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	rc := s.shellRC(t)
	pgdata, data := s.Volume("pgdata"), s.Volume("echo_data")

	// A running container with the guard's sentinel labels (the contract of the guard
	// package) holds the volumes: down -v takes no backup and says why the volumes stay.
	sentinel := strings.TrimSpace(s.MustDocker(append(append([]string{"run", "-d", "--network", "none"}, s.HarnessLabels()...),
		"--label", "com.echobackup.sentinel=1", "--label", "com.echobackup.volumes="+pgdata+","+data,
		"-v", pgdata+":/protect/a:ro", "-v", data+":/protect/b:ro", "--init", "--entrypoint", "sleep", pgImage, "infinity")...))
	r := s.bash(rc, "docker compose "+strings.Join(s.ProjectArgs(), " ")+" down -v", RunOpts{})
	if r.Code != 0 || !strings.Contains(r.Stderr, "the engine will keep them") || !strings.Contains(r.Stderr, "unprotect") ||
		strings.Contains(r.Stderr, "Saved and verified") {
		t.Errorf("down -v of a protected project: exit %d\n%s", r.Code, r.Stderr)
	}
	if !s.shellVolumeExists(pgdata) || !s.shellVolumeExists(data) || len(s.shellBackups(t)) != 0 {
		t.Fatalf("with the sentinel: volumes gone or a backup taken")
	}
	s.MustDocker("rm", "-f", sentinel)
	s.Up()

	// The db container goes; the app's containers stay to say where the project lives.
	s.MustCompose("rm", "--stop", "--force", s.DBService)
	r = s.bash(rc, "docker volume rm "+pgdata, RunOpts{})
	if r.Code != 0 || !strings.Contains(r.Stderr, "Saved and verified") {
		t.Fatalf("volume rm through the function: exit %d\n%s", r.Code, r.Stderr)
	}
	if s.shellVolumeExists(pgdata) || s.ContainerID(s.DBService) != "" {
		t.Errorf("after volume rm: volume still there or the db container left behind")
	}
	backups := s.shellBackups(t)
	if len(backups) != 1 || backups[0].Rows != seedRows() || backups[0].Verified == nil || !backups[0].Verified.OK {
		t.Fatalf("backup taken before volume rm: %+v", backups)
	}

	// No container left: nothing says where the compose files are.
	s.Down()
	scope := " -f --filter label=" + LabelComposeProject + "=" + s.Name
	prune := "docker volume prune" + scope
	if !s.serverAPIBelow142(t) {
		// From API 1.42 a plain prune keeps named volumes: the guard lets it run, and the
		// engine keeps the data. With -a, or a filter all=true, they go: those are stopped.
		s.oldClientPrune(t, rc, prune, data)
		r = s.bash(rc, prune, RunOpts{})
		if r.Code != 0 || strings.Contains(r.Stderr, "ECHOBACKUP_FORCE=1") || !s.shellVolumeExists(data) {
			t.Fatalf("plain volume prune on API >= 1.42: exit %d, volume %s kept=%v; want it run and the volume kept\n%s",
				r.Code, data, s.shellVolumeExists(data), r.Stderr)
		}
		r = s.bash(rc, prune+" --filter all=true", RunOpts{})
		if r.Code == 0 || !strings.Contains(r.Stderr, "is left to tell where its compose files are") || !s.shellVolumeExists(data) {
			t.Fatalf("volume prune --filter all=true of an unlocatable project: exit %d, want a stop with the volume kept\n%s", r.Code, r.Stderr)
		}
		prune = "docker volume prune -a" + scope
	}
	r = s.bash(rc, prune, RunOpts{})
	if r.Code == 0 || !strings.Contains(r.Stderr, "is left to tell where its compose files are") || !strings.Contains(r.Stderr, "ECHOBACKUP_FORCE=1") {
		t.Fatalf("%s of an unlocatable project: exit %d, want a stop\n%s", prune, r.Code, r.Stderr)
	}
	if !s.shellVolumeExists(data) {
		t.Fatalf("the stopped prune removed %s", data)
	}
	r = s.bash(rc, prune, RunOpts{Env: []string{"ECHOBACKUP_FORCE=1"}})
	if r.Code != 0 {
		t.Fatalf("ECHOBACKUP_FORCE=1 %s: exit %d\n%s", prune, r.Code, r.Stderr)
	}
	// Before API 1.42 the plain prune removes named volumes; from 1.42 -a does.
	if s.shellVolumeExists(data) {
		t.Errorf("the forced %s kept %s", prune, data)
	}
}

// oldClientPrune: a CLI speaking API 1.41 (an old CLI, or DOCKER_API_VERSION) makes a plain
// prune take named volumes even on an engine of 1.42 and later, which reads the request's
// version: the guard must stop it as it stops prune -a. It needs an engine that still takes
// 1.41 requests (its minimum API at most 1.41).
func (s *Stack) oldClientPrune(t *testing.T, rc, prune, data string) {
	t.Helper()
	min := strings.TrimSpace(s.MustDocker("version", "--format", "{{.Server.MinAPIVersion}}"))
	var major, minor int
	if _, err := fmt.Sscanf(min, "%d.%d", &major, &minor); err != nil || major != 1 || minor > 41 {
		t.Logf("the engine's minimum API is %q: no 1.41 client can reach it, the old-client prune is not tried", min)
		return
	}
	r := s.bash(rc, prune, RunOpts{Env: []string{"DOCKER_API_VERSION=1.41"}})
	if r.Code == 0 || !strings.Contains(r.Stderr, "is left to tell where its compose files are") || !s.shellVolumeExists(data) {
		t.Fatalf("plain volume prune from a 1.41 client: exit %d, volume %s kept=%v; want a stop with the volume kept\n%s",
			r.Code, data, s.shellVolumeExists(data), r.Stderr)
	}
}

func (s *Stack) serverAPIBelow142(t *testing.T) bool {
	t.Helper()
	out := strings.TrimSpace(s.MustDocker("version", "--format", "{{.Server.APIVersion}}"))
	var major, minor int
	if _, err := fmt.Sscanf(out, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("server API version %q: %v", out, err)
	}
	return major == 1 && minor < 42
}

// TestShellGuardDownByName: `docker compose -p NAME down -v` typed in a folder that holds
// ANOTHER compose file (a non-PostgreSQL service here) downs the project NAME by its labels:
// compose ignores the folder's file when -p comes without -f, and removes every volume
// labelled with NAME. With no container of NAME left to say where its files are, the guard
// refuses (the volumes stay) until --force; with its containers there, it takes a verified
// backup first. The second line spells -v as grouped short flags (-vt 1).
func TestShellGuardDownByName(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	rc := s.shellRC(t)
	pgdata, data := s.Volume("pgdata"), s.Volume("echo_data")

	other := filepath.Join(t.TempDir(), s.Name+"-other")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	web := "services:\n  web:\n    image: " + pgImage + "\n    command: [\"sleep\", \"infinity\"]\n    init: true\n"
	if err := os.WriteFile(filepath.Join(other, "compose.yaml"), []byte(web), 0o644); err != nil {
		t.Fatal(err)
	}
	down := "docker compose -p " + s.Name + " down "

	// No container left: nothing says where the project's files are, and its volumes would go.
	s.Down()
	r := s.Run(RunOpts{Dir: other}, "bash", "--rcfile", rc, "-ic", down+"-v")
	if r.Code == 0 || !strings.Contains(r.Stderr, "no container of project") || !strings.Contains(r.Stderr, "--force") {
		t.Fatalf("down -v by name with no container left: exit %d, want a stop\n%s", r.Code, r.Stderr)
	}
	if !s.shellVolumeExists(pgdata) || !s.shellVolumeExists(data) {
		t.Fatalf("the stopped down -v by name removed the volumes")
	}

	// Its containers tell where its files are: a backup of the right project, then down.
	s.Up()
	t0 := time.Now()
	r = s.Run(RunOpts{Dir: other}, "bash", "--rcfile", rc, "-ic", down+"-vt 1")
	if r.Code != 0 || !strings.Contains(r.Stderr, "Saved and verified") {
		t.Fatalf("down -vt 1 by name: exit %d, want a backup first\n%s", r.Code, r.Stderr)
	}
	t.Logf("guarded down by name took %s", time.Since(t0).Round(time.Millisecond))
	if s.shellVolumeExists(pgdata) || s.shellVolumeExists(data) {
		t.Errorf("down -vt 1 by name kept the volumes")
	}
	backups := s.shellBackups(t)
	if len(backups) != 1 || backups[0].Project != s.Name || backups[0].Labels["pinned"] != "pre-down" ||
		backups[0].Rows != seedRows() || backups[0].Verified == nil || !backups[0].Verified.OK {
		t.Fatalf("the backup before down by name: %+v", backups)
	}
	if _, err := os.Stat(filepath.Join(other, "backups")); err == nil {
		t.Errorf("a backup folder appeared in the other project's folder")
	}
}
