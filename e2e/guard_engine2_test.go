//go:build e2e

package e2e

import (
	"slices"
	"strings"
	"testing"
)

// TestGuardUnscopedPrunes: the engine's own destructive commands, run for real and unscoped,
// leave a protected project's data alone. On the shared engine TestGuardEngineCommands can only
// prune by label; here everything on a second engine belongs to the test, so `docker volume
// prune` and `docker system prune -af --volumes` run exactly as an admin would type them.
// Unprotected scratch things (a named volume, a stopped container with an anonymous volume,
// an unused image) are put there before each prune and must go, so the prunes demonstrably
// prune. The prunes run with the project's containers removed (`compose down`), so only the
// sentinel stands between them and the data, and only the sentinel keeps the test image in use.
func TestGuardUnscopedPrunes(t *testing.T) {
	eng := StartEngine2(t) // its cleanup, registered first, runs last: after the stack's
	eng.LoadImage(t, pgImage)
	s := NewStack(t, "custom")
	s.Env = append(s.Env, "DOCKER_CONTEXT="+eng.Context)
	s.Up()
	pg, data, cache := s.Volume("pgdata"), s.Volume("echo_data"), s.Volume("cache_data")
	protected := []string{data, pg}

	res := s.protect(t)
	if !res.Changed || !slices.Equal(res.Sentinel.Volumes, protected) {
		t.Fatalf("protect on %s: %+v, want a new sentinel holding %v", eng, res, protected)
	}
	s.checkSentinel(t, res.Sentinel.ID, protected)
	newAPI := s.serverAPIAtLeast(t, 1, 42)
	t.Logf("engine %s: API %s", eng, strings.TrimSpace(s.MustDocker("version", "--format", "{{.Server.APIVersion}}")))
	before := s.guardedState(t, protected)

	// after checks, with the project still down, that the guarded volumes, the sentinel and the
	// image are there, then starts the project and compares the state with the one before.
	after := func(what string) {
		t.Helper()
		s.assertVolumes(t, what, true, protected...)
		s.assertSentinelRunning(t, what, res.Sentinel.ID)
		if !s.imageExists(pgImage) {
			// The project cannot start without it (nothing is pulled): say so and stop.
			t.Fatalf("%s: the test image %s is gone from %s although the sentinel uses it\n%s", what, pgImage, eng,
				s.MustDocker("ps", "-a", "--format", "{{.Names}} {{.Image}} {{.Status}}"))
		}
		s.Up()
		got := s.guardedState(t, protected)
		assertSameState(t, what, before.state, got.state)
		AssertSameFingerprint(t, what+": volumes", before.volumes, got.volumes)
	}

	// 1. compose keeps the volumes in use ("Resource is still in use") and removes the cache's.
	_, errOut, code := s.Compose("down", "-v", "--timeout", "1")
	if code != 0 {
		t.Errorf("docker compose down -v: exit %d, want 0 with the protected volumes kept\n%s", code, errOut)
	}
	t.Logf("docker compose down -v said:\n%s", tail(errOut, 1500))
	s.assertVolumes(t, "after docker compose down -v (the cache is not protected)", false, cache)
	after("after docker compose down -v")

	// 2. volume rm of the database's volume, with no project container left to hold it.
	s.Down()
	if _, errOut, code := s.Docker("volume", "rm", pg); code == 0 || !strings.Contains(errOut, "in use") ||
		!strings.Contains(errOut, res.Sentinel.ID) {
		t.Errorf("docker volume rm %s: exit %d, %q; want refused as in use by the sentinel", pg, code, errOut)
	}
	after("after docker volume rm " + pg)

	// 3. volume prune: below API 1.42 it removes named volumes too; from 1.42 on only with -a.
	s.Down()
	v1 := s.scratchVolume(t)
	t.Logf("docker volume prune -f said:\n%s", s.MustDocker("volume", "prune", "-f"))
	// The project's cache volume, unprotected and unused like the others once the project is
	// down, is the control: the same kind of volume, which the prune does take.
	s.assertVolumes(t, "after docker volume prune -f (unprotected named scratch volume and the project's cache)", newAPI, v1, cache)
	after("after docker volume prune -f")

	s.Down()
	if newAPI {
		t.Logf("docker volume prune -af said:\n%s", s.MustDocker("volume", "prune", "-af"))
		s.assertVolumes(t, "after docker volume prune -af (unprotected named scratch volume)", false, v1)
	} else if _, errOut, code := s.Docker("volume", "prune", "-af"); code == 0 {
		t.Errorf("docker volume prune -af passed on an engine below API 1.42")
	} else {
		t.Logf("docker volume prune -af refused below API 1.42: %s", strings.TrimSpace(errOut))
	}
	after("after docker volume prune -af")

	// 4. system prune -af --volumes: containers, then networks, volumes, images and build cache.
	s.Down()
	v2 := s.scratchVolume(t)
	ctr, anon := s.scratchContainer(t)
	img := "ebt-scratch-" + randomHex(4) + ":local"
	s.MustDocker("commit", ctr, img)
	pruned := s.MustDocker("system", "prune", "-af", "--volumes")
	t.Logf("docker system prune -af --volumes said:\n%s\nleft on %s:\n%s%s", tail(pruned, 2000), eng,
		s.MustDocker("ps", "-a", "--format", "container {{.Names}} {{.Image}} {{.Status}}"),
		s.MustDocker("image", "ls", "--format", "image {{.Repository}}:{{.Tag}} {{.ID}}"))
	if s.containerExists(ctr) {
		t.Errorf("after docker system prune -af --volumes: the stopped scratch container %s is still there", ctr)
	}
	if s.imageExists(img) {
		t.Errorf("after docker system prune -af --volumes: the unused scratch image %s is still there", img)
	}
	s.assertVolumes(t, "after docker system prune -af --volumes (the scratch container's anonymous volume)", false, anon)
	// From API 1.42 on, system prune leaves named volumes alone (there is no -a for them).
	if !newAPI {
		s.assertVolumes(t, "after docker system prune -af --volumes (unprotected named scratch volume and the project's cache)", false, v2, cache)
	}
	after("after docker system prune -af --volumes")

	// 5. unprotect takes a verified backup; then the same down -v removes the volumes.
	s.unprotectSaved(t)
	s.MustCompose("down", "-v", "--timeout", "1")
	s.assertVolumes(t, "after unprotect and docker compose down -v", false, protected...)
}

