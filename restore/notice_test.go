package restore

import (
	"os"
	"strings"
	"testing"
)

func writeJournal(t *testing.T, dir, host, phase string) {
	t.Helper()
	j := &Journal{Project: "echo", WorkingDir: "/srv/echo", Archive: "a.tar.zst", ID: "X", Host: host, PID: os.Getpid(),
		path: JournalPath(dir, "echo")}
	if err := j.set(phase); err != nil {
		t.Fatal(err)
	}
}

func TestCheckJournalRefusesWhileHalfSwapped(t *testing.T) {
	dir := t.TempDir()
	host, _ := os.Hostname()
	writeJournal(t, dir, host, PhaseSwapping)
	n, err := CheckJournal(dir, "echo", "/srv/echo", "save")
	if err == nil || !strings.Contains(err.Error(), "save refused") {
		t.Errorf("err = %v, want save refused", err)
	}
	if !strings.Contains(n.Warning, "was interrupted") || strings.HasPrefix(n.Warning, "WARNING") {
		t.Errorf("warning %q", n.Warning)
	}
	// status only says so.
	if n, err := CheckJournal(dir, "echo", "/srv/echo", ""); err != nil || n.Warning == "" {
		t.Errorf("status: %+v, %v", n, err)
	}
}

func TestCheckJournalAfterTheSwapOnlyWarns(t *testing.T) {
	dir := t.TempDir()
	host, _ := os.Hostname()
	writeJournal(t, dir, host, PhaseStarted)
	if n, err := CheckJournal(dir, "echo", "/srv/echo", "down"); err != nil || n.Warning == "" {
		t.Errorf("down after the swap: %+v, %v", n, err)
	}
}

func TestCheckJournalOfAnotherDeployment(t *testing.T) {
	dir := t.TempDir()
	writeJournal(t, dir, "another-host", PhaseSwapping)
	n, err := CheckJournal(dir, "echo", "/srv/echo", "save")
	if err != nil || !strings.Contains(n.Warning, "another deployment") {
		t.Errorf("%+v, %v: another deployment's journal must only warn", n, err)
	}
	if n, err := CheckJournal(t.TempDir(), "echo", "/srv/echo", "save"); err != nil || n != (JournalNotice{}) {
		t.Errorf("no journal: %+v, %v", n, err)
	}
}
