package restore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/echo-backup/echo-backup/store"
)

// The phases of a restore, in order. The journal is written with a phase before the step it
// names begins, so a restore killed during a step is found in that step's phase. Before every
// swap has completed the way back is a rollback; after it, finishing.
const (
	PhaseSetup    = "setup"    // creating what is missing: the database container, volumes, networks
	PhaseStaging  = "staging"  // staging the files and loading the new database beside the live ones
	PhaseStopping = "stopping" // stopping the app
	PhaseSwapping = "swapping" // setting the live data aside and swapping the restored data in
	PhaseSwapped  = "swapped"  // every swap is done; starting the app
	PhaseStarted  = "started"  // the app runs on the restored data; the safety backup is taken from the set-aside copies
	PhaseCleanup  = "cleanup"  // the restore is complete: dropping what was set aside
)

var phases = []string{PhaseSetup, PhaseStaging, PhaseStopping, PhaseSwapping, PhaseSwapped, PhaseStarted, PhaseCleanup}

func phaseIndex(p string) int { return slices.Index(phases, p) }

// Journal is a restore's record of where it is, in the backup folder, with everything another
// process needs to finish it or to undo it. Nothing that was set aside is dropped before the
// journal says the restore is complete.
type Journal struct {
	Version    int       `json:"version"`
	Project    string    `json:"project"`
	WorkingDir string    `json:"workingDir"`
	Archive    string    `json:"archive"`
	ID         string    `json:"id"` // names the staging and set-aside databases and folders
	Host       string    `json:"host"`
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	Phase      string    `json:"phase"`
	Updated    time.Time `json:"updated"`
	// Apps are the services that ran before: stopped for the swap, started after it or after a rollback.
	Apps     []string        `json:"apps"`
	Before   *Before         `json:"before,omitempty"`
	Database *JournalDB      `json:"database,omitempty"`
	Folders  []JournalFolder `json:"folders,omitempty"`
	// Swapped lists the swap steps that completed ("database", then each folder's source).
	Swapped []string `json:"swapped,omitempty"`
	// RollingBack: the restore failed and was undoing its steps; Unswapped: every folder and
	// database is back under its own name, only the staged copies are left to drop.
	RollingBack bool `json:"rollingBack,omitempty"`
	Unswapped   bool `json:"unswapped,omitempty"`
	// Safety: a safety backup is to be taken from the set-aside copies before they are dropped.
	Safety       bool   `json:"safety"`
	SafetyBackup string `json:"safetyBackup,omitempty"` // its path, once saved and verified
	SafetyError  string `json:"safetyError,omitempty"`  // why it failed: the set-aside copies are kept

	path string
	mu   sync.Mutex
}

// Before is what the project had on the engine before the restore created anything.
type Before struct {
	DBContainer bool     `json:"dbContainer"`
	Volumes     []string `json:"volumes"`
	Networks    []string `json:"networks"`
}

// JournalDB names the databases of the swap: the live name, the staged copy loaded beside it,
// and where the live one is set aside.
type JournalDB struct {
	Live string `json:"live"`
	New  string `json:"new"`
	Old  string `json:"old"`
	// The object ids of the live database before the swap (0: there was none) and of the new
	// one, recorded before any rename: whatever the names are after a crash, these tell which
	// database holds what.
	LiveOID int64 `json:"liveOid"`
	NewOID  int64 `json:"newOid"`
	// DumpDir holds the staged dump: on this machine when DumpLocal, else in the database container.
	DumpDir   string `json:"dumpDir"`
	DumpLocal bool   `json:"dumpLocal"`
}

// JournalFolder is one folder or volume of the swap; the paths are inside the helper that
// mounts it (see folderStage).
type JournalFolder struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Source string `json:"source"`
	Live   string `json:"live"`
	Staged string `json:"staged"`
	Old    string `json:"old"`
}

const journalVersion = 1

