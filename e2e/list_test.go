//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echo-backup/echo-backup/store"
)

// listTable runs list in table form and returns its rows keyed by column title. Cells are
// apart by two spaces or more; within one (AGE, a pin's reason) there is at most one.
func (s *Stack) listTable(t *testing.T) []map[string]string {
	t.Helper()
	out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "list")...)
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	gap := regexp.MustCompile(`\s{2,}`)
	lines := nonEmptyLines(out)
	if len(lines) == 0 {
		t.Fatalf("list printed nothing")
	}
	head := gap.Split(strings.TrimSpace(lines[0]), -1)
	var rows []map[string]string
	for _, l := range lines[1:] {
		cells := gap.Split(strings.TrimSpace(l), -1)
		if len(cells) != len(head) {
			t.Fatalf("list row %q has %d cells for %d columns %v", l, len(cells), len(head), head)
		}
		row := map[string]string{}
		for i, h := range head {
			row[h] = cells[i]
		}
		rows = append(rows, row)
	}
	return rows
}

// TestListShowsPins: list's table says which backups are pinned and why (a label from
// down/migrate, pin by hand with and without a reason) and stops saying it after unpin; two
// backups of the same second are both listed, the numbered one first.
func TestListShowsPins(t *testing.T) {
	s := NewStack(t, "custom") // only its project is loaded: nothing runs on the engine
	dir := filepath.Join(s.Dir, "backups")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	at := func(h int) time.Time { return time.Date(2026, 11, 20, h, 0, 0, 0, time.UTC) }
	name := func(h int) string { return store.FileName(s.Name, at(h)) }
	fakeBackup(t, dir, s.Name, at(1), nil)
	fakeBackup(t, dir, s.Name, at(2), map[string]string{store.LabelPinned: store.PinnedPreDown})
	fakeBackup(t, dir, s.Name, at(3), map[string]string{store.LabelPinned: store.PinnedMigrate, "migrate-to": "far"})
	fakeBackup(t, dir, s.Name, at(4), map[string]string{store.LabelPinned: store.PinnedPreRestore})
	fakeBackup(t, dir, s.Name, at(5), nil)
	fakeBackup(t, dir, s.Name, at(6), nil)
	second := strings.TrimSuffix(name(6), store.Ext) + "-2" + store.Ext
	fakeBackupAt(t, filepath.Join(dir, second), s.Name, at(6), map[string]string{"note": "same second"})
	for _, args := range [][]string{{"unpin", name(4)}, {"pin", name(5), "--reason", "keep for audit"}, {"pin", name(6)}} {
		if out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), args...)...); code != 0 {
			t.Fatalf("%v: exit %d: %s%s", args, code, out, errOut)
		}
	}

	rows := s.listTable(t)
	var got [][3]string
	for _, r := range rows {
		got = append(got, [3]string{r["NAME"], r["PINNED"], r["LABELS"]})
	}
	want := [][3]string{
		{second, "-", "note=same second"},
		{name(6), "by hand", "-"},
		{name(5), "keep for audit", "-"},
		{name(4), "-", "-"},
		{name(3), "migrate", "migrate-to=far"},
		{name(2), "pre-down", "-"},
		{name(1), "-", "-"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("list table (name, pinned, labels):\n got %q\nwant %q", got, want)
	}
}

// TestSavesShareASecond: two real saves run at once while every name of the coming minutes
// is taken by a file that is not a backup. Both succeed on numbered names of their second,
// the files in the way are untouched, and both backups verify.
func TestSavesShareASecond(t *testing.T) {
	s := NewStack(t, "custom")
	s.Up()
	dir := filepath.Join(s.Dir, "backups")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var blockers []string
	for i := -2; i < 300; i++ {
		p := filepath.Join(dir, store.FileName(s.Name, now.Add(time.Duration(i)*time.Second)))
		if err := os.WriteFile(p, []byte("not yours"), 0o600); err != nil {
			t.Fatal(err)
		}
		blockers = append(blockers, p)
	}

	// Start both at the top of a second, so that they most likely meet in it.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	var wg sync.WaitGroup
	runs := make([]Result, 2)
	for i := range runs {
		wg.Add(1)
		go func() { // no t.Fatal here: only the test's goroutine may end it
			defer wg.Done()
			runs[i] = s.Run(RunOpts{}, "docker", append(append([]string{"echobackup"}, s.ProjectArgs()...), "save", "--format", "json")...)
		}()
	}
	wg.Wait()
	res := make([]saveJSON, len(runs))
	for i, r := range runs {
		if r.Code != 0 {
			t.Fatalf("save %d: exit %d: %s", i+1, r.Code, r.Stderr)
		}
		if err := json.Unmarshal([]byte(r.Stdout), &res[i]); err != nil {
			t.Fatalf("save %d json: %v\n%s", i+1, err, r.Stdout)
		}
	}
	numbered := regexp.MustCompile(`^` + regexp.QuoteMeta(s.Name) + `-\d{8}T\d{6}Z-(\d+)\.tar\.zst$`)
	for _, r := range res {
		if !numbered.MatchString(filepath.Base(r.Path)) {
			t.Errorf("save wrote %s, want a numbered name", r.Path)
		}
		if out, code := s.verify(t, r.Path); code != 0 {
			t.Errorf("verify %s: exit %d\n%s", r.Path, code, out)
		}
	}
	if res[0].Path == res[1].Path {
		t.Fatalf("both saves report %s", res[0].Path)
	}
	t.Logf("the two saves wrote %s and %s", filepath.Base(res[0].Path), filepath.Base(res[1].Path))
	for _, p := range blockers {
		if b, err := os.ReadFile(p); err != nil || string(b) != "not yours" {
			t.Errorf("%s changed: %q, %v", p, b, err)
		}
	}
	if entries := s.list(t); len(entries) != 2 {
		t.Errorf("list = %+v, want the two saves", entries)
	}
}
