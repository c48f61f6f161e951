package shellguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Rerun runs the guard again as `docker GLOBALS echobackup shell-guard … -- ARGV` (docker:
// the CLI that started the plugin), so that it reaches the engine the command itself will,
// with the CLI's own parsing of -H, --context, --config, --tls…. It returns the guard's exit
// code; stdin, stdout and stderr are the user's.
func Rerun(ctx context.Context, docker, shell, program string, globals, argv []string) (exitCode int, err error) {
	args := append(slices.Clone(globals), "echobackup", GuardCommand,
		"--shell", shell, "--program", program, "--global-flags-applied", "--")
	c := exec.CommandContext(ctx, docker, append(args, argv...)...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = c.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode(), nil
	}
	return 0, err
}

// UnderSudo runs `sudo PREFIX docker echobackup shell-guard … -- ARGS`, so the guard reaches
// the engine the command will (a socket only root may open) as the same user with the same
// environment. Its stdout (the words to run) is not needed: the line is the same. Its stderr
// goes to the user's, and is read for the one failure the user has to fix outside the guard.
func UnderSudo(ctx context.Context, shell string, s Sudo) error {
	sudo, err := exec.LookPath("sudo")
	if err != nil {
		return fmt.Errorf("running the guard under sudo: %w", err)
	}
	args := append(slices.Clone(s.Prefix), ProgramDocker, "echobackup", GuardCommand,
		"--shell", shell, "--program", s.Program, "--")
	c := exec.CommandContext(ctx, sudo, append(args, s.Args...)...)
	var stderr strings.Builder
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, io.Discard, io.MultiWriter(os.Stderr, &stderr)
	err = c.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &exitErr):
		return fmt.Errorf("running the guard under sudo: %w", err)
	// Without the plugin, docker reads the guard's flags as its own and fails on the first.
	case strings.Contains(stderr.String(), "'echobackup' is not a docker command"),
		strings.Contains(stderr.String(), "unknown flag: --shell"):
		return errors.New("the guard cannot run under sudo: sudo's docker does not find the echobackup plugin " +
			"(install it for root too: ~root/.docker/cli-plugins or /usr/local/lib/docker/cli-plugins; " +
			"or keep your DOCKER_CONFIG with sudo -E)")
	}
	return fmt.Errorf("the guard under sudo stopped it (exit %d, see above)", exitErr.ExitCode())
}

// ParseProgram reads the line of the wrapped program: docker's, or the standalone compose's.
func ParseProgram(program string, argv []string) Command {
	if program == ProgramCompose {
		return ParseStandalone(argv)
	}
	return Parse(argv)
}
