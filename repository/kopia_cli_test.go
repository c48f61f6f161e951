package repository

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKopiaCLIReads checks that the kopia CLI (v0.22.3, path in ECHOBACKUP_KOPIA_CLI) lists,
// verifies and restores a backup this package wrote: the tree is a real kopia snapshot.
func TestKopiaCLIReads(t *testing.T) {
	cli := os.Getenv("ECHOBACKUP_KOPIA_CLI")
	if cli == "" {
		t.Skip("set ECHOBACKUP_KOPIA_CLI to a kopia v0.22.3 binary")
	}
	ctx := context.Background()
	dir := t.TempDir()
	o := Options{Address: filepath.Join(dir, "repo"), Password: "cli password", CacheDir: filepath.Join(dir, "cache")}
	if _, err := Init(ctx, o); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	tarBytes := testTar(t, map[string][]byte{"data/x": testData(5, 1<<20)})
	dump := testData(6, 3<<20)
	s := writeBackup(t, ctx, r, "echo", tarBytes, map[string][]byte{"db/echo.dump": dump}, map[string]string{"k": "v"})
	r.Close(ctx)

	kopia := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"--config-file", filepath.Join(dir, "kopia.config"), "--no-progress"}, args...)...)
		cmd.Env = append(os.Environ(), "KOPIA_PASSWORD="+o.Password, "KOPIA_CHECK_FOR_UPDATES=false")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kopia %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	kopia("repository", "connect", "filesystem", "--path", o.Address, "--cache-directory", filepath.Join(dir, "cli-cache"),
		"--override-hostname", clientHost, "--override-username", clientUser)
	list := kopia("snapshot", "list", "--all", "--manifest-id")
	t.Logf("kopia snapshot list --all:\n%s", list)
	if !strings.Contains(list, s.ManifestID) || !strings.Contains(list, "echo@echobackup:/echo") {
		t.Fatalf("kopia does not list the snapshot %s", s.ManifestID)
	}
	t.Log(kopia("snapshot", "verify", "--verify-files-percent=100", s.ManifestID))
	out := filepath.Join(dir, "restored")
	kopia("restore", s.ManifestID, out)
	for name, want := range map[string][]byte{"files.tar": tarBytes, "db/echo.dump": dump, "manifest.json": []byte(`{"format":1}`)} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("kopia restore: %s differs (%v)", name, err)
		}
	}
	t.Log(kopia("maintenance", "info"))
}
