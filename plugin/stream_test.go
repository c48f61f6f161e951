package plugin

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/echo-backup/echo-backup/leftover"
)

// Taking the folder's lock before a stream removes the spools and partial archives killed
// commands left, whatever their age, and keeps the spools in use and everything else.
func TestTidySpools(t *testing.T) {
	dir := t.TempDir()
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, spoolOut+"1.partial"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(spoolIn + "2.tar.zst.partial")
	write(".echo-20260101T000000Z.tar.zst.123.partial")
	write("echo-20260101T000000Z.tar.zst")
	busy, release, err := leftover.MkdirTemp(dir, spoolOut+"*.partial")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	in, err := leftover.CreateTemp(dir, spoolIn+"*.tar.zst.partial")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()

	tidySpools(dir)
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	want := []string{".echobackup.lock", filepath.Base(busy), filepath.Base(in.Name()), "echo-20260101T000000Z.tar.zst"}
	sort.Strings(want)
	if !reflect.DeepEqual(left, want) {
		t.Errorf("left %v\nwant %v", left, want)
	}
}
