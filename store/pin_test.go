package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echo-backup/echo-backup/archive"
)

var clock = time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)

func writeBackup(t *testing.T, dir string, labels map[string]string) string {
	t.Helper()
	clock = clock.Add(time.Hour) // one name per backup
	path := filepath.Join(dir, FileName("echo", clock))
	w, err := archive.Create(path, archive.Options{Reserve: 4096, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(&archive.Manifest{Project: archive.Project{Name: "echo"}, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	return path
}

func pinned(t *testing.T, path string) string {
	t.Helper()
	e, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	return e.Pinned
}

func TestPinUnpin(t *testing.T) {
	dir := t.TempDir()
	plain := writeBackup(t, dir, nil)
	if got := pinned(t, plain); got != "" {
		t.Fatalf("a new backup is pinned: %q", got)
	}
	if err := Pin(plain, ""); err != nil || pinned(t, plain) != PinnedByHand {
		t.Fatalf("pin: %v, %q", err, pinned(t, plain))
	}
	if err := Unpin(plain); err != nil || pinned(t, plain) != "" {
		t.Fatalf("unpin: %v, %q", err, pinned(t, plain))
	}
	if _, err := os.Stat(pinPath(plain)); !os.IsNotExist(err) {
		t.Errorf("unpin of a hand pin left its record: %v", err)
	}

	safety := writeBackup(t, dir, map[string]string{LabelPinned: PinnedPreRestore})
	if got := pinned(t, safety); got != PinnedPreRestore {
		t.Fatalf("label pin: %q", got)
	}
	if err := Unpin(safety); err != nil || pinned(t, safety) != "" {
		t.Fatalf("unpin of a label pin: %v, %q", err, pinned(t, safety))
	}
	if err := Pin(safety, "keep for the audit"); err != nil || pinned(t, safety) != "keep for the audit" {
		t.Fatalf("re-pin: %v, %q", err, pinned(t, safety))
	}
	// A damaged record never unpins what the manifest pins.
	os.WriteFile(pinPath(safety), []byte("{"), 0o600)
	if got := pinned(t, safety); got != PinUnreadable {
		t.Errorf("damaged record: %q", got)
	}

	if err := Pin(filepath.Join(dir, "missing.tar.zst"), ""); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("pin of a missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

func TestRemoveTakesSidecars(t *testing.T) {
	dir := t.TempDir()
	path := writeBackup(t, dir, nil)
	if err := Pin(path, ""); err != nil {
		t.Fatal(err)
	}
	if err := RecordVerification(path, Verification{OK: true}); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "."+filepath.Base(path)+".abc.partial")
	os.WriteFile(other, nil, 0o600)
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != filepath.Base(other) {
		t.Errorf("left %v", ents)
	}
}

// A hand pin whose record cannot be read (written by sudo with 0600, damaged) stays pinned:
// falling back to the manifest's label would unpin it.
func TestUnreadablePinStaysPinned(t *testing.T) {
	dir := t.TempDir()
	damaged := writeBackup(t, dir, nil)
	if err := os.WriteFile(pinPath(damaged), []byte(`{"pinned":tr`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := pinned(t, damaged); got != PinUnreadable {
		t.Errorf("damaged hand pin: %q", got)
	}
	// A folder in its place cannot be read by anyone, root included.
	unreadable := writeBackup(t, dir, nil)
	if err := os.Mkdir(pinPath(unreadable), 0o700); err != nil {
		t.Fatal(err)
	}
	if got := pinned(t, unreadable); got != PinUnreadable {
		t.Errorf("unreadable hand pin: %q", got)
	}
	if os.Geteuid() != 0 {
		private := writeBackup(t, dir, nil)
		if err := Pin(private, ""); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(pinPath(private), 0); err != nil {
			t.Fatal(err)
		}
		if got := pinned(t, private); got != PinUnreadable {
			t.Errorf("a pin record of mode 0: %q", got)
		}
	}
}

// Pins at once each write a temporary file of their own, so none fails and none is lost.
func TestConcurrentPins(t *testing.T) {
	dir := t.TempDir()
	path := writeBackup(t, dir, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				errs <- Pin(path, fmt.Sprintf("pin %d/%d", g, i))
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := pinned(t, path); !strings.HasPrefix(got, "pin ") {
		t.Errorf("after concurrent pins: %q", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("left %v", ents)
	}
}
