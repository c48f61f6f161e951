package schedule

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/echo-backup/echo-backup/store"
)

// repoName keeps, for the job, where the backups go when a repository is set: in the backup
// folder, readable by its owner only, as the ping URL is. The entry stays short (cron refuses a
// line over 1000 bytes, which a long DOCKER_HOST, the repository's address and a password
// file's path can reach together) and names neither.
const repoName = ".schedule.repo"

// RepoSetting is the repository a scheduled run saves into: its address, and the password
// file's path when install had one (never the password).
type RepoSetting struct {
	Address      string `json:"address"`
	PasswordFile string `json:"passwordFile,omitempty"`
}

// SaveRepo keeps s for the job; an empty address removes it.
func SaveRepo(dir string, s RepoSetting) error {
	path := filepath.Join(dir, repoName)
	if s.Address == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("forgetting the repository setting: %w", err)
		}
		return nil
	}
	js, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := store.WriteRecord(path, append(js, '\n')); err != nil {
		return fmt.Errorf("keeping the repository setting: %w", err)
	}
	return nil
}

// ReadRepo returns what SaveRepo kept; a zero setting when there is none.
func ReadRepo(dir string) (RepoSetting, error) {
	var s RepoSetting
	js, err := os.ReadFile(filepath.Join(dir, repoName))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err == nil {
		err = json.Unmarshal(js, &s)
	}
	if err != nil {
		return s, fmt.Errorf("reading the repository setting %s: %w", filepath.Join(dir, repoName), err)
	}
	return s, nil
}
