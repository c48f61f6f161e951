// Package store is the backup folder: the archives' names, listing them and resolving
// "latest", the records kept beside each (verified, pinned), the files written into it safely
// (WriteRecord, SyncDir), and its lock, a handle the command that takes it passes down. It
// reads manifests through archive and knows nothing of the engine or the project: schedule and
// hooks use it with a small dependency graph, backup and restore on top of it.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/echo-backup/echo-backup/archive"
)

// Ext is the extension of complete backups; anything else in the folder is not one.
const Ext = ".tar.zst"

// DirEnv overrides the default backup folder (<project folder>/backups).
const DirEnv = "ECHOBACKUP_DIR"

// Dir is where the project's backups live: --output, else $ECHOBACKUP_DIR, else ./backups.
func Dir(flag, projectDir string) string {
	switch {
	case flag != "":
		return flag
	case os.Getenv(DirEnv) != "":
		return os.Getenv(DirEnv)
	}
	return filepath.Join(projectDir, "backups")
}

// FileName is <project>-<UTC time>.tar.zst; the time sorts as text and says when at a glance.
func FileName(project string, t time.Time) string {
	return numberedName(project, t, 1)
}

const nameTime = "20060102T150405Z"

// numberedName is the name of the n-th backup of project taken in the second t: two saves can
// meet there (a scheduled one and one by hand, down right after a save). The first has no
// number, then <project>-<time>-2.tar.zst and so on.
func numberedName(project string, t time.Time, n int) string {
	if n <= 1 {
		return fmt.Sprintf("%s-%s%s", project, t.UTC().Format(nameTime), Ext)
	}
	return fmt.Sprintf("%s-%s-%d%s", project, t.UTC().Format(nameTime), n, Ext)
}

// nameNumber is n of a numberedName, 1 for any other name.
func nameNumber(name string) int {
	m := numberedRE.FindStringSubmatch(name)
	if m == nil {
		return 1
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 1
	}
	return n
}

var numberedRE = regexp.MustCompile(`-\d{8}T\d{6}Z-(\d{1,9})` + regexp.QuoteMeta(Ext) + `$`)

// Entry is one complete backup in the folder.
type Entry struct {
	Path     string            `json:"path"`
	Name     string            `json:"name"`
	Size     int64             `json:"size"`
	Created  time.Time         `json:"created"`
	Project  string            `json:"project"`
	Tables   int               `json:"tables"`
	Rows     int64             `json:"rows"`
	Files    int               `json:"files"`
	Labels   map[string]string `json:"labels,omitempty"`
	Pinned   string            `json:"pinned,omitempty"` // why prune must keep it (backup/pin.go)
	Verified *Verification     `json:"verified,omitempty"`
	Manifest *archive.Manifest `json:"-"`
}

// List returns the folder's backups of project (all projects when empty), newest first. Files
// without a readable manifest (partial, foreign, damaged at the start) are not backups.
func List(dir, project string) ([]Entry, error) {
	names, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading backup folder %s: %w", dir, err)
	}
	var out []Entry
	for _, d := range names {
		if !isBackupName(d.Name()) || !d.Type().IsRegular() {
			continue
		}
		e, err := Inspect(filepath.Join(dir, d.Name()))
		if err != nil || (project != "" && e.Project != project) {
			continue
		}
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return newer(out[i], out[j]) })
	return out, nil
}

// newer orders by the manifest's time; within the same instant (backups from before it had
// sub-second precision), the later name of the second.
func newer(a, b Entry) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.After(b.Created)
	}
	if na, nb := nameNumber(a.Name), nameNumber(b.Name); na != nb {
		return na > nb
	}
	return a.Name > b.Name
}

func isBackupName(name string) bool {
	return strings.HasSuffix(name, Ext) && !strings.HasPrefix(name, ".")
}

// Inspect reads a backup's manifest and the record of its last verification.
func Inspect(path string) (*Entry, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	m, err := archive.ReadManifest(path)
	if err != nil {
		return nil, err
	}
	e := &Entry{Path: path, Name: filepath.Base(path), Size: st.Size(), Created: m.Created,
		Project: m.Project.Name, Rows: m.Rows(), Files: m.Files(), Labels: m.Labels, Manifest: m}
	if m.Database != nil {
		e.Tables = len(m.Database.Tables)
	}
	e.Verified = readVerification(path, st)
	e.Pinned = pinReason(path, m.Labels)
	return e, nil
}

// Resolve turns "latest", "" or a path into a backup's path. With skipSafety, latest passes
// over the safety backups a restore takes of the state it replaces: after a restore that was
// rolled back, the newest file is the state the user wanted to leave.
func Resolve(arg, dir, project string, skipSafety bool) (string, error) {
	if arg != "" && arg != "latest" {
		return arg, nil
	}
	entries, err := List(dir, project)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if !skipSafety || e.Labels[LabelPinned] != PinnedPreRestore {
			return e.Path, nil
		}
	}
	return "", fmt.Errorf("no backup of project %q in %s", project, dir)
}

// Labels a backup's manifest can carry. A pinned backup is kept by prune whatever the policy;
// the value says why it was taken.
const (
	LabelPinned      = "pinned"
	PinnedPreRestore = "pre-restore"
	PinnedPreDown    = "pre-down"
	PinnedMigrate    = "migrate"
)

// Verification is what the last verify of a backup found; kept beside it in a hidden file so
// that list can show it without reading the archive again.
type Verification struct {
	At   time.Time `json:"at"`
	Deep bool      `json:"deep"`
	OK   bool      `json:"ok"`
	// Size and ModTime tie the record to the file as it was verified.
	Size    int64     `json:"size"`
	ModTime time.Time `json:"modTime"`
}

func verificationPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".verified")
}

func readVerification(path string, st os.FileInfo) *Verification {
	b, err := os.ReadFile(verificationPath(path))
	if err != nil {
		return nil
	}
	var v Verification
	if json.Unmarshal(b, &v) != nil || v.Size != st.Size() || !v.ModTime.Equal(st.ModTime()) {
		return nil
	}
	return &v
}

func RecordVerification(path string, v Verification) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	v.Size, v.ModTime = st.Size(), st.ModTime()
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(verificationPath(path), b, 0o600)
}

// LastVerified is the newest backup of a project whose last verification passed.
type LastVerified struct {
	Path       string    `json:"path"`
	Created    time.Time `json:"created"`
	VerifiedAt time.Time `json:"verifiedAt"`
	Deep       bool      `json:"deep"`
}

// FindLastVerified is nil when dir holds no verified backup of project, or cannot be read:
// status reports it and does not fail on it.
func FindLastVerified(dir, project string) *LastVerified {
	entries, err := List(dir, project)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		if e.Verified != nil && e.Verified.OK {
			return &LastVerified{Path: e.Path, Created: e.Created, VerifiedAt: e.Verified.At, Deep: e.Verified.Deep}
		}
	}
	return nil
}

// CreateCopy starts a copy of a stream-form archive in dir, named as a save of project at
// created would be once archive.StreamFile.Keep names it.
func CreateCopy(dir, project string, created time.Time) (*archive.StreamFile, error) {
	if err := PrepareDir(dir); err != nil {
		return nil, err
	}
	created = created.UTC().Truncate(time.Millisecond)
	return archive.CreateStreamFile(filepath.Join(dir, FileName(project, created)), NextName(dir, project, created))
}
