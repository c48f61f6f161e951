package compose

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"
)

// EnsureVolume creates a project volume that is gone (after `docker compose down -v`) with the
// labels compose gives it, so that compose later treats it as its own.
func EnsureVolume(ctx context.Context, api Engine, plan *Plan, name string) error {
	if _, err := api.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err == nil {
		return nil
	}
	labels := map[string]string{LabelProject: plan.Name}
	for key, v := range plan.Project.Volumes {
		if v.Name == name {
			labels[LabelVolume] = key
			if bool(v.External) {
				labels = nil
			}
		}
	}
	if _, err := api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: labels}); err != nil {
		return fmt.Errorf("creating volume %s: %w", name, err)
	}
	return nil
}
