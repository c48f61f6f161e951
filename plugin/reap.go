package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/engine"
)

// oldHelper is the age at which a helper we may not remove is worth a warning: no command
// of ours runs that long.
const oldHelper = 24 * time.Hour

// reapHelpers removes the helper containers that killed commands of the project left, before
// the command at hand starts its own. Every command that talks to the engine about a project
// passes here (loadPlanAPI). Housekeeping: a failure is told, never fatal.
func reapHelpers(ctx context.Context, dockerCli command.Cli, api compose.Engine, project string) {
	res, err := engine.ReapHelpers(ctx, api, project)
	if err != nil {
		fmt.Fprintf(dockerCli.Err(), "WARNING: %v\n", err)
		return
	}
	if n := len(res.Removed); n > 0 {
		fmt.Fprintf(dockerCli.Err(), "Removed %d helper container(s) left by an echobackup command that did not finish\n", n)
	}
	for _, err := range res.Failed {
		fmt.Fprintf(dockerCli.Err(), "WARNING: %v\n", err)
	}
	for _, h := range res.Elsewhere {
		if h.Age > oldHelper {
			fmt.Fprintf(dockerCli.Err(), "WARNING: helper container %.12s (%s) of an echobackup command on host %s is %s old; "+
				"remove it with `docker rm -f %.12s` if that command is gone\n", h.ID, h.Purpose, h.Host, units.HumanDuration(h.Age), h.ID)
		}
	}
	for _, h := range res.Unowned {
		if h.Age > oldHelper {
			fmt.Fprintf(dockerCli.Err(), "WARNING: helper container %.12s (%s), made by an older echobackup, is %s old; "+
				"remove it with `docker rm -f %.12s` if no echobackup command runs\n", h.ID, h.Purpose, units.HumanDuration(h.Age), h.ID)
		}
	}
}
