package plugin

import (
	"context"
	"fmt"

	"github.com/docker/cli/cli/command"

	"github.com/echo-backup/echo-backup/store"
)

// lockBackups waits for any other echobackup command that writes or deletes in dir, saying so
// once on stderr, so that a prune never removes what a restore reads and two restores never
// clean up each other's staging.
// The command owns the lock it returns and passes it down (backup.SaveOptions.Lock and the
// like), so nothing below takes it again.
func lockBackups(ctx context.Context, dockerCli command.Cli, dir string) (*store.Lock, error) {
	return store.Acquire(ctx, dir, waitingFor(dockerCli, dir))
}

// waitingFor says once on stderr whom a command waits for.
func waitingFor(dockerCli command.Cli, dir string) func(holder string) {
	return func(holder string) {
		fmt.Fprintf(dockerCli.Err(), "Waiting for another echobackup command in %s %s\n", dir, holder)
	}
}
