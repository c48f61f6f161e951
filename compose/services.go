package compose

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli/command"
	"github.com/docker/compose/v5/pkg/api"
	composesvc "github.com/docker/compose/v5/pkg/compose"
)

// Services stops and starts a project's services through compose itself, in dependency order.
type Services struct {
	backend api.Compose
	plan    *Plan
}

// NewServices uses the compose SDK on the same engine as the CLI.
func NewServices(dockerCli command.Cli, plan *Plan) (*Services, error) {
	backend, err := composesvc.NewComposeService(dockerCli)
	if err != nil {
		return nil, err
	}
	return &Services{backend: backend, plan: plan}, nil
}

// RunningApps are the services other than the database that have a running container.
func (s *Services) RunningApps() []string {
	var names []string
	for _, svc := range s.plan.Services {
		if svc.Role != RoleDatabase && svc.Running() {
			names = append(names, svc.Name)
		}
	}
	return names
}

// Stop stops the named services, dependents first.
func (s *Services) Stop(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	timeout := 30 * time.Second
	err := s.backend.Stop(ctx, s.plan.Name, api.StopOptions{Project: s.plan.Project, Services: names, Timeout: &timeout})
	if err != nil {
		return fmt.Errorf("stopping %v: %w", names, err)
	}
	return nil
}

// Start starts the named services in dependency order and waits for their health checks. It
// starts existing containers (a later `docker compose up` then finds them unchanged) and
// creates only those that are missing, as after `docker compose down -v`.
func (s *Services) Start(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	project, err := s.plan.Project.WithSelectedServices(names, types.IgnoreDependencies)
	if err != nil {
		return err
	}
	err = s.backend.Up(ctx, project, api.UpOptions{
		Create: api.CreateOptions{Recreate: api.RecreateNever, RecreateDependencies: api.RecreateNever, Inherit: true},
		Start:  api.StartOptions{Project: project, Wait: true, WaitTimeout: 5 * time.Minute},
	})
	if err != nil {
		return fmt.Errorf("starting %v: %w", names, err)
	}
	return nil
}

// EnsureDatabase makes sure the database service runs, creating its container and volume when
// they are gone, and reports whether it had to.
func (s *Services) EnsureDatabase(ctx context.Context) (started bool, err error) {
	svc, _ := s.plan.Service(s.plan.Database.Service)
	if svc.Running() {
		return false, nil
	}
	return true, s.Start(ctx, []string{svc.Name})
}

// Refresh re-reads which containers exist and run.
func (s *Services) Refresh(ctx context.Context, api Engine) error {
	byService, err := projectContainers(ctx, api, s.plan.Name)
	if err != nil {
		return err
	}
	for i := range s.plan.Services {
		s.plan.Services[i].Containers = byService[s.plan.Services[i].Name]
	}
	return nil
}

// DefaultApps are the services `docker compose up` would start (every service of the active
// profiles) but the database, which a restore keeps running.
func (s *Services) DefaultApps() []string {
	names := slices.DeleteFunc(s.plan.Project.ServiceNames(), func(n string) bool { return n == s.plan.Database.Service })
	slices.Sort(names)
	return names
}

// DownOptions are the flags of `docker compose down`.
type DownOptions struct {
	Volumes       bool
	RemoveOrphans bool
	Images        string         // "", "local" or "all"
	Timeout       *time.Duration // nil: each service's own stop grace period
	Services      []string
}

// Down runs `docker compose down` on the plan's project. Compose's progress and warnings
// (such as "Resource is still in use" for a volume another container holds) go to events:
// without an event processor the SDK drops them.
func Down(ctx context.Context, dockerCli command.Cli, plan *Plan, o DownOptions, events api.EventProcessor) error {
	backend, err := composesvc.NewComposeService(dockerCli, composesvc.WithEventProcessor(events))
	if err != nil {
		return err
	}
	err = backend.Down(ctx, plan.Name, api.DownOptions{
		Project: plan.Project, Volumes: o.Volumes, RemoveOrphans: o.RemoveOrphans,
		Images: o.Images, Timeout: o.Timeout, Services: o.Services,
	})
	if err != nil {
		return fmt.Errorf("removing project %q with compose down: %w", plan.Name, err)
	}
	return nil
}
