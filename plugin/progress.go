package plugin

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/compose/v5/cmd/display"
	"github.com/docker/compose/v5/pkg/api"
	"github.com/spf13/cobra"

	"github.com/echo-backup/echo-backup/progress"
)

// progressChoice is the progress of the running command, resolved once from --progress or its
// environment before the command runs, and handed down in its context: checkpoints and the
// other shared steps draw into the same block as the command that called them.
type progressChoice struct {
	rep      *progress.Reporter
	explicit bool // --progress or an env var asked for it, so --quiet or --format json keep it
}

type progressKey struct{}

// setUpProgress reads --progress (else ECHOBACKUP_PROGRESS, COMPOSE_PROGRESS, BUILDKIT_PROGRESS)
// and puts the command's reporter into its context.
func setUpProgress(cmd *cobra.Command, dockerCli command.Cli, flag string) error {
	ctx, err := withProgress(cmd.Context(), cmd, dockerCli, flag)
	if err != nil {
		return err
	}
	cmd.SetContext(ctx)
	return nil
}

func withProgress(ctx context.Context, cmd *cobra.Command, dockerCli command.Cli, flag string) (context.Context, error) {
	mode, explicit := progress.FromEnv(os.Getenv)
	if f := cmd.Flags().Lookup("progress"); f != nil && f.Changed {
		m, err := progress.ParseMode(flag)
		if err != nil {
			return ctx, cli.StatusError{StatusCode: exitUsage, Status: err.Error()}
		}
		mode, explicit = m, true
	}
	mode = progress.Resolve(mode, dockerCli.Err().IsTerminal())
	return context.WithValue(ctx, progressKey{}, progressChoice{rep: progress.New(dockerCli.Err(), mode), explicit: explicit}), nil
}

// reporter is the command's progress; nil (nothing drawn) when silent (--quiet, --format json)
// and the user did not ask for a mode.
func reporter(ctx context.Context, silent bool) *progress.Reporter {
	c, _ := ctx.Value(progressKey{}).(progressChoice)
	if silent && !c.explicit {
		return nil
	}
	return c.rep
}

// composeEvents is where a compose operation inside a command reports: the command's block, or
// plain lines on stderr when it draws none (compose drops its warnings without a processor).
func composeEvents(ctx context.Context, dockerCli command.Cli) api.EventProcessor {
	if rep := reporter(ctx, false); rep != nil && rep.Mode() != progress.Quiet {
		return rep.Events()
	}
	return display.Plain(dockerCli.Err())
}

// logTo is where a restore says what it does: the reporter, or without one the timed lines
// restore has always printed (with --format json only the warnings).
func logTo(rep *progress.Reporter, dockerCli command.Cli, format string) func(string) {
	log, _ := restoreLogs(rep, dockerCli, format)
	return log
}

// restoreLogs are logTo and the warnings beside it (restore.Options.Log and Warn).
func restoreLogs(rep *progress.Reporter, dockerCli command.Cli, format string) (log, warn func(string)) {
	if rep != nil {
		return rep.Log, rep.Warn
	}
	return logger(dockerCli, format)
}

// warner prints warnings on stderr, through the reporter where there is one (a terminal block
// would otherwise be drawn over them).
func warner(dockerCli command.Cli, rep *progress.Reporter) func(string) {
	if rep != nil {
		return rep.Warn
	}
	return func(msg string) { fmt.Fprintln(dockerCli.Err(), "WARNING: "+strings.TrimPrefix(msg, "WARNING: ")) }
}

// say tells the user what a step does, through the command's progress where it has one.
func say(ctx context.Context, dockerCli command.Cli, msg string) {
	if rep := reporter(ctx, false); rep != nil && rep.Mode() != progress.Quiet {
		rep.Log(msg)
		return
	}
	fmt.Fprintln(dockerCli.Err(), msg)
}
