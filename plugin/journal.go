package plugin

import (
	"fmt"

	"github.com/docker/cli/cli/command"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/restore"
)

// noteInterruptedRestore says in one line on stderr that a restore of the project was cut off
// and how to finish it; given what (the command's name), it refuses while the deployment is
// half restored (restore.CheckJournal).
func noteInterruptedRestore(dockerCli command.Cli, plan *compose.Plan, dir, what string) error {
	n, err := restore.CheckJournal(dir, plan.Name, plan.WorkingDir, what)
	switch {
	case n.Warning != "":
		fmt.Fprintln(dockerCli.Err(), "WARNING: "+n.Warning)
	case n.Info != "":
		fmt.Fprintln(dockerCli.Err(), n.Info)
	}
	return err
}
