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
	"github.com/echo-backup/echo-backup/engine"
)

// Labels of the sentinel, shared with the other parts of echo-backup that look for it. Never
// compose's project label: compose would count the sentinel as one of its own (an orphan).
const (
	LabelSentinel = "com.echobackup.sentinel"
	LabelProject  = engine.LabelEchoProject
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
	// Created breaks ties between sentinels with the same Since: a replacement keeps Since.
	Created time.Time `json:"created"`
}

// Running is true when the sentinel protects anything: only a running container does.
func (s *Sentinel) Running() bool { return s != nil && s.State == "running" }

// Name is the sentinel's container name, so that `docker ps` says what it is.
func Name(project string) string { return "echobackup-sentinel-" + project }

// Find returns the project's sentinels in the order of Order; none is not an error. There
// is more than one only after an interrupted replacement.
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
		created := time.Unix(c.Created, 0).UTC()
		s := Sentinel{ID: c.ID, Image: c.Image, ImageID: c.ImageID, Volumes: splitVolumes(c.Labels[LabelVolumes]),
			Since: created, State: string(c.State), Created: created}
		if len(c.Names) > 0 {
			s.Name = strings.TrimPrefix(c.Names[0], "/")
		}
		if t, err := time.Parse(time.RFC3339, c.Labels[LabelSince]); err == nil {
			s.Since = t
		}
		out = append(out, s)
	}
	Order(out)
	return out, nil
}

// Order puts the running sentinels first, then the newest: by Since, then by creation
// time, as a replacement keeps Since; the ID makes the order the same on every call.
func Order(all []Sentinel) {
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		switch {
		case a.Running() != b.Running():
			return a.Running()
		case !a.Since.Equal(b.Since):
			return a.Since.After(b.Since)
		case !a.Created.Equal(b.Created):
			return a.Created.After(b.Created)
		}
		return a.ID < b.ID
	})
}

// Current is the sentinel that counts, nil when the project has none.
func Current(ctx context.Context, api compose.Engine, project string) (*Sentinel, error) {
	all, err := Find(ctx, api, project)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	return &all[0], nil
}

// Unprotected are the data volumes (compose.Plan.DataVolumes) the sentinel does not hold.
func Unprotected(plan *compose.Plan, s *Sentinel) []string {
	var out []string
	for _, v := range plan.DataVolumes() {
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

// Protection is what status says about the guard.
type Protection struct {
	Protected   bool       `json:"protected"`
	Since       *time.Time `json:"since,omitempty"`
	Sentinel    string     `json:"sentinel,omitempty"`
	State       string     `json:"state,omitempty"`
	Volumes     []string   `json:"volumes,omitempty"`
	Unprotected []string   `json:"unprotected,omitempty"` // data volumes no sentinel holds
}

// Status says whether the project is protected, by which sentinel, and which of its data
// volumes no sentinel holds.
func Status(ctx context.Context, api compose.Engine, plan *compose.Plan) (*Protection, error) {
	cur, err := Current(ctx, api, plan.Name)
	if err != nil {
		return nil, err
	}
	p := &Protection{Protected: cur.Running(), Unprotected: Unprotected(plan, cur)}
	if cur != nil {
		since := cur.Since
		p.Since, p.Sentinel, p.State, p.Volumes = &since, cur.Name, cur.State, cur.Volumes
	}
	return p, nil
}
