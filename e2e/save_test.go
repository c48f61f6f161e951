//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type saveJSON struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Tables int    `json:"tables"`
	Rows   int64  `json:"rows"`
	Files  int    `json:"files"`
}

type listEntry struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	Rows     int64  `json:"rows"`
	Verified *struct {
		Deep bool `json:"deep"`
		OK   bool `json:"ok"`
	} `json:"verified"`
}

func (s *Stack) save(t *testing.T, args ...string) saveJSON {
	t.Helper()
	out, errOut, code := s.EchoBackup(append(append(s.ProjectArgs(), "save", "--format", "json"), args...)...)
	if code != 0 {
		t.Fatalf("save: exit %d: %s", code, errOut)
	}
	var res saveJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("save json: %v\n%s", err, out)
	}
	if strings.Contains(out+errOut, s.DBPassword) {
		t.Errorf("save printed the database password")
	}
	return res
}

func (s *Stack) list(t *testing.T) []listEntry {
	t.Helper()
	out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "list", "--format", "json")...)
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	var entries []listEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("list json: %v\n%s", err, out)
	}
	return entries
}

func (s *Stack) verify(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, errOut, code := s.EchoBackup(append(append(s.ProjectArgs(), "verify"), args...)...)
	return out + errOut, code
}

// TestSaveVerifyList: one archive that plain tar reads, with manifest.json first and no
// password in it; verify and verify --deep pass; list shows it as verified.
func TestSaveVerifyList(t *testing.T) {
	for _, fixture := range []string{"seed", "custom"} {
		t.Run(fixture, func(t *testing.T) {
			s := NewStack(t, fixture)
			s.Up()
			res := s.save(t)
			if res.Tables != len(SeedRowCounts) || res.Files < 5 || filepath.Dir(res.Path) != filepath.Join(s.Dir, "backups") {
				t.Errorf("save result %+v", res)
			}
			checkPlainTar(t, s, res.Path)
			if st, err := os.Stat(res.Path); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("archive mode: %v %v", st.Mode(), err)
			}
			if st, _ := os.Stat(filepath.Dir(res.Path)); st.Mode().Perm() != 0o700 {
				t.Errorf("backup folder mode %v", st.Mode())
			}
			if out, code := s.verify(t, res.Path); code != 0 || !strings.Contains(out, "OK") {
				t.Fatalf("verify: exit %d\n%s", code, out)
			}
			if out, code := s.verify(t, "latest", "--deep"); code != 0 || !strings.Contains(out, "test restore of 8 tables") {
				t.Fatalf("verify --deep: exit %d\n%s", code, out)
			}
			entries := s.list(t)
			if len(entries) != 1 || entries[0].Path != res.Path || entries[0].Verified == nil || !entries[0].Verified.Deep {
				t.Errorf("list = %+v", entries)
			}
		})
	}
}

// checkPlainTar: the archive opens with plain tar and zstd, manifest first, the dump and
// the data files in it, and no password anywhere in the manifest.
func checkPlainTar(t *testing.T, s *Stack, path string) {
	t.Helper()
	out, err := exec.Command("tar", "--zstd", "-tf", path).CombinedOutput()
	if err != nil {
		t.Fatalf("tar --zstd -tf: %v\n%s", err, out)
	}
	names := nonEmptyLines(string(out))
	if names[0] != "manifest.json" {
		t.Errorf("first member %q", names[0])
	}
	joined := strings.Join(names, "\n")
	for _, want := range []string{"db/" + s.DBName + ".dump", "setup.json", "secrets.env", "covers/", "deployment/compose.yaml"} {
		if !strings.Contains(joined, want) {
			t.Errorf("archive lacks %s:\n%s", want, joined)
		}
	}
	manifest, err := exec.Command("tar", "--zstd", "-xOf", path, "manifest.json").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(manifest), s.DBPassword) || !strings.Contains(string(manifest), `"sha256"`) {
		t.Errorf("manifest holds the password or no checksums")
	}
}

