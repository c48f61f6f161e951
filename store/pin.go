package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/echo-backup/echo-backup/leftover"
)

// PinnedByHand is the pin reason `pin` records when the user gives none.
const PinnedByHand = "by hand"

// pinRecord is kept beside a backup in the hidden file .<name>.pinned. Pinned false overrides a
// pin carried by the manifest's label, which cannot be changed without rewriting the archive.
type pinRecord struct {
	Pinned bool      `json:"pinned"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

func pinPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".pinned")
}

// PinUnreadable is the pin reason of a backup whose pin record exists but cannot be read or
// parsed: a hand pin written by another user (sudo, 0600) must not read as "unpinned".
const PinUnreadable = "pin record unreadable"

// pinReason is why the backup is pinned, "" when it is not: the record wins over the label.
func pinReason(path string, labels map[string]string) string {
	b, err := os.ReadFile(pinPath(path))
	if errors.Is(err, os.ErrNotExist) {
		return labels[LabelPinned]
	}
	var r pinRecord
	if err != nil || json.Unmarshal(b, &r) != nil {
		return PinUnreadable
	}
	if !r.Pinned {
		return ""
	}
	if r.Reason == "" {
		return PinnedByHand
	}
	return r.Reason
}

// Pin keeps the backup from prune whatever the policy says.
func Pin(path, reason string) error {
	if _, err := Inspect(path); err != nil {
		return fmt.Errorf("pinning %s: %w", path, err)
	}
	if reason == "" {
		reason = PinnedByHand
	}
	return writePin(path, pinRecord{Pinned: true, Reason: reason, At: time.Now().UTC()})
}

// Unpin lets prune's policy decide about the backup again. A pin from the manifest's label is
// overridden by a record; a pin by hand is simply removed.
func Unpin(path string) error {
	e, err := Inspect(path)
	if err != nil {
		return fmt.Errorf("unpinning %s: %w", path, err)
	}
	if e.Labels[LabelPinned] != "" {
		return writePin(path, pinRecord{Pinned: false, At: time.Now().UTC()})
	}
	if err := os.Remove(pinPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpinning %s: %w", path, err)
	}
	return nil
}

// writePin replaces the record in one rename.
func writePin(path string, r pinRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := WriteRecord(pinPath(path), b); err != nil {
		return fmt.Errorf("recording the pin of %s: %w", path, err)
	}
	return nil
}

// WriteRecord replaces one of the small files kept in the backup folder (a pin, the last
// scheduled run, the ping URL) in one rename, readable by its owner only. The temporary file
// is a new one each time: two writers at once never share it, and a leftover's mode is never
// reused.
func WriteRecord(path string, data []byte) error {
	f, err := leftover.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*"+leftover.RecordSuffix)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		// Synced before the rename, and the folder after it: after a power cut the record is
		// the old one or the new one, never an empty file (restore's journal relies on it).
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir makes a folder's entries (a rename, a removal) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Remove deletes a backup and the hidden records kept beside it (verification, pin). The
// archive goes first: a record without its archive is harmless, the reverse would lose a pin.
func Remove(path string) error {
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	for _, side := range []string{verificationPath(path), pinPath(path)} {
		if err := os.Remove(side); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", side, err)
		}
	}
	return nil
}

// SetPin pins (with reason) or unpins the backup at path under its folder's lock: a prune
// between its listing and its removals would otherwise delete the archive together with the
// new record, after "pinned" was printed. The archive is looked for again once the lock is
// held, since a prune may have removed it meanwhile. waiting is told whom the lock waits for.
func SetPin(ctx context.Context, path, reason string, pin bool, waiting func(holder string)) (*Entry, error) {
	// Taking the lock creates the folder: a mistyped path must not.
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	lock, err := Acquire(ctx, filepath.Dir(path), waiting)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	if pin {
		err = Pin(path, reason)
	} else {
		err = Unpin(path)
	}
	if err != nil {
		return nil, err
	}
	return Inspect(path)
}
