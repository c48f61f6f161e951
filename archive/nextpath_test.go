package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// numbered is a NextPath that tries b-2, b-3, ... up to b-<last>.
func numbered(last int) func(string) string {
	return func(taken string) string {
		base := strings.TrimSuffix(filepath.Base(taken), ".tar.zst")
		n := 1
		if i := strings.LastIndex(base, "-"); i >= 0 {
			fmt.Sscan(base[i+1:], &n)
			base = base[:i]
		}
		if n+1 > last {
			return ""
		}
		return filepath.Join(filepath.Dir(taken), fmt.Sprintf("%s-%d.tar.zst", base, n+1))
	}
}

// TestNextPathAtCreateAndCommit: a name taken before Create and another taken while the
// archive is written both stay as they were; the archive lands on the next free name, which
// Path reports, and reads back whole.
func TestNextPathAtCreateAndCommit(t *testing.T) {
	dir := t.TempDir()
	first, second, third := filepath.Join(dir, "b.tar.zst"), filepath.Join(dir, "b-2.tar.zst"), filepath.Join(dir, "b-3.tar.zst")
	os.WriteFile(first, []byte("first"), 0o600)
	w, err := Create(first, Options{NextPath: numbered(9)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if w.Path() != second {
		t.Fatalf("Create chose %s, want %s", w.Path(), second)
	}
	addFile(t, w, "files/a", "aaa")
	if _, err := w.AddStream("db.sql", 0o600, time.Now(), bytes.NewReader([]byte("select 1;\n"))); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(second, []byte("second"), 0o600) // another save committed meanwhile
	if err := w.Commit(&Manifest{}); err != nil {
		t.Fatalf("Commit with the name taken: %v", err)
	}
	if w.Path() != third {
		t.Fatalf("committed to %s, want %s", w.Path(), third)
	}
	for path, want := range map[string]string{first: "first", second: "second"} {
		if data, _ := os.ReadFile(path); string(data) != want {
			t.Errorf("%s overwritten: %q", path, data)
		}
	}
	m, err := ReadManifest(third)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Members) != 2 {
		t.Errorf("members %+v", m.Members)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got, want := listDir(t, dir), []string{"b-2.tar.zst", "b-3.tar.zst", "b.tar.zst"}; !reflect.DeepEqual(got, want) {
		t.Errorf("folder holds %v, want %v", got, want)
	}
}

// TestNextPathGivesUp: when NextPath has no more names, Commit fails with fs.ErrExist, as it
// does without one, and overwrites nothing.
func TestNextPathGivesUp(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "b.tar.zst"), filepath.Join(dir, "b-2.tar.zst")
	w, err := Create(first, Options{NextPath: numbered(2)})
	if err != nil {
		t.Fatal(err)
	}
	addFile(t, w, "files/a", "aaa")
	os.WriteFile(first, []byte("first"), 0o600)
	os.WriteFile(second, []byte("second"), 0o600)
	if err := w.Commit(&Manifest{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Commit with every name taken: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{first: "first", second: "second"} {
		if data, _ := os.ReadFile(path); string(data) != want {
			t.Errorf("%s overwritten: %q", path, data)
		}
	}
	if names := listDir(t, dir); len(names) != 2 {
		t.Errorf("folder holds %v", names)
	}
	if _, err := Create(first, Options{NextPath: numbered(2)}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create with every name taken: %v", err)
	}
}
