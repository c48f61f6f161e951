package restore

import (
	"fmt"

	"github.com/echo-backup/echo-backup/store"
)

// JournalNotice is what a command says when it finds a restore's journal in its backup
// folder: a warning, or (for status, while the restore still runs) a plain line.
type JournalNotice struct {
	Warning string
	Info    string
}

// CheckJournal reads the journal of project in dir, for a command (what: its name, "" for
// status) that is about to work on the deployment in workingDir. It refuses, with an error,
// while the app is stopped or the data half swapped: a backup or a removal then would catch
// neither the state before the restore nor the restored one. Those callers hold the folder's
// lock, so the journal cannot be a running restore's.
func CheckJournal(dir, project, workingDir, what string) (JournalNotice, error) {
	j, err := ReadJournal(dir, project)
	switch {
	case err != nil:
		return JournalNotice{Warning: err.Error()}, nil
	case j == nil:
		return JournalNotice{}, nil
	case !j.Of(workingDir):
		return JournalNotice{Warning: j.Elsewhere(dir).Error()}, nil
	case what == "" && restoreRunning(dir, j):
		return JournalNotice{Info: fmt.Sprintf("A restore of %s from %s is in progress (pid %d, at %q)", j.Project, j.Archive, j.PID, j.Phase)}, nil
	}
	n := JournalNotice{Warning: j.Warning()}
	if what != "" && j.HalfSwapped() {
		return n, fmt.Errorf("%s refused: the restore of %s was interrupted at %q, so the deployment is half restored; "+
			"run docker echobackup restore --resume first", what, project, j.Phase)
	}
	return n, nil
}

// restoreRunning: the lock is held (a restore holds it from start to end) by the journal's writer.
func restoreRunning(dir string, j *Journal) bool {
	unlock, err := store.TryLock(dir)
	if err == nil {
		unlock()
		return false
	}
	return j.Running()
}
