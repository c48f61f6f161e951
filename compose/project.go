// Package compose is the project: it loads it the way `docker compose` does, decides the role
// of every service and mount (the Plan: what a backup holds and leaves out, and why), asks the
// engine which of its containers and volumes exist, and stops, starts and downs its services
// through compose's SDK (Services). Open builds a command's one Deployment from all that.
// What runs on the engine below the project (exec, helper containers, their reaping) is
// package engine.
package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli/command"
	"github.com/docker/compose/v5/pkg/api"
	composesvc "github.com/docker/compose/v5/pkg/compose"
)

// ProjectOptions are docker compose's own project flags; every command embeds them so
// `docker echobackup -f x.yml -p y save` reads the same project as `docker compose -f x.yml -p y ps`.
type ProjectOptions struct {
	ProjectName string
	ConfigPaths []string
	ProjectDir  string
	EnvFiles    []string
	Profiles    []string
}

// Load runs compose's own loading chain: .env, COMPOSE_FILE, COMPOSE_PROJECT_NAME, COMPOSE_PROFILES,
// profiles and the parent-folder search all behave as in the compose CLI.
func Load(ctx context.Context, dockerCli command.Cli, o ProjectOptions) (*types.Project, error) {
	backend, err := composesvc.NewComposeService(dockerCli)
	if err != nil {
		return nil, err
	}
	project, err := backend.LoadProject(ctx, api.ProjectLoadOptions{
		ProjectName: o.ProjectName,
		ConfigPaths: o.ConfigPaths,
		WorkingDir:  o.ProjectDir,
		EnvFiles:    o.EnvFiles,
		Profiles:    o.Profiles,
		// Remote (git, OCI) compose files would need a registry; a backup tool reads local files.
		Offline: true,
	})
	if err != nil {
		return nil, explainLoadError(err, o)
	}
	return project, nil
}

func explainLoadError(err error, o ProjectOptions) error {
	if !strings.Contains(err.Error(), "no configuration file provided") {
		return fmt.Errorf("loading the compose project: %w", err)
	}
	where := o.ProjectDir
	if where == "" {
		where, _ = os.Getwd()
	}
	return &UserError{Err: fmt.Errorf("%w: looked for compose.yaml, compose.yml, "+
		"docker-compose.yaml and docker-compose.yml in %s and its parent folders "+
		"(use -f FILE or --project-directory DIR)", ErrNoComposeFile, where)}
}

// ErrNoComposeFile: the folder and its parents hold no compose file. A restore from an
// archive then writes the backup's own files first (a new server).
var ErrNoComposeFile = errors.New("no compose file found")

// UserError marks a mistake the user can fix; commands print it as one line without a stack of causes.
type UserError struct{ Err error }

func (e *UserError) Error() string { return e.Err.Error() }
func (e *UserError) Unwrap() error { return e.Err }

// IsUserError tells whether err came from the user's input rather than from a failure.
func IsUserError(err error) bool {
	var u *UserError
	return errors.As(err, &u)
}
