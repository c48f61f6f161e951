package restore

import (
	"os"
	"strings"
	"testing"
)

func TestJournalRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if j, err := ReadJournal(dir, "echo"); j != nil || err != nil {
		t.Fatalf("no journal yet: %v %v", j, err)
	}
	j := &Journal{Project: "echo", Archive: "a.tar.zst", ID: "X", Apps: []string{"echo"}, path: JournalPath(dir, "echo"),
		Database: &JournalDB{Live: "echo", New: "echo_echobackup_new_X", Old: "echo_echobackup_old_X", LiveOID: 16384}}
	for _, p := range phases {
		if err := j.set(p); err != nil {
			t.Fatal(err)
		}
		got, err := ReadJournal(dir, "echo")
		if err != nil || got.Phase != p || got.Database.LiveOID != 16384 || got.Apps[0] != "echo" {
			t.Fatalf("after set(%s): %+v %v", p, got, err)
		}
		wantRollback := phaseIndex(p) < phaseIndex(PhaseSwapped)
		if got.Rollback() != wantRollback {
			t.Errorf("phase %s: Rollback() = %v", p, got.Rollback())
		}
		half := p == PhaseStopping || p == PhaseSwapping || p == PhaseSwapped
		if got.HalfSwapped() != half {
			t.Errorf("phase %s: HalfSwapped() = %v", p, got.HalfSwapped())
		}
		if n := strings.Count(got.Notice(), "\n"); n != 0 || !strings.Contains(got.Notice(), "restore --resume") {
			t.Errorf("notice is not one line naming --resume: %q", got.Notice())
		}
	}
	j.set(PhaseSwapped)
	j.update(func() { j.RollingBack = true })
	if got, _ := ReadJournal(dir, "echo"); !got.Rollback() {
		t.Error("a journal rolling back after the swap must roll back")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the journal: %v", entries)
	}
	if err := j.remove(); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadJournal(dir, "echo"); got != nil || err != nil {
		t.Errorf("after remove: %v %v", got, err)
	}
}

func TestJournalRefusesUnknownPhase(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(JournalPath(dir, "p"), []byte(`{"phase":"sideways"}`), 0o600)
	if _, err := ReadJournal(dir, "p"); err == nil {
		t.Error("a journal with an unknown phase was accepted")
	}
}

func TestJournalOfAnotherDeployment(t *testing.T) {
	host, _ := os.Hostname()
	j := &Journal{Project: "echo", Host: host, WorkingDir: "/srv/echo"}
	if !j.Of("/srv/echo") {
		t.Error("this deployment's journal is not recognised")
	}
	if j.Of("/home/me/echo") {
		t.Error("another folder's journal is taken for this deployment's")
	}
	j.Host = "other-" + host
	if j.Of("/srv/echo") {
		t.Error("another host's journal is taken for this deployment's")
	}
	if msg := j.Elsewhere("/backups").Error(); !strings.Contains(msg, j.Host+":/srv/echo") {
		t.Errorf("Elsewhere does not name the other deployment: %s", msg)
	}
}
