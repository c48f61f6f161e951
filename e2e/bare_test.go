//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBareMetalRestoreFromArchive: a new server. Only the backup file is copied into an empty
// folder, and `restore FILE --yes` there, against a second engine that has none of the
// project, writes the backup's compose file and .env first, brings the services up and holds
// the source's data; for both the folder form and the stream form (`save --output -`). The
// folder then opens as the backup's project (COMPOSE_PROJECT_NAME pinned in .env: the seed's
// name came from the environment, the new folder has another), so a save there continues the
// same history, and a second restore leaves the files alone.
func TestBareMetalRestoreFromArchive(t *testing.T) {
	eng := StartEngine2(t)
	eng.LoadImage(t, pgImage)
	src := NewStack(t, "seed")
	// A .env beside the compose file, readable by all on the old server: written 0600 here.
	srcEnv := "ECHO_BARE_METAL=1\n"
	if err := os.WriteFile(filepath.Join(src.Dir, ".env"), []byte(srcEnv), 0o644); err != nil {
		t.Fatal(err)
	}
	src.Up()
	want := src.state()
	running := src.runningServices(t)
	composeSrc, err := os.ReadFile(filepath.Join(src.Dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	folder := src.save(t).Path
	stream := filepath.Join(t.TempDir(), "stream.tar.zst")
	if r := src.Run(RunOpts{}, "bash", "-c", `docker echobackup save --output - >"$1"`, "bash", stream); r.Code != 0 {
		t.Fatalf("save --output -: exit %d\n%s", r.Code, r.Stderr)
	}

	for _, tc := range []struct{ name, archive string }{{"folder form", folder}, {"stream form", stream}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "newserver")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			file := filepath.Base(tc.archive)
			if err := copyFile(tc.archive, filepath.Join(dir, file), 0o600); err != nil {
				t.Fatal(err)
			}
			// Engine 2's side of the project, run in the new folder with no project name
			// given: what the folder itself says decides.
			tgt, cleanup := eng.NewServer(t, src, dir)
			restore := func(args ...string) Result {
				return tgt.Run(RunOpts{}, "docker", append([]string{"echobackup", "restore"}, args...)...)
			}

			// No file named: it says that there are no backups here and what to do.
			r := restore("latest", "--yes")
			if r.Code != 2 || !strings.Contains(r.Stderr, "no backups") || !strings.Contains(r.Stderr, "restore FILE") {
				t.Errorf("restore latest in an empty folder: want exit 2 saying there are no backups and naming restore FILE, got %d\n%s", r.Code, r.Stderr)
			}
			// A dry run lists the files and changes nothing, here or on the engine.
			r = restore(file, "--dry-run")
			if r.Code != 0 || !strings.Contains(r.Stdout, "./compose.yaml is written") || !strings.Contains(r.Stdout, "Dry run") {
				t.Fatalf("restore FILE --dry-run: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Fatalf("a dry run changed the folder: %v", entries)
			}
			if left := projectOn(t, eng, src); left != "" {
				t.Fatalf("a dry run created on engine 2: %s", left)
			}

			t0 := time.Now()
			r = restore(file, "--yes")
			if r.Code != 0 {
				t.Fatalf("restore FILE --yes in an empty folder: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
			}
			t.Logf("bare-metal restore from the %s took %s:\n%s%s", tc.name, time.Since(t0).Round(100*time.Millisecond), r.Stdout, tail(r.Stderr, 3000))
			for _, line := range []string{"wrote ./compose.yaml", "wrote ./.env"} {
				if !strings.Contains(r.Stderr, line) {
					t.Errorf("stderr does not say %q", line)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "compose.yaml")); string(got) != string(composeSrc) {
				t.Errorf("compose.yaml written differs from the source's")
			}
			env, err := os.ReadFile(filepath.Join(dir, ".env"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(env), srcEnv) || !strings.HasSuffix(string(env), "\nCOMPOSE_PROJECT_NAME="+src.Name+"\n") {
				t.Errorf(".env written: %q, want the source's with COMPOSE_PROJECT_NAME=%s added", env, src.Name)
			}
			if st, err := os.Stat(filepath.Join(dir, ".env")); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf(".env mode: %v %v, want 0600", st.Mode().Perm(), err)
			}
			assertSameState(t, "engine 2 after the bare-metal restore", want, tgt.state())
			if got := tgt.runningServices(t); got != running {
				t.Errorf("running on engine 2: %q, on the source: %q", got, running)
			}
			if got := projectOn(t, eng, src); !strings.Contains(got, "volume "+src.Name+"_postgres_data") {
				t.Errorf("engine 2 holds %s, want the project %s's volumes", got, src.Name)
			}
			assertNoHelpers(t, eng, src)

			// The folder is the backup's project now: a save there continues its history.
			saved := tgt.save(t)
			if !strings.HasPrefix(filepath.Base(saved.Path), src.Name+"-") {
				t.Errorf("a save in the restored folder wrote %s, want a backup of project %s", saved.Path, src.Name)
			}

			// A second restore in the populated folder is an ordinary one: the files stay.
			before := map[string]os.FileInfo{}
			for _, name := range []string{"compose.yaml", ".env"} {
				before[name], _ = os.Stat(filepath.Join(dir, name))
			}
			r = restore(file, "--yes")
			if r.Code != 0 {
				t.Fatalf("second restore in the populated folder: exit %d\n%s", r.Code, r.Stderr)
			}
			if strings.Contains(r.Stderr, "wrote ./") {
				t.Errorf("the second restore wrote deployment files:\n%s", r.Stderr)
			}
			for name, st := range before {
				now, err := os.Stat(filepath.Join(dir, name))
				if err != nil || st == nil || !now.ModTime().Equal(st.ModTime()) || now.Size() != st.Size() {
					t.Errorf("%s changed in the second restore: %v -> %v (%v)", name, st, now, err)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(dir, ".env")); string(got) != string(env) {
				t.Errorf(".env changed in the second restore: %q", got)
			}
			assertSameState(t, "engine 2 after the second restore", want, tgt.state())

			// Engine 2 is empty again for the next form.
			cleanup()
			if left := projectOn(t, eng, src); left != "" {
				t.Fatalf("left on engine 2 after the cleanup: %s", left)
			}
		})
	}
}

// TestBareMetalRestoreCustomProject: the other layout. Its name came from -p and its data
// lives in a named volume; its two compose files are the pair compose finds by itself, and
// its .env also feeds the database through env_file. Restored in an empty folder on engine 2
// with no -p: .env keeps what it said and gets the name, and the volume holds the source's data.
func TestBareMetalRestoreCustomProject(t *testing.T) {
	eng := StartEngine2(t)
	eng.LoadImage(t, pgImage)
	src := NewStack(t, "custom")
	src.Up()
	want := src.state()
	running := src.runningServices(t)
	archive := src.save(t).Path
	srcEnv, err := os.ReadFile(filepath.Join(src.Dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "music")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tgt := &Stack{Fixture: src.Fixture, t: t, Dir: dir, Name: src.Name, MusicDir: src.MusicDir, seeded: true,
		Env: []string{"ECHO_MUSIC_DIR=" + src.MusicDir, "DOCKER_CONTEXT=" + eng.Context}}
	tgt.ProjectFlag, tgt.ComposeFiles = false, nil // the folder says which project, not flags
	cleanup := &Stack{Fixture: src.Fixture, t: t, Dir: dir, Name: src.Name, Env: tgt.Env}
	t.Cleanup(cleanup.Cleanup)

	t0 := time.Now()
	r := tgt.Run(RunOpts{}, "docker", "echobackup", "restore", archive, "--yes")
	if r.Code != 0 {
		t.Fatalf("restore FILE --yes in an empty folder: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	t.Logf("bare-metal restore of %s took %s:\n%s", src.Name, time.Since(t0).Round(100*time.Millisecond), tail(r.Stderr, 2000))
	for _, name := range []string{"compose.yaml", "compose.override.yaml"} {
		a, _ := os.ReadFile(filepath.Join(src.Dir, name))
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(a) != string(b) || !strings.Contains(r.Stderr, "wrote ./"+name) {
			t.Errorf("%s: not written as saved (%v)", name, err)
		}
	}
	env, _ := os.ReadFile(filepath.Join(dir, ".env"))
	if !strings.HasPrefix(string(env), string(srcEnv)) || !strings.HasSuffix(string(env), "\nCOMPOSE_PROJECT_NAME="+src.Name+"\n") ||
		strings.Contains(string(env), "COMPOSE_FILE") {
		t.Errorf(".env written: %q, want the source's with only COMPOSE_PROJECT_NAME=%s added", env, src.Name)
	}
	assertSameState(t, "engine 2 after the bare-metal restore", want, tgt.state())
	if got := tgt.runningServices(t); got != running {
		t.Errorf("running on engine 2: %q, on the source: %q", got, running)
	}
	if got := projectOn(t, eng, src); !strings.Contains(got, "volume "+src.Volume("echo_data")) {
		t.Errorf("engine 2 holds %s, want the volume %s", got, src.Volume("echo_data"))
	}
	assertNoHelpers(t, eng, src)
}
