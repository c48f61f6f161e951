package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFindLastVerifiedSkipsFailedAndUnverified(t *testing.T) {
	dir := t.TempDir()
	good := writeBackup(t, dir, nil)
	failed := writeBackup(t, dir, nil)
	writeBackup(t, dir, nil) // newest, never verified
	at := time.Now().UTC().Truncate(time.Second)
	if err := RecordVerification(good, Verification{At: at, OK: true, Deep: true}); err != nil {
		t.Fatal(err)
	}
	if err := RecordVerification(failed, Verification{At: at}); err != nil {
		t.Fatal(err)
	}
	last := FindLastVerified(dir, "echo")
	if last == nil || last.Path != good || !last.Deep || !last.VerifiedAt.Equal(at) {
		t.Fatalf("last verified %+v, want %s", last, good)
	}
	if FindLastVerified(filepath.Join(dir, "none"), "echo") != nil {
		t.Error("a verified backup in a folder that does not exist")
	}
}

func TestSetPinUnderTheLock(t *testing.T) {
	dir := t.TempDir()
	path := writeBackup(t, dir, nil)
	e, err := SetPin(context.Background(), path, "", true, nil)
	if err != nil || e.Pinned != PinnedByHand {
		t.Fatalf("SetPin = %+v, %v", e, err)
	}
	// While another command holds the folder, pin waits and says for whom.
	lock, err := Acquire(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	told := ""
	if _, err := SetPin(ctx, path, "", false, func(h string) { told = h }); !errors.Is(err, context.DeadlineExceeded) || told == "" {
		t.Errorf("SetPin while the folder is locked: %v, told %q", err, told)
	}
	lock.Unlock()
	if e, err := SetPin(context.Background(), path, "", false, nil); err != nil || e.Pinned != "" {
		t.Errorf("unpin = %+v, %v", e, err)
	}
	missing := filepath.Join(t.TempDir(), "gone", "x.tar.zst")
	if _, err := SetPin(context.Background(), missing, "", true, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin of a missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Error("pinning a mistyped path created its folder")
	}
}
