package compose

import (
	"context"

	"github.com/docker/cli/cli/command"
)

// Deployment is one command's view of the project on its engine, built once by Open and
// handed down: the plan, the engine, the services' lifecycle, whether the engine runs on this
// machine, and the backup folder the command works in.
type Deployment struct {
	Plan     *Plan
	API      Engine
	Services *Services
	Local    bool   // the engine is on this machine: its bind folders are this machine's
	Dir      string // the backup folder (set by the command, which knows its -o)
}

// OpenOptions say which project to open, and what to do on the engine before it is inspected.
type OpenOptions struct {
	Project   ProjectOptions
	DBService string
	// Prepare runs once the engine is reached, before the plan is inspected (the reaping of
	// helpers that killed commands left); nil: nothing.
	Prepare func(ctx context.Context, d *Deployment)
}

// Open loads the project as `docker compose` does, decides every part's role, connects to
// the CLI's engine and asks it what exists.
func Open(ctx context.Context, dockerCli command.Cli, o OpenOptions) (*Deployment, error) {
	project, err := Load(ctx, dockerCli, o.Project)
	if err != nil {
		return nil, err
	}
	plan, err := NewPlan(project, o.DBService)
	if err != nil {
		return nil, err
	}
	api, err := Connect(ctx, dockerCli)
	if err != nil {
		return nil, err
	}
	svc, err := NewServices(dockerCli, plan)
	if err != nil {
		return nil, err
	}
	d := &Deployment{Plan: plan, API: api, Services: svc, Local: IsLocalEngine(dockerCli)}
	if o.Prepare != nil {
		o.Prepare(ctx, d)
	}
	return d, plan.Inspect(ctx, api, d.Local)
}
