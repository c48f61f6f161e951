package hooks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestInstallRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	orig := `{"auths": {"x": {"auth": "c2VjcmV0"}}, "plugins": {"echobackup": {"hooks": "image ls", "k": "v"}}}`
	if err := os.WriteFile(path, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		changed, err := Install(path)
		if err != nil || changed != want {
			t.Fatalf("install %d: changed %v, %v", i, changed, err)
		}
	}
	cfg := readJSON(t, path)
	own := cfg["plugins"].(map[string]any)["echobackup"].(map[string]any)
	if own["hooks"] != "image ls,compose down,volume rm,volume prune,system prune" || own["k"] != "v" ||
		cfg["features"].(map[string]any)["hooks"] != "true" || cfg["auths"] == nil {
		t.Fatalf("after install: %v", cfg)
	}
	if ok, err := Installed(path); !ok || err != nil {
		t.Errorf("Installed: %v %v", ok, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
	if _, err := Remove(path); err != nil {
		t.Fatal(err)
	}
	cfg = readJSON(t, path)
	own = cfg["plugins"].(map[string]any)["echobackup"].(map[string]any)
	if own["hooks"] != "image ls" || cfg["features"].(map[string]any)["hooks"] != "true" {
		t.Errorf("after remove, the user's own hook stays and keeps hooks on: %v", cfg)
	}
}

func TestRemoveAll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json") // no file yet
	if _, err := Install(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.TrimSpace(string(b)) != "{}" {
		t.Errorf("after install and remove: %s", b)
	}
}

func TestHintWithoutBackups(t *testing.T) {
	t.Setenv("ECHOBACKUP_DIR", "")
	h := Hint(t.TempDir(), time.Now())
	if !strings.HasPrefix(h, "WARNING: no echobackup backup in ./backups") {
		t.Errorf("hint %+v", h)
	}
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return m
}