// TestVerifyCatchesDamage: one flipped byte or a truncated file fails verify with a non-zero
// exit, and list no longer counts a damaged file as verified.
func TestVerifyCatchesDamage(t *testing.T) {
	s := NewStack(t, "seed")
	s.Up()
	res := s.save(t)
	data, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := map[string][]byte{
		"flip-body":     flipped(data, len(data)*2/3),
		"flip-manifest": flipped(data, 200),
		"truncated":     data[:len(data)*3/4],
		"cut-end":       data[:len(data)-10],
	}
	for name, b := range damaged {
		p := filepath.Join(s.Dir, "backups", name+".tar.zst")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, code := s.verify(t, p); code == 0 {
			t.Errorf("%s: verify passed:\n%s", name, out)
		}
		os.Remove(p)
	}
	if out, code := s.verify(t, res.Path); code != 0 {
		t.Errorf("the intact archive no longer verifies:\n%s", out)
	}
}

func flipped(b []byte, at int) []byte {
	c := append([]byte(nil), b...)
	c[at] ^= 0x01
	return c
}

// TestSaveInterrupted: a save killed midway (SIGKILL) or stopped with Ctrl-C leaves nothing
// that list shows, and the earlier backup stays as it was.
func TestSaveInterrupted(t *testing.T) {
	s := NewStack(t, "seed")
	s.Up()
	// Enough rows that the dump takes a while.
	addPlays(t, s, 600000)
	first := s.save(t)
	before, _ := os.ReadFile(first.Path)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
		cmd := exec.Command("docker", append(s.ProjectArgs(), "echobackup", "save")...)
		cmd.Dir, cmd.Env = s.Dir, append(os.Environ(), s.Env...)
		// Its own process group, so the signal reaches the plugin as a terminal's Ctrl-C would.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitForPartial(t, filepath.Join(s.Dir, "backups"))
		syscall.Kill(-cmd.Process.Pid, sig)
		if err := cmd.Wait(); err == nil {
			t.Errorf("%v: save exited 0", sig)
		}
		if entries := s.list(t); len(entries) != 1 || entries[0].Path != first.Path {
			t.Errorf("%v: list = %+v", sig, entries)
		}
		// The save after the SIGKILL removed its leftover when it took the folder's lock; the
		// one cut by Ctrl-C removed its own.
		if sig == syscall.SIGINT {
			if left := partials(filepath.Join(s.Dir, "backups")); len(left) != 0 {
				t.Errorf("partial files left: %v", left)
			}
		}
	}
	after, _ := os.ReadFile(first.Path)
	if string(before) != string(after) {
		t.Errorf("the earlier backup changed")
	}
	if out, code := s.verify(t, first.Path); code != 0 {
		t.Errorf("earlier backup no longer verifies: %s", out)
	}
}

func partials(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, ".*.partial"))
	return m
}

// waitForPartial waits for a partial file that was not in dir when called: the save's own
// (it may have swept older ones first).
func waitForPartial(t *testing.T, dir string) {
	t.Helper()
	before := map[string]bool{}
	for _, p := range partials(dir) {
		before[p] = true
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range partials(dir) {
			if !before[p] {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no partial file appeared in %s", dir)
}

// TestSaveRefusesStoppedDatabase: a stopped database gives a clear error and no archive.
func TestSaveRefusesStoppedDatabase(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	s.MustCompose("stop", s.DBService)
	_, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "save")...)
	if code == 0 || !strings.Contains(errOut, "is not running") {
		t.Errorf("save with the database stopped: exit %d: %s", code, errOut)
	}
	if entries := s.list(t); len(entries) != 0 {
		t.Errorf("list = %+v", entries)
	}
}

// addPlays makes the database big enough that a dump or a restore takes a few seconds.
func addPlays(t *testing.T, s *Stack, n int) {
	t.Helper()
	s.Psql(fmt.Sprintf(`insert into play_history (user_id, track_id, played_at, played_ms, client)
		select 1 + g %% 50, 1 + g %% 3000, now() - g * interval '1 second', g %% 300000, 'web-' || md5(g::text)
		from generate_series(1, %d) g;`, n))
}
