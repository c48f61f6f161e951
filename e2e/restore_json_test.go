//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestRestoreJSONKeepsSafetyBackupWarnings: with --format json a restore prints only its
// warnings on stderr, and the safety backup's are among them. Here the data folder is gone
// (`rm -rf data`) while the database runs: the safety backup saves the database and warns that
// the folder does not exist. That warning came through a log callback without a "WARNING"
// prefix, and --format json used to drop it.
func TestRestoreJSONKeepsSafetyBackupWarnings(t *testing.T) {
	s := NewStack(t, "seed")
	s.Up()
	before := s.state()
	s.save(t)
	if err := os.RemoveAll(s.DataDir()); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "restore", "latest", "--yes", "--format", "json")...)
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out, errOut)
	}
	var res struct {
		SafetyBackup string `json:"safetyBackup"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("restore --format json: stdout is not JSON: %v\n%s", err, out)
	}
	if res.SafetyBackup == "" {
		t.Fatalf("no safety backup in the result:\n%s", out)
	}
	var warning string
	for _, line := range strings.Split(errOut, "\n") {
		if strings.Contains(line, "WARNING: ") && strings.Contains(line, "does not exist: nothing to save there") {
			warning = line
		}
	}
	if warning == "" || !strings.Contains(warning, s.DataDir()) {
		t.Errorf("stderr does not carry the safety backup's warning about the missing %s:\n%s", s.DataDir(), errOut)
	}
	// Only warnings: the progress lines stay out of a JSON run's stderr.
	for _, line := range nonEmptyLines(errOut) {
		if !strings.Contains(line, "WARNING") {
			t.Errorf("stderr of restore --format json has a line that is no warning: %q", line)
		}
	}
	assertSameState(t, "after rm -rf data and restore", before, s.state())
}
