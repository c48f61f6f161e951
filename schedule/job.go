package schedule

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/echo-backup/echo-backup/store"
)

// Files the scheduled job keeps in the backup folder, beside the backups (list and prune only
// look at *.tar.zst).
const (
	LogName  = "schedule.log"
	lastName = ".schedule.last.json"
)

// LogPath is the job's log in the backup folder.
func LogPath(dir string) string { return filepath.Join(dir, LogName) }

// Run is the record of the job's last run, kept in the backup folder for status.
type Run struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	OK       bool      `json:"ok"`
	Summary  string    `json:"summary,omitempty"`
	Error    string    `json:"error,omitempty"`
	Backup   string    `json:"backup,omitempty"`
}

// WriteLast records the run, replacing the previous record.
func WriteLast(dir string, r Run) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := store.WriteRecord(filepath.Join(dir, lastName), b); err != nil {
		return fmt.Errorf("recording the run: %w", err)
	}
	return nil
}

// ReadLast returns the last run's record; nil when the job never ran.
func ReadLast(dir string) (*Run, error) {
	b, err := os.ReadFile(filepath.Join(dir, lastName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reading %s: %w", lastName, err)
	}
	return &r, nil
}
