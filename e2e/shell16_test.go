//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 16: the guard covers docker-compose, sudo and the shells people use.

// shellInitRC writes what `docker echobackup shell-init SHELL` prints into a file to source.
func (s *Stack) shellInitRC(t *testing.T, shell string) string {
	t.Helper()
	out, errOut, code := s.EchoBackup("shell-init", shell)
	if code != 0 || !strings.Contains(out, "docker-compose") || !strings.Contains(out, "sudo") {
		t.Fatalf("shell-init %s: exit %d\n%s%s", shell, code, out, errOut)
	}
	rc := filepath.Join(t.TempDir(), shell+"rc")
	if err := os.WriteFile(rc, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return rc
}

// inShell runs line in a real shell that loaded the functions from rc: an interactive bash
// with rc as its rc file; zsh and fish without their own rc files, sourcing rc first.
func (s *Stack) inShell(shell, rc, line string, o RunOpts) Result {
	s.t.Helper()
	switch shell {
	case "bash":
		return s.Run(o, "bash", "--rcfile", rc, "-ic", line)
	case "zsh":
		return s.Run(o, "zsh", "-f", "-c", "source "+rc+" && "+line)
	case "fish":
		return s.Run(o, "fish", "--no-config", "-c", "source "+rc+"; and "+line)
	}
	s.t.Fatalf("unknown shell %s", shell)
	return Result{}
}

// composeOnPath puts the compose CLI the suite built from go.mod on a PATH folder of the test's
// own as `docker-compose` (the standalone v2 binary) and returns the PATH setting to use.
func composeOnPath(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	if err := copyFile(filepath.Join(dockerConfig, "cli-plugins", "docker-compose"), filepath.Join(bin, "docker-compose"), 0o755); err != nil {
		t.Fatal(err)
	}
	return "PATH=" + bin + ":" + os.Getenv("PATH")
}

// blockBackups makes ./backups a plain file, so that no backup can be written there whoever
// runs the guard (sudo drops ECHOBACKUP_DIR with the rest of the environment); the returned
// function puts the folder back.
func (s *Stack) blockBackups(t *testing.T) func() {
	t.Helper()
	dir, aside := filepath.Join(s.Dir, "backups"), filepath.Join(s.Dir, "backups.aside")
	_, err := os.Stat(dir)
	had := err == nil
	if had {
		if err := os.Rename(dir, aside); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(dir, []byte("not a folder\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if had {
			if err := os.Rename(aside, dir); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// guardedCase checks one typed line that deletes the stack's volumes: with no backup possible
// it is refused, and the volumes, the containers and the rows are all there; then it takes a
// verified backup pinned pre-down, with every row, before the volumes go. The stack is up
// and seeded again afterwards (its volumes went), ready for the next case.
func (s *Stack) guardedCase(t *testing.T, what string, run func(RunOpts) Result, gone []string, o RunOpts) {
	t.Helper()
	before := len(s.shellBackups(t))
	unblock := s.blockBackups(t)
	r := run(o)
	unblock()
	if r.Code == 0 || !strings.Contains(r.Stderr, "nothing was deleted") {
		t.Fatalf("%s with a failing backup: exit %d, want a refusal\n%s", what, r.Code, r.Stderr)
	}
	for _, v := range gone {
		if !s.shellVolumeExists(v) {
			t.Fatalf("%s with a failing backup removed volume %s", what, v)
		}
	}
	if s.ContainerID(s.DBService) != "" { // volume rm: the database's container was removed first
		if got := s.RowCounts("tracks")["tracks"]; got != SeedRowCounts["tracks"] {
			t.Fatalf("%s: tracks after the refusal: %d", what, got)
		}
	}

	t0 := time.Now()
	r = run(o)
	if r.Code != 0 || !strings.Contains(r.Stderr, "Saved and verified") {
		t.Fatalf("%s: exit %d, want a backup and the command\n%s", what, r.Code, r.Stderr)
	}
	t.Logf("%s: guarded in %s", what, time.Since(t0).Round(time.Millisecond))
	for _, v := range gone {
		if s.shellVolumeExists(v) {
			t.Errorf("%s kept volume %s", what, v)
		}
	}
	backups := s.shellBackups(t)
	if len(backups) != before+1 {
		t.Fatalf("%s: %d backups, want %d", what, len(backups), before+1)
	}
	b := backups[0]
	if b.Project != s.Name || b.Labels["pinned"] != "pre-down" || b.Verified == nil || !b.Verified.OK || b.Rows != seedRows() || b.Files < 5 {
		t.Errorf("%s: the backup before: %+v (want %d rows, verified, pinned pre-down)", what, b, seedRows())
	}
	s.seeded = false // the volumes went: seed the new ones
	s.Up()
}

// cronEnv writes what the compose files interpolate into the project's .env: sudo, like cron,
// starts the command with a fresh environment.
func (s *Stack) cronEnv(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(s.Dir, ".env"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("ECHOBACKUP_PG_IMAGE=" + pgImage + "\nECHO_MUSIC_DIR=" + s.MusicDir + "\n")
	if cerr := f.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
}

// checkCheap: lines that delete nothing run without the plugin. With a docker config that
// has no plugins at all they still work, while a line holding `rm` (the control) stops, as
// the guard cannot start.
func (s *Stack) checkCheap(t *testing.T, shell, rc, path string) {
	t.Helper()
	noPlugins := t.TempDir()
	linkContexts(t, noPlugins)
	o := RunOpts{Env: []string{path, "DOCKER_CONFIG=" + noPlugins}}
	for _, line := range []string{"docker ps -q --filter label=" + s.Name + "-none", "docker-compose version",
		"sudo docker ps -q --filter label=" + s.Name + "-none", "sudo docker-compose version"} {
		if r := s.inShell(shell, rc, line, o); r.Code != 0 {
			t.Errorf("%s: %s without the plugin: exit %d, want it run without the guard\n%s", shell, line, r.Code, r.Stderr)
		}
	}
	if r := s.inShell(shell, rc, "docker rm -f "+s.Name+"-none", o); r.Code == 0 {
		t.Errorf("%s: docker rm without the plugin ran: the guard was not asked", shell)
	}
}

// TestShellGuardStandaloneCompose: in bash, `docker-compose … down -v` with the standalone v2
// binary, in compose v2's spelling and in compose v1 1.29's (--verbose, --no-ansi, long
// project flags, --env-file, down --volumes).
func TestShellGuardStandaloneCompose(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	rc := s.shellInitRC(t, "bash")
	path := composeOnPath(t)
	vols := []string{s.Volume("pgdata"), s.Volume("echo_data")}
	files := "-f compose.yaml -f compose.override.yaml"

	// A line that deletes nothing runs the binary without the guard.
	if r := s.inShell("bash", rc, "docker-compose version", RunOpts{Env: []string{path}}); r.Code != 0 || !strings.Contains(r.Stdout, "v5.") {
		t.Fatalf("docker-compose version through the function: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	s.checkCheap(t, "bash", rc, path)
	lines := map[string]string{
		"v2 flags": "docker-compose -p " + s.Name + " " + files + " down -v",
		"v1 flags": "docker-compose --verbose --no-ansi --project-name " + s.Name + " --project-directory " + s.Dir +
			" --file compose.yaml --file=compose.override.yaml --env-file " + filepath.Join(s.Dir, ".env") + " down --volumes --remove-orphans -t 1",
	}
	for _, name := range []string{"v2 flags", "v1 flags"} {
		line := lines[name]
		s.guardedCase(t, name+": "+line, func(o RunOpts) Result { return s.inShell("bash", rc, line, o) }, vols, RunOpts{Env: []string{path}})
	}

	// compose v1 itself, where the machine has it (Debian's docker-compose package, 1.29).
	v1, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Logf("no docker-compose on PATH: the v1 binary's case did not run")
		return
	}
	if out, err := exec.Command(v1, "version", "--short").Output(); err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), "1.") {
		t.Logf("%s is not compose v1 (%s, %v): the v1 binary's case did not run", v1, strings.TrimSpace(string(out)), err)
		return
	}
	line := "docker-compose -p " + s.Name + " " + files + " down --volumes -t 1"
	v1Env := RunOpts{}
	if suiteHost != "" {
		v1Env.Env = []string{"DOCKER_HOST=" + suiteHost} // v1 does not read DOCKER_CONTEXT
	}
	s.guardedCase(t, "v1 binary "+v1+": "+line, func(o RunOpts) Result { return s.inShell("bash", rc, line, o) }, vols, v1Env)

	// Containers v1 made record the compose files as typed (relative): `docker compose -p NAME
	// down -v` from another folder still finds them, backs up and removes the volumes.
	if r := s.Run(v1Env, v1, append(s.ProjectArgs(), "up", "-d")...); r.Code != 0 {
		if strings.Contains(r.Stderr, "'ContainerConfig'") {
			// compose v1 reads image fields that newer engines (the containerd store) no longer give.
			t.Logf("compose v1 cannot create containers on this engine (KeyError 'ContainerConfig'): the by-name case after v1 did not run")
			return
		}
		t.Fatalf("docker-compose up -d (v1): exit %d\n%s", r.Code, r.Stderr)
	}
	s.WaitDB(3 * time.Minute)
	if files := strings.TrimSpace(s.MustDocker("inspect", "--format", `{{index .Config.Labels "com.docker.compose.project.config_files"}}`,
		s.ContainerID(s.DBService))); filepath.IsAbs(strings.Split(files, ",")[0]) {
		t.Logf("compose v1 recorded absolute compose files (%s): the relative case is not shown here", files)
	}
	byName := "docker compose -p " + s.Name + " down -v"
	s.guardedCase(t, "from another folder, by name, after v1: "+byName, func(o RunOpts) Result {
		o.Dir = t.TempDir()
		return s.inShell("bash", rc, byName, o)
	}, vols, RunOpts{})
}

// TestShellGuardZshFish: the functions in zsh and fish, for `docker compose down -v` and
// `docker-compose down -v`.
func TestShellGuardZshFish(t *testing.T) {
	for _, sh := range []string{"zsh", "fish"} {
		if _, err := exec.LookPath(sh); err != nil {
			t.Fatalf("no %s: scripts/test.sh installs Debian's package as root", sh)
		}
	}
	s := NewStack(t, "custom")
	s.Up()
	path := composeOnPath(t)
	vols := []string{s.Volume("pgdata"), s.Volume("echo_data")}
	project := strings.Join(s.ProjectArgs(), " ")
	for _, sh := range []string{"zsh", "fish"} {
		rc := s.shellInitRC(t, sh)
		s.checkCheap(t, sh, rc, path)
		for _, line := range []string{"docker compose " + project + " down -v", "docker-compose " + project + " down -v"} {
			s.guardedCase(t, sh+": "+line, func(o RunOpts) Result { return s.inShell(sh, rc, line, o) }, vols, RunOpts{Env: []string{path}})
		}
	}
}

// sudoKeepsDockerConfig lets root's sudo keep DOCKER_CONFIG, DOCKER_CONTEXT and DOCKER_HOST, as long as the
// test runs: sudo's docker then finds the plugins of the suite's temporary config, as it would
// find plugins installed for root, and the engine the suite runs on. The file goes when the test ends.
func sudoKeepsDockerConfig(t *testing.T) {
	t.Helper()
	path := "/etc/sudoers.d/echobackup-e2e-" + randomHex(4)
	tmp := filepath.Join(t.TempDir(), "sudoers")
	if err := os.WriteFile(tmp, []byte("Defaults:root env_keep += \"DOCKER_CONFIG DOCKER_CONTEXT DOCKER_HOST\"\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("visudo", "-c", "-f", tmp).CombinedOutput(); err != nil {
		t.Fatalf("visudo -c: %v\n%s", err, out)
	}
	if err := copyFile(tmp, path, 0o440); err != nil {
		t.Fatalf("writing %s (the sudo test runs as root): %v", path, err)
	}
	t.Cleanup(func() {
		if err := os.Remove(path); err != nil {
			t.Errorf("COULD NOT REMOVE %s: %v", path, err)
		}
	})
}

// TestShellGuardSudo: `sudo docker compose down -v` and `sudo -E docker volume rm …` in bash.
// The guard runs under sudo with the same options: where sudo's docker does not find the
// plugin it refuses, nothing removed; under `-u nobody` it cannot reach the engine and
// refuses. An option the guard does not read runs the line as typed, with a notice.
func TestShellGuardSudo(t *testing.T) {
	if _, err := exec.LookPath("sudo"); err != nil {
		t.Fatal("no sudo: scripts/test.sh installs Debian's package as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the sudo test runs sudo without a password: it needs root")
	}
	s := NewStack(t, "custom")
	s.cronEnv(t)
	s.Up()
	rc := s.shellInitRC(t, "bash")
	pgdata, data := s.Volume("pgdata"), s.Volume("echo_data")
	down := "sudo docker compose " + strings.Join(s.ProjectArgs(), " ") + " down -v"

	// sudo's docker without the plugin: a docker config of its own that holds none (root's
	// ~/.docker may have one, from the README's first command, so it is not relied on).
	noPlugin := "sudo DOCKER_CONFIG=" + t.TempDir() + " docker compose " + strings.Join(s.ProjectArgs(), " ") + " down -v"
	r := s.inShell("bash", rc, noPlugin, RunOpts{})
	if r.Code == 0 || !strings.Contains(r.Stderr, "does not find the echobackup plugin") || !strings.Contains(r.Stderr, "nothing was deleted") {
		t.Fatalf("%s without the plugin for root: exit %d, want a refusal\n%s", noPlugin, r.Code, r.Stderr)
	}
	if !s.shellVolumeExists(pgdata) || !s.shellVolumeExists(data) || s.ContainerID(s.DBService) == "" {
		t.Fatalf("the refused %s removed something", noPlugin)
	}

	// Options the guard does not read: the line runs as typed.
	r = s.inShell("bash", rc, "sudo -s docker volume rm "+s.Name+"_no_such_volume", RunOpts{})
	if r.Code == 0 || !strings.Contains(r.Stderr, "not guarded: the guard does not read sudo's option -s") || !strings.Contains(r.Stderr, "no such volume") {
		t.Errorf("sudo -s docker volume rm: exit %d\n%s", r.Code, r.Stderr)
	}

	// The guard runs as the user sudo runs the command as: nobody cannot reach the engine.
	r = s.inShell("bash", rc, "sudo -E -u nobody docker volume rm "+pgdata, RunOpts{})
	if r.Code == 0 || !strings.Contains(r.Stderr, "nothing was deleted") {
		t.Errorf("sudo -E -u nobody docker volume rm: exit %d, want a refusal\n%s", r.Code, r.Stderr)
	}
	if !s.shellVolumeExists(pgdata) {
		t.Fatalf("the refused sudo -u nobody removed %s", pgdata)
	}

	sudoKeepsDockerConfig(t)
	s.guardedCase(t, down, func(o RunOpts) Result { return s.inShell("bash", rc, down, o) }, []string{pgdata, data}, RunOpts{})

	// fish's sudo function, with -E.
	fishRC := s.shellInitRC(t, "fish")
	fishDown := "sudo -E docker compose " + strings.Join(s.ProjectArgs(), " ") + " down -v"
	s.guardedCase(t, "fish: "+fishDown, func(o RunOpts) Result { return s.inShell("fish", fishRC, fishDown, o) }, []string{pgdata, data}, RunOpts{})

	// docker-compose under sudo: whichever sudo's PATH finds (here Debian's v1, if installed).
	if r := s.Run(RunOpts{Quiet: true}, "sudo", "sh", "-c", "command -v docker-compose"); r.Code == 0 {
		composeDown := "sudo docker-compose " + strings.Join(s.ProjectArgs(), " ") + " down -v"
		t.Logf("sudo's docker-compose: %s", strings.TrimSpace(r.Stdout))
		o := RunOpts{}
		if suiteHost != "" {
			o.Env = []string{"DOCKER_HOST=" + suiteHost} // v1 does not read DOCKER_CONTEXT; sudo keeps it
		}
		s.guardedCase(t, composeDown, func(o RunOpts) Result { return s.inShell("bash", rc, composeDown, o) }, []string{pgdata, data}, o)
	} else {
		t.Logf("no docker-compose on sudo's PATH: the sudo docker-compose case did not run")
	}

	// volume rm of the database's volume, its container gone (the app's stay to locate it).
	s.MustCompose("rm", "--stop", "--force", s.DBService)
	rm := "sudo -E docker volume rm " + pgdata
	s.guardedCase(t, rm, func(o RunOpts) Result { return s.inShell("bash", rc, rm, o) }, []string{pgdata}, RunOpts{})
}
