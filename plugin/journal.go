package plugin

import (
	"fmt"

	"github.com/docker/cli/cli/command"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/restore"
	"github.com/echo-backup/echo-backup/store"
)

// noteInterruptedRestore says in one line on stderr that a restore of the project was cut off
// and how to finish it. Given what (the command's name), it refuses instead while the app is
// stopped or the data is half swapped: a backup or a removal then would catch neither the state
// before the restore nor the restored one. Those callers hold the folder's lock, so the
// journal cannot be a running restore's.
func noteInterruptedRestore(dockerCli command.Cli, plan *compose.Plan, dir, what string) error {
	j, err := restore.ReadJournal(dir, plan.Name)
	if err != nil {
		fmt.Fprintln(dockerCli.Err(), "WARNING: "+err.Error())
		return nil
	}
	if j == nil {
		return nil
	}
	if !j.Of(plan.WorkingDir) {
		fmt.Fprintln(dockerCli.Err(), "WARNING: "+j.Elsewhere(dir).Error())
		return nil
	}
	if what == "" && restoreRunning(dir, j) {
		fmt.Fprintf(dockerCli.Err(), "A restore of %s from %s is in progress (pid %d, at %q)\n", j.Project, j.Archive, j.PID, j.Phase)
		return nil
	}
	fmt.Fprintln(dockerCli.Err(), j.Notice())
	if what != "" && j.HalfSwapped() {
		return fmt.Errorf("%s refused: the restore of %s was interrupted at %q, so the deployment is half restored; "+
			"run docker echobackup restore --resume first", what, plan.Name, j.Phase)
	}
	return nil
}

// restoreRunning: the lock is held (a restore holds it from start to end) by the journal's writer.
func restoreRunning(dir string, j *restore.Journal) bool {
	unlock, err := store.TryLock(dir)
	if err == nil {
		unlock()
		return false
	}
	return j.Running()
}
