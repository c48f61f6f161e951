//go:build e2e

package e2e

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/echo-backup/echo-backup/archive"
	"github.com/echo-backup/echo-backup/leftover"
	"github.com/echo-backup/echo-backup/store"
)

type pruneJSON struct {
	DryRun  bool `json:"dryRun"`
	Kept    int  `json:"kept"`
	Removed int  `json:"removed"`
	Backups []struct {
		Name   string   `json:"name"`
		Action string   `json:"action"`
		Why    []string `json:"why"`
	} `json:"backups"`
}

// fakeBackup writes a real archive (manifest first, one file member) whose manifest says it
// was taken of project at created; it is what list and prune read, without a database.
func fakeBackup(t *testing.T, dir, project string, created time.Time, labels map[string]string) string {
	t.Helper()
	return fakeBackupAt(t, filepath.Join(dir, store.FileName(project, created)), project, created, labels)
}

// fakeBackupAt is fakeBackup under another name, such as a second backup of the same second.
// Its manifest says it was taken on this host of the project in the backup folder's parent, as
// a save of the stack writes into <project folder>/backups.
func fakeBackupAt(t *testing.T, path, project string, created time.Time, labels map[string]string) string {
	t.Helper()
	host, _ := os.Hostname()
	return fakeBackupOf(t, path, project, host, filepath.Dir(filepath.Dir(path)), created, labels)
}

