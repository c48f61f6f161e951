package shellguard

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/echo-backup/echo-backup/compose"
)

// Labels compose records on a project's containers (where its files are), and the one the
// engine puts on anonymous volumes.
const (
	labelWorkingDir  = "com.docker.compose.project.working_dir"
	labelConfigFiles = "com.docker.compose.project.config_files"
	labelEnvFile     = "com.docker.compose.project.environment_file"
	labelAnonymous   = "com.docker.volume.anonymous"
)

// Engine is the part of the Docker API the guard reads.
type Engine = compose.Engine

// AtRisk maps each compose project to the volumes of it that cmd would delete. Volumes
// that belong to no compose project are not Echo's and are left out.
func AtRisk(ctx context.Context, api Engine, cmd Command) (map[string][]string, error) {
	var vols []volume.Volume
	var err error
	switch cmd.Kind {
	case VolumeRm:
		vols, err = named(ctx, api, cmd.Volumes)
	case VolumePrune:
		vols, err = unused(ctx, api, cmd, false)
	case SystemPrune:
		vols, err = unused(ctx, api, cmd, true)
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, v := range vols {
		if p := v.Labels[compose.LabelProject]; p != "" {
			out[p] = append(out[p], v.Name)
		}
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out, nil
}

// named are the volumes volume rm deletes: the engine refuses those a container, even a
// stopped one, still uses.
func named(ctx context.Context, api Engine, names []string) ([]volume.Volume, error) {
	inUse, err := mountedVolumes(ctx, api, true)
	if err != nil {
		return nil, err
	}
	var out []volume.Volume
	for _, n := range names {
		if inUse[n] {
			continue
		}
		res, err := api.VolumeInspect(ctx, n, client.VolumeInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			continue // docker will say so itself
		}
		if err != nil {
			return nil, fmt.Errorf("inspecting volume %q: %w", n, err)
		}
		out = append(out, res.Volume)
	}
	return out, nil
}

// unused is what a prune deletes: volumes no container uses, or for system prune no running
// container (it removes stopped containers first). A request made before API 1.42 prunes named
// volumes too (see spoken); from 1.42 only anonymous ones unless --all or a filter "all" (which may come
// from the CLI's config file: the caller merges those in).
func unused(ctx context.Context, api Engine, cmd Command, stoppedGo bool) ([]volume.Volume, error) {
	ping, err := api.Ping(ctx, client.PingOptions{})
	if err != nil {
		return nil, fmt.Errorf("asking the engine its API version: %w", err)
	}
	namedToo := cmd.All || hasAllFilter(cmd.Filters) || versionLess(spoken(ping.APIVersion, cmd.ClientAPI), "1.42")
	list, err := api.VolumeList(ctx, client.VolumeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing volumes: %w", err)
	}
	inUse, err := mountedVolumes(ctx, api, !stoppedGo)
	if err != nil {
		return nil, err
	}
	var out []volume.Volume
	for _, v := range list.Items {
		if inUse[v.Name] || !LabelsMatch(cmd.Filters, v.Labels) {
			continue
		}
		if _, anon := v.Labels[labelAnonymous]; anon || namedToo {
			out = append(out, v)
		}
	}
	return out, nil
}

func mountedVolumes(ctx context.Context, api Engine, stoppedToo bool) (map[string]bool, error) {
	res, err := api.ContainerList(ctx, client.ContainerListOptions{All: stoppedToo})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	out := map[string]bool{}
	for _, c := range res.Items {
		for _, m := range c.Mounts {
			if m.Type == "volume" {
				out[m.Name] = true
			}
		}
	}
	return out, nil
}

func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return len(pa) < len(pb)
}

// Located is where a project's files are, as compose recorded it on the project's containers.
type Located struct {
	Name     string
	Dir      string
	Files    []string
	EnvFiles []string
}

// Locate finds a project's folder and compose files from the labels of its containers, the
// ones compose itself counts as the project's. It fails when no container is left: then
// nothing tells where the compose files are.
func Locate(ctx context.Context, api Engine, project string) (*Located, error) {
	res, err := api.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", compose.LabelProject+"="+project, compose.LabelOneoff+"=False"),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the containers of project %q: %w", project, err)
	}
	for _, c := range res.Items {
		if dir := c.Labels[labelWorkingDir]; dir != "" {
			return &Located{Name: project, Dir: dir, Files: under(dir, splitComma(c.Labels[labelConfigFiles])),
				EnvFiles: under(dir, splitComma(c.Labels[labelEnvFile]))}, nil
		}
	}
	return nil, fmt.Errorf("no container of project %q is left to tell where its compose files are", project)
}

// splitComma splits a list compose joined with commas, keeping its order: the first compose
// file sets the project's folder.
func splitComma(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' })
}

// under makes paths relative to dir absolute: compose v1 records the files as they were
// typed (`-f compose.yaml`), v2 absolute; the guard may run in any folder.
func under(dir string, paths []string) []string {
	for i, p := range paths {
		if !filepath.IsAbs(p) {
			paths[i] = filepath.Join(dir, p)
		}
	}
	return paths
}

// ProjectVolumes are the volumes labelled as project's: what `docker compose -p NAME down -v`
// removes when it has no compose file to read (compose's actualVolumes).
func ProjectVolumes(ctx context.Context, api Engine, project string) ([]string, error) {
	res, err := api.VolumeList(ctx, client.VolumeListOptions{
		Filters: make(client.Filters).Add("label", compose.LabelProject+"="+project),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the volumes of project %q: %w", project, err)
	}
	var out []string
	for _, v := range res.Items {
		out = append(out, v.Name)
	}
	sort.Strings(out)
	return out, nil
}
