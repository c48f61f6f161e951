package compose

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Labels compose puts on what it creates; we find a project's containers by them, as compose does.
const (
	LabelProject = "com.docker.compose.project"
	LabelService = "com.docker.compose.service"
	LabelOneoff  = "com.docker.compose.oneoff"
	LabelVolume  = "com.docker.compose.volume"
)

// Container is one of a service's containers as the engine reports it.
type Container struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	State   string `json:"state"`
	Image   string `json:"image"`
	ImageID string `json:"imageId"`
}

// Engine is the whole Docker API client, as the CLI hands it over. Code that needs only a few
// calls takes a small interface instead (NetworkAPI here, checkpoint.Engine, and the engine
// package's helpers), so that it can be tested with a stand-in.
type Engine = client.APIClient

// Connect checks that the engine answers and says which context and host it tried when it does not.
func Connect(ctx context.Context, dockerCli command.Cli) (Engine, error) {
	api := dockerCli.Client()
	if _, err := api.Ping(ctx, client.PingOptions{}); err != nil {
		return nil, &UserError{Err: fmt.Errorf("cannot reach the Docker engine of context %q at %s: %w",
			dockerCli.CurrentContext(), dockerCli.DockerEndpoint().Host, err)}
	}
	return api, nil
}

// Inspect adds the engine's view to the plan: the services' containers, and which volumes
// and folders exist, with the sizes of local folders.
func (plan *Plan) Inspect(ctx context.Context, api Engine, localEngine bool) error {
	byService, err := projectContainers(ctx, api, plan.Name)
	if err != nil {
		return err
	}
	for i := range plan.Services {
		plan.Services[i].Containers = byService[plan.Services[i].Name]
	}
	for i := range plan.Items {
		if err := plan.Items[i].inspect(ctx, api, localEngine); err != nil {
			return err
		}
	}
	return nil
}

func projectContainers(ctx context.Context, api Engine, project string) (map[string][]Container, error) {
	res, err := api.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelProject+"="+project, LabelOneoff+"=False"),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the containers of project %q: %w", project, err)
	}
	out := map[string][]Container{}
	for _, c := range res.Items {
		svc := c.Labels[LabelService]
		out[svc] = append(out[svc], Container{ID: c.ID, Name: containerName(c), State: string(c.State), Image: c.Image, ImageID: c.ImageID})
	}
	for _, cs := range out {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	}
	return out, nil
}

func containerName(c container.Summary) string {
	if len(c.Names) == 0 {
		return c.ID[:12]
	}
	return strings.TrimPrefix(c.Names[0], "/")
}

func (it *Item) inspect(ctx context.Context, api Engine, localEngine bool) error {
	switch it.Kind {
	case KindVolume:
		_, err := api.VolumeInspect(ctx, it.Source, client.VolumeInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("inspecting volume %q: %w", it.Source, err)
		}
		it.Exists, it.Inspected = true, true
	case KindBind, KindDeployment:
		if !localEngine && it.Kind == KindBind {
			return nil
		}
		it.Inspected = true
		// The engine mounts what a symlinked folder points to; saving and swapping the link
		// itself would save nothing and replace the link with an empty folder.
		if real, err := filepath.EvalSymlinks(it.Source); err == nil && it.Kind == KindBind {
			it.Source = real
		}
		if _, err := os.Stat(it.Source); err == nil {
			it.Exists = true
			if it.Backup && it.Kind == KindBind {
				it.Size, it.Files = folderSize(it.Source)
			}
		}
	}
	return nil
}

// folderSize is best effort: unreadable entries are left out rather than failing a status.
func folderSize(root string) (size int64, entries int) {
	_ = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		entries++
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				size += info.Size()
			}
		}
		return nil
	})
	return size, entries
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// IsLocalEngine is true when the engine shares this machine's filesystem, so bind-mounted
// folders can be read directly instead of through a helper container.
func IsLocalEngine(dockerCli command.Cli) bool {
	host := dockerCli.DockerEndpoint().Host
	return strings.HasPrefix(host, "unix://") || strings.HasPrefix(host, "npipe://")
}

// Service returns the named service of the plan.
func (plan *Plan) Service(name string) (Service, bool) {
	for _, s := range plan.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// DatabaseContainer is the running container of the PostgreSQL service, or an error that says
// how to get one.
func (plan *Plan) DatabaseContainer() (Container, error) {
	svc, _ := plan.Service(plan.Database.Service)
	for _, c := range svc.Containers {
		if c.State == "running" {
			return c, nil
		}
	}
	return Container{}, &UserError{Err: fmt.Errorf("the database service %q of project %q is not running: "+
		"start it with `docker compose up -d %s`", plan.Database.Service, plan.Name, plan.Database.Service)}
}

// NetworkAPI is the part of the engine that lists and removes a project's networks.
type NetworkAPI interface {
	NetworkList(ctx context.Context, options client.NetworkListOptions) (client.NetworkListResult, error)
	NetworkRemove(ctx context.Context, network string, options client.NetworkRemoveOptions) (client.NetworkRemoveResult, error)
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
}

// ProjectNetworks are the IDs of the networks compose made for the project.
func ProjectNetworks(ctx context.Context, api NetworkAPI, project string) ([]string, error) {
	res, err := api.NetworkList(ctx, client.NetworkListOptions{
		Filters: make(client.Filters).Add("label", LabelProject+"="+project),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the networks of project %q: %w", project, err)
	}
	ids := make([]string, 0, len(res.Items))
	for _, n := range res.Items {
		ids = append(ids, n.ID)
	}
	return ids, nil
}

// RemoveNewNetworks removes the project's networks that are not in before and that no
// container, running or not, is attached to.
func RemoveNewNetworks(ctx context.Context, api NetworkAPI, project string, before []string) error {
	now, err := ProjectNetworks(ctx, api, project)
	if err != nil {
		return err
	}
	for _, id := range now {
		if slices.Contains(before, id) {
			continue
		}
		users, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("network", id)})
		if err != nil {
			return fmt.Errorf("checking who uses network %s, created for the backup: %w", id[:12], err)
		}
		if len(users.Items) > 0 {
			continue
		}
		if _, err := api.NetworkRemove(ctx, id, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing network %s, created for the backup: %w", id[:12], err)
		}
	}
	return nil
}
