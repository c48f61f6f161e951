package plugin

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// Spools a killed save or restore left are removed after a day; a young one, one whose folder
// still receives its archive, and anything else in the folder stay.
func TestRemoveStaleSpools(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	old := now.Add(-25 * time.Hour)
	touch := func(path string, at time.Time, folder bool) {
		t.Helper()
		var err error
		if folder {
			err = os.Mkdir(path, 0o700)
		} else {
			err = os.WriteFile(path, []byte("x"), 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	touch(filepath.Join(dir, spoolOut+"1.partial"), old, true)
	touch(filepath.Join(dir, spoolIn+"2.tar.zst.partial"), old, false)
	touch(filepath.Join(dir, spoolIn+"3.tar.zst.partial"), now.Add(-time.Hour), false)
	busy := filepath.Join(dir, spoolOut+"4.partial")
	touch(busy, old, true)
	touch(filepath.Join(busy, "echo.tar.zst"), now.Add(-time.Minute), false)
	os.Chtimes(busy, old, old)                                                          // creating the archive touched the folder
	touch(filepath.Join(dir, ".echo-20260101T000000Z.tar.zst.123.partial"), old, false) // a save's own
	touch(filepath.Join(dir, "echo-20260101T000000Z.tar.zst"), old, false)

	var stderr bytes.Buffer
	removeStaleSpools(&stderr, dir, now)
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	want := []string{spoolIn + "3.tar.zst.partial", spoolOut + "4.partial",
		".echo-20260101T000000Z.tar.zst.123.partial", "echo-20260101T000000Z.tar.zst"}
	sort.Strings(want)
	if !reflect.DeepEqual(left, want) {
		t.Errorf("left %v\nwant %v", left, want)
	}
	if n := strings.Count(stderr.String(), "did not finish"); n != 2 {
		t.Errorf("told of %d removals:\n%s", n, stderr.String())
	}
}
