package shellguard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/guard"
)

// Options say how the guard reaches the projects and the engine of a command line.
type Options struct {
	// Load reads a compose project as `docker compose` does (compose.Load).
	Load func(ctx context.Context, o compose.ProjectOptions) (*types.Project, error)
	// Connect reaches the engine; it is called only once a line needs it.
	Connect     func(ctx context.Context) (compose.Engine, error)
	LocalEngine bool
	Getenv      func(string) string
}

// Risk is a project whose saved volumes a command line would delete.
type Risk struct {
	Plan    *compose.Plan
	API     compose.Engine
	Volumes []string // its data volumes the line would delete
	// Held: a running sentinel holds them all, so the engine keeps them; no backup is needed.
	Held bool
	// StopApps: the whole project goes (compose down -v), so the app stops before the backup.
	StopApps bool
}

// Endangered answers "what does this line delete that a backup keeps": every Echo project
// (a compose project with PostgreSQL) whose data volumes cmd would remove, in name order.
// It fails when it cannot tell, so that nothing is deleted unseen.
func Endangered(ctx context.Context, cmd Command, o Options) ([]Risk, error) {
	f := &finder{o: o}
	if cmd.Kind == ComposeDown {
		return f.down(ctx, cmd.Project)
	}
	api, err := f.engine(ctx)
	if err != nil {
		return nil, err
	}
	atRisk, err := AtRisk(ctx, api, cmd)
	if err != nil {
		return nil, fmt.Errorf("finding the volumes `%s` would delete: %w", cmd.Kind, err)
	}
	var risks []Risk
	for _, name := range sortedKeys(atRisk) {
		loc, err := Locate(ctx, api, name)
		if err != nil {
			return nil, fmt.Errorf("%s would delete volumes %s of compose project %q, and %w: save it first "+
				"with `docker echobackup -p %s -f COMPOSE-FILE save` (or `docker compose up -d` it and retry)",
				cmd.Kind, strings.Join(atRisk[name], ", "), name, err, name)
		}
		opts := compose.ProjectOptions{ProjectName: loc.Name, ConfigPaths: loc.Files, ProjectDir: loc.Dir, EnvFiles: loc.EnvFiles}
		if risks, err = f.project(ctx, risks, opts, atRisk[name]); err != nil {
			return nil, err
		}
	}
	return risks, nil
}

type finder struct {
	o   Options
	api compose.Engine
}

func (f *finder) engine(ctx context.Context) (compose.Engine, error) {
	if f.api != nil {
		return f.api, nil
	}
	api, err := f.o.Connect(ctx)
	f.api = api
	return api, err
}

// down finds what `docker compose down -v` will remove as compose does (projectOrName in
// compose's cmd/compose/compose.go): with -p and no -f it reads no compose file at all,
// whatever the folder holds, and removes every volume labelled with the project; otherwise it
// loads the files, and if that fails goes by COMPOSE_PROJECT_NAME.
func (f *finder) down(ctx context.Context, p Project) ([]Risk, error) {
	if p.Name != "" && len(p.Files) == 0 {
		return f.byName(ctx, p.Name, p.Profiles)
	}
	opts := compose.ProjectOptions{ProjectName: p.Name, ConfigPaths: p.Files, ProjectDir: p.Dir, EnvFiles: p.EnvFiles, Profiles: p.Profiles}
	project, err := f.o.Load(ctx, opts)
	if err == nil {
		return f.loaded(ctx, nil, project, nil)
	}
	if name := f.o.Getenv("COMPOSE_PROJECT_NAME"); name != "" {
		return f.byName(ctx, name, p.Profiles)
	}
	if len(p.Files) == 0 && compose.IsUserError(err) {
		return nil, nil // no compose file found: compose down fails the same way, deleting nothing
	}
	return nil, err
}

// byName guards a down by project name alone. The project's containers say where its compose
// files are; with none left, nothing tells whether its volumes hold an Echo database, so the
// guard stops rather than let them go unseen.
func (f *finder) byName(ctx context.Context, name string, profiles []string) ([]Risk, error) {
	api, err := f.engine(ctx)
	if err != nil {
		return nil, err
	}
	loc, err := Locate(ctx, api, name)
	if err == nil {
		opts := compose.ProjectOptions{ProjectName: loc.Name, ConfigPaths: loc.Files, ProjectDir: loc.Dir, EnvFiles: loc.EnvFiles, Profiles: profiles}
		return f.project(ctx, nil, opts, nil)
	}
	volumes, verr := ProjectVolumes(ctx, api, name)
	if verr != nil {
		return nil, verr
	}
	free, serr := notHeld(ctx, api, name, volumes)
	if serr != nil || len(free) == 0 {
		return nil, serr // nothing to delete, or the guard's sentinel holds it all: the engine keeps it
	}
	return nil, fmt.Errorf("compose down -v would delete volumes %s of compose project %q, and %w: save it first "+
		"with `docker echobackup -p %s -f COMPOSE-FILE save` (or `docker compose -p %s -f COMPOSE-FILE up -d` and retry)",
		strings.Join(free, ", "), name, err, name, name)
}

// project loads the project and adds it to risks if any of volumes (nil: all of its volumes)
// holds what a backup keeps.
func (f *finder) project(ctx context.Context, risks []Risk, opts compose.ProjectOptions, volumes []string) ([]Risk, error) {
	project, err := f.o.Load(ctx, opts)
	if err != nil {
		return nil, err
	}
	return f.loaded(ctx, risks, project, volumes)
}

// loaded adds the project to risks if any of volumes (nil: all, as for compose down -v) holds
// what a backup keeps. A project without PostgreSQL is not Echo's and passes.
func (f *finder) loaded(ctx context.Context, risks []Risk, project *types.Project, volumes []string) ([]Risk, error) {
	plan, err := compose.NewPlan(project, "")
	if err != nil {
		if errors.Is(err, compose.ErrNoDatabase) {
			return risks, nil
		}
		return nil, fmt.Errorf("project %q: %w", project.Name, err)
	}
	api, err := f.engine(ctx)
	if err != nil {
		return nil, err
	}
	if err := plan.Inspect(ctx, api, f.o.LocalEngine); err != nil {
		return nil, err
	}
	kept := SavedVolumes(plan, volumes)
	if len(kept) == 0 {
		return risks, nil
	}
	free, err := notHeld(ctx, api, plan.Name, kept)
	if err != nil {
		return nil, err
	}
	return append(risks, Risk{Plan: plan, API: api, Volumes: kept, Held: len(free) == 0, StopApps: volumes == nil}), nil
}

// SavedVolumes are the project's data volumes (compose.Plan.DataVolumes) among volumes (nil:
// all of them).
func SavedVolumes(plan *compose.Plan, volumes []string) []string {
	return slices.DeleteFunc(plan.DataVolumes(), func(v string) bool {
		return volumes != nil && !slices.Contains(volumes, v)
	})
}

// notHeld are the volumes that no running sentinel of project holds.
func notHeld(ctx context.Context, api compose.Engine, project string, volumes []string) ([]string, error) {
	s, err := guard.Current(ctx, api, project)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(slices.Clone(volumes), func(v string) bool { return s.Running() && slices.Contains(s.Volumes, v) }), nil
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
