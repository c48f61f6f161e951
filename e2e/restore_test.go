//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// state is what a restore must bring back: the database and Echo's data files.
type state struct{ db, files Fingerprint }

func (s *Stack) state() state {
	s.t.Helper()
	return state{db: s.FingerprintDB(), files: s.FingerprintData().Fingerprint()}
}

func assertSameState(t *testing.T, what string, want, got state) {
	t.Helper()
	AssertSameFingerprint(t, what+": database", want.db, got.db)
	AssertSameFingerprint(t, what+": files", want.files, got.files)
}

// change makes the kind of edits that happen after a backup: rows changed, added and
// deleted, a file changed, one added, one removed.
func (s *Stack) change(t *testing.T) {
	t.Helper()
	s.Psql(`update users set email = 'changed-after-the-backup@example.org' where id <= 10;
		delete from ratings where id % 3 = 0;
		insert into playlists (owner_id, name, created_at, updated_at) values (1, 'made after the backup', now(), now());`)
	if s.DataVolume == "" {
		os.WriteFile(filepath.Join(s.DataDir(), "setup.json"), []byte(`{"changed":true}`), 0o644)
		os.WriteFile(filepath.Join(s.DataDir(), "uploads", "new.txt"), []byte("new"), 0o644)
		os.Remove(filepath.Join(s.DataDir(), "covers", "3.jpg"))
		return
	}
	s.MustCompose("exec", "-T", s.AppService, "sh", "-c",
		`echo '{"changed":true}' > /app/data/setup.json && echo new > /app/data/uploads/new.txt && rm /app/data/covers/3.jpg`)
}

func (s *Stack) restore(args ...string) (string, int) {
	s.t.Helper()
	out, errOut, code := s.EchoBackup(append(append(s.ProjectArgs(), "restore"), args...)...)
	return out + errOut, code
}

func (s *Stack) runningServices(t *testing.T) string {
	t.Helper()
	return strings.Join(nonEmptyLines(s.MustDocker(s.composeArgs("ps", "--services", "--status", "running")...)), ",")
}

// TestRestoreAfterDownV: the accident the docs warn about, `docker compose down -v` (and for a
// bind mount `rm -rf data`), then one restore brings back the identical state.
func TestRestoreAfterDownV(t *testing.T) {
	for _, fixture := range []string{"seed", "custom"} {
		t.Run(fixture, func(t *testing.T) {
			s := NewStack(t, fixture)
			s.Up()
			before := s.state()
			running := s.runningServices(t)
			s.save(t)
			s.MustCompose("down", "-v", "--timeout", "1")
			if s.DataVolume == "" {
				os.RemoveAll(s.DataDir())
			}
			if out, code := s.restore("latest", "--yes"); code != 0 {
				t.Fatalf("restore: exit %d\n%s", code, out)
			}
			assertSameState(t, "after down -v and restore", before, s.state())
			if got := s.runningServices(t); got != running {
				t.Errorf("running after restore: %s, before: %s", got, running)
			}
		})
	}
}

// TestRestoreUndoesChanges: rows and files changed since the backup come back as they were
// (what the manual procedure fails to do), the app's containers are started, not recreated,
// and the state before the restore is kept as a pinned safety backup.
func TestRestoreUndoesChanges(t *testing.T) {
	for _, fixture := range []string{"seed", "custom"} {
		t.Run(fixture, func(t *testing.T) {
			s := NewStack(t, fixture)
			s.Up()
			want := s.state()
			saved := s.save(t)
			s.change(t)
			changed := s.state()
			app := s.ContainerID(s.AppService)
			out, code := s.restore(saved.Path, "--yes")
			if code != 0 {
				t.Fatalf("restore: exit %d\n%s", code, out)
			}
			assertSameState(t, "after restore", want, s.state())
			if got := s.ContainerID(s.AppService); got != app {
				t.Errorf("the app container was recreated: %s -> %s", app, got)
			}
			entries := s.list(t)
			if len(entries) != 2 || entries[0].Path == saved.Path {
				t.Fatalf("list after restore = %+v", entries)
			}
			// The safety backup holds the changed state: restoring it brings that back.
			if out, code := s.restore(entries[0].Path, "--yes", "--no-safety-backup"); code != 0 {
				t.Fatalf("restoring the safety backup: %s", out)
			}
			assertSameState(t, "after restoring the safety backup", changed, s.state())
		})
	}
}

