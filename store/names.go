package store

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// maxPerSecond bounds the names tried for one second; far more than saves can take.
const maxPerSecond = 100

// NextName gives the archive the next numbered name of its second when another save took
// the one it had; the writer still never overwrites.
func NextName(dir, project string, created time.Time) func(string) string {
	return func(taken string) string {
		n := nameNumber(filepath.Base(taken)) + 1
		if n > maxPerSecond {
			return ""
		}
		return filepath.Join(dir, numberedName(project, created, n))
	}
}

// PrepareDir creates the backup folder, private to the user, if it is missing.
func PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating backup folder: %w", err)
	}
	return nil
}
