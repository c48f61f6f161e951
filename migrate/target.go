// Package migrate is `docker echobackup migrate`: Run streams a save here into a restore on
// another Docker engine; Target is the same compose project as that engine sees it, with the
// checks made there before anything is changed.
package migrate

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"
	"github.com/moby/moby/client"

	"github.com/echo-backup/echo-backup/compose"
)

// Target is the project on the engine of another docker context.
type Target struct {
	Context  string
	Cli      command.Cli
	Plan     *compose.Plan
	API      compose.Engine
	Services *compose.Services
}

// Open loads the same compose files for the engine of context name. The project is read
// from this machine's files, as `docker --context NAME compose …` would.
func Open(ctx context.Context, name string, po compose.ProjectOptions, dbService string) (_ *Target, err error) {
	// An ssh:// context that cannot be reached is told in ssh's words.
	defer func() { err = ExplainSSH(err) }()
	cli, err := newCli(name)
	if err != nil {
		return nil, err
	}
	project, err := compose.Load(ctx, cli, po)
	if err != nil {
		return nil, err
	}
	plan, err := compose.NewPlan(project, dbService)
	if err != nil {
		return nil, err
	}
	api, err := compose.Connect(ctx, cli)
	if err != nil {
		return nil, err
	}
	// Never local: even an engine on this machine is reached as if remote, so bind folders
	// are read and written through helper containers on its side.
	if err := plan.Inspect(ctx, api, false); err != nil {
		return nil, fmt.Errorf("inspecting project %q on context %q: %w", plan.Name, name, err)
	}
	services, err := compose.NewServices(cli, plan)
	if err != nil {
		return nil, err
	}
	return &Target{Context: name, Cli: cli, Plan: plan, API: api, Services: services}, nil
}

// newCli is a docker CLI for context name, configured from the same DOCKER_CONFIG as ours.
func newCli(name string) (command.Cli, error) {
	cli, err := command.NewDockerCli()
	if err != nil {
		return nil, err
	}
	opts := flags.NewClientOptions()
	opts.Context = name
	if err := cli.Initialize(opts); err != nil {
		return nil, fmt.Errorf("opening docker context %q: %w", name, err)
	}
	if _, err := cli.ContextStore().GetMetadata(name); err != nil {
		return nil, &compose.UserError{Err: fmt.Errorf("docker context %q: %w (see `docker context ls`)", name, err)}
	}
	return cli, nil
}

// Check refuses, before anything changes on either side, a target that must not or could not
// take the backup: the source's own engine, missing images, a PostgreSQL older than the
// source's. It returns what the target already holds (empty when it is bare).
func (t *Target) Check(ctx context.Context, sourceDB, sourceServer string) (occupied []string, err error) {
	if err := t.checkEngine(ctx, sourceDB); err != nil {
		return nil, err
	}
	if err := t.checkImages(ctx); err != nil {
		return nil, err
	}
	if err := t.checkMajor(ctx, sourceServer); err != nil {
		return nil, err
	}
	return t.occupied(ctx)
}

// checkEngine refuses a context that reaches the engine the deployment runs on, whatever its
// name or address: the restore would replace the data it was taken from. Engine IDs cannot
// tell (engines that share /etc/docker/key.json, or cloned machines, report the same one);
// the source's own database container, found by its ID, can.
func (t *Target) checkEngine(ctx context.Context, sourceDB string) error {
	_, err := t.API.ContainerInspect(ctx, sourceDB, client.ContainerInspectOptions{})
	switch {
	case err == nil:
		return &compose.UserError{Err: fmt.Errorf("context %q reaches the engine the deployment already runs on: "+
			"name the target's context with --to-context", t.Context)}
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("asking the engine of context %q about the source's containers: %w", t.Context, err)
	}
	return nil
}

func (t *Target) checkImages(ctx context.Context) error {
	missing, err := t.missingImages(ctx)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return &compose.UserError{Err: fmt.Errorf("context %q lacks the images %v: pull them there, or copy them with "+
			"`docker save IMAGE | docker --context %s load`; nothing was changed", t.Context, missing, t.Context)}
	}
	return nil
}