// guardedState is the stack's state plus its guarded volumes' names, drivers and labels. Not
// their CreatedAt: on Engine 20.10 that is the ctime of the volume's _data folder, which moves
// whenever PostgreSQL's entrypoint chmods it at start. A volume removed and made again would
// come back empty, which the database and file fingerprints show.
type guardedState struct {
	state
	volumes Fingerprint
}

func (s *Stack) guardedState(t *testing.T, volumes []string) guardedState {
	t.Helper()
	var lines []string
	for _, v := range volumes {
		lines = append(lines, strings.TrimSpace(s.MustDocker("volume", "inspect", "--format",
			"volume {{.Name}} driver={{.Driver}} labels={{json .Labels}}", v)))
	}
	return guardedState{state: s.state(), volumes: newFingerprint(lines)}
}

func (s *Stack) assertSentinelRunning(t *testing.T, what, id string) {
	t.Helper()
	if ids := s.sentinels(t); len(ids) != 1 || ids[0] != id {
		t.Errorf("%s: sentinels %v, want only %s", what, ids, id)
		return
	}
	if running := strings.TrimSpace(s.MustDocker("inspect", "--format", "{{.State.Running}}", id)); running != "true" {
		t.Errorf("%s: the sentinel %s is not running", what, id)
	}
}

// scratchVolume is an unprotected, unused named volume that a prune may take.
func (s *Stack) scratchVolume(t *testing.T) string {
	t.Helper()
	v := "ebt-scratch-" + randomHex(4)
	s.MustDocker("volume", "create", v)
	return v
}

// scratchContainer is a stopped container with an anonymous volume; it returns both names.
func (s *Stack) scratchContainer(t *testing.T) (name, volume string) {
	t.Helper()
	name = "ebt-scratch-" + randomHex(4)
	s.MustDocker("run", "--name", name, "--network", "none", "-v", "/scratch", "--entrypoint", "true", pgImage)
	volume = strings.TrimSpace(s.MustDocker("inspect", "--format", `{{range .Mounts}}{{if eq .Destination "/scratch"}}{{.Name}}{{end}}{{end}}`, name))
	if volume == "" {
		t.Fatalf("scratch container %s has no anonymous volume at /scratch", name)
	}
	return name, volume
}

func (s *Stack) containerExists(name string) bool {
	return s.Run(RunOpts{Quiet: true}, "docker", "container", "inspect", name).Code == 0
}

func (s *Stack) imageExists(name string) bool {
	return s.Run(RunOpts{Quiet: true}, "docker", "image", "inspect", name).Code == 0
}
