package prune

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/retention"
	"github.com/echo-backup/echo-backup/store"
)

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// entries are backups taken an hour apart, newest first, by host in folder /srv/echo; each is
// a real file in dir.
func entries(t *testing.T, dir string, hosts ...string) []store.Entry {
	t.Helper()
	var es []store.Entry
	for i, host := range hosts {
		created := now.Add(-time.Duration(i+1) * time.Hour)
		name := store.FileName("echo", created)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("archive"), 0o600); err != nil {
			t.Fatal(err)
		}
		es = append(es, store.Entry{Name: name, Path: path, Created: created, Project: "echo",
			Manifest: &archive.Manifest{Host: host, Project: archive.Project{WorkingDir: "/srv/echo"}}})
	}
	return es
}

func options(dir string, last int) Options {
	return Options{Dir: dir, Project: "echo", WorkingDir: "/srv/echo", Host: "here", Now: now,
		Policy: retention.Policy{Last: last}}
}

func actions(res *Result) string {
	var a []string
	for _, b := range res.Backups {
		a = append(a, string(b.Action))
	}
	return strings.Join(a, " ")
}

func TestDryRunRemovesNothing(t *testing.T) {
	dir := t.TempDir()
	plan := Decide(entries(t, dir, "here", "here", "here"), options(dir, 1))
	res := plan.DryRun()
	if got := actions(res); got != "keep would-remove would-remove" {
		t.Errorf("actions %q", got)
	}
	if res.Kept != 1 || res.Removed != 0 || !res.DryRun {
		t.Errorf("result %+v", res)
	}
	if names, _ := os.ReadDir(dir); len(names) != 3 {
		t.Errorf("a dry run removed files: %d left", len(names))
	}
	if want := "Dry run: would remove 2 of 3 backups in " + dir + ", keep 1"; res.Summary() != want {
		t.Errorf("summary %q, want %q", res.Summary(), want)
	}
}

func TestExecuteRemovesWhatThePlanSays(t *testing.T) {
	dir := t.TempDir()
	es := entries(t, dir, "here", "here", "here")
	res, err := Decide(es, options(dir, 2)).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(res); got != "keep keep remove" || res.Removed != 1 || res.Kept != 2 {
		t.Errorf("actions %q, result %+v", got, res)
	}
	if _, err := os.Stat(es[2].Path); !os.IsNotExist(err) {
		t.Errorf("the oldest backup is still there: %v", err)
	}
	if _, err := os.Stat(es[0].Path); err != nil {
		t.Errorf("a kept backup is gone: %v", err)
	}
}

func TestAnotherDeploymentsBackupsStayUncounted(t *testing.T) {
	dir := t.TempDir()
	es := entries(t, dir, "there", "here", "here")
	res, err := Decide(es, options(dir, 1)).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(res); got != "keep keep remove" {
		t.Errorf("actions %q", got)
	}
	if why := res.Backups[0].Why; len(why) != 1 || why[0] != "another deployment (there:/srv/echo)" {
		t.Errorf("why %q", why)
	}
}

func TestExecuteStopsAtTheFirstFailure(t *testing.T) {
	dir := t.TempDir()
	es := entries(t, dir, "here", "here", "here")
	os.Remove(es[1].Path) // gone already: its removal fails
	res, err := Decide(es, options(dir, 1)).Execute()
	if err == nil {
		t.Fatal("no error for a backup that could not be removed")
	}
	if got := actions(res); got != "keep keep" || res.Removed != 0 {
		t.Errorf("actions %q, result %+v", got, res)
	}
	if _, err := os.Stat(es[2].Path); err != nil {
		t.Errorf("prune went on after the failure: %v", err)
	}
}

func TestFutureBackupIsKeptWithAWarning(t *testing.T) {
	dir := t.TempDir()
	es := entries(t, dir, "here", "here")
	es[0].Created = now.Add(48 * time.Hour)
	var warned []string
	o := options(dir, 1)
	o.Warn = func(m string) { warned = append(warned, m) }
	res := Decide(es, o).DryRun()
	if len(warned) != 1 || !strings.Contains(warned[0], "in the future") {
		t.Errorf("warnings %q", warned)
	}
	if res.Backups[0].Action != Keep {
		t.Errorf("the future backup is not kept: %+v", res.Backups[0])
	}
}
