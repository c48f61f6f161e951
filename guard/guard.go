// Package guard protects a project's data volumes at the engine: a small running "sentinel"
// container outside the project mounts each of them, and the engine then refuses `docker
// volume rm`, skips them on `docker volume prune` and `docker system prune --volumes`, and
// `docker compose down -v` keeps them. A stopped container would not do: `system prune`
// removes stopped containers before it prunes volumes.
package guard

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/echo-backup/echo-backup/compose"
)

// Labels of the sentinel, shared with the other parts of echo-backup that look for it. Never
// compose's project label: compose would count the sentinel as one of its own (an orphan).
const (
	LabelSentinel = "com.echobackup.sentinel"
	LabelProject  = compose.LabelEchoProject
	LabelVolumes  = "com.echobackup.volumes"
	// LabelSince is when the project was first protected; a sentinel replaced to add a
	// volume keeps it.
	LabelSince = "com.echobackup.since"
)

// Sentinel is the container that holds a project's volumes.
type Sentinel struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Image   string    `json:"image"`
	ImageID string    `json:"imageId,omitempty"`
	Volumes []string  `json:"volumes"`
	Since   time.Time `json:"since"`
	State   string    `json:"state"`
}

// Running is true when the sentinel protects anything: only a running container does.
func (s *Sentinel) Running() bool { return s != nil && s.State == "running" }

// Name is the sentinel's container name, so that `docker ps` says what it is.
func Name(project string) string { return "echobackup-sentinel-" + project }

// Find returns the project's sentinels, the running and newest first; none is not an error.
// There is more than one only after an interrupted replacement.
func Find(ctx context.Context, api compose.Engine, project string) ([]Sentinel, error) {
	res, err := api.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelSentinel+"=1", LabelProject+"="+project),
	})
	if err != nil {
		return nil, fmt.Errorf("looking for the sentinel of project %q: %w", project, err)
	}
	var out []Sentinel
	for _, c := range res.Items {
		s := Sentinel{ID: c.ID, Image: c.Image, ImageID: c.ImageID, Volumes: splitVolumes(c.Labels[LabelVolumes]),
			Since: time.Unix(c.Created, 0).UTC(), State: string(c.State)}
		if len(c.Names) > 0 {
			s.Name = strings.TrimPrefix(c.Names[0], "/")
		}
		if t, err := time.Parse(time.RFC3339, c.Labels[LabelSince]); err == nil {
			s.Since = t
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Running() != out[j].Running() {
			return out[i].Running()
		}
		return out[i].Since.After(out[j].Since)
	})
	return out, nil
}

// Current is the sentinel that counts, nil when the project has none.
func Current(ctx context.Context, api compose.Engine, project string) (*Sentinel, error) {
	all, err := Find(ctx, api, project)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	return &all[0], nil
}

// DataVolumes are the named volumes of the plan that hold the project's data (the database's
// and the app's) and exist now. Bind folders need no sentinel: docker cannot remove them.
// A volume that does not exist is left out: mounting it would create it without compose's
// labels, and compose would then refuse it as not its own.
func DataVolumes(plan *compose.Plan) []string {
	var names []string
	for _, it := range plan.Items {
		if it.Kind == "volume" && it.Exists && (it.Role == compose.RoleData || it.Role == compose.RoleDatabase) {
			names = append(names, it.Source)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Unprotected are the data volumes the sentinel does not hold.
func Unprotected(plan *compose.Plan, s *Sentinel) []string {
	var out []string
	for _, v := range DataVolumes(plan) {
		if !s.Running() || !slices.Contains(s.Volumes, v) {
			out = append(out, v)
		}
	}
	return out
}

func splitVolumes(label string) []string {
	var out []string
	for _, v := range strings.Split(label, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// SettingKey is the top-level extension of the compose file that holds echo-backup's
// settings: `x-echobackup: {protect: true}` makes every save protect the project.
const SettingKey = "x-echobackup"

// ProtectByDefault reads `protect` from the compose file's x-echobackup extension. It lives
// in the compose file so that it travels with the deployment (and its backups).
func ProtectByDefault(plan *compose.Plan) (bool, error) {
	ext, ok := plan.Project.Extensions[SettingKey]
	if !ok || ext == nil {
		return false, nil
	}
	m, ok := ext.(map[string]any)
	if !ok {
		return false, &compose.UserError{Err: fmt.Errorf("%s in the compose file must be a mapping, such as {protect: true}", SettingKey)}
	}
	switch v := m["protect"].(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case string: // an interpolated ${VAR} arrives as text
		switch strings.ToLower(v) {
		case "true", "yes", "1", "on":
			return true, nil
		case "false", "no", "0", "off", "":
			return false, nil
		}
	}
	return false, &compose.UserError{Err: fmt.Errorf("%s.protect in the compose file must be true or false, not %v", SettingKey, m["protect"])}
}
