package shellguard

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
)

// Labels read from the engine. Compose puts the first ones on what it creates; the guard's
// sentinel container carries the last three (a contract shared with the guard package).
const (
	labelProject     = "com.docker.compose.project"
	labelOneoff      = "com.docker.compose.oneoff"
	labelWorkingDir  = "com.docker.compose.project.working_dir"
	labelConfigFiles = "com.docker.compose.project.config_files"
	labelEnvFile     = "com.docker.compose.project.environment_file"
	labelAnonymous   = "com.docker.volume.anonymous"
	labelSentinel    = "com.echobackup.sentinel"
	labelSentinelFor = "com.echobackup.project"
	labelSentinelVol = "com.echobackup.volumes"
)

// Engine is the part of the Docker API the guard reads.
type Engine = client.APIClient

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
		if p := v.Labels[labelProject]; p != "" {
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
// container (it removes stopped containers first). Before API 1.42 the engine prunes named
// volumes too; from 1.42 only anonymous ones unless --all.
func unused(ctx context.Context, api Engine, cmd Command, stoppedGo bool) ([]volume.Volume, error) {
	ping, err := api.Ping(ctx, client.PingOptions{})
	if err != nil {
		return nil, fmt.Errorf("asking the engine its API version: %w", err)
	}
	namedToo := cmd.All || versionLess(ping.APIVersion, "1.42")
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

// Locate finds a project's folder and compose files from the labels of its containers. It
// fails when no container is left: then nothing tells where the compose files are.
func Locate(ctx context.Context, api Engine, project string) (*Located, error) {
	res, err := api.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", labelProject+"="+project, labelOneoff+"=False"),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the containers of project %q: %w", project, err)
	}
	for _, c := range res.Items {
		dir := c.Labels[labelWorkingDir]
		if dir == "" {
			continue
		}
		loc := &Located{Name: project, Dir: dir, Files: splitList(c.Labels[labelConfigFiles]),
			EnvFiles: splitList(c.Labels[labelEnvFile])}
		return loc, nil
	}
	return nil, fmt.Errorf("no container of project %q is left to tell where its compose files are", project)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Sentinel is a running container of the guard that holds a project's volumes: while it
// runs, the engine refuses to delete them.
type Sentinel struct {
	Name    string
	Volumes []string
}

// Sentinels returns the running sentinels of project. A stopped one protects nothing from
// system prune, which removes it first.
func Sentinels(ctx context.Context, api Engine, project string) ([]Sentinel, error) {
	res, err := api.ContainerList(ctx, client.ContainerListOptions{
		Filters: make(client.Filters).Add("label", labelSentinel+"=1", labelSentinelFor+"="+project),
	})
	if err != nil {
		return nil, fmt.Errorf("looking for the guard's sentinel of project %q: %w", project, err)
	}
	var out []Sentinel
	for _, c := range res.Items {
		s := Sentinel{Name: c.ID[:12], Volumes: splitList(c.Labels[labelSentinelVol])}
		if len(c.Names) > 0 {
			s.Name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, s)
	}
	return out, nil
}

// Unprotected are the volumes that no sentinel holds.
func Unprotected(volumes []string, sentinels []Sentinel) []string {
	held := map[string]bool{}
	for _, s := range sentinels {
		for _, v := range s.Volumes {
			held[v] = true
		}
	}
	var out []string
	for _, v := range volumes {
		if !held[v] {
			out = append(out, v)
		}
	}
	return out
}
