//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoEnv is what a stack needs to use the repository at addr: its address and a password file.
type repoEnv struct {
	addr, passwordFile, password string
	cache                        string   // the repository's caches: the test's, not ~/.cache
	extra                        []string // S3 credentials and endpoint
}

func newRepoEnv(t *testing.T, addr string, extra ...string) repoEnv {
	t.Helper()
	pw := "correct horse battery " + randomHex(8)
	file := filepath.Join(t.TempDir(), "repo-password")
	if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return repoEnv{addr: addr, passwordFile: file, password: pw, cache: t.TempDir(), extra: extra}
}

func (r repoEnv) env() []string {
	return append([]string{"ECHOBACKUP_REPO=" + r.addr, "ECHOBACKUP_PASSWORD_FILE=" + r.passwordFile, "XDG_CACHE_HOME=" + r.cache}, r.extra...)
}

// eb runs `docker echobackup <project flags> ARGS` with the repository's settings, and fails the
// test if a secret shows in what it prints.
func (s *Stack) eb(r repoEnv, args ...string) Result {
	s.t.Helper()
	res := s.Run(RunOpts{Env: r.env()}, "docker", append(append([]string{"echobackup"}, s.ProjectArgs()...), args...)...)
	r.assertNoSecret(s.t, res.Stdout+res.Stderr)
	return res
}

func (s *Stack) mustEB(r repoEnv, args ...string) string {
	s.t.Helper()
	res := s.eb(r, args...)
	if res.Code != 0 {
		s.t.Fatalf("echobackup %s: exit %d\n%s", strings.Join(args, " "), res.Code, res.Stderr)
	}
	return res.Stdout
}

func (r repoEnv) assertNoSecret(t testing.TB, text string) {
	t.Helper()
	secrets := []string{r.password}
	for _, kv := range r.extra {
		if k, v, _ := strings.Cut(kv, "="); k == "AWS_SECRET_ACCESS_KEY" {
			secrets = append(secrets, v)
		}
	}
	for _, secret := range secrets {
		if secret != "" && strings.Contains(text, secret) {
			t.Fatalf("a secret was printed:\n%s", text)
		}
	}
}

type repoEntry struct {
	Path     string            `json:"path"`
	Name     string            `json:"name"`
	Rows     int64             `json:"rows"`
	Files    int               `json:"files"`
	Pinned   string            `json:"pinned"`
	Labels   map[string]string `json:"labels"`
	Verified *struct {
		OK   bool `json:"ok"`
		Deep bool `json:"deep"`
	} `json:"verified"`
}

func (s *Stack) repoList(r repoEnv) []repoEntry {
	s.t.Helper()
	var entries []repoEntry
	if err := json.Unmarshal([]byte(s.mustEB(r, "list", "--format", "json")), &entries); err != nil {
		s.t.Fatalf("list --format json: %v", err)
	}
	return entries
}

type repoStatus struct {
	Snapshots       int     `json:"snapshots"`
	StoredBytes     int64   `json:"storedBytes"`
	LogicalBytes    int64   `json:"logicalBytes"`
	DedupRatio      float64 `json:"dedupRatio"`
	LastMaintenance string  `json:"lastMaintenance"`
}

func (s *Stack) repoStatus(r repoEnv) repoStatus {
	s.t.Helper()
	var st repoStatus
	out := s.mustEB(r, "repo", "status", "--format", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		s.t.Fatalf("repo status --format json: %v\n%s", err, out)
	}
	return st
}

// destroy is the accident: down -v, and for a bind mount rm -rf data.
func (s *Stack) destroy() {
	s.t.Helper()
	s.MustCompose("down", "-v", "--timeout", "1")
	if s.DataVolume == "" {
		os.RemoveAll(s.DataDir())
	}
}