// TestRestoreRefusesCorruptArchive: a damaged archive is refused with every container still
// running and nothing changed, and nothing staged is left behind.
func TestRestoreRefusesCorruptArchive(t *testing.T) {
	s := NewStack(t, "seed")
	s.Up()
	saved := s.save(t)
	s.change(t)
	before := s.state()
	running := s.runningServices(t)
	data, _ := os.ReadFile(saved.Path)
	bad := filepath.Join(s.Dir, "backups", "damaged.tar.zst")
	os.WriteFile(bad, flipped(data, len(data)/2), 0o600)
	out, code := s.restore(bad, "--yes")
	if code == 0 {
		t.Fatalf("restore of a damaged archive exited 0:\n%s", out)
	}
	if got := s.runningServices(t); got != running {
		t.Errorf("running after a refused restore: %s, before: %s", got, running)
	}
	assertSameState(t, "after a refused restore", before, s.state())
	if left, _ := filepath.Glob(filepath.Join(s.Dir, ".*echobackup*")); len(left) > 0 {
		t.Errorf("staging left behind: %v", left)
	}
	if dbs := s.Psql("select datname from pg_database where datname like '%echobackup%'"); dbs != "" {
		t.Errorf("databases left behind: %s", dbs)
	}
}

// TestRestoreRollsBackWhenDatabaseDies: the database container is killed while pg_restore
// runs; the restore fails, rolls back, and the state is exactly the one before.
func TestRestoreRollsBackWhenDatabaseDies(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	addPlays(t, s, 1000000)
	saved := s.save(t)
	s.change(t)
	before := s.state()
	cmd := exec.Command("docker", append(append([]string{"echobackup"}, s.ProjectArgs()...), "restore", saved.Path, "--yes")...)
	cmd.Dir, cmd.Env = s.Dir, append(os.Environ(), s.Env...)
	var output strings.Builder
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForNewDatabase(t, s)
	s.MustDocker("kill", s.ContainerID(s.DBService))
	if err := cmd.Wait(); err == nil {
		t.Fatalf("restore survived the database's death:\n%s", output.String())
	}
	t.Logf("restore output:\n%s", output.String())
	if !strings.Contains(output.String(), "rolling back") {
		t.Errorf("no word of a rollback:\n%s", output.String())
	}
	s.WaitDB(2 * time.Minute)
	after := s.state()
	// A killed server recovers its sequences up to 32 values ahead (PostgreSQL WAL-logs them
	// in advance): that is the crash, not the restore. Everything else must be identical.
	assertSequencesNotBehind(t, s, before.db, after.db)
	before.db, after.db = withoutSequences(before.db), withoutSequences(after.db)
	assertSameState(t, "after a failed restore", before, after)
	if dbs := s.Psql("select datname from pg_database where datname like '%echobackup%'"); dbs != "" {
		t.Errorf("databases left behind: %s", dbs)
	}
}

func waitForNewDatabase(t *testing.T, s *Stack) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		r := s.PsqlResult("select count(*) from pg_database where datname like '%echobackup_new%'")
		if strings.TrimSpace(r.Stdout) == "1" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the restore never created its new database")
}

// TestRestoreManualBackups: the backup.sql and data-backup.tar.gz of Echo's manual procedure
// restore with the same safety, owners (uid 1001) included.
func TestRestoreManualBackups(t *testing.T) {
	s := NewStack(t, "seed")
	s.Up()
	// The link a media server keeps to its library: data, restored as it is.
	os.MkdirAll(filepath.Join(s.DataDir(), "metadata"), 0o755)
	if err := os.Symlink("/music", filepath.Join(s.DataDir(), "metadata", "library")); err != nil {
		t.Fatal(err)
	}
	want := s.state()
	dump := s.Run(RunOpts{Quiet: true}, "docker", "exec", "echo-postgres", "pg_dump", "-U", "echo", "echo")
	if dump.Code != 0 {
		t.Fatalf("pg_dump: %s", dump.Stderr)
	}
	os.WriteFile(filepath.Join(s.Dir, "backup.sql"), []byte(dump.Stdout), 0o600)
	if r := s.Run(RunOpts{}, "tar", "czf", "data-backup.tar.gz", "./data"); r.Code != 0 {
		t.Fatalf("tar: %s", r.Stderr)
	}
	s.change(t)
	// A tar of the folder's contents rather than of the folder would land in the wrong place.
	if r := s.Run(RunOpts{}, "tar", "czf", "contents.tar.gz", "-C", "data", "."); r.Code != 0 {
		t.Fatalf("tar: %s", r.Stderr)
	}
	changed := s.state()
	if out, code := s.restore("--files", "contents.tar.gz", "--yes"); code == 0 || !strings.Contains(out, "should hold one folder") {
		t.Errorf("restore of a tar without its folder: exit %d\n%s", code, out)
	}
	assertSameState(t, "after a refused tar", changed, s.state())
	if out, code := s.restore("backup.sql", "--files", "data-backup.tar.gz", "--yes"); code != 0 {
		t.Fatalf("restore of the manual backups: exit %d\n%s", code, out)
	}
	got := s.state()
	assertSameState(t, "after restoring the manual backups", want, got)
	if e, ok := s.FingerprintData().Get("setup.json"); !ok || e.UID != AppUID {
		t.Errorf("setup.json after restore: %+v", e)
	}
}

