//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func (s *Stack) migrate(opts RunOpts, args ...string) Result {
	s.t.Helper()
	return s.Run(opts, "docker", append(append([]string{"echobackup"}, s.ProjectArgs()...), append([]string{"migrate"}, args...)...)...)
}

// projectOn lists what of the stack's project exists on engine 2 (containers and volumes).
func projectOn(t *testing.T, e *Engine2, s *Stack) string {
	t.Helper()
	var found []string
	for _, args := range [][]string{
		{"ps", "-a", "--format", "container {{.Names}}", "--filter", "label=" + LabelComposeProject + "=" + s.Name},
		{"volume", "ls", "--format", "volume {{.Name}}", "--filter", "name=" + s.Name},
		{"ps", "-a", "--format", "helper {{.Names}}", "--filter", "label=" + LabelEchoProject + "=" + s.Name},
	} {
		out, err := e.Docker(args...)
		if err != nil {
			t.Fatalf("listing on %s: %v", e, err)
		}
		found = append(found, nonEmptyLines(out)...)
	}
	return strings.Join(found, ", ")
}

// TestMigrate moves a running deployment to a second engine: it refuses a target that lacks
// an image, moves everything to an empty target, refuses then (without --force) a target that
// holds data, and with --force replaces it after saving it. Each time the target's state
// fingerprint must equal the source's.
func TestMigrate(t *testing.T) {
	eng := StartEngine2(t)
	eng.LoadImage(t, pgImage)
	src := NewStack(t, "custom")
	src.Up()
	tgt := eng.Stack(src)

	// An image the target lacks: refused before anything is saved or created.
	absent := "echobackup-test/postgres:absent-" + randomHex(4)
	r := src.migrate(RunOpts{Env: []string{"ECHOBACKUP_PG_IMAGE=" + absent}}, "--to-context", eng.Context)
	if r.Code != 2 || !strings.Contains(r.Stderr, "lacks the images") || !strings.Contains(r.Stderr, absent) {
		t.Fatalf("migrate to a target without the image: want exit 2 naming %s, got %d\n%s", absent, r.Code, r.Stderr)
	}
	if left := projectOn(t, eng, src); left != "" {
		t.Fatalf("a refused migrate left things on the target: %s", left)
	}
	if entries, _ := os.ReadDir(filepath.Join(src.Dir, "backups")); len(entries) > 0 {
		t.Fatalf("a refused migrate saved something: %v", entries)
	}

	// A context with another name for the engine the deployment runs on: refused.
	host := strings.TrimSpace(src.MustDocker("context", "inspect", "--format", "{{.Endpoints.docker.Host}}"))
	same := "ebt-same-" + randomHex(4)
	src.MustDocker("context", "create", same, "--docker", "host="+host)
	t.Cleanup(func() { src.Run(RunOpts{Quiet: true}, "docker", "context", "rm", "-f", same) })
	r = src.migrate(RunOpts{}, "--to-context", same)
	if r.Code != 2 || !strings.Contains(r.Stderr, "reaches the engine the deployment already runs on") {
		t.Fatalf("migrate onto the source's own engine: want exit 2, got %d\n%s", r.Code, r.Stderr)
	}

	// A target whose image holds an older PostgreSQL (a copy of the test image whose
	// `postgres --version` says 14): refused before anything changes.
	older := "echobackup-test/postgres:older-" + randomHex(4)
	fake := "ebt-older-" + randomHex(4)
	script := `mkdir -p /opt/older && printf '#!/bin/sh\necho "postgres (PostgreSQL) 14.9"\n' > /opt/older/postgres && chmod +x /opt/older/postgres`
	for _, args := range [][]string{
		{"run", "--name", fake, "--network", "none", "--entrypoint", "sh", pgImage, "-c", script},
		{"commit", "--change", "ENV PATH=/opt/older:/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", fake, older},
		{"rm", fake},
	} {
		if _, err := eng.Docker(args...); err != nil {
			t.Fatalf("making an image with an older PostgreSQL on %s: %v", eng, err)
		}
	}
	r = src.migrate(RunOpts{Env: []string{"ECHOBACKUP_PG_IMAGE=" + older}}, "--to-context", eng.Context)
	if r.Code != 2 || !strings.Contains(r.Stderr, "has PostgreSQL 14") {
		t.Fatalf("migrate to a target with PostgreSQL 14: want exit 2, got %d\n%s", r.Code, r.Stderr)
	}
	if left := projectOn(t, eng, src); left != "" {
		t.Fatalf("a refused migrate left things on the target: %s", left)
	}

	// An empty target: everything moves, the services run there.
	want := src.state()
	t0 := time.Now()
	r = src.migrate(RunOpts{}, "--to-context", eng.Context)
	if r.Code != 0 {
		t.Fatalf("migrate to an empty target: exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("migrate to an empty target took %s:\n%s%s", time.Since(t0).Round(100*time.Millisecond), r.Stdout, tail(r.Stderr, 2000))
	assertSameState(t, "target after migrate", want, tgt.state())
	assertSameState(t, "source after migrate", want, src.state())
	if got, wantRunning := tgt.runningServices(t), src.runningServices(t); got != wantRunning {
		t.Errorf("running services on the target: %q, on the source: %q", got, wantRunning)
	}
	assertNoHelpers(t, eng, src)
	list := src.MustDocker(append(append([]string{"echobackup"}, src.ProjectArgs()...), "list", "--format", "json")...)
	if !strings.Contains(list, `"pinned": "migrate"`) {
		t.Errorf("the migration's backup is not listed here as pinned=migrate:\n%s", list)
	}

	// The target now holds data: refused without --force, and left as it was.
	src.change(t)
	changed := src.state()
	r = src.migrate(RunOpts{}, "--to-context", eng.Context)
	if r.Code != 2 || !strings.Contains(r.Stderr, "already holds data") {
		t.Fatalf("migrate onto a target with data: want exit 2 (already holds data), got %d\n%s", r.Code, r.Stderr)
	}
	assertSameState(t, "target after a refused migrate", want, tgt.state())

	// --force: the target is saved first, then replaced.
	t0 = time.Now()
	r = src.migrate(RunOpts{}, "--to-context", eng.Context, "--force", "--format", "json")
	if r.Code != 0 {
		t.Fatalf("migrate --force: exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("migrate --force onto a target with data took %s:\n%s", time.Since(t0).Round(100*time.Millisecond), r.Stdout)
	var res struct {
		Backup  string `json:"backup"`
		Restore struct {
			SafetyBackup string `json:"safetyBackup"`
		} `json:"restore"`
		Duration time.Duration `json:"duration"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || res.Backup == "" || res.Duration <= 0 {
		t.Fatalf("migrate --format json: %v\n%s", err, r.Stdout)
	}
	assertSameState(t, "target after migrate --force", changed, tgt.state())
	assertNoHelpers(t, eng, src)
	safety, _ := filepath.Glob(filepath.Join(src.Dir, "backups", eng.Context, src.Name+"-*.tar.zst"))
	if len(safety) != 1 || res.Restore.SafetyBackup != safety[0] {
		t.Fatalf("want one safety backup of the target in backups/%s, named in the output; found %v\n%s", eng.Context, safety, r.Stdout)
	}
	// The safety backup holds what the target had (the seed, before the change): it verifies
	// and its row count is the seed's.
	if out, errOut, code := src.EchoBackup(append(src.ProjectArgs(), "verify", safety[0])...); code != 0 {
		t.Fatalf("verify of the target's safety backup: exit %d\n%s%s", code, out, errOut)
	}
	listed := src.MustDocker(append(append([]string{"echobackup"}, src.ProjectArgs()...), "list", "-o", filepath.Dir(safety[0]), "--format", "json")...)
	if !strings.Contains(listed, fmt.Sprintf(`"rows": %d,`, seedRows())) || !strings.Contains(listed, `"pinned": "pre-restore"`) {
		t.Errorf("the target's safety backup should hold the seed's %d rows, pinned pre-restore:\n%s", seedRows(), listed)
	}
}

// TestMigrateTargetOfAnotherUser: a target whose database was set up by another user (the
// source's role does not exist there) certainly holds data, though its tables cannot be read
// as the source's user: migrate refuses it without --force and leaves it as it was.
func TestMigrateTargetOfAnotherUser(t *testing.T) {
	eng := StartEngine2(t)
	eng.LoadImage(t, pgImage)
	src := NewStack(t, "custom")
	src.Up()
	tgt := eng.Stack(src)

	// The same compose files, brought up on the target with another POSTGRES_USER in .env
	// (read through env_file), which is put back before migrate reads it.
	env := filepath.Join(src.Dir, ".env")
	orig, err := os.ReadFile(env)
	if err != nil {
		t.Fatal(err)
	}
	other := strings.Replace(string(orig), "POSTGRES_USER="+src.DBUser, "POSTGRES_USER=owner", 1)
	if other == string(orig) {
		t.Fatalf("no POSTGRES_USER=%s in %s", src.DBUser, env)
	}
	if err := os.WriteFile(env, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	tgt.DBUser = "owner"
	tgt.Up()
	if err := os.WriteFile(env, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	tgt.Psql("create table theirs (n int); insert into theirs values (42)")

	r := src.migrate(RunOpts{}, "--to-context", eng.Context)
	if r.Code != 2 || !strings.Contains(r.Stderr, "already holds data") || !strings.Contains(r.Stderr, `role "`+src.DBUser+`" does not exist`) {
		t.Fatalf("migrate onto a target set up by another user: want exit 2 (already holds data, naming the role), got %d\n%s", r.Code, r.Stderr)
	}
	if got := tgt.Psql("select n from theirs"); got != "42" {
		t.Errorf("the target's table after a refused migrate: %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(src.Dir, "backups")); len(entries) > 0 {
		t.Errorf("a refused migrate saved something: %v", entries)
	}
	assertNoHelpers(t, eng, src)
}

// TestSaveStreamRestore: `save --output - | restore -` through a shell pipe, from the first
// engine into a bare second one, leaves no spool file on either side.
func TestSaveStreamRestore(t *testing.T) {
	eng := StartEngine2(t)
	eng.LoadImage(t, pgImage)
	src := NewStack(t, "custom")
	src.Up()
	tgt := eng.Stack(src)
	want := src.state()

	// Spools a killed save and restore left: the streams below remove them.
	stale := writeStaleSpools(t, filepath.Join(src.Dir, "backups"))

	project := strings.Join(src.ProjectArgs(), " ")
	script := `set -o pipefail; docker echobackup ` + project + ` save --output - | DOCKER_CONTEXT="$1" docker echobackup ` +
		project + ` restore - --yes`
	t0 := time.Now()
	r := src.Run(RunOpts{}, "bash", "-c", script, "bash", eng.Context)
	if r.Code != 0 {
		t.Fatalf("save --output - | restore -: exit %d\n%s", r.Code, r.Stderr)
	}
	for _, p := range stale {
		if !strings.Contains(r.Stderr, "Removed "+p+" (") {
			t.Errorf("the streams did not say they removed %s:\n%s", p, r.Stderr)
		}
	}
	t.Logf("save --output - | restore - took %s:\n%s", time.Since(t0).Round(100*time.Millisecond), r.Stdout)
	assertSameState(t, "target after save | restore", want, tgt.state())
	if got, wantRunning := tgt.runningServices(t), src.runningServices(t); got != wantRunning {
		t.Errorf("running services on the target: %q, on the source: %q", got, wantRunning)
	}
	assertNoSpool(t, src)

	// A reader that stops early: save fails (it does not die of SIGPIPE) and removes its spool.
	r = src.Run(RunOpts{}, "bash", "-c", `docker echobackup `+project+` save --output - | head -c 1000 >/dev/null; exit "${PIPESTATUS[0]}"`)
	if r.Code == 0 || !strings.Contains(r.Stderr, "writing the archive to stdout") {
		t.Errorf("save --output - into a reader that stops: want a failure writing to stdout, got exit %d\n%s", r.Code, r.Stderr)
	}
	assertNoSpool(t, src)

	// A stream cut short (a dropped ssh): the restore fails, the target keeps its state, and
	// no spool is left.
	size := strings.TrimSpace(src.Run(RunOpts{}, "bash", "-c", `docker echobackup `+project+` save --output - | wc -c`).Stdout)
	var n int
	if _, err := fmt.Sscan(size, &n); err != nil || n < 100000 {
		t.Fatalf("the size of a streamed archive: %q", size)
	}
	// Past the manifest region, inside the members: the manifest reads, the rest does not.
	cut := `docker echobackup ` + project + ` save --output - | head -c "$2" | DOCKER_CONTEXT="$1" docker echobackup ` +
		project + ` restore - --yes`
	r = src.Run(RunOpts{}, "bash", "-c", cut, "bash", eng.Context, fmt.Sprint(n-50000))
	if r.Code == 0 {
		t.Fatalf("restore - of a truncated stream succeeded\n%s", r.Stdout)
	}
	assertSameState(t, "target after a truncated stream", want, tgt.state())
	assertNoSpool(t, src)

	// `restore -` cannot ask: it wants --yes.
	r = src.Run(RunOpts{Stdin: strings.NewReader("")}, "docker", append(append([]string{"echobackup"}, src.ProjectArgs()...), "restore", "-")...)
	if r.Code != 2 || !strings.Contains(r.Stderr, "--yes") {
		t.Errorf("restore - without --yes: want exit 2 asking for --yes, got %d\n%s", r.Code, r.Stderr)
	}
}

// writeStaleSpools leaves in dir what a save --output - and a restore - killed two days ago
// leave: a spool folder holding a partial archive, and a spool file.
func writeStaleSpools(t *testing.T, dir string) []string {
	t.Helper()
	out := filepath.Join(dir, ".stdout-1234.partial")
	in := filepath.Join(dir, ".stdin-5678.tar.zst.partial")
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	for _, p := range []string{filepath.Join(out, "echo.tar.zst"), in} {
		if err := os.WriteFile(p, []byte("cut short"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{filepath.Join(out, "echo.tar.zst"), out, in} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	return []string{out, in}
}

func assertNoSpool(t *testing.T, s *Stack) {
	t.Helper()
	spool, _ := filepath.Glob(filepath.Join(s.Dir, "backups", ".*partial"))
	if len(spool) > 0 {
		t.Errorf("spool files left behind: %v", spool)
	}
}

// assertNoHelpers: the helper containers echo-backup ran on the target are gone.
func assertNoHelpers(t *testing.T, e *Engine2, s *Stack) {
	t.Helper()
	out, err := e.Docker("ps", "-a", "--format", "{{.Names}}", "--filter", "label="+LabelEchoProject+"="+s.Name)
	if err != nil {
		t.Fatal(err)
	}
	if left := nonEmptyLines(out); len(left) > 0 {
		t.Errorf("helper containers left on %s: %v", e, left)
	}
}

// TestMigrateStopSource: a cutover. A migrate --stop-source that fails after the stop (the
// target's database cannot start) starts the app here again. One that succeeds stops the app
// here before the save, so every row a writer in its container committed while migrate ran is
// on the target; the app here stays stopped, its database runs, and the printed command starts
// it again.
func TestMigrateStopSource(t *testing.T) {
	eng := StartEngine2(t)
	eng.LoadImage(t, pgImage)
	src := NewStack(t, "custom")
	src.Up()
	tgt := eng.Stack(src)
	src.Psql("create table guard_writes (n int primary key);")
	running := src.runningServices(t)

	broken := brokenEntrypointImage(t, src, eng)
	w := src.startWriter(t)
	w.waitFor(t, 10)
	r := src.migrate(RunOpts{Env: []string{"ECHOBACKUP_PG_IMAGE=" + broken}}, "--to-context", eng.Context, "--stop-source")
	if r.Code == 0 || !strings.Contains(r.Stderr, "starting [db]") || !regexp.MustCompile(`started .*echo.* again`).MatchString(r.Stderr) {
		t.Fatalf("migrate --stop-source to a target whose database cannot start: want a failure starting db there that starts the app here again, got exit %d\n%s",
			r.Code, r.Stderr)
	}
	w.stop(t)
	if got := src.runningServices(t); got != running {
		t.Fatalf("running services here after a failed migrate --stop-source: %q, want %q", got, running)
	}
	// A restore that fails while setting up removes what it created there (the database
	// container it could not start, the volumes and network compose made for it), so that the
	// target is empty again and the next migrate does not find "data" on it.
	if left := projectOn(t, eng, src); left != "" {
		t.Fatalf("on the target after the failed migrate: %s; want nothing", left)
	}
	nets, err := eng.Docker("network", "ls", "--format", "{{.Name}}", "--filter", "label="+LabelComposeProject+"="+src.Name)
	if err != nil || len(nonEmptyLines(nets)) > 0 {
		t.Fatalf("networks of the project on the target after the failed migrate: %q (%v); want none", nets, err)
	}

	src.Psql("truncate guard_writes;") // the writer counts from 1 again
	w = src.startWriter(t)
	w.waitFor(t, 20)
	t0 := time.Now()
	r = src.migrate(RunOpts{}, "--to-context", eng.Context, "--stop-source")
	last := w.stop(t)
	if r.Code != 0 {
		t.Fatalf("migrate --stop-source: exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("migrate --stop-source took %s; the writer committed %d rows:\n%s", time.Since(t0).Round(100*time.Millisecond), last, r.Stdout)
	assertCutover(t, src, tgt, last, running)
	start := startHint(t, r.Stdout)
	if res := src.Run(RunOpts{}, "bash", "-c", start); res.Code != 0 {
		t.Fatalf("the printed command %q: exit %d\n%s", start, res.Code, res.Stderr)
	}
	if got := src.runningServices(t); got != running {
		t.Errorf("running services here after %q: %q, want %q", start, got, running)
	}
}

// assertCutover: the target holds every row the writer committed and the same state as the
// source; here only the database runs (the cache is an app service too).
func assertCutover(t *testing.T, src, tgt *Stack, last int, running string) {
	t.Helper()
	rows := "select coalesce(max(n), 0), count(*) from guard_writes;"
	here, there := src.Psql(rows), tgt.Psql(rows)
	var max, count int
	if _, err := fmt.Sscanf(there, "%d|%d", &max, &count); err != nil {
		t.Fatalf("reading guard_writes on the target: %q: %v", there, err)
	}
	if here != there || max < last || count != max {
		t.Errorf("guard_writes here %q, on the target %q; the writer had committed up to %d", here, there, last)
	}
	assertSameState(t, "target after migrate --stop-source", src.state(), tgt.state())
	if got := src.runningServices(t); got != src.DBService {
		t.Errorf("running services here after migrate --stop-source: %q, want only the database %q", got, src.DBService)
	}
	if got := tgt.runningServices(t); got != running {
		t.Errorf("running services on the target: %q, want %q", got, running)
	}
}

// startHint is the command migrate --stop-source prints to start the app here again.
func startHint(t *testing.T, stdout string) string {
	t.Helper()
	_, after, ok := strings.Cut(stdout, "to start them again: ")
	if !ok {
		t.Fatalf("migrate --stop-source printed no command to start the app again:\n%s", stdout)
	}
	return strings.TrimSpace(strings.SplitN(after, "\n", 2)[0])
}

// brokenEntrypointImage is the test image with an entrypoint that does not exist, on both
// engines: it passes migrate's checks (they run with their own entrypoint), but no service
// made from it starts.
func brokenEntrypointImage(t *testing.T, src *Stack, eng *Engine2) string {
	t.Helper()
	image := "echobackup-test/postgres:broken-" + randomHex(4)
	c := "ebt-broken-" + randomHex(4)
	t.Cleanup(func() {
		src.Run(RunOpts{Quiet: true}, "docker", "rm", "-f", c)
		src.Run(RunOpts{Quiet: true}, "docker", "rmi", image)
	})
	src.MustDocker("create", "--name", c, "--network", "none", pgImage)
	src.MustDocker("commit", "--change", `ENTRYPOINT ["/absent-entrypoint"]`, c, image)
	src.MustDocker("rm", c)
	eng.LoadImage(t, image)
	return image
}