// TestRepoFolder: a repository in a folder (a NAS mount) holds the history: save twice, list,
// verify --deep, restore either after down -v, pin and prune with maintenance; the password
// is never printed, a wrong or loose one is refused, and a second save stores little.
func TestRepoFolder(t *testing.T) {
	for _, fixture := range []string{"seed", "custom"} {
		t.Run(fixture, func(t *testing.T) {
			s := NewStack(t, fixture)
			s.Up()
			r := newRepoEnv(t, filepath.Join(t.TempDir(), "nas", "echo"))
			s.mustEB(r, "repo", "init")
			if res := s.eb(r, "repo", "init"); res.Code == 0 {
				t.Fatalf("repo init over an existing repository succeeded:\n%s", res.Stderr)
			}
			first := s.state()
			s.mustEB(r, "save")
			if entries, _ := os.ReadDir(filepath.Join(s.Dir, "backups")); countArchives(entries) > 0 {
				t.Errorf("save into the repository also wrote an archive into ./backups: %v", entries)
			}
			afterFirst := s.repoStatus(r)
			s.change(t)
			second := s.state()
			s.mustEB(r, "save")
			st := s.repoStatus(r)
			if st.Snapshots != 2 || st.DedupRatio <= 1 {
				t.Errorf("status after two saves: %+v", st)
			}
			// Saved again unchanged, the data is stored once: only what pg_dump's header and
			// kopia's own index add.
			s.mustEB(r, "save")
			third := s.repoStatus(r)
			added := third.StoredBytes - st.StoredBytes
			t.Logf("the first save stored %d bytes, the second (after changes) %d more, the third (unchanged) %d more",
				afterFirst.StoredBytes, st.StoredBytes-afterFirst.StoredBytes, added)
			if added*4 > afterFirst.StoredBytes {
				t.Errorf("an unchanged save added %d bytes to %d: not deduplicated", added, afterFirst.StoredBytes)
			}
			entries := s.repoList(r)
			if len(entries) != 3 || entries[0].Rows == 0 || entries[0].Files == 0 {
				t.Fatalf("list: %+v", entries)
			}
			oldest := entries[2]
			s.mustEB(r, "verify", "--deep", "latest")
			if e := s.repoList(r)[0]; e.Verified == nil || !e.Verified.OK || !e.Verified.Deep {
				t.Errorf("list after verify --deep: %+v", e.Verified)
			}

			s.destroy()
			s.mustEB(r, "restore", "latest", "--yes")
			assertSameState(t, "restored from the repository after down -v", second, s.state())
			s.mustEB(r, "restore", oldest.Name, "--yes", "--no-safety-backup")
			assertSameState(t, "the first backup restored from the repository", first, s.state())

			// A wrong password, and a password file others can read: refused, nothing printed.
			wrong := newRepoEnv(t, r.addr)
			if res := s.eb(wrong, "list"); res.Code != 2 || !strings.Contains(res.Stderr, "password is wrong") {
				t.Errorf("list with a wrong password: exit %d\n%s", res.Code, res.Stderr)
			}
			loose := newRepoEnv(t, r.addr)
			os.WriteFile(loose.passwordFile, []byte(r.password+"\n"), 0o644)
			os.Chmod(loose.passwordFile, 0o644)
			if res := s.eb(loose, "list"); res.Code != 2 || !strings.Contains(res.Stderr, "chmod 600") {
				t.Errorf("list with a 0644 password file: exit %d\n%s", res.Code, res.Stderr)
			}

			// Pin the oldest, prune to one: the pinned and the newest stay; maintenance runs.
			s.mustEB(r, "pin", oldest.Name)
			s.mustEB(r, "prune", "--keep-last", "1", "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0", "--gc-now")
			if got := s.repoList(r); len(got) != 2 {
				t.Fatalf("after prune with the oldest pinned: %+v", got)
			}
			s.mustEB(r, "unpin", oldest.Name)
			s.mustEB(r, "prune", "--keep-last", "1", "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0", "--gc-now")
			left := s.repoList(r)
			if len(left) != 1 || left[0].Path != entries[0].Path {
				t.Fatalf("after prune to one: %+v", left)
			}
			if st := s.repoStatus(r); st.LastMaintenance == "" || strings.HasPrefix(st.LastMaintenance, "0001") {
				t.Errorf("no maintenance recorded after prune: %+v", st)
			}
			s.mustEB(r, "verify", "latest")
		})
	}
}

func countArchives(entries []os.DirEntry) int {
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tar.zst") {
			n++
		}
	}
	return n
}

