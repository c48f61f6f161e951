package backup

import (
	"time"

	"github.com/echo-backup/echo-backup/store"
)

// The backup folder's names, as package backup had them before the folder became package
// store. Files that other branches are rewriting at the same time (plugin/stream.go,
// save.go, restore.go, migrate.go, restore/, e2e/) still use them; new code uses store.
const (
	Ext              = store.Ext
	DirEnv           = store.DirEnv
	LabelPinned      = store.LabelPinned
	PinnedPreRestore = store.PinnedPreRestore
	PinnedPreDown    = store.PinnedPreDown
	PinnedMigrate    = store.PinnedMigrate
	PinnedByHand     = store.PinnedByHand
)

type (
	Entry        = store.Entry
	Verification = store.Verification
	Lock         = store.Lock
)

var ErrBusy = store.ErrBusy

func Dir(flag, projectDir string) string { return store.Dir(flag, projectDir) }

func FileName(project string, t time.Time) string { return store.FileName(project, t) }

func Resolve(arg, dir, project string, skipSafety bool) (string, error) {
	return store.Resolve(arg, dir, project, skipSafety)
}

func List(dir, project string) ([]Entry, error) { return store.List(dir, project) }

func PrepareDir(dir string) error { return store.PrepareDir(dir) }

func TryLock(dir string) (unlock func(), err error) { return store.TryLock(dir) }

func Remove(path string) error { return store.Remove(path) }

func WriteRecord(path string, data []byte) error { return store.WriteRecord(path, data) }

func SyncDir(dir string) error { return store.SyncDir(dir) }