// JournalPath is where a project's restore keeps its journal in the backup folder.
func JournalPath(dir, project string) string {
	return filepath.Join(dir, ".echobackup-restore-"+project+".journal")
}

// ReadJournal returns the journal of an unfinished restore of project in dir, or nil.
func ReadJournal(dir, project string) (*Journal, error) {
	path := JournalPath(dir, project)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the restore journal %s: %w", path, err)
	}
	j := &Journal{path: path}
	if err := json.Unmarshal(data, j); err != nil {
		return nil, fmt.Errorf("reading the restore journal %s: %w", path, err)
	}
	if phaseIndex(j.Phase) < 0 {
		return nil, fmt.Errorf("the restore journal %s has an unknown phase %q", path, j.Phase)
	}
	return j, nil
}

// set records phase, durably, before the step it names begins.
func (j *Journal) set(phase string) error {
	return j.update(func() { j.Phase = phase })
}

// update changes the journal and writes it: a temporary file, fsynced, renamed over the old
// one, and the folder fsynced, so that after a crash the journal is the old one or the new one.
func (j *Journal) update(change func()) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	change()
	j.Updated = time.Now().UTC()
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := store.WriteRecord(j.path, append(data, '\n')); err != nil {
		return fmt.Errorf("writing the restore journal: %w", err)
	}
	return nil
}

// remove ends the journal: the restore is complete, or wholly rolled back.
func (j *Journal) remove() error {
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the restore journal: %w", err)
	}
	return store.SyncDir(filepath.Dir(j.path))
}

// Running tells whether the process that wrote the journal still runs here. Only meaningful
// while someone holds the backup folder's lock: a pid can be reused.
func (j *Journal) Running() bool {
	host, _ := os.Hostname()
	if j.Host != host || j.PID <= 0 || j.PID == os.Getpid() {
		return false
	}
	err := syscall.Kill(j.PID, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Of tells whether the journal is this deployment's (this host, this project folder): a
// backup folder shared between hosts may hold another's restore of a project of that name.
func (j *Journal) Of(workingDir string) bool {
	host, _ := os.Hostname()
	return j.Host == host && j.WorkingDir == workingDir
}

// Elsewhere is the line for another deployment's journal, and what that means here.
func (j *Journal) Elsewhere(dir string) error {
	return fmt.Errorf("%s holds the journal of an unfinished restore of %s on %s:%s, another deployment: "+
		"run docker echobackup restore --resume there, or use another backup folder (-o)", dir, j.Project, j.Host, j.WorkingDir)
}

// Rollback says whether resuming means going back: not every swap had completed.
func (j *Journal) Rollback() bool {
	return j.RollingBack || phaseIndex(j.Phase) < phaseIndex(PhaseSwapped)
}

// HalfSwapped is true while the app is stopped or the data is between two states: saving or
// removing the deployment then would catch neither the old state nor the restored one.
func (j *Journal) HalfSwapped() bool {
	i := phaseIndex(j.Phase)
	return i >= phaseIndex(PhaseStopping) && i <= phaseIndex(PhaseSwapped)
}

// Notice is the one line any command prints when it finds the journal.
func (j *Journal) Notice() string { return "WARNING: " + j.Warning() }

// Warning is Notice without its prefix, for a warning callback.
func (j *Journal) Warning() string {
	if j.SafetyError != "" {
		return fmt.Sprintf("the restore of %s from %s is done but its safety backup failed (%s): "+
			"the state before it is still kept beside the live data; run docker echobackup restore --resume to save it and drop the copies",
			j.Project, j.Archive, j.SafetyError)
	}
	return fmt.Sprintf("a restore of %s from %s was interrupted at %q: run docker echobackup restore --resume to %s",
		j.Project, j.Archive, j.Phase, j.resumeWord())
}

func (j *Journal) resumeWord() string {
	if j.Rollback() {
		return "finish or roll it back (not every swap was done: it rolls back)"
	}
	return "finish or roll it back (every swap was done: it finishes)"
}
