package checkpoint

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echo-backup/echo-backup/backup"
	"github.com/echo-backup/echo-backup/retention"
)

func TestRunNightlySummary(t *testing.T) {
	dir := t.TempDir()
	take = func(context.Context, Options) (*backup.Result, error) {
		return &backup.Result{Path: filepath.Join(dir, "echo-x.tar.zst"), Size: 2048, Tables: 8, Rows: 4380, Files: 38,
			Duration: 1234 * time.Millisecond}, nil
	}
	t.Cleanup(func() { take = Take })
	summary, path, err := RunNightly(context.Background(), Options{Plan: testPlan("running", "running"), Dir: dir},
		Nightly{Policy: retention.Default})
	if err != nil {
		t.Fatal(err)
	}
	want := "saved and verified echo-x.tar.zst (2.05kB, 8 tables, 4380 rows, 38 files) in 1.2s; Removed 0 of 0 backups in " + dir + ", kept 0"
	if summary != want || path != filepath.Join(dir, "echo-x.tar.zst") {
		t.Errorf("summary %q\nwant    %q\npath %q", summary, want, path)
	}
}

func TestRunNightlyFailedSaveSkipsThePrune(t *testing.T) {
	take = func(context.Context, Options) (*backup.Result, error) { return nil, errors.New("disk full") }
	t.Cleanup(func() { take = Take })
	_, path, err := RunNightly(context.Background(), Options{Plan: testPlan("running", ""), Dir: filepath.Join(t.TempDir(), "none")},
		Nightly{Policy: retention.Default})
	if err == nil || !strings.Contains(err.Error(), "disk full") || path != "" {
		t.Errorf("err %v, path %q", err, path)
	}
}