// TestRepoCopy: the 3-2-1 habit. A local archive is copied into the repository, and a
// snapshot back into a folder; each copy restores to the same state.
func TestRepoCopy(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	want := s.state()
	r := newRepoEnv(t, filepath.Join(t.TempDir(), "offsite"))
	s.mustEB(r, "repo", "init")
	saved := s.save(t)
	s.mustEB(r, "copy", "--to-repo", saved.Path)
	entries := s.repoList(r)
	if len(entries) != 1 {
		t.Fatalf("list after copy: %+v", entries)
	}
	s.mustEB(r, "verify", "--deep", "latest")
	s.change(t)
	s.mustEB(r, "restore", "latest", "--yes", "--no-safety-backup")
	assertSameState(t, "restored from the copy in the repository", want, s.state())

	back := filepath.Join(t.TempDir(), "back")
	out := s.mustEB(r, "copy", "latest", "--to-folder", back)
	files, _ := filepath.Glob(filepath.Join(back, "*.tar.zst"))
	if len(files) != 1 {
		t.Fatalf("copy --to-folder wrote %v (%s)", files, out)
	}
	s.change(t)
	if out, code := s.restore(files[0], "--yes", "--no-safety-backup"); code != 0 {
		t.Fatalf("restoring the copied-back archive: exit %d\n%s", code, out)
	}
	assertSameState(t, "restored from the archive copied back", want, s.state())
}

// TestRepoScheduleKeepsSecretsOut: schedule install with a repository keeps its address and
// the password file's path in a 0600 file in the backup folder, never a secret in the entry
// (and the entry short: cron refuses lines over 1000 bytes); the entry, run as cron runs it,
// saves into the repository.
func TestRepoScheduleKeepsSecretsOut(t *testing.T) {
	s := NewStack(t, "seed")
	// cron starts jobs with an empty environment: what the compose file interpolates must be in
	// the project's .env (as TestScheduleCron does).
	envFile, err := os.OpenFile(filepath.Join(s.Dir, ".env"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	_, err = envFile.WriteString("ECHOBACKUP_PG_IMAGE=" + pgImage + "\nECHO_MUSIC_DIR=" + s.MusicDir + "\nCOMPOSE_PROJECT_NAME=" + s.Name + "\n")
	if cerr := envFile.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	s.Up()
	r := newRepoEnv(t, filepath.Join(t.TempDir(), "repo"), "AWS_SECRET_ACCESS_KEY=not-for-cron-"+randomHex(6))
	s.mustEB(r, "repo", "init")
	res := s.Run(RunOpts{Env: append(r.env(), "ECHOBACKUP_PASSWORD="+r.password)}, "docker",
		append(append([]string{"echobackup"}, s.ProjectArgs()...), "schedule", "install", "--no-protect", "--at", "03:17")...)
	defer s.Run(RunOpts{Quiet: true, Env: r.env()}, "docker", append(append([]string{"echobackup"}, s.ProjectArgs()...), "schedule", "remove")...)
	if res.Code != 0 {
		t.Fatalf("schedule install: exit %d\n%s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "ECHOBACKUP_PASSWORD is set in this shell only") {
		t.Errorf("install did not warn that the job cannot see the shell's password:\n%s", res.Stderr)
	}
	line := s.ourLine(t)
	r.assertNoSecret(t, line)
	if strings.Contains(line, r.addr) || strings.Contains(line, r.passwordFile) {
		t.Errorf("the entry names the repository or the password file (they belong in the backup folder):\n%s", line)
	}
	kept := filepath.Join(s.Dir, "backups", ".schedule.repo")
	st, err := os.Stat(kept)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the repository setting for the job: %v %v", st, err)
	}
	if js, _ := os.ReadFile(kept); !strings.Contains(string(js), r.addr) || !strings.Contains(string(js), r.passwordFile) {
		t.Errorf("%s lacks the address or the password file: %s", kept, js)
	}

	_, command := cronCommand(t, line)
	_, stderr, code, _ := runAsCron(t, command)
	log, _ := os.ReadFile(filepath.Join(s.Dir, "backups", "schedule.log"))
	if code != 0 {
		t.Fatalf("the entry run as cron runs it: exit %d\n%s\nlog:\n%s", code, stderr, tail(string(log), 3000))
	}
	r.assertNoSecret(t, string(log))
	if got := s.repoList(r); len(got) != 1 || got[0].Verified == nil || !got[0].Verified.OK {
		t.Fatalf("the scheduled run did not save and verify into the repository: %+v\n%s", got, tail(string(log), 2000))
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Dir, "backups")); countArchives(entries) > 0 {
		t.Errorf("the scheduled run also wrote an archive into ./backups")
	}
}
