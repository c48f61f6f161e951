package store

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/echo-backup/echo-backup/archive"
)

// startSave opens an archive the way saveOnce does, for a save that started at created.
func startSave(t *testing.T, dir string, created time.Time) *archive.Writer {
	t.Helper()
	w, err := archive.Create(filepath.Join(dir, FileName("echo", created)),
		archive.Options{Reserve: 4096, Concurrency: 1, NextPath: NextName(dir, "echo", created)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Abort() })
	return w
}

func commit(t *testing.T, w *archive.Writer, created time.Time, labels map[string]string) string {
	t.Helper()
	m := &archive.Manifest{Created: created, Project: archive.Project{Name: "echo"}, Labels: labels}
	if err := w.Commit(m); err != nil {
		t.Fatalf("commit of the save started at %s: %v", created.Format(time.StampMilli), err)
	}
	return filepath.Base(w.Path())
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := List(dir, "echo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name)
	}
	return out
}

// TestSavesInOneSecond: three saves start in the same second before any has finished, so
// all three begin with the same name; they commit in another order than they started. None
// fails or overwrites another, each gets the next number of the second, and list and latest
// follow the manifests' times, not the numbers. A save after they finished starts on a free
// name straight away.
func TestSavesInOneSecond(t *testing.T) {
	dir := t.TempDir()
	second := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	a, b, c := second.Add(100*time.Millisecond), second.Add(400*time.Millisecond), second.Add(700*time.Millisecond)
	wa, wb, wc := startSave(t, dir, a), startSave(t, dir, b), startSave(t, dir, c)
	got := []string{commit(t, wc, c, nil), commit(t, wa, a, map[string]string{LabelPinned: PinnedPreRestore}), commit(t, wb, b, nil)}
	want := []string{"echo-20261126T030000Z.tar.zst", "echo-20261126T030000Z-2.tar.zst", "echo-20261126T030000Z-3.tar.zst"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("committed as %v, want %v", got, want)
	}
	d := second.Add(900 * time.Millisecond)
	if w := startSave(t, dir, d); filepath.Base(w.Path()) != "echo-20261126T030000Z-4.tar.zst" {
		t.Errorf("a later save of the same second starts as %s", w.Path())
	} else {
		commit(t, w, d, map[string]string{LabelPinned: PinnedPreRestore})
	}
	// Newest first: d (-4), c (plain), b (-3), a (-2).
	order := []string{"echo-20261126T030000Z-4.tar.zst", want[0], want[2], want[1]}
	if got := names(t, dir); !reflect.DeepEqual(got, order) {
		t.Errorf("list order %v, want %v", got, order)
	}
	latest, err := Resolve("latest", dir, "echo", false)
	if err != nil || filepath.Base(latest) != order[0] {
		t.Errorf("latest = %s, %v; want %s", latest, err, order[0])
	}
	// Passing over the pre-restore safety backup d, latest is c.
	latest, err = Resolve("", dir, "echo", true)
	if err != nil || filepath.Base(latest) != want[0] {
		t.Errorf("latest but safety = %s, %v; want %s", latest, err, want[0])
	}
}

// TestSameInstantOrder: backups whose manifests carry the same time (saves before the
// manifest had milliseconds) are ordered by their number in the second, as numbers: -10 is
// newer than -2. A project whose name ends in a number is not mistaken for a numbered one.
func TestSameInstantOrder(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	for _, n := range []int{2, 1, 10} {
		w, err := archive.Create(filepath.Join(dir, numberedName("echo", at, n)), archive.Options{Reserve: 4096, Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		commit(t, w, at, nil)
	}
	want := []string{"echo-20261126T030000Z-10.tar.zst", "echo-20261126T030000Z-2.tar.zst", "echo-20261126T030000Z.tar.zst"}
	if got := names(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("list order %v, want %v", got, want)
	}
	for name, n := range map[string]int{
		"echo-2-20261126T030000Z.tar.zst":   1,
		"echo-2-20261126T030000Z-3.tar.zst": 3,
		"echo-20261126T030000Z-2.tar.zst":   2,
		"echo-7.tar.zst":                    1,
	} {
		if got := nameNumber(name); got != n {
			t.Errorf("nameNumber(%s) = %d, want %d", name, got, n)
		}
	}
	if got := NextName(dir, "echo-2", at)(filepath.Join(dir, "echo-2-20261126T030000Z.tar.zst")); got != filepath.Join(dir, "echo-2-20261126T030000Z-2.tar.zst") {
		t.Errorf("next name after echo-2's first = %s", got)
	}
	if got := NextName(dir, "echo", at)(filepath.Join(dir, numberedName("echo", at, maxPerSecond))); got != "" {
		t.Errorf("next name after the last of the second = %q, want none", got)
	}
}
