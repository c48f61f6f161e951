//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Engine2 is a second Docker engine on this machine, standing in for another host, made and
// removed by scripts/engine2.sh (one implementation, shared with scripts/bench.sh --migrate):
// its own network namespace (so its own docker0, networks and published ports: the same
// compose file runs on both engines without clashes), its own data and exec roots, and a
// docker context pointing at it in the suite's temporary DOCKER_CONFIG. Both engines see the
// same host folders, so only named volumes prove that data moved.
type Engine2 struct {
	Context string
	Host    string // unix://…/docker.sock
	dir     string
}

// StartEngine2 starts the engine; t.Cleanup stops it and removes the context, the namespace
// and every folder, failed test or not. It needs root, ip, nsenter and dockerd: without them
// the script refuses and the test fails, it does not skip.
//
// ECHOBACKUP_E2E_ENGINE2_ARGS (split at white space) are added to engine2.sh start: scripts/test.sh
// makes the second engine an Engine 29 (--dockerd, --path-prefix, --daemon-json) while the suite
// runs on the installed one, and the installed one (--storage-driver) while it runs on Engine 29,
// so migrate goes both ways between the versions users move between. extra goes to start too
// ("--private", DIR: the engine gets a folder of its own at DIR).
func StartEngine2(t *testing.T, extra ...string) *Engine2 {
	t.Helper()
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The script removes what it made when it fails to start, so there is nothing to clean here then.
	args := append([]string{engine2Script(), "start", "--prefix", "ebt-eng2-"}, strings.Fields(os.Getenv("ECHOBACKUP_E2E_ENGINE2_ARGS"))...)
	args = append(args, extra...)
	out, err := output(ctx, "", nil, "bash", args...)
	if err != nil {
		t.Fatalf("starting a second engine: %v", err)
	}
	vars := map[string]string{}
	for _, line := range nonEmptyLines(out) {
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = v
		}
	}
	e := &Engine2{Context: vars["ENGINE2_CONTEXT"], Host: vars["ENGINE2_HOST"], dir: vars["ENGINE2_DIR"]}
	if e.dir != "" {
		t.Cleanup(func() { e.stop(t) })
	}
	if e.Context == "" || e.Host == "" || e.dir == "" {
		t.Fatalf("engine2.sh start printed no ENGINE2_CONTEXT, ENGINE2_HOST and ENGINE2_DIR:\n%s", out)
	}
	v, err := e.Docker("version", "--format", "engine {{.Server.Version}} (API {{.Server.APIVersion}})")
	if err != nil {
		t.Fatalf("reading the second engine's version: %v", err)
	}
	t.Logf("second engine %s up in %s: %s", e, time.Since(t0).Round(time.Millisecond), strings.TrimSpace(v))
	return e
}

func engine2Script() string { return filepath.Join(moduleRoot, "scripts", "engine2.sh") }

// stop runs engine2.sh stop, which removes everything start made whatever state it is in.
func (e *Engine2) stop(t *testing.T) {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := combined(ctx, "", nil, "bash", engine2Script(), "stop", e.dir)
	if err != nil {
		t.Errorf("stopping the second engine %s: %v\n%s", e, err, tail(out, 2000))
		return
	}
	t.Logf("second engine %s stopped and removed in %s:\n%s", e.Context, time.Since(t0).Round(time.Millisecond), tail(strings.TrimSpace(out), 2000))
}

// LoadImage copies an image from the first engine: `docker save IMAGE | docker --context X load`.
func (e *Engine2) LoadImage(t *testing.T, image string) {
	t.Helper()
	t0 := time.Now()
	script := `set -o pipefail; docker save "$1" | docker --context "$2" load -q`
	if out, err := combined(context.Background(), "", nil, "bash", "-c", script, "bash", image, e.Context); err != nil {
		t.Fatalf("copying image %s to the second engine: %v\n%s", image, err, out)
	}
	t.Logf("image %s copied to %s in %s", image, e.Context, time.Since(t0).Round(time.Millisecond))
}

// Stack is src's project as seen on this engine: the same folder and compose files, its
// commands sent to this engine (DOCKER_CONTEXT). Its state goes with the engine.
func (e *Engine2) Stack(src *Stack) *Stack {
	return &Stack{Fixture: src.Fixture, t: src.t, Dir: src.Dir, Name: src.Name, MusicDir: src.MusicDir,
		Env: append(slices.Clone(src.Env), "DOCKER_CONTEXT="+e.Context), seeded: true}
}

// NewServer is src's project on this engine from an empty folder dir, as on a new server: no
// project name is given, so what the folder comes to hold decides. What the project leaves on
// this engine is removed by its name when the test ends, failed or not, or by cleanup before.
func (e *Engine2) NewServer(t *testing.T, src *Stack, dir string) (tgt *Stack, cleanup func()) {
	tgt = &Stack{Fixture: src.Fixture, t: t, Dir: dir, Name: src.Name, MusicDir: src.MusicDir, seeded: true,
		Env: []string{"ECHO_MUSIC_DIR=" + src.MusicDir, "DOCKER_CONTEXT=" + e.Context}}
	byName := &Stack{Fixture: src.Fixture, t: t, Dir: dir, Name: src.Name,
		Env: append(slices.Clone(tgt.Env), "COMPOSE_PROJECT_NAME="+src.Name)}
	t.Cleanup(byName.Cleanup)
	return tgt, byName.Cleanup
}

// Docker runs the docker CLI against this engine.
func (e *Engine2) Docker(args ...string) (string, error) {
	return output(context.Background(), "", nil, "docker", append([]string{"--context", e.Context}, args...)...)
}

// String names the engine in messages.
func (e *Engine2) String() string { return fmt.Sprintf("%s (%s)", e.Context, e.Host) }