// TestRestoreGuards: a backup of another project is refused; --dry-run changes nothing.
func TestRestoreGuards(t *testing.T) {
	seed := NewStack(t, "seed")
	seed.Up()
	other := seed.save(t)
	s := NewStack(t, "custom")
	s.Up()
	out, code := s.restore(other.Path, "--yes")
	if code == 0 || !strings.Contains(out, "--force-project") {
		t.Errorf("restore of another project's backup: exit %d\n%s", code, out)
	}
	s.save(t)
	s.change(t)
	changed := s.state()
	out, code = s.restore("latest", "--dry-run")
	if code != 0 || !strings.Contains(out, "Dry run") || !strings.Contains(out, `database "library" is replaced`) {
		t.Errorf("dry run: exit %d\n%s", code, out)
	}
	assertSameState(t, "after a dry run", changed, s.state())
	// Without a terminal and without --yes it refuses rather than assume.
	out, code = s.restore("latest")
	if code == 0 || !strings.Contains(out, "--yes") {
		t.Errorf("restore without --yes and without a terminal: exit %d\n%s", code, out)
	}
}

func withoutSequences(f Fingerprint) Fingerprint {
	var lines []string
	for _, l := range f.Lines {
		if !strings.HasPrefix(l, "sequence ") {
			lines = append(lines, l)
		}
	}
	return newFingerprint(lines)
}

func assertSequencesNotBehind(t *testing.T, s *Stack, before, after Fingerprint) {
	t.Helper()
	step := map[string]int64{}
	for _, l := range nonEmptyLines(s.Psql("select schemaname || '.' || sequencename, increment_by from pg_sequences")) {
		name, inc, _ := strings.Cut(l, "|")
		var v int64
		fmt.Sscan(inc, &v)
		step[name] = v
	}
	values := func(f Fingerprint) map[string]int64 {
		m := map[string]int64{}
		for _, l := range f.Lines {
			var name string
			var v int64
			if _, err := fmt.Sscanf(l, "sequence %s last_value=%d", &name, &v); err == nil {
				m[name] = v
			}
		}
		return m
	}
	b, a := values(before), values(after)
	for name, v := range b {
		if a[name] < v || a[name] > v+32*step[name] {
			t.Errorf("sequence %s: %d before, %d after", name, v, a[name])
		}
	}
	if len(b) == 0 || len(a) != len(b) {
		t.Errorf("sequences before %v, after %v", b, a)
	}
}

// TestRestoreSymlinkedDataFolder: ./data is a symlink to a folder on another disk, as some
// users keep covers; save reads what it points to and restore swaps the real folder, leaving
// the link in place.
func TestRestoreSymlinkedDataFolder(t *testing.T) {
	s := NewStack(t, "seed")
	real := filepath.Join(t.TempDir(), "disk", "echo-data")
	os.MkdirAll(filepath.Dir(real), 0o755)
	SeedFiles(t, real)
	if err := os.Symlink(real, s.DataDir()); err != nil {
		t.Fatal(err)
	}
	s.UpBare()
	s.PsqlFile(filepath.Join(moduleRoot, "e2e", "testdata", "schema.sql"))
	want := FingerprintDir(t, real).Fingerprint()
	saved := s.save(t)
	if saved.Files < 5 {
		t.Fatalf("save of a symlinked folder holds %d files", saved.Files)
	}
	os.WriteFile(filepath.Join(real, "setup.json"), []byte("{}"), 0o644)
	if out, code := s.restore(saved.Path, "--yes"); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	if fi, err := os.Lstat(s.DataDir()); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("./data is no longer a symlink: %v %v", fi.Mode(), err)
	}
	AssertSameFingerprint(t, "the real folder after restore", want, FingerprintDir(t, real).Fingerprint())
}