// fakeBackupOf is fakeBackupAt as taken on host of the deployment in workingDir.
func fakeBackupOf(t *testing.T, path, project, host, workingDir string, created time.Time, labels map[string]string) string {
	t.Helper()
	// The smallest manifest region keeps 60 archives at a few KB each.
	w, err := archive.Create(path, archive.Options{Reserve: 4096, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("taken %s\n", created)
	hdr := &tar.Header{Name: "files/data/note.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: created}
	if err := w.Add(hdr, strings.NewReader(body)); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	m := &archive.Manifest{Created: created, Host: host, Labels: labels,
		Tool:    archive.Tool{Name: "echo-backup", Version: "e2e"},
		Project: archive.Project{Name: project, WorkingDir: workingDir}}
	if err := w.Commit(m); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	return path
}

func (s *Stack) prune(t *testing.T, args ...string) pruneJSON {
	t.Helper()
	r := s.Run(RunOpts{Env: []string{"TZ=UTC"}}, "docker", append(append(append([]string{"echobackup"}, s.ProjectArgs()...),
		"prune", "--format", "json"), args...)...)
	if r.Code != 0 {
		t.Fatalf("prune %v: exit %d: %s", args, r.Code, r.Stderr)
	}
	var res pruneJSON
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("prune json: %v\n%s", err, r.Stdout)
	}
	return res
}

func keptNames(res pruneJSON) []string {
	var names []string
	for _, b := range res.Backups {
		if b.Action == "keep" {
			names = append(names, b.Name)
		}
	}
	sort.Strings(names)
	return names
}

func why(res pruneJSON, name string) string {
	for _, b := range res.Backups {
		if b.Name == name {
			return strings.Join(b.Why, ", ")
		}
	}
	return "(not listed)"
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestPruneSixtyDailies: 60 nightly archives; prune --dry-run with daily 7, weekly 4, monthly 3
// keeps exactly those periods and removes nothing; then pinned (by label and by hand) and the
// newest verified backup stay, foreign, damaged and live partial files are never touched (a
// partial whose owner is gone is swept when prune takes the lock), and a real
// prune removes exactly what the dry run announced, sidecars included.
func TestPruneSixtyDailies(t *testing.T) {
	s := NewStack(t, "custom") // only its project is loaded: nothing runs on the engine
	dir := filepath.Join(s.Dir, "backups")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	newest := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	day := func(month time.Month, d int) string {
		return store.FileName(s.Name, time.Date(2026, month, d, 3, 0, 0, 0, time.UTC))
	}
	for i := 0; i < 60; i++ {
		fakeBackup(t, dir, s.Name, newest.AddDate(0, 0, -i), nil)
	}
	policy := []string{"--keep-last", "0", "--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "3"}

	res := s.prune(t, append(policy, "--dry-run")...)
	// 2026-11-25 is a Wednesday of ISO week 48; weeks 47, 46, 45 end on Sundays 22, 15, 8.
	want := []string{day(9, 30), day(10, 31), day(11, 8), day(11, 15),
		day(11, 19), day(11, 20), day(11, 21), day(11, 22), day(11, 23), day(11, 24), day(11, 25)}
	sort.Strings(want)
	if got := keptNames(res); !reflect.DeepEqual(got, want) || len(res.Backups) != 60 || !res.DryRun || res.Removed != 0 {
		t.Fatalf("dry run kept %v\nwant %v\n(%d listed, removed %d)", got, want, len(res.Backups), res.Removed)
	}
	for name, reason := range map[string]string{
		day(11, 25): "daily 2026-11-25, weekly 2026-W48, monthly 2026-11",
		day(11, 8):  "weekly 2026-W45",
		day(9, 30):  "monthly 2026-09",
		day(11, 18): "outside the policy",
	} {
		if got := why(res, name); got != reason {
			t.Errorf("%s: why %q, want %q", name, got, reason)
		}
	}
	if n := len(dirNames(t, dir)); n != 60 {
		t.Fatalf("the dry run changed the folder: %d entries", n)
	}
	out, _, code := s.EchoBackup(append(append(s.ProjectArgs(), "prune", "--dry-run"), policy...)...)
	if code != 0 || !strings.Contains(out, "KEEP/REMOVE") || !strings.Contains(out, "REMOVE (dry run)") {
		t.Errorf("table output: exit %d\n%s", code, out)
	}

	// What prune must keep or never touch.
	labelPinned := fakeBackup(t, dir, s.Name, time.Date(2026, 10, 15, 12, 0, 0, 0, time.UTC),
		map[string]string{store.LabelPinned: store.PinnedPreRestore})
	handPinned := filepath.Join(dir, day(10, 10))
	if out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "pin", filepath.Base(handPinned))...); code != 0 ||
		!strings.Contains(out, "pinned (by hand)") {
		t.Fatalf("pin: exit %d: %s%s", code, out, errOut)
	}
	verified := filepath.Join(dir, day(10, 5))
	writeVerified(t, verified, true)
	olderVerified := filepath.Join(dir, day(10, 1))
	writeVerified(t, olderVerified, true)
	stale := filepath.Join(dir, day(10, 2))
	if err := os.WriteFile(filepath.Join(dir, "."+filepath.Base(stale)+".verified"), []byte(`{"ok":true,"size":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := fakeBackup(t, dir, "someone-else", time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC), nil)
	damaged := filepath.Join(dir, store.FileName(s.Name, time.Date(2026, 2, 1, 3, 0, 0, 0, time.UTC)))
	// A partial archive a live save holds (this test process) stays; one a killed save left goes.
	held, err := leftover.CreateTemp(dir, "."+store.FileName(s.Name, time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC))+".*.partial")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	partial := held.Name()
	killed := filepath.Join(dir, "."+store.FileName(s.Name, time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC))+".1234.partial")
	for _, p := range []string{damaged, partial, killed} {
		if err := os.WriteFile(p, []byte("not an archive"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	res = s.prune(t, append(policy, "--dry-run")...)
	want2 := append(append([]string{}, want...), filepath.Base(labelPinned), filepath.Base(handPinned), filepath.Base(verified))
	sort.Strings(want2)
	if got := keptNames(res); !reflect.DeepEqual(got, want2) || len(res.Backups) != 61 {
		t.Fatalf("dry run with pins kept %v\nwant %v (%d listed)", got, want2, len(res.Backups))
	}
	for name, reason := range map[string]string{
		filepath.Base(labelPinned):   "pinned (pre-restore)",
		filepath.Base(handPinned):    "pinned (by hand)",
		filepath.Base(verified):      "newest verified",
		filepath.Base(olderVerified): "outside the policy",
		filepath.Base(stale):         "outside the policy",
	} {
		if got := why(res, name); got != reason {
			t.Errorf("%s: why %q, want %q", name, got, reason)
		}
	}

	res = s.prune(t, policy...)
	if res.Removed != 61-len(want2) || res.DryRun {
		t.Errorf("prune removed %d, want %d", res.Removed, 61-len(want2))
	}
	left := dirNames(t, dir)
	wantLeft := append(append([]string{}, want2...), filepath.Base(foreign), filepath.Base(damaged), filepath.Base(partial),
		"."+filepath.Base(handPinned)+".pinned", "."+filepath.Base(verified)+".verified", ".echobackup.lock")
	sort.Strings(wantLeft)
	if !reflect.DeepEqual(left, wantLeft) {
		t.Fatalf("after prune the folder holds\n%v\nwant\n%v", left, wantLeft)
	}

	// Unpinned, both pinned backups are the policy's to decide again: the label's pin is
	// overridden by a record, the hand pin is dropped.
	for _, p := range []string{labelPinned, handPinned} {
		if out, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "unpin", p)...); code != 0 || !strings.Contains(out, "not pinned") {
			t.Fatalf("unpin %s: exit %d: %s%s", p, code, out, errOut)
		}
	}
	res = s.prune(t, policy...)
	if res.Removed != 2 {
		t.Errorf("after unpin prune removed %d, want 2: %+v", res.Removed, res.Backups)
	}
	for _, p := range []string{labelPinned, handPinned} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "."+filepath.Base(labelPinned)+".pinned")); err == nil {
		t.Errorf("the unpin record of %s outlived its archive", labelPinned)
	}

	if _, errOut, code := s.EchoBackup(append(s.ProjectArgs(), "prune", "--keep-last", "0", "--keep-daily", "0",
		"--keep-weekly", "0", "--keep-monthly", "0")...); code != 2 || !strings.Contains(errOut, "keeps nothing") {
		t.Errorf("an empty policy: exit %d: %s", code, errOut)
	}
}

// writeVerified records a passed verification the way verify does (backup/store.go): tied to
// the file's size and modification time. The fake archives hold no dump, so verify itself
// cannot pass on them.
func writeVerified(t *testing.T, path string, ok bool) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(store.Verification{At: time.Now().UTC(), OK: ok, Size: st.Size(), ModTime: st.ModTime()})
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".verified"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPruneOtherDeployments: a backup folder shared by two deployments that both default to
// the same project name (prod and staging, a shared $ECHOBACKUP_DIR or NFS folder), plus
// backups copied from another host after a migration. prune counts only this deployment's
// backups and never removes the others; a backup dated years ahead is kept without taking a
// slot; spools a killed stream left are removed, one in use stays, however old.
func TestPruneOtherDeployments(t *testing.T) {
	s := NewStack(t, "custom") // only its project is loaded: nothing runs on the engine
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	now := time.Now().UTC().Truncate(time.Second)
	var ours, others []string
	for i := 1; i <= 5; i++ {
		at := now.AddDate(0, 0, -i)
		ours = append(ours, fakeBackupOf(t, filepath.Join(dir, store.FileName(s.Name, at)), s.Name, host, s.Dir, at, nil))
		// prod's nightly, an hour after ours: newer, so a shared series would keep it instead.
		at = at.Add(time.Hour)
		others = append(others, fakeBackupOf(t, filepath.Join(dir, store.FileName(s.Name, at)), s.Name, host, "/srv/prod/echo", at, nil))
	}
	at := now.AddDate(0, 0, -2).Add(2 * time.Hour) // the source's, copied here after a migration
	copied := fakeBackupOf(t, filepath.Join(dir, store.FileName(s.Name, at)), s.Name, "oldbox", s.Dir, at, nil)
	others = append(others, copied)
	future := now.AddDate(3, 0, 0) // a clock gone wrong
	ahead := fakeBackupOf(t, filepath.Join(dir, store.FileName(s.Name, future)), s.Name, host, s.Dir, future, nil)

	old := now.Add(-49 * time.Hour)
	staleOut := filepath.Join(dir, ".stdout-1234.partial")
	staleIn := filepath.Join(dir, ".stdin-5678"+store.Ext+".partial")
	// A spool a live restore - holds (this test process) stays, however old.
	live, err := leftover.CreateTemp(dir, ".stdin-*"+store.Ext+".partial")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	young := live.Name()
	if err := os.Mkdir(staleOut, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(staleOut, "x"+store.Ext), staleIn, young} {
		if err := os.WriteFile(p, []byte("a stream cut short"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{filepath.Join(staleOut, "x"+store.Ext), staleOut, staleIn, young} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}

	policy := []string{"-o", dir, "--keep-last", "3", "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0"}
	res := s.prune(t, append(policy, "--dry-run")...)
	var want []string
	for _, p := range append(append([]string{ahead}, ours[:3]...), others...) {
		want = append(want, filepath.Base(p))
	}
	sort.Strings(want)
	if got := keptNames(res); !reflect.DeepEqual(got, want) || len(res.Backups) != 12 {
		t.Fatalf("dry run kept %v\nwant %v (%d listed)", got, want, len(res.Backups))
	}
	for name, reason := range map[string]string{
		filepath.Base(ahead):     "dated in the future",
		filepath.Base(ours[0]):   "last 1 of 3",
		filepath.Base(ours[2]):   "last 3 of 3",
		filepath.Base(ours[3]):   "outside the policy",
		filepath.Base(others[4]): "another deployment (" + host + ":/srv/prod/echo)",
		filepath.Base(copied):    "another deployment (oldbox:" + s.Dir + ")",
	} {
		if got := why(res, name); got != reason {
			t.Errorf("%s: why %q, want %q", name, got, reason)
		}
	}
	out, errOut, code := s.EchoBackup(append(append(s.ProjectArgs(), "prune", "--dry-run"), policy...)...)
	if code != 0 || !strings.Contains(out, "another deployment ("+host+":/srv/prod/echo)") ||
		!strings.Contains(errOut, "in the future") {
		t.Errorf("table output: exit %d\n%s%s", code, out, errOut)
	}
	for _, p := range []string{staleOut, staleIn} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("a dry run removed %s: %v", p, err)
		}
	}

	r := s.Run(RunOpts{Env: []string{"TZ=UTC"}}, "docker", append(append(append([]string{"echobackup"}, s.ProjectArgs()...),
		"prune", "--format", "json"), policy...)...)
	if r.Code != 0 || !strings.Contains(r.Stderr, "did not finish") {
		t.Fatalf("prune: exit %d\n%s", r.Code, r.Stderr)
	}
	for _, p := range append(append([]string{ahead, young}, ours[:3]...), others...) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("prune removed %s: %v", p, err)
		}
	}
	for _, p := range append([]string{staleOut, staleIn}, ours[3:]...) {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there: %v", p, err)
		}
	}

	// A folder prune cannot lock: an error, and no JSON null on stdout for a script to read.
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r = s.Run(RunOpts{}, "docker", append(append([]string{"echobackup"}, s.ProjectArgs()...),
		"prune", "--format", "json", "-o", filepath.Join(file, "sub"))...)
	if r.Code == 0 || r.Stdout != "" {
		t.Errorf("prune into an unusable folder: exit %d, stdout %q", r.Code, r.Stdout)
	}

	// save --prune with the archive going to stdout would prune a folder it never wrote to.
	r = s.Run(RunOpts{}, "docker", append(append([]string{"echobackup"}, s.ProjectArgs()...), "save", "--output", "-", "--prune")...)
	if r.Code != 2 || !strings.Contains(r.Stderr, "--prune cannot be used with --output -") || r.Stdout != "" {
		t.Errorf("save --output - --prune: want exit 2, got %d\n%s", r.Code, r.Stderr)
	}
}

// TestPinWaitsForPrune: pin takes the folder's lock, so a pin cannot land between a prune's
// listing and its removals; once it has the lock it finds the archive gone and says so,
// instead of printing "pinned" for a deleted backup.
func TestPinWaitsForPrune(t *testing.T) {
	s := NewStack(t, "custom")
	dir := filepath.Join(s.Dir, "backups")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := fakeBackup(t, dir, s.Name, time.Now().Add(-time.Hour), nil)
	unlock, err := store.TryLock(dir) // this test plays the prune
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Result, 1)
	go func() {
		done <- s.Run(RunOpts{}, "docker", append(append([]string{"echobackup"}, s.ProjectArgs()...), "pin", filepath.Base(path))...)
	}()
	select {
	case r := <-done:
		unlock()
		t.Fatalf("pin did not wait for the folder's lock: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	case <-time.After(3 * time.Second):
	}
	if err := store.Remove(path); err != nil {
		t.Fatal(err)
	}
	unlock()
	r := <-done
	if r.Code == 0 || strings.Contains(r.Stdout, "pinned") || !strings.Contains(r.Stderr, "no backup") {
		t.Errorf("pin of a backup pruned meanwhile: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "Waiting for another echobackup command") {
		t.Errorf("pin did not say it waits:\n%s", r.Stderr)
	}
	if left := dirNames(t, dir); !reflect.DeepEqual(left, []string{".echobackup.lock"}) {
		t.Errorf("left in the folder: %v", left)
	}
}
